package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	sigsyaml "sigs.k8s.io/yaml"

	"github.com/zxmigrate/zxmigrate/migrate"
)

// requireTool returns the path of an optional validator (kubectl,
// systemd-analyze), or skips the test without it. Neither is a Debian
// package test.sh installs on every machine (kubectl is not in Debian 12 at
// a current version, and systemd is absent from most containers), so their
// checks add to the strict decoding above, which always runs.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed; this extra check is skipped", name)
	}
	return p
}

// kustomization is the part of kustomize's Kustomization type
// (kustomize.config.k8s.io/v1beta1) that deploy/kubernetes uses, with the
// same JSON names; decoding it strictly refuses any other field.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
		IncludeTemplates bool              `json:"includeTemplates,omitempty"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images"`
}

func TestKustomization(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := sigsyaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: apiVersion %q kind %q", k.APIVersion, k.Kind)
	}
	files := manifestFiles(t, k8sDir)
	for _, f := range files {
		if !slices.Contains(k.Resources, f) {
			t.Errorf("kustomization.yaml: resources do not list %s", f)
		}
	}
	for _, r := range k.Resources {
		if !slices.Contains(files, r) {
			t.Errorf("kustomization.yaml: resource %s is no manifest of %s", r, k8sDir)
		}
	}
	b := loadBundle(t)
	for _, ns := range b.namespaces {
		if ns.Name != k.Namespace {
			t.Errorf("kustomization.yaml: namespace %q, but namespace.yaml creates %q", k.Namespace, ns.Name)
		}
	}
	var images []string
	for _, j := range b.jobs {
		for _, c := range allContainers(&j.Spec.Template.Spec) {
			images = append(images, c.Image)
		}
	}
	for _, im := range k.Images {
		if !slices.Contains(images, im.Name) {
			t.Errorf("kustomization.yaml: image %q is used by no container (%v)", im.Name, images)
		}
		if im.NewTag == "" && im.Digest == "" || im.NewTag == "latest" {
			t.Errorf("kustomization.yaml: image %q: pin a tag or a digest", im.Name)
		}
	}
}

// TestKustomizeBuild builds the manifests with kubectl's kustomize, which
// refuses unknown Kustomization fields, and decodes its output strictly:
// what `kubectl apply -k` would send must pass the same checks.
func TestKustomizeBuild(t *testing.T) {
	kubectl := requireTool(t, "kubectl")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", k8sDir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, stderr.String())
	}
	b := newBundle()
	if err := decodeStream(b, "kubectl kustomize output", &stdout); err != nil {
		t.Fatal(err)
	}
	for _, err := range checkBundle(b) {
		t.Error(err)
	}
	for _, j := range b.jobs {
		if j.Namespace == "" {
			t.Errorf("Job %s: no namespace after kustomize", j.Name)
		}
		for _, c := range allContainers(&j.Spec.Template.Spec) {
			name, tag, ok := strings.Cut(c.Image[strings.LastIndex(c.Image, "/")+1:], ":")
			if !ok || name == "" || tag == "" || tag == "latest" {
				t.Errorf("Job %s: container %s: image %q is not pinned to a tag", j.Name, c.Name, c.Image)
			}
		}
	}
}

// dockerfile is a parsed Dockerfile: its instructions in order, with
// continuation lines joined.
type dockerfile []struct{ op, args string }

func parseDockerfile(data []byte) dockerfile {
	var d dockerfile
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		op, args, _ := strings.Cut(cur.String(), " ")
		d = append(d, struct{ op, args string }{strings.ToUpper(op), strings.TrimSpace(args)})
		cur.Reset()
	}
	return d
}

