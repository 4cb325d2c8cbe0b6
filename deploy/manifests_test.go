package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/zxmigrate/zxmigrate/migrate"
)

// k8sDir holds the Kubernetes manifests, relative to this package.
const k8sDir = "kubernetes"

// The plan ConfigMap, its key, and the Secret keys that may reach argv
// through $(VAR): the state URL names user, host and database, never a
// password (checkStateURL proves it).
const (
	planConfigMap = "zxmigrate-plan"
	planKey       = "plan.yaml"
	stateURLKey   = "state-url"
)

var argvSafeSecretKeys = []string{stateURLKey}

// scheme knows every API type the manifests use. A kind outside it fails
// decoding, so a new manifest kind needs its group added here.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, batchv1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// decodeStrict decodes one YAML document into its Kubernetes API type with
// apimachinery's strict decoder, the one the API server applies with
// fieldValidation=Strict: an unknown field, a duplicate field, a value of
// the wrong type, an unknown kind or apiVersion are errors.
func decodeStrict(doc []byte) (runtime.Object, error) {
	codecs := serializer.NewCodecFactory(scheme, serializer.EnableStrict)
	obj, _, err := codecs.UniversalDeserializer().Decode(doc, nil, nil)
	if err != nil {
		// A strict decoding error comes with a decoded object: it is
		// still an error here.
		return nil, err
	}
	return obj, nil
}

// bundle is the set of objects the manifests declare.
type bundle struct {
	jobs            []*batchv1.Job
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	serviceAccounts map[string]*corev1.ServiceAccount
	networkPolicies []*networkingv1.NetworkPolicy
	namespaces      []*corev1.Namespace
}

func newBundle() *bundle {
	return &bundle{
		configMaps:      map[string]*corev1.ConfigMap{},
		secrets:         map[string]*corev1.Secret{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
	}
}

func (b *bundle) add(obj runtime.Object) error {
	switch o := obj.(type) {
	case *batchv1.Job:
		b.jobs = append(b.jobs, o)
	case *corev1.ConfigMap:
		b.configMaps[o.Name] = o
	case *corev1.Secret:
		b.secrets[o.Name] = o
	case *corev1.ServiceAccount:
		b.serviceAccounts[o.Name] = o
	case *networkingv1.NetworkPolicy:
		b.networkPolicies = append(b.networkPolicies, o)
	case *corev1.Namespace:
		b.namespaces = append(b.namespaces, o)
	default:
		return fmt.Errorf("%T: no check covers this kind; add it to bundle", obj)
	}
	return nil
}

// splitDocuments splits a YAML stream at its --- separators and drops
// documents that hold only comments.
func splitDocuments(r io.Reader) ([][]byte, error) {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs [][]byte
	for {
		doc, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var probe any
		if err := sigsyaml.Unmarshal(doc, &probe); err != nil {
			return nil, err
		}
		if probe != nil {
			docs = append(docs, doc)
		}
	}
}

// decodeStream decodes every document of a YAML stream strictly into b.
func decodeStream(b *bundle, name string, r io.Reader) error {
	docs, err := splitDocuments(r)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for i, doc := range docs {
		obj, err := decodeStrict(doc)
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", name, i+1, err)
		}
		if err := b.add(obj); err != nil {
			return fmt.Errorf("%s: document %d: %w", name, i+1, err)
		}
	}
	return nil
}

// manifestFiles lists the manifests kustomization.yaml may list: every
// .yaml file of dir but the kustomization itself.
func manifestFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() || e.Name() == "kustomization.yaml" {
			continue
		}
		if strings.HasSuffix(e.Name(), ".yml") {
			t.Errorf("%s: name manifests .yaml", e.Name())
		}
		if strings.HasSuffix(e.Name(), ".yaml") {
			files = append(files, e.Name())
		}
	}
	if len(files) == 0 {
		t.Fatalf("no manifest in %s", dir)
	}
	return files
}

