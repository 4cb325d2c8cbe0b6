package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/internal/testssh"
	"github.com/zxmigrate/zxmigrate/internal/transfer"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/retry"
)

// fakeZxsuite is a stand-in for Zextras Suite's zxsuite command (the real
// one needs a Zimbra server with a Backup license and cannot run here). It
// speaks the grammar the export phase uses (zextras/tech-doc
// source/cli/ZxBackup/zxsuite_backup_doExport.rst,
// source/cli/ZxCore/zxsuite_core_getAllOperations.rst, getOperationLog)
// with --json answers shaped like carbonio's: doExport returns an
// operation id at once and writes the export in the background (the
// accounts listed in the file "accounts" next to the script, in
// carboniotest's fake export format, plus one item blob of "blobsize"
// random bytes) after "delay" seconds (default 1); the operation is listed
// as Started until the writer has finished, then appears in the operation
// log with type Finished, or Exception when a file "fail" is there.
const fakeZxsuite = `#!/bin/sh
dir=$(cd "$(dirname "$0")" && pwd)
state="$dir/state"
mkdir -p "$state"
echo "$*" >>"$state/calls"
[ "$1" = --json ] || { echo "fake zxsuite: only --json" >&2; exit 2; }
shift
host=zimbra.example.com
case "$1 $2" in
"backup doExport")
	path=$3
	if [ ! -d "$path" ]; then
		printf '{"ok":false,"error":{"message":"destination path %s does not exist"}}\n' "$path"
		exit 1
	fi
	id=00000000-0000-0000-0000-$(date +%s%N | cut -c 8-19)
	echo "$id" >"$state/op"
	rm -f "$state/done"
	(
		sleep "$(cat "$dir/delay" 2>/dev/null || echo 1)"
		mkdir -p "$path/items/ff" "$path/domains/example.com"
		printf 'fake export\n' >"$path/map_0a1b2c3d"
		printf '{"name":"example.com"}' >"$path/domains/example.com/domain_info"
		n=0
		while read -r acct; do
			n=$((n + 1))
			mkdir -p "$path/accounts/$n"
			printf '{"account":{"name":"%s"}}' "$acct" >"$path/accounts/$n/account_info"
			head -c 5000 /dev/urandom >"$path/accounts/$n/account_stat"
		done <"$dir/accounts"
		head -c "$(cat "$dir/blobsize")" /dev/urandom >"$path/items/ff/blob.big"
		touch "$state/done"
	) </dev/null >/dev/null 2>&1 &
	printf '{"ok":true,"response":{"operationId":"%s"}}\n' "$id"
	;;
"core getAllOperations")
	if [ -f "$state/op" ] && [ ! -f "$state/done" ]; then
		printf '{"ok":true,"nested":true,"response":{"%s":{"ok":true,"response":{"operationList":[{"id":"%s","module":"ZxBackup","name":"Export","state":"Started","host":"%s"}]}}}}\n' "$host" "$(cat "$state/op")" "$host"
	else
		printf '{"ok":true,"nested":true,"response":{"%s":{"ok":true,"response":{"operationList":[]}}}}\n' "$host"
	fi
	;;
"core getOperationLog")
	if [ -f "$state/done" ]; then
		type=Finished
		[ -f "$dir/fail" ] && type=Exception
		printf '{"ok":true,"nested":true,"response":{"%s":{"ok":true,"response":{"operationList":[{"id":"%s","module":"ZxBackup","name":"Export","state":"Finished","type":"%s","serverId":"%s"}]}}}}\n' "$host" "$(cat "$state/op")" "$type" "$host"
	else
		printf '{"ok":true,"nested":true,"response":{"%s":{"ok":true,"response":{"operationList":[]}}}}\n' "$host"
	fi
	;;
*)
	echo "fake zxsuite: unknown command $*" >&2
	exit 2
	;;
esac
`

// needTools skips without rsync, or fails when CI is set.
func needRsync(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("rsync"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("rsync not installed (required in CI): %v", err)
		}
		t.Skipf("rsync not installed: %v", err)
	}
}

type seedEnv struct {
	sshd       *testssh.Server
	zxsuite    string // the fake's path
	srcExport  string // export.path on the "source host"
	dstExport  string // provisioning.backup_path
	state      string
	accounts   []string
	dst        *carboniotest.Server
	listFile   string
	reportDir  string
	zxsuiteDir string
}