// checkDockerfile holds the image to its contract: multi-stage, a static
// binary (CGO_ENABLED=0, -trimpath) from the Go release go.mod names, a
// final image without a shell that runs as the numeric non-root uid.
func checkDockerfile(d dockerfile, goMod []byte) (uid int64, errs []error) {
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("Dockerfile: "+format, args...)) }
	var froms []string
	var build, user, entrypoint, copied string
	goVersion := ""
	for _, in := range d {
		switch in.op {
		case "FROM":
			froms = append(froms, in.args)
			user = ""
		case "ARG":
			if v, ok := strings.CutPrefix(in.args, "GO_VERSION="); ok {
				goVersion = v
			}
		case "RUN":
			if strings.Contains(in.args, "go build") {
				build = in.args
			}
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "COPY":
			if strings.HasPrefix(in.args, "--from=") {
				f := strings.Fields(in.args)
				copied = f[len(f)-1]
			}
		}
	}
	if len(froms) < 2 {
		bad("want a multi-stage build (a builder and a final image), got %d stages", len(froms))
		return 0, errs
	}
	wantGo := ""
	if m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod); m != nil {
		wantGo = string(m[1])
	}
	if wantGo == "" || goVersion != wantGo {
		bad("ARG GO_VERSION=%s, but go.mod says go %s", goVersion, wantGo)
	}
	if !strings.Contains(froms[0], "golang:") {
		bad("the first stage builds with the golang image, got %q", froms[0])
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/migrate"} {
		if !strings.Contains(build, want) {
			bad("the go build step lacks %s: %q", want, build)
		}
	}
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		bad("the final image is %q; want distroless/static or scratch (no shell, no package manager)", final)
	}
	u, _, _ := strings.Cut(user, ":")
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n <= 0 {
		bad("the final stage's USER is %q; want a numeric non-root uid, so that runAsNonRoot can be proven", user)
	}
	if copied == "" || !strings.Contains(entrypoint, `"`+copied+`"`) {
		bad("ENTRYPOINT %s does not run the binary copied to %q", entrypoint, copied)
	}
	return n, errs
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	goMod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	uid, errs := checkDockerfile(parseDockerfile(data), goMod)
	for _, err := range errs {
		t.Error(err)
	}
	for _, j := range loadBundle(t).jobs {
		if u := j.Spec.Template.Spec.SecurityContext.RunAsUser; u == nil || *u != uid {
			t.Errorf("Job %s: runAsUser %v, but the image's USER is %d", j.Name, u, uid)
		}
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(string(ignore)), ".git") {
		t.Error(".dockerignore: the build context must leave out .git")
	}

	// The checks fail on the mistakes they exist for.
	for _, tc := range []struct{ name, old, new, want string }{
		{"root user", "USER 65532:65532", "USER root", "USER"},
		{"cgo on", "CGO_ENABLED=0", "CGO_ENABLED=1", "CGO_ENABLED=0"},
		{"no trimpath", "-trimpath", "", "-trimpath"},
		{"shell in the final image", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:bookworm-slim", "final image"},
		{"single stage", "FROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/migrate /usr/local/bin/migrate", "", "multi-stage"},
		{"Go release drift", "ARG GO_VERSION=", "ARG GO_VERSION=1.19 #", "go.mod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed := strings.ReplaceAll(string(data), tc.old, tc.new)
			if changed == string(data) {
				t.Fatalf("%q not found in the Dockerfile", tc.old)
			}
			_, errs := checkDockerfile(parseDockerfile([]byte(changed)), goMod)
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("got %v, want an error containing %q", errors.Join(errs...), tc.want)
			}
		})
	}
}

// unit is a parsed systemd unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func parseUnit(data []byte) unit {
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, _ := strings.Cut(line, "=")
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

const unitFile = "systemd/zxmigrate-runner@.service"