func loadBundle(t *testing.T) *bundle {
	t.Helper()
	b := newBundle()
	for _, f := range manifestFiles(t, k8sDir) {
		data, err := os.ReadFile(filepath.Join(k8sDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeStream(b, f, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// checkBundle runs every check on b and returns what it found.
func checkBundle(b *bundle) []error {
	var errs []error
	if len(b.jobs) == 0 {
		errs = append(errs, errors.New("no runner Job"))
	}
	for _, j := range b.jobs {
		errs = append(errs, checkJob(j)...)
		spec := &j.Spec.Template.Spec
		where := "Job " + j.Name
		errs = append(errs, checkPodSecurity(where, spec)...)
		errs = append(errs, checkResources(where, spec)...)
		errs = append(errs, checkReferences(where, spec, b)...)
		errs = append(errs, checkSecretsOutOfArgv(where, spec, b)...)
		errs = append(errs, checkSpread(where, &j.Spec.Template)...)
		errs = append(errs, checkPlan(where, spec, b)...)
		if sa := spec.ServiceAccountName; sa != "" && b.serviceAccounts[sa] == nil {
			errs = append(errs, fmt.Errorf("%s: serviceAccountName %q: no such ServiceAccount", where, sa))
		}
	}
	for _, s := range b.secrets {
		errs = append(errs, checkSecretPlaceholders(s)...)
	}
	for _, np := range b.networkPolicies {
		errs = append(errs, checkSelectsRunner(np, b)...)
	}
	return errs
}

func allContainers(spec *corev1.PodSpec) []*corev1.Container {
	var cs []*corev1.Container
	for i := range spec.InitContainers {
		cs = append(cs, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		cs = append(cs, &spec.Containers[i])
	}
	return cs
}

// checkJob holds the runner Job to its contract: N indexed pods that all
// run at once, never restarted in place, and a failure policy that stops
// the Job on the exit codes every pod would repeat (2 usage or plan,
// 4 credentials refused; README "Exit codes").
func checkJob(j *batchv1.Job) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("Job %s: "+format, append([]any{j.Name}, args...)...))
	}
	s := j.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		bad("completionMode: want Indexed (one index per runner)")
	}
	if s.Completions == nil || s.Parallelism == nil || *s.Completions != *s.Parallelism || *s.Parallelism < 1 {
		bad("completions and parallelism must be the same N >= 1 (every runner runs at once)")
	}
	if s.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		bad("restartPolicy: want Never (podFailurePolicy needs it)")
	}
	failJob := map[int32]bool{}
	if s.PodFailurePolicy != nil {
		for _, r := range s.PodFailurePolicy.Rules {
			if r.Action == batchv1.PodFailurePolicyActionFailJob && r.OnExitCodes != nil && r.OnExitCodes.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn {
				for _, v := range r.OnExitCodes.Values {
					failJob[v] = true
				}
			}
			if r.OnExitCodes != nil && r.OnExitCodes.ContainerName != nil && !slices.ContainsFunc(s.Template.Spec.Containers, func(c corev1.Container) bool {
				return c.Name == *r.OnExitCodes.ContainerName
			}) {
				bad("podFailurePolicy names container %q, which the pod does not have", *r.OnExitCodes.ContainerName)
			}
			if r.Action == batchv1.PodFailurePolicyActionFailIndex && s.BackoffLimitPerIndex == nil {
				bad("podFailurePolicy action FailIndex needs backoffLimitPerIndex")
			}
		}
	}
	for _, code := range []int32{2, 4} {
		if !failJob[code] {
			bad("podFailurePolicy: exit code %d must fail the Job (every runner would repeat it)", code)
		}
	}
	return errs
}

// checkPodSecurity holds the pod to the "restricted" Pod Security Standard
// and more: non-root, a read-only root filesystem, no capability, no
// privilege escalation, the runtime's seccomp profile, no API token.
func checkPodSecurity(where string, spec *corev1.PodSpec) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(where+": "+format, args...))
	}
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		bad("host namespaces are not allowed")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		bad("automountServiceAccountToken: want false (the runner never calls the Kubernetes API)")
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad("securityContext.seccompProfile: want RuntimeDefault")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			bad("volume %s: hostPath is not allowed", v.Name)
		}
	}
	for _, c := range allContainers(spec) {
		csc := c.SecurityContext
		if csc == nil {
			csc = &corev1.SecurityContext{}
		}
		nonRoot := psc.RunAsNonRoot
		if csc.RunAsNonRoot != nil {
			nonRoot = csc.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			bad("container %s: runAsNonRoot must be true", c.Name)
		}
		uid := psc.RunAsUser
		if csc.RunAsUser != nil {
			uid = csc.RunAsUser
		}
		if uid == nil || *uid == 0 {
			bad("container %s: runAsUser must be a non-zero number (the image's USER 65532)", c.Name)
		}
		if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			bad("container %s: readOnlyRootFilesystem must be true", c.Name)
		}
		if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			bad("container %s: allowPrivilegeEscalation must be false", c.Name)
		}
		if csc.Privileged != nil && *csc.Privileged {
			bad("container %s: privileged is not allowed", c.Name)
		}
		if csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") || len(csc.Capabilities.Add) > 0 {
			bad("container %s: capabilities must drop ALL and add none", c.Name)
		}
		if c.Image == "" {
			bad("container %s: no image", c.Name)
		}
	}
	return errs
}