func newSeedEnv(t *testing.T, blob int) *seedEnv {
	needRsync(t)
	e := &seedEnv{sshd: testssh.Start(t)}
	e.zxsuiteDir = t.TempDir()
	e.zxsuite = filepath.Join(e.zxsuiteDir, "zxsuite")
	if err := os.WriteFile(e.zxsuite, []byte(fakeZxsuite), 0o755); err != nil {
		t.Fatal(err)
	}
	e.accounts = []string{"anna@example.com", "bob@example.com", "carla@example.com"}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(e.zxsuiteDir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("accounts", strings.Join(e.accounts, "\n")+"\n")
	write("blobsize", fmt.Sprint(blob))
	e.srcExport = filepath.Join(t.TempDir(), "source", "export")
	e.dstExport = filepath.Join(t.TempDir(), "destination", "export")
	dir := t.TempDir()
	e.state, e.reportDir = filepath.Join(dir, "state.db"), filepath.Join(dir, "report")
	e.listFile = filepath.Join(dir, "accounts.txt")
	if err := os.WriteFile(e.listFile, []byte(strings.Join(e.accounts, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.dst = carboniotest.New(carboniotest.Options{})
	t.Cleanup(e.dst.Close)
	return e
}

func (e *seedEnv) plan() *migrate.Plan {
	ssh := migrate.SSHEndpoint{Address: e.sshd.Addr, User: e.sshd.User, KnownHostsFile: e.sshd.KnownHosts, KeyFiles: []string{e.sshd.ClientKey}}
	return &migrate.Plan{
		Name:         "export and transfer",
		Source:       migrate.Endpoint{CLI: migrate.CLIEndpoint{Mode: "ssh", SSH: ssh, Program: e.zxsuite}},
		Domains:      []string{"example.com"},
		Accounts:     migrate.Selection{ListFile: e.listFile},
		Phases:       []migrate.Phase{migrate.PhaseExport, migrate.PhaseTransfer},
		Export:       migrate.ExportPlan{Path: e.srcExport},
		Provisioning: migrate.Provisioning{BackupPath: e.dstExport},
		State:        e.state,
		Report:       e.reportDir,
	}
}

func (e *seedEnv) runner(p *migrate.Plan, onEvent func(migrate.Event)) *migrate.Runner {
	return &migrate.Runner{Plan: p, OnEvent: onEvent, Hooks: migrate.Hooks{
		DestinationCLI: e.dst.ExportRunner(0), PollInterval: 50 * time.Millisecond}}
}

func (e *seedEnv) calls(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join(e.zxsuiteDir, "state", "calls"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// phasesDone reports whether every global phase of the run is done. (The
// accounts of a plan without account phases stay pending, so Report.OK is
// false for these runs.)
func phasesDone(rep *migrate.Report) bool {
	if rep == nil || len(rep.Phases) == 0 {
		return false
	}
	for _, p := range rep.Phases {
		if p.Status != migrate.StatusDone {
			return false
		}
	}
	return true
}

func phase(rep *migrate.Report, ph migrate.Phase) migrate.PhaseResult {
	for _, r := range rep.Phases {
		if r.Phase == ph {
			return r
		}
	}
	return migrate.PhaseResult{}
}

func sameTree(t *testing.T, a, b string) {
	t.Helper()
	x, err := transfer.TreeSum(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := transfer.TreeSum(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(x) == 0 {
		t.Fatalf("%s is empty", a)
	}
	if diff := cmp.Diff(x, y); diff != "" {
		t.Fatalf("the transferred export differs (-source +destination):\n%s", diff)
	}
}

// TestExportTransferSSH runs the export phase through a fake zxsuite over a
// real sshd, then the transfer phase with rsync over the same sshd, and
// checks that the destination holds the export byte for byte and sees
// every account in it.
func TestExportTransferSSH(t *testing.T) {
	e := newSeedEnv(t, 2<<20)
	var mu sync.Mutex
	var progress []migrate.Progress
	rep, err := e.runner(e.plan(), func(ev migrate.Event) {
		if p, ok := ev.(migrate.Progress); ok && p.Phase == migrate.PhaseTransfer {
			mu.Lock()
			progress = append(progress, p)
			mu.Unlock()
		}
	}).Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !phasesDone(rep) {
		t.Fatalf("run not OK: export %+v, transfer %+v", phase(rep, migrate.PhaseExport), phase(rep, migrate.PhaseTransfer))
	}
	calls := e.calls(t)
	want := "--json backup doExport " + e.srcExport + " domains example.com"
	if calls[0] != "--json core getAllOperations" || !containsLine(calls, want) {
		t.Errorf("zxsuite calls = %q; want a preflight listing and %q", calls, want)
	}
	sameTree(t, e.srcExport, e.dstExport)
	tr := phase(rep, migrate.PhaseTransfer)
	if tr.Status != migrate.StatusDone || tr.Copied != 9 || tr.Bytes < 2<<20 {
		t.Errorf("transfer = %+v; want done with 9 files and the 2 MiB blob", tr)
	}
	if len(tr.Details) != 2 || tr.Details[0].SourceCount != 9 || tr.Details[0].DestCount != 9 ||
		tr.Details[1].Name != "accounts in the export" || tr.Details[1].DestCount != 3 {
		t.Errorf("transfer details = %+v", tr.Details)
	}
	ex := phase(rep, migrate.PhaseExport)
	if ex.Status != migrate.StatusDone || !strings.Contains(ex.Reason, "outcome succeeded") {
		t.Errorf("export = %+v", ex)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) == 0 {
		t.Fatal("no transfer progress events")
	}
	last := progress[len(progress)-1]
	// rsync checks 9 files and 9 directories (the export's root, items,
	// items/ff, domains, domains/example.com, accounts, accounts/1..3).
	if last.TotalBytes != last.Bytes || last.Bytes < 2<<20 || last.Items != last.Total || last.Total != 18 {
		t.Errorf("last transfer progress = %+v", last)
	}

	// A second run does nothing: both phases are done.
	before := len(e.calls(t))
	var started []migrate.Phase
	rep, err = e.runner(e.plan(), func(ev migrate.Event) {
		if s, ok := ev.(migrate.PhaseStarted); ok {
			started = append(started, s.Phase)
		}
	}).Run(context.Background())
	if err != nil || !phasesDone(rep) {
		t.Fatalf("second run: %v", err)
	}
	if len(started) != 0 {
		t.Errorf("second run started %v; want nothing (both phases are done)", started)
	}
	for _, c := range e.calls(t)[before:] {
		if strings.Contains(c, "doExport") {
			t.Errorf("second run exported again: %q", c)
		}
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// TestTransferInterruptedResumes stops a run in the middle of a 24 MiB
// file (rsync limited to 4 MiB/s), checks that the partial file is kept
// and the state says interrupted, then runs again: the export is not
// redone, the transfer completes byte for byte and reuses the partial
// file instead of starting from zero.
func TestTransferInterruptedResumes(t *testing.T) {
	e := newSeedEnv(t, 24<<20)
	p := e.plan()
	p.Transfer.BWLimit = 4096
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := e.runner(p, func(ev migrate.Event) {
		if pr, ok := ev.(migrate.Progress); ok && pr.Phase == migrate.PhaseTransfer && pr.Bytes >= 6<<20 {
			cancel()
		}
	}).Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if st := phase(rep, migrate.PhaseTransfer).Status; st != migrate.StatusInterrupted {
		t.Fatalf("transfer after the interruption: %s", st)
	}
	partial := filepath.Join(e.dstExport, "items", "ff", transfer.PartialDir, "blob.big")
	fi, err := os.Stat(partial)
	if err != nil || fi.Size() < 4<<20 {
		t.Fatalf("partial file after the interruption: %v, %v", fi, err)
	}
	exports := 0
	for _, c := range e.calls(t) {
		if strings.Contains(c, "doExport") {
			exports++
		}
	}

	p = e.plan()
	rep, err = e.runner(p, nil).Run(context.Background())
	if err != nil || !phasesDone(rep) {
		t.Fatalf("resumed run: %v, transfer %+v", err, phase(rep, migrate.PhaseTransfer))
	}
	sameTree(t, e.srcExport, e.dstExport)
	again := 0
	for _, c := range e.calls(t) {
		if strings.Contains(c, "doExport") {
			again++
		}
	}
	if again != exports || exports != 1 {
		t.Errorf("doExport ran %d times before and %d after the resume; want once", exports, again)
	}
	tr := phase(rep, migrate.PhaseTransfer)
	note := tr.Details[0].Note
	if !strings.Contains(note, "not sent again") {
		t.Errorf("resumed transfer note %q: the partial file was not reused", note)
	}
	t.Logf("partial file %d bytes; resumed transfer: %s", fi.Size(), note)
}

// TestTransferCheckMode checks an export the administrator moved: the
// phase passes when the destination lists every selected account in it,
// and fails naming the accounts it lacks.
func TestTransferCheckMode(t *testing.T) {
	dir := t.TempDir()
	export := filepath.Join(dir, "export")
	accts := []string{"anna@example.com", "bob@example.com", "carla@example.com"}
	fx := &carboniotest.Fixture{Domains: []string{"example.com"}}
	for _, a := range accts {
		fx.Accounts = append(fx.Accounts, carboniotest.FixtureAccount{Name: a})
	}
	if err := carboniotest.WriteExport(export, fx, 100); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "accounts.txt")
	if err := os.WriteFile(list, []byte(strings.Join(accts, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	dst := carboniotest.New(carboniotest.Options{})
	defer dst.Close()
	run := func(state string) (*migrate.Report, error) {
		p := &migrate.Plan{
			Domains:      []string{"example.com"},
			Accounts:     migrate.Selection{ListFile: list},
			Phases:       []migrate.Phase{migrate.PhaseTransfer},
			Transfer:     migrate.TransferPlan{Mode: "check"},
			Provisioning: migrate.Provisioning{BackupPath: export},
			State:        filepath.Join(dir, state),
		}
		return (&migrate.Runner{Plan: p, Hooks: migrate.Hooks{DestinationCLI: dst.ExportRunner(0)}}).Run(context.Background())
	}
	rep, err := run("pass.db")
	if err != nil || !phasesDone(rep) {
		t.Fatalf("check of a complete export: %v, %+v", err, phase(rep, migrate.PhaseTransfer))
	}
	if r := phase(rep, migrate.PhaseTransfer); !strings.Contains(r.Reason, "all 3 selected accounts") {
		t.Errorf("reason %q", r.Reason)
	}

	// bob's account did not arrive.
	ents, _ := os.ReadDir(filepath.Join(export, "accounts"))
	removed := false
	for _, en := range ents {
		p := filepath.Join(export, "accounts", en.Name(), "account_info")
		if b, _ := os.ReadFile(p); strings.Contains(string(b), "bob@example.com") {
			removed = os.Remove(p) == nil
		}
	}
	if !removed {
		t.Fatal("could not remove bob's account from the export")
	}
	rep, err = run("fail.db")
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	r := phase(rep, migrate.PhaseTransfer)
	if phasesDone(rep) || r.Status != migrate.StatusFailed || !strings.Contains(r.Reason, "bob@example.com") ||
		strings.Contains(r.Reason, "anna@example.com") || len(r.Problems) != 1 || r.Problems[0].Item != "bob@example.com" {
		t.Fatalf("check of an export without bob = %+v", r)
	}

	// No export at all: the destination does not see one.
	rep, err = func() (*migrate.Report, error) {
		os.RemoveAll(export)
		return run("none.db")
	}()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if r := phase(rep, migrate.PhaseTransfer); r.Status != migrate.StatusFailed || !strings.Contains(r.Reason, "does not see an export") {
		t.Fatalf("check without an export = %+v", r)
	}
}

// TestTransferPreflight checks that an unreachable source host or an
// untrusted host key stops the run before anything is written.
func TestTransferPreflight(t *testing.T) {
	e := newSeedEnv(t, 0)
	other := testssh.NewKey(t, filepath.Join(t.TempDir(), "other"))
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := testssh.WriteKnownHosts(kh, e.sshd.Addr, other); err != nil {
		t.Fatal(err)
	}
	p := e.plan()
	p.Phases = []migrate.Phase{migrate.PhaseTransfer}
	p.Transfer.SSH = migrate.SSHEndpoint{Address: e.sshd.Addr, User: e.sshd.User, KnownHostsFile: kh, KeyFiles: []string{e.sshd.ClientKey}}
	_, err := e.runner(p, nil).Run(context.Background())
	var se *migrate.ServerError
	if !errors.As(err, &se) || se.Key != "transfer.ssh" || !strings.Contains(err.Error(), "Host key verification failed") ||
		!errors.Is(err, retry.ErrAuth) || se.Unreachable() {
		t.Fatalf("run with an untrusted host key = %v; want a transfer.ssh ServerError that is an authentication failure", err)
	}
	if _, err := os.Stat(e.state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state written before the transports were checked: %v", err)
	}

	// With the right known_hosts, preflight says how both phases run.
	pr, err := e.runner(e.plan(), nil).Preflight(context.Background())
	if err != nil {
		t.Fatalf("preflight: %v", err)
	}
	var names []string
	for _, c := range pr.Checks {
		names = append(names, c.Name)
		if strings.HasPrefix(c.Name, "transfer") && (!c.OK || !strings.Contains(c.Detail, "rsync over SSH from "+e.sshd.Addr)) {
			t.Errorf("transfer check = %+v", c)
		}
	}
	if !slices.Contains(names, "export (zxsuite backup doExport)") || !slices.Contains(names, "transfer (rsync)") {
		t.Errorf("preflight checks %q lack the export and the transfer", names)
	}
	if _, err := os.Stat(e.state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("preflight wrote the state: %v", err)
	}
}

// TestTransferLocal copies an export from a local path (a mounted share)
// with rsync, and with the built-in copier when rsync is missing, and
// checks both copies byte for byte and the accounts the destination sees.
func TestTransferLocal(t *testing.T) {
	for _, tc := range []struct {
		name, rsync, how string
	}{
		{"rsync", "", "by rsync from"},
		{"builtin", filepath.Join(t.TempDir(), "no-rsync-here"), "built-in copier (rsync is not installed here)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rsync == "" {
				needRsync(t)
			}
			dir := t.TempDir()
			src, dstPath := filepath.Join(dir, "share", "export"), filepath.Join(dir, "opt", "export")
			fx := &carboniotest.Fixture{Domains: []string{"example.com"},
				Accounts: []carboniotest.FixtureAccount{{Name: "anna@example.com"}, {Name: "bob@example.com"}}}
			if err := carboniotest.WriteExport(src, fx, 300<<10); err != nil {
				t.Fatal(err)
			}
			list := filepath.Join(dir, "accounts.txt")
			os.WriteFile(list, []byte("anna@example.com\nbob@example.com\n"), 0o600)
			dst := carboniotest.New(carboniotest.Options{})
			defer dst.Close()
			p := &migrate.Plan{
				Domains:      []string{"example.com"},
				Accounts:     migrate.Selection{ListFile: list},
				Phases:       []migrate.Phase{migrate.PhaseTransfer},
				Transfer:     migrate.TransferPlan{Mode: "local", Path: src, Rsync: tc.rsync, Verify: "checksum"},
				Provisioning: migrate.Provisioning{BackupPath: dstPath},
				State:        filepath.Join(dir, "state.db"),
			}
			// Preflight: the export must be where the plan says.
			p.Transfer.Path = src + "-typo"
			_, err := (&migrate.Runner{Plan: p, Hooks: migrate.Hooks{DestinationCLI: dst.ExportRunner(0)}}).Run(context.Background())
			var se *migrate.ServerError
			if !errors.As(err, &se) || se.Key != "transfer.path" {
				t.Fatalf("run with a wrong transfer.path = %v", err)
			}
			p.Transfer.Path = src
			rep, err := (&migrate.Runner{Plan: p, Hooks: migrate.Hooks{DestinationCLI: dst.ExportRunner(0)}}).Run(context.Background())
			if err != nil || !phasesDone(rep) {
				t.Fatalf("run: %v, %+v", err, phase(rep, migrate.PhaseTransfer))
			}
			sameTree(t, src, dstPath)
			r := phase(rep, migrate.PhaseTransfer)
			if !strings.Contains(r.Reason, tc.how) || !strings.Contains(r.Details[0].Note, "checksum of every file") ||
				r.Copied != 6 || r.Details[1].DestCount != 2 {
				t.Errorf("transfer = %+v", r)
			}
		})
	}
}

// rsyncGroups returns the process groups of this process's rsync children.
func rsyncGroups() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	me := strconv.Itoa(os.Getpid())
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "(rsync") {
			continue
		}
		// pid (comm) state ppid pgrp ...
		f := strings.Fields(s[i+1:])
		if len(f) > 2 && f[1] == me {
			if pg, err := strconv.Atoi(f[2]); err == nil {
				out = append(out, pg)
			}
		}
	}
	return out
}

// TestTransferRsyncKilled kills rsync outright (SIGKILL to its process
// group, as the OOM killer or a crash would) in the middle of a 24 MiB
// file: the phase runs rsync again, the copy completes byte for byte, and
// the killed run's temporary file is not left in the export.
func TestTransferRsyncKilled(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc to find rsync")
	}
	e := newSeedEnv(t, 24<<20)
	p := e.plan()
	p.Transfer.BWLimit = 8192
	var once sync.Once
	rep, err := e.runner(p, func(ev migrate.Event) {
		if pr, ok := ev.(migrate.Progress); ok && pr.Phase == migrate.PhaseTransfer && pr.Bytes >= 6<<20 {
			once.Do(func() {
				for _, pg := range rsyncGroups() {
					syscall.Kill(-pg, syscall.SIGKILL)
				}
			})
		}
	}).Run(context.Background())
	if err != nil || !phasesDone(rep) {
		t.Fatalf("run: %v, transfer %+v", err, phase(rep, migrate.PhaseTransfer))
	}
	sameTree(t, e.srcExport, e.dstExport)
	note := phase(rep, migrate.PhaseTransfer).Details[0].Note
	if !strings.Contains(note, "resumed after 1 interruption(s)") || !strings.Contains(note, "temporary file(s) of a killed rsync") {
		t.Errorf("transfer note %q: rsync was not interrupted and run again", note)
	}
	filepath.WalkDir(e.dstExport, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == transfer.PartialDir {
			t.Errorf("partial directory left in the export: %s", path)
		}
		return nil
	})
	t.Logf("transfer: %s", note)
}

// TestExportOutcomeAndResume checks that the export phase is waited on like
// every operation: an export that ends with type Exception fails the phase
// and the run stops before the transfer; a run stopped while the export
// runs waits for that export when it resumes instead of starting another.
func TestExportOutcomeAndResume(t *testing.T) {
	e := newSeedEnv(t, 1000)
	if err := os.WriteFile(filepath.Join(e.zxsuiteDir, "fail"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := e.runner(e.plan(), nil).Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	ex := phase(rep, migrate.PhaseExport)
	if ex.Status != migrate.StatusFailed || !strings.Contains(ex.Reason, "Exception") {
		t.Fatalf("export ending with type Exception = %+v", ex)
	}
	if st := phase(rep, migrate.PhaseTransfer).Status; st != migrate.StatusPending {
		t.Errorf("transfer after a failed export: %s, want pending (not run)", st)
	}
	if _, err := os.Stat(e.dstExport); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the transfer ran after a failed export: %v", err)
	}

	// A slow export, and a run stopped while waiting for it.
	os.Remove(filepath.Join(e.zxsuiteDir, "fail"))
	os.WriteFile(filepath.Join(e.zxsuiteDir, "delay"), []byte("3"), 0o600)
	e.state = filepath.Join(t.TempDir(), "state.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = e.runner(e.plan(), func(ev migrate.Event) {
		if s, ok := ev.(migrate.PhaseStarted); ok && s.Phase == migrate.PhaseExport {
			time.AfterFunc(time.Second, cancel)
		}
	}).Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped run: %v", err)
	}
	rep, err = e.runner(e.plan(), nil).Run(context.Background())
	if err != nil || !phasesDone(rep) {
		t.Fatalf("resumed run: %v, %+v", err, rep.Phases)
	}
	exports := 0
	for _, c := range e.calls(t) {
		if strings.Contains(c, "doExport") {
			exports++
		}
	}
	if exports != 2 { // the failed one, and one for both later runs
		t.Errorf("doExport ran %d times, want 2 (the resumed run must wait for the running export)", exports)
	}
	sameTree(t, e.srcExport, e.dstExport)
}