// checkUnit holds the runner unit to its contract: a hardened service with
// a dynamic user and no capability, passwords as credentials, no secret on
// the command line, and no restart loop on the exit codes a restart cannot
// fix.
func checkUnit(u unit) []error {
	var errs []error
	s := u["Service"]
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(unitFile+": "+format, args...)) }
	last := func(k string) (string, bool) {
		v, ok := s[k]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[len(v)-1], true
	}
	for k, want := range map[string]string{
		"DynamicUser":           "yes",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"ProtectHome":           "yes",
		"PrivateTmp":            "yes",
		"CapabilityBoundingSet": "",
		"AmbientCapabilities":   "",
		"Restart":               "on-failure",
	} {
		if v, ok := last(k); !ok || v != want {
			bad("%s=%s; want %q", k, v, want)
		}
	}
	exec, _ := last("ExecStart")
	if !strings.Contains(exec, " run ") || !strings.Contains(exec, "--plan ") || !strings.Contains(exec, "--state ${STATE_URL}") {
		bad("ExecStart %q: want migrate run --plan FILE --state ${STATE_URL}", exec)
	}
	if secretishArg.MatchString(exec) || strings.Contains(strings.ToLower(exec), "password") {
		bad("ExecStart %q passes a secret on the command line", exec)
	}
	for _, env := range s["Environment"] {
		for _, kv := range strings.Fields(env) {
			k, v, _ := strings.Cut(kv, "=")
			if !secretishName.MatchString(k) {
				continue
			}
			id, ok := strings.CutPrefix(v, "%d/")
			if !ok {
				bad("Environment %s holds a secret; load it as a credential (LoadCredential)", kv)
			} else if !slices.Contains(credentialIDs(u), id) {
				bad("Environment %s names credential %s, which no LoadCredential loads", kv, id)
			}
		}
	}
	if len(s["LoadCredential"]) == 0 {
		bad("no LoadCredential: passwords reach the runner as credentials")
	}
	prevent := strings.Fields(strings.Join(s["RestartPreventExitStatus"], " "))
	for _, code := range []string{"2", "4"} {
		if !slices.Contains(prevent, code) {
			bad("RestartPreventExitStatus lacks %s: a restart cannot fix a wrong plan or refused credentials", code)
		}
	}
	return errs
}

// credentialIDs lists the unit's LoadCredential IDs.
func credentialIDs(u unit) []string {
	var ids []string
	for _, lc := range u["Service"]["LoadCredential"] {
		id, _, _ := strings.Cut(lc, ":")
		ids = append(ids, id)
	}
	return ids
}

func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	u := parseUnit(data)
	for _, err := range checkUnit(u) {
		t.Error(err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"static user", "DynamicUser=yes", "DynamicUser=no", "DynamicUser"},
		{"password on the command line", "--state ${STATE_URL}", "--state ${STATE_URL} --password=hunter2", "secret on the command line"},
		{"password in the environment", "Environment=MIGRATE_STATE_PASSWORD_FILE=%d/state.pass", "Environment=MIGRATE_STATE_PASSWORD=hunter2", "holds a secret"},
		{"restart loop on bad credentials", "RestartPreventExitStatus=2 3 4", "RestartPreventExitStatus=2 3", "lacks 4"},
		{"password file not loaded", "LoadCredential=state.pass:", "LoadCredential=state-pass:", "no LoadCredential loads"},
		{"capabilities kept", "CapabilityBoundingSet=\n", "CapabilityBoundingSet=CAP_NET_RAW\n", "CapabilityBoundingSet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed := strings.Replace(string(data), tc.old, tc.new, 1)
			if changed == string(data) {
				t.Fatalf("%q not found in the unit", tc.old)
			}
			errs := checkUnit(parseUnit([]byte(changed)))
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("got %v, want an error containing %q", errors.Join(errs...), tc.want)
			}
		})
	}
}

// systemdAnalyze runs systemd-analyze with args on the unit text, saved as
// instance "example", and returns what it printed. verify wants ExecStart's
// program to exist: the copy runs an empty script in a temporary directory.
func systemdAnalyze(t *testing.T, analyze string, text []byte, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	prog := filepath.Join(dir, "migrate")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	text = bytes.ReplaceAll(text, []byte("/usr/local/bin/migrate"), []byte(prog))
	file := filepath.Join(dir, "zxmigrate-runner@example.service")
	if err := os.WriteFile(file, text, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, append(args, file)...).CombinedOutput()
	return string(out), err
}