// checkResources wants CPU and memory requests and limits on every
// container, each limit at least its request.
func checkResources(where string, spec *corev1.PodSpec) []error {
	var errs []error
	for _, c := range allContainers(spec) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			switch {
			case !hasReq || req.IsZero():
				errs = append(errs, fmt.Errorf("%s: container %s: no %s request", where, c.Name, r))
			case !hasLim || lim.IsZero():
				errs = append(errs, fmt.Errorf("%s: container %s: no %s limit", where, c.Name, r))
			case lim.Cmp(req) < 0:
				errs = append(errs, fmt.Errorf("%s: container %s: %s limit %s below its request %s", where, c.Name, r, lim.String(), req.String()))
			}
		}
	}
	return errs
}

// secretHasKey reports whether Secret s defines key.
func secretHasKey(s *corev1.Secret, key string) bool {
	if _, ok := s.StringData[key]; ok {
		return true
	}
	_, ok := s.Data[key]
	return ok
}

func secretValue(s *corev1.Secret, key string) string {
	if v, ok := s.StringData[key]; ok {
		return v
	}
	return string(s.Data[key])
}

func configMapHasKey(cm *corev1.ConfigMap, key string) bool {
	if _, ok := cm.Data[key]; ok {
		return true
	}
	_, ok := cm.BinaryData[key]
	return ok
}

// checkReferences resolves every name a pod uses: ConfigMaps, Secrets and
// their keys (volumes, env, envFrom), and volumes (mounts). A misspelt key
// is as fatal at run time as a misspelt field.
func checkReferences(where string, spec *corev1.PodSpec, b *bundle) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(where+": "+format, args...))
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
		switch {
		case v.ConfigMap != nil:
			cm := b.configMaps[v.ConfigMap.Name]
			if cm == nil {
				bad("volume %s: no ConfigMap %q", v.Name, v.ConfigMap.Name)
				continue
			}
			for _, it := range v.ConfigMap.Items {
				if !configMapHasKey(cm, it.Key) {
					bad("volume %s: ConfigMap %s has no key %q", v.Name, cm.Name, it.Key)
				}
			}
		case v.Secret != nil:
			s := b.secrets[v.Secret.SecretName]
			if s == nil {
				bad("volume %s: no Secret %q", v.Name, v.Secret.SecretName)
				continue
			}
			for _, it := range v.Secret.Items {
				if !secretHasKey(s, it.Key) {
					bad("volume %s: Secret %s has no key %q", v.Name, s.Name, it.Key)
				}
			}
		}
	}
	mounted := map[string]bool{}
	for _, c := range allContainers(spec) {
		for _, m := range c.VolumeMounts {
			mounted[m.Name] = true
			if !volumes[m.Name] {
				bad("container %s: volumeMount %s: no such volume", c.Name, m.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				if s := b.secrets[r.Name]; s == nil {
					bad("container %s: env %s: no Secret %q", c.Name, e.Name, r.Name)
				} else if !secretHasKey(s, r.Key) {
					bad("container %s: env %s: Secret %s has no key %q", c.Name, e.Name, r.Name, r.Key)
				}
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				if cm := b.configMaps[r.Name]; cm == nil {
					bad("container %s: env %s: no ConfigMap %q", c.Name, e.Name, r.Name)
				} else if !configMapHasKey(cm, r.Key) {
					bad("container %s: env %s: ConfigMap %s has no key %q", c.Name, e.Name, r.Name, r.Key)
				}
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.SecretRef != nil && b.secrets[ef.SecretRef.Name] == nil {
				bad("container %s: envFrom: no Secret %q", c.Name, ef.SecretRef.Name)
			}
			if ef.ConfigMapRef != nil && b.configMaps[ef.ConfigMapRef.Name] == nil {
				bad("container %s: envFrom: no ConfigMap %q", c.Name, ef.ConfigMapRef.Name)
			}
		}
	}
	for name := range volumes {
		if !mounted[name] {
			bad("volume %s is mounted by no container", name)
		}
	}
	return errs
}

// varRef is Kubernetes' $(VAR) expansion in command and args.
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// secretishName matches environment variable names that hold secrets.
var secretishName = regexp.MustCompile(`(?i)pass|secret|token|key`)

// secretishArg matches a command-line argument that carries a secret value.
var secretishArg = regexp.MustCompile(`(?i)(pass(word)?|secret|token)[=:]|^--?(pass(word)?|secret|token)$`)

// checkSecretsOutOfArgv keeps secrets out of the process's argv, where any
// local user and every `ps` sees them: no secret value or secret-looking
// flag in command or args; a $(VAR) there may expand only a variable that
// is not a secret, or the state URL, which checkStateURL proves free of a
// password; secret-named variables come from a Secret, never a literal,
// and a secret-named *_FILE variable names a mounted Secret key.
func checkSecretsOutOfArgv(where string, spec *corev1.PodSpec, b *bundle) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(where+": "+format, args...))
	}
	var values []string
	for _, s := range b.secrets {
		for k := range s.StringData {
			if !slices.Contains(argvSafeSecretKeys, k) {
				values = append(values, secretValue(s, k))
			}
		}
		for k := range s.Data {
			if !slices.Contains(argvSafeSecretKeys, k) {
				values = append(values, secretValue(s, k))
			}
		}
	}
	for _, c := range allContainers(spec) {
		fromSecret := map[string]corev1.SecretKeySelector{}
		files := secretFiles(c, spec, b)
		for _, e := range c.Env {
			switch {
			case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
				fromSecret[e.Name] = *e.ValueFrom.SecretKeyRef
			case e.ValueFrom == nil && secretishName.MatchString(e.Name) && strings.HasSuffix(e.Name, "_FILE"):
				if !files[e.Value] {
					bad("container %s: env %s names %s, which is not a mounted Secret key", c.Name, e.Name, e.Value)
				}
			case e.ValueFrom == nil && secretishName.MatchString(e.Name) && e.Value != "":
				bad("container %s: env %s holds a literal value; take it from a Secret", c.Name, e.Name)
			}
		}
		argv := append(slices.Clone(c.Command), c.Args...)
		for _, arg := range argv {
			if secretishArg.MatchString(arg) {
				bad("container %s: argument %q passes a secret on argv", c.Name, arg)
			}
			for _, v := range values {
				if v != "" && strings.Contains(arg, v) {
					bad("container %s: argument %q holds a Secret value on argv", c.Name, arg)
				}
			}
			if u, err := url.Parse(arg); err == nil && u.User != nil {
				if _, ok := u.User.Password(); ok {
					bad("container %s: argument %q: a URL with a password on argv", c.Name, arg)
				}
			}
			for _, m := range varRef.FindAllStringSubmatch(arg, -1) {
				ref, ok := fromSecret[m[1]]
				if !ok {
					if secretishName.MatchString(m[1]) {
						bad("container %s: argument %q expands %s onto argv", c.Name, arg, m[1])
					}
					continue
				}
				if !slices.Contains(argvSafeSecretKeys, ref.Key) {
					bad("container %s: argument %q expands Secret key %s onto argv", c.Name, arg, ref.Key)
					continue
				}
				if s := b.secrets[ref.Name]; s != nil {
					if err := checkStateURL(secretValue(s, ref.Key)); err != nil {
						bad("container %s: argument %q: Secret %s key %s: %v", c.Name, arg, ref.Name, ref.Key, err)
					}
				}
			}
		}
	}
	return errs
}

// checkStateURL accepts a PostgreSQL URL that carries no password, neither
// in its user information nor as a password parameter.
func checkStateURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("state URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("state URL: scheme %q, want postgres", u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return errors.New("state URL: no user")
	}
	if _, ok := u.User.Password(); ok {
		return errors.New("state URL carries a password; it belongs in the MIGRATE_STATE_PASSWORD_FILE file")
	}
	if u.Query().Has("password") {
		return errors.New("state URL carries a password parameter; it belongs in the MIGRATE_STATE_PASSWORD_FILE file")
	}
	switch u.Query().Get("sslmode") {
	case "verify-full", "verify-ca":
	default:
		return fmt.Errorf("state URL: sslmode=%q; want verify-full (the runners cross the network to PostgreSQL)", u.Query().Get("sslmode"))
	}
	return nil
}

// checkSecretPlaceholders keeps real secrets out of the repository: values
// are stringData (readable placeholders), and every password-like value
// says REPLACE-ME.
func checkSecretPlaceholders(s *corev1.Secret) []error {
	var errs []error
	if len(s.Data) > 0 {
		errs = append(errs, fmt.Errorf("Secret %s: data holds base64 values; keep placeholders in stringData", s.Name))
	}
	for k, v := range s.StringData {
		if strings.Contains(k, "password") && !strings.HasPrefix(v, "REPLACE-ME") {
			errs = append(errs, fmt.Errorf("Secret %s: key %s: want a REPLACE-ME placeholder, not a value", s.Name, k))
		}
	}
	return errs
}