// TestSystemdAnalyze has systemd itself load the unit: verify reports an
// unknown directive, a bad value or a bad specifier, as the misspelt
// directive proves; security scores the sandbox, which must stay at an
// exposure of 2.0 or less ("OK"), as the unit without its hardening
// section proves it would not.
func TestSystemdAnalyze(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze")
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := systemdAnalyze(t, analyze, data, "verify"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	typo := bytes.Replace(data, []byte("RestartSec="), []byte("RestartSecs="), 1)
	if out, err := systemdAnalyze(t, analyze, typo, "verify"); err == nil && !strings.Contains(out, "RestartSecs") {
		t.Errorf("systemd-analyze verify accepted a misspelt directive silently: %v\n%s", err, out)
	}

	security := []string{"security", "--offline=yes", "--threshold=20", "--no-pager"}
	if out, err := systemdAnalyze(t, analyze, data, security...); err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0: %v\n%s", err, out)
	}
	i := bytes.Index(data, []byte("# Hardening"))
	j := bytes.Index(data, []byte("[Install]"))
	if i < 0 || j < i {
		t.Fatal("the unit has no \"# Hardening\" section before [Install]")
	}
	weak := append(slices.Clone(data[:i]), data[j:]...)
	if _, err := systemdAnalyze(t, analyze, weak, security...); err == nil {
		t.Error("systemd-analyze security passed the unit without its hardening: the threshold proves nothing")
	}
}

// TestSystemdPlan parses the example plan for the systemd runners with the
// project's plan parser and checks that each password_file is a credential
// the unit loads, under the credentials directory of instance "example".
func TestSystemdPlan(t *testing.T) {
	p, err := migrate.LoadPlan("systemd/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	ids := credentialIDs(parseUnit(data))
	const credDir = "/run/credentials/zxmigrate-runner@example.service/"
	n := 0
	for key, c := range planCredentials(p) {
		if c.PasswordEnv != "" {
			t.Errorf("plan %s: password_env %s; the unit passes passwords as credentials (password_file)", key, c.PasswordEnv)
		}
		if c.PasswordFile == "" {
			continue
		}
		n++
		id, ok := strings.CutPrefix(c.PasswordFile, credDir)
		if !ok || !slices.Contains(ids, id) {
			t.Errorf("plan %s: password_file %s is no credential of the unit (%s + one of %v)", key, c.PasswordFile, credDir, ids)
		}
	}
	if n == 0 {
		t.Error("the plan names no password_file")
	}
}

// shellWords splits a command line the way sh does for the simple words a
// Dockerfile RUN line uses: blanks separate words, and double or single
// quotes group.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	in := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// isStatic reports whether the ELF file at name needs no dynamic loader
// and no shared library.
func isStatic(name string) (bool, error) {
	f, err := elf.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return false, err
	}
	return len(libs) == 0, nil
}

// TestDockerBuildStep runs the Dockerfile's go build step here, with its
// environment and flags, and checks what the image would get: a static
// binary that reports the version and revision given as build arguments.
// (No Docker engine is needed; the image's other steps are checked by
// TestDockerfile.)
func TestDockerBuildStep(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the release binary (-short)")
	}
	if ok, err := isStatic("/bin/sh"); err != nil || ok {
		t.Fatalf("isStatic(/bin/sh) = %v, %v; want false: the check cannot tell a dynamic binary", ok, err)
	}
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var step string
	for _, in := range parseDockerfile(data) {
		if in.op == "RUN" && strings.Contains(in.args, "go build") {
			step = in.args
		}
	}
	const version, revision = "v0.0.0-dockerstep", "0123456789abcdef"
	step = strings.NewReplacer("${VERSION}", version, "${REVISION}", revision).Replace(step)
	words := shellWords(step)
	for len(words) > 0 && strings.HasPrefix(words[0], "--mount=") {
		words = words[1:]
	}
	var env []string
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		env = append(env, words[0])
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("the build step is not `[VAR=value ...] go build ...`: %q", step)
	}
	out := filepath.Join(t.TempDir(), "migrate")
	args := slices.Clone(words[1:])
	if i := slices.Index(args, "-o"); i < 0 || i+1 >= len(args) {
		t.Fatalf("the build step names no -o output: %q", step)
	} else {
		args[i+1] = out
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	if ok, err := isStatic(out); err != nil || !ok {
		t.Errorf("the binary is not static (distroless/static has no libc): %v", err)
	}
	b, err := exec.Command(out, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("migrate version: %v\n%s", err, b)
	}
	for _, want := range []string{version, revision} {
		if !strings.Contains(string(b), want) {
			t.Errorf("migrate version does not show %s, given as a build argument:\n%s", want, b)
		}
	}
}