// checkSpread wants the runners spread over nodes, and every spread or
// anti-affinity selector to select the pods themselves: a label typo there
// would silently spread nothing.
func checkSpread(where string, tmpl *corev1.PodTemplateSpec) []error {
	var errs []error
	podLabels := labels.Set(tmpl.Labels)
	spec := &tmpl.Spec
	selects := func(what string, ls *metav1.LabelSelector) {
		if ls == nil {
			errs = append(errs, fmt.Errorf("%s: %s: no labelSelector", where, what))
			return
		}
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", where, what, err))
			return
		}
		if sel.Empty() || !sel.Matches(podLabels) {
			errs = append(errs, fmt.Errorf("%s: %s: labelSelector %s does not select the runner pods (%s)", where, what, sel, podLabels))
		}
	}
	byHost := false
	for _, c := range spec.TopologySpreadConstraints {
		selects("topologySpreadConstraint "+c.TopologyKey, c.LabelSelector)
		if c.TopologyKey == corev1.LabelHostname {
			byHost = true
		}
	}
	if a := spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for _, t := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			selects("podAntiAffinity "+t.TopologyKey, t.LabelSelector)
			byHost = byHost || t.TopologyKey == corev1.LabelHostname
		}
		for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			selects("podAntiAffinity "+w.PodAffinityTerm.TopologyKey, w.PodAffinityTerm.LabelSelector)
			byHost = byHost || w.PodAffinityTerm.TopologyKey == corev1.LabelHostname
		}
	}
	if !byHost {
		errs = append(errs, fmt.Errorf("%s: no spread over %s (runners on distinct nodes and egress IPs)", where, corev1.LabelHostname))
	}
	return errs
}

// checkSelectsRunner wants a NetworkPolicy to select the runner pods.
func checkSelectsRunner(np *networkingv1.NetworkPolicy, b *bundle) []error {
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return []error{fmt.Errorf("NetworkPolicy %s: %w", np.Name, err)}
	}
	for _, j := range b.jobs {
		if !sel.Empty() && sel.Matches(labels.Set(j.Spec.Template.Labels)) {
			return nil
		}
	}
	return []error{fmt.Errorf("NetworkPolicy %s: podSelector %s selects no runner pod", np.Name, sel)}
}

// mountOf returns the mount path at which the container sees file key of
// the ConfigMap or Secret volume, or "".
func mountOf(c *corev1.Container, spec *corev1.PodSpec, isSource func(*corev1.Volume) bool, key string) string {
	for _, v := range spec.Volumes {
		if !isSource(&v) {
			continue
		}
		var items []corev1.KeyToPath
		switch {
		case v.ConfigMap != nil:
			items = v.ConfigMap.Items
		case v.Secret != nil:
			items = v.Secret.Items
		}
		filePath := key
		if len(items) > 0 {
			filePath = ""
			for _, it := range items {
				if it.Key == key {
					filePath = it.Path
				}
			}
			if filePath == "" {
				continue
			}
		}
		for _, m := range c.VolumeMounts {
			if m.Name != v.Name {
				continue
			}
			if m.SubPath != "" {
				if m.SubPath == filePath {
					return m.MountPath
				}
				continue
			}
			return path.Join(m.MountPath, filePath)
		}
	}
	return ""
}

// secretFiles returns the paths at which container c sees a key of a
// Secret volume.
func secretFiles(c *corev1.Container, spec *corev1.PodSpec, b *bundle) map[string]bool {
	files := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.Secret == nil || b.secrets[v.Secret.SecretName] == nil {
			continue
		}
		s := b.secrets[v.Secret.SecretName]
		var keys []string
		for k := range s.StringData {
			keys = append(keys, k)
		}
		for k := range s.Data {
			keys = append(keys, k)
		}
		for _, k := range keys {
			name := v.Name
			if p := mountOf(c, spec, func(x *corev1.Volume) bool { return x.Name == name }, k); p != "" {
				files[p] = true
			}
		}
	}
	return files
}

// flagValue returns the value of --name in argv ("--name v" or
// "--name=v"), or "".
func flagValue(argv []string, name string) string {
	for i, a := range argv {
		if a == name && i+1 < len(argv) {
			return argv[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// checkPlan runs the plan in the ConfigMap through the project's own plan
// parser (migrate.ParsePlan: unknown keys, inline secrets, missing
// credentials and bad values are errors) and checks it against the pod:
// --plan names the mounted plan, every password_file is a mounted Secret
// key, every password_env comes from a Secret, and the report directory is
// on a writable volume (the root filesystem is read-only).
func checkPlan(where string, spec *corev1.PodSpec, b *bundle) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(where+": "+format, args...))
	}
	cm := b.configMaps[planConfigMap]
	if cm == nil || cm.Data[planKey] == "" {
		return []error{fmt.Errorf("%s: no ConfigMap %s with key %s", where, planConfigMap, planKey)}
	}
	plan, err := migrate.ParsePlan(strings.NewReader(cm.Data[planKey]))
	if err != nil {
		return []error{fmt.Errorf("%s: ConfigMap %s key %s: the plan parser refuses it: %w", where, planConfigMap, planKey, err)}
	}
	for _, c := range spec.Containers {
		argv := append(slices.Clone(c.Command), c.Args...)
		if !slices.Contains(argv, "run") {
			continue
		}
		planPath := flagValue(argv, "--plan")
		isPlanCM := func(v *corev1.Volume) bool { return v.ConfigMap != nil && v.ConfigMap.Name == planConfigMap }
		if got := mountOf(&c, spec, isPlanCM, planKey); planPath == "" || got != planPath {
			bad("container %s: --plan %q, but the ConfigMap's %s is mounted at %q", c.Name, planPath, planKey, got)
		}
		if flagValue(argv, "--state") == "" {
			bad("container %s: no --state: every runner must share the PostgreSQL state", c.Name)
		}
		secretFiles := secretFiles(&c, spec, b)
		envFromSecret := map[string]bool{}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				envFromSecret[e.Name] = true
			}
		}
		for key, cred := range planCredentials(plan) {
			if cred.PasswordFile != "" && !secretFiles[cred.PasswordFile] {
				bad("container %s: plan %s.password_file %s is no mounted Secret key", c.Name, key, cred.PasswordFile)
			}
			if cred.PasswordEnv != "" && !envFromSecret[cred.PasswordEnv] {
				bad("container %s: plan %s.password_env %s is not set from a Secret", c.Name, key, cred.PasswordEnv)
			}
		}
		report := flagValue(argv, "--report-dir")
		if report == "" {
			report = plan.ReportDir()
		}
		if !writable(&c, spec, report) {
			bad("container %s: report directory %s is on no writable volume (readOnlyRootFilesystem)", c.Name, report)
		}
	}
	return errs
}

// planCredentials lists the plan's credentials by key.
func planCredentials(p *migrate.Plan) map[string]migrate.Credential {
	return map[string]migrate.Credential{
		"source.admin":      p.Source.Admin.Credential,
		"source.imap":       p.Source.IMAP.Credential,
		"source.dav":        p.Source.DAV.Credential,
		"destination.admin": p.Destination.Admin.Credential,
		"destination.imap":  p.Destination.IMAP.Credential,
		"destination.dav":   p.Destination.DAV.Credential,
	}
}

// writable reports whether dir lies on a writable emptyDir mount.
func writable(c *corev1.Container, spec *corev1.PodSpec, dir string) bool {
	if !path.IsAbs(dir) {
		return false
	}
	for _, m := range c.VolumeMounts {
		if m.ReadOnly || m.SubPath != "" {
			continue
		}
		if dir != m.MountPath && !strings.HasPrefix(dir, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.EmptyDir != nil {
				return true
			}
		}
	}
	return false
}

func TestManifestsDecodeStrictly(t *testing.T) {
	b := loadBundle(t)
	if len(b.jobs) != 1 || len(b.configMaps) == 0 || len(b.secrets) == 0 {
		t.Fatalf("got %d Jobs, %d ConfigMaps, %d Secrets; want 1 runner Job with its ConfigMap and Secret", len(b.jobs), len(b.configMaps), len(b.secrets))
	}
}

func TestManifestsPassChecks(t *testing.T) {
	for _, err := range checkBundle(loadBundle(t)) {
		t.Error(err)
	}
}

// TestStrictDecodingRejects proves the decoder fails on what a typo in a
// manifest produces, and passes the same document without the typo.
func TestStrictDecodingRejects(t *testing.T) {
	const valid = `apiVersion: batch/v1
kind: Job
metadata:
  name: j
spec:
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: runner
          image: zxmigrate
          resources:
            limits:
              memory: 1Gi
`
	if _, err := decodeStrict([]byte(valid)); err != nil {
		t.Fatalf("valid Job: %v", err)
	}
	for _, tc := range []struct {
		name, old, new string
	}{
		{"unknown field in spec", "parallelism: 2", "parallelizm: 2"},
		{"unknown field in container", "image: zxmigrate", "image: zxmigrate\n          imagePullPolicyy: Always"},
		{"unknown field in metadata", "name: j", "name: j\n  label: {a: b}"},
		{"duplicate field", "parallelism: 2", "parallelism: 2\n  parallelism: 3"},
		{"wrong type", "parallelism: 2", "parallelism: two"},
		{"bad quantity", "memory: 1Gi", "memory: 1 Gi"},
		{"unknown kind", "kind: Job", "kind: Jobs"},
		{"unknown apiVersion", "apiVersion: batch/v1", "apiVersion: batch/v2"},
		{"field at the wrong level", "      restartPolicy: Never", "      restartPolicy: Never\n      image: zxmigrate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(valid, tc.old, tc.new, 1)
			if doc == valid {
				t.Fatalf("the case does not change the document (%q not found)", tc.old)
			}
			if obj, err := decodeStrict([]byte(doc)); err == nil {
				t.Errorf("decoded into %T without error:\n%s", obj, doc)
			}
		})
	}
}

// TestChecksCatch proves each check fails on the mistake it exists for:
// every case breaks one thing in the real manifests and wants an error
// naming it.
func TestChecksCatch(t *testing.T) {
	runner := func(b *bundle) *corev1.Container { return &b.jobs[0].Spec.Template.Spec.Containers[0] }
	env := func(c *corev1.Container, name string) *corev1.EnvVar {
		for i := range c.Env {
			if c.Env[i].Name == name {
				return &c.Env[i]
			}
		}
		t.Fatalf("container %s has no env %s", c.Name, name)
		return nil
	}
	setPlan := func(b *bundle, f func(string) string) {
		cm := b.configMaps[planConfigMap]
		cm.Data[planKey] = f(cm.Data[planKey])
	}
	for _, tc := range []struct {
		name   string
		mutate func(b *bundle)
		want   string
	}{
		{"memory limit missing", func(b *bundle) { delete(runner(b).Resources.Limits, corev1.ResourceMemory) }, "no memory limit"},
		{"cpu request missing", func(b *bundle) { delete(runner(b).Resources.Requests, corev1.ResourceCPU) }, "no cpu request"},
		{"runs as root", func(b *bundle) { f := false; runner(b).SecurityContext.RunAsNonRoot = &f }, "runAsNonRoot"},
		{"writable root filesystem", func(b *bundle) { runner(b).SecurityContext.ReadOnlyRootFilesystem = nil }, "readOnlyRootFilesystem"},
		{"capability added", func(b *bundle) {
			runner(b).SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		}, "capabilities"},
		{"privilege escalation", func(b *bundle) { tr := true; runner(b).SecurityContext.AllowPrivilegeEscalation = &tr }, "allowPrivilegeEscalation"},
		{"service account token", func(b *bundle) { b.jobs[0].Spec.Template.Spec.AutomountServiceAccountToken = nil }, "automountServiceAccountToken"},
		{"password flag on argv", func(b *bundle) { runner(b).Args = append(runner(b).Args, "--password=hunter2") }, "secret on argv"},
		{"secret variable expanded on argv", func(b *bundle) {
			runner(b).Args = append(runner(b).Args, "--state-password", "$(MIGRATE_STATE_PASSWORD)")
		}, "onto argv"},
		{"secret value on argv", func(b *bundle) {
			runner(b).Args = append(runner(b).Args, b.secrets["zxmigrate-credentials"].StringData["state-password"])
		}, "Secret value on argv"},
		{"state URL with a password", func(b *bundle) {
			b.secrets["zxmigrate-credentials"].StringData[stateURLKey] = "postgres://zxmigrate:hunter2@db:5432/zxmigrate?sslmode=verify-full"
		}, "carries a password"},
		{"state URL without TLS verification", func(b *bundle) {
			b.secrets["zxmigrate-credentials"].StringData[stateURLKey] = "postgres://zxmigrate@db:5432/zxmigrate?sslmode=require"
		}, "sslmode"},
		{"literal password in env", func(b *bundle) {
			runner(b).Env = append(runner(b).Env, corev1.EnvVar{Name: "MIGRATE_STATE_PASSWORD", Value: "hunter2"})
		}, "literal value"},
		{"password file not mounted", func(b *bundle) {
			env(runner(b), "MIGRATE_STATE_PASSWORD_FILE").Value = "/etc/zxmigrate/state.pass"
		}, "not a mounted Secret key"},
		{"real-looking secret committed", func(b *bundle) {
			b.secrets["zxmigrate-credentials"].StringData["state-password"] = "s3cret!"
		}, "REPLACE-ME"},
		{"Secret key misspelt", func(b *bundle) {
			env(runner(b), "STATE_URL").ValueFrom.SecretKeyRef.Key = "state-ulr"
		}, `has no key "state-ulr"`},
		{"Secret volume item misspelt", func(b *bundle) {
			for _, v := range b.jobs[0].Spec.Template.Spec.Volumes {
				if v.Secret != nil {
					v.Secret.Items[0].Key = "state-pasword"
				}
			}
		}, `has no key "state-pasword"`},
		{"ConfigMap name misspelt", func(b *bundle) {
			for i, v := range b.jobs[0].Spec.Template.Spec.Volumes {
				if v.ConfigMap != nil {
					b.jobs[0].Spec.Template.Spec.Volumes[i].ConfigMap.Name = "zxmigrate-plans"
				}
			}
		}, `no ConfigMap "zxmigrate-plans"`},
		{"mount of no volume", func(b *bundle) { runner(b).VolumeMounts[0].Name = "plans" }, "no such volume"},
		{"spread selector selects nothing", func(b *bundle) {
			c := &b.jobs[0].Spec.Template.Spec.TopologySpreadConstraints[0]
			c.LabelSelector.MatchLabels = map[string]string{"app.kubernetes.io/name": "zxmigrat"}
		}, "does not select the runner pods"},
		{"no spread over nodes", func(b *bundle) {
			b.jobs[0].Spec.Template.Spec.TopologySpreadConstraints = nil
			b.jobs[0].Spec.Template.Spec.Affinity = nil
		}, "no spread"},
		{"network policy selects nothing", func(b *bundle) {
			b.networkPolicies[0].Spec.PodSelector.MatchLabels["app.kubernetes.io/component"] = "runners"
		}, "selects no runner pod"},
		{"plan key misspelt", func(b *bundle) {
			setPlan(b, func(s string) string { return strings.Replace(s, "concurrency:", "concurency:", 1) })
		}, "plan parser refuses it"},
		{"inline password in the plan", func(b *bundle) {
			setPlan(b, func(s string) string {
				return strings.Replace(s, "password_file: /etc/zxmigrate/secrets/source-admin.pass", "password: hunter2", 1)
			})
		}, "plan parser refuses it"},
		{"plan password file not mounted", func(b *bundle) {
			setPlan(b, func(s string) string {
				return strings.ReplaceAll(s, "/etc/zxmigrate/secrets/destination-admin.pass", "/etc/zxmigrate/destination-admin.pass")
			})
		}, "is no mounted Secret key"},
		{"plan password env not from a Secret", func(b *bundle) {
			setPlan(b, func(s string) string {
				return strings.Replace(s, "password_file: /etc/zxmigrate/secrets/source-admin.pass", "password_env: ZIMBRA_ADMIN_PASSWORD", 1)
			})
		}, "is not set from a Secret"},
		{"report on the read-only root", func(b *bundle) {
			setPlan(b, func(s string) string {
				return strings.Replace(s, "report: /var/lib/zxmigrate/report", "report: /srv/report", 1)
			})
		}, "no writable volume"},
		{"--plan names no mounted file", func(b *bundle) {
			a := runner(b).Args
			a[slices.Index(a, "--plan")+1] = "/etc/zxmigrate/plan.yml"
		}, "--plan"},
		{"no shared state", func(b *bundle) {
			a := runner(b).Args
			i := slices.Index(a, "--state")
			runner(b).Args = slices.Delete(a, i, i+2)
		}, "no --state"},
		{"runners not all at once", func(b *bundle) { n := int32(1); b.jobs[0].Spec.Parallelism = &n }, "parallelism"},
		{"config errors retried", func(b *bundle) { b.jobs[0].Spec.PodFailurePolicy = nil }, "exit code 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := loadBundle(t)
			if errs := checkBundle(b); len(errs) > 0 {
				t.Fatalf("the manifests fail before the change: %v", errors.Join(errs...))
			}
			tc.mutate(b)
			errs := checkBundle(b)
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("got %v, want an error containing %q", errors.Join(errs...), tc.want)
			}
		})
	}
}
