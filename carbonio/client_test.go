package carbonio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/internal/testssh"
	"github.com/zxmigrate/zxmigrate/retry"
	"github.com/zxmigrate/zxmigrate/secret"
)

const (
	adminName      = "admin@carbonio.local"
	sentinelPass   = "Sentinel-Pa55-7f3c9e"
	backupPath     = "/tmp/export"
	sourceDomain   = "example.com"
	restoredSample = "alice@example.com"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fixture is one fake destination and a client of it.
type fixture struct {
	srv  *carboniotest.Server
	c    *carbonio.Client
	logs *syncBuffer
}

// logger writes text and JSON records at debug level into buf.
func logger(buf *syncBuffer) *slog.Logger {
	o := &slog.HandlerOptions{Level: slog.LevelDebug}
	th, jh := slog.NewTextHandler(buf, o), slog.NewJSONHandler(buf, o)
	return slog.New(multiHandler{th, jh})
}

type multiHandler []slog.Handler

func (m multiHandler) Enabled(ctx context.Context, l slog.Level) bool { return true }
func (m multiHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range m {
		if err := h.Handle(ctx, r.Clone()); err != nil {
			return err
		}
	}
	return nil
}
func (m multiHandler) WithAttrs(a []slog.Attr) slog.Handler {
	out := make(multiHandler, len(m))
	for i, h := range m {
		out[i] = h.WithAttrs(a)
	}
	return out
}
func (m multiHandler) WithGroup(g string) slog.Handler {
	out := make(multiHandler, len(m))
	for i, h := range m {
		out[i] = h.WithGroup(g)
	}
	return out
}

// newFixture starts a fake destination holding the source backup at
// backupPath; transport is "soap", "cli" (in process) or "ssh" (fakecli
// through a real sshd).
func newFixture(t *testing.T, transport string) *fixture {
	t.Helper()
	srv := carboniotest.New(carboniotest.Options{
		Admin: adminName, Password: sentinelPass,
		Fixture: carboniotest.DestinationFixture(),
		Backups: map[string]*carboniotest.Fixture{backupPath: carboniotest.DefaultFixture()},
	})
	t.Cleanup(srv.Close)
	logs := &syncBuffer{}
	c := &carbonio.Client{URL: srv.URL, Admin: adminName, Password: secret.New(sentinelPass),
		HTTPClient: srv.Client(), Logger: logger(logs), PollInterval: time.Millisecond, PollMax: 5 * time.Millisecond,
		Retry: retry.Policy{Base: time.Millisecond, Max: 5 * time.Millisecond}}
	switch transport {
	case "soap":
		// The fake accepts the guessed SOAP fields of the do* commands;
		// this opt-in is what a plan's unverified SOAP setting does.
		c.UnverifiedSOAP = true
	case "cli":
		c.Transport = &carbonio.CLI{Runner: srv.CLIRunner()}
	case "ssh":
		sshd := testssh.Start(t)
		dir := srv.InstallFakeCLI(t, fakeCLI(t))
		runner := &carbonio.SSH{Addr: sshd.Addr, User: sshd.User, KnownHostsFile: sshd.KnownHosts, KeyFiles: []string{sshd.ClientKey}}
		t.Cleanup(func() { runner.Close() })
		c.Transport = &carbonio.CLI{Runner: runner, Program: filepath.Join(dir, "carbonio"), MTACtl: filepath.Join(dir, "zmmtactl")}
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	return &fixture{srv: srv, c: c, logs: logs}
}

var (
	fakeOnce sync.Once
	fakeBin  string
	fakeErr  error
	fakeDir  string
)

// fakeCLI builds the fakecli program once per test binary.
func fakeCLI(t *testing.T) string {
	t.Helper()
	fakeOnce.Do(func() {
		fakeDir, fakeErr = os.MkdirTemp("", "fakecli")
		if fakeErr == nil {
			fakeBin, fakeErr = carboniotest.BuildFakeCLIBinary(fakeDir)
		}
	})
	if fakeErr != nil {
		t.Fatal(fakeErr)
	}
	return fakeBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fakeDir != "" {
		os.RemoveAll(fakeDir)
	}
	os.Exit(code)
}

var transports = []string{"soap", "cli", "ssh"}

// expectedFromSource is what the restore must create, as a source
// directory read would give it.
func expectedFromSource() carbonio.Directory {
	src := carboniotest.DefaultFixture()
	d := carbonio.Directory{Domains: []string{sourceDomain}}
	for _, a := range src.Accounts {
		if !a.System {
			d.Accounts = append(d.Accounts, a.Name)
		}
	}
	for _, a := range src.Aliases {
		d.Aliases = append(d.Aliases, carbonio.Alias{Name: a.Name, Target: a.Target})
	}
	for _, l := range src.DistributionLists {
		d.DistributionLists = append(d.DistributionLists, l.Name)
	}
	return d
}

func waitOK(t *testing.T, c *carbonio.Client, op carbonio.Operation, err error) carbonio.Operation {
	t.Helper()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	var seen []string
	final, err := c.Wait(context.Background(), op, func(o carbonio.Operation) { seen = append(seen, o.State) })
	if err != nil {
		t.Fatalf("Wait(%s): %v", op.Name, err)
	}
	if final.Outcome != carbonio.OutcomeSucceeded || final.Type != carbonio.TypeFinished {
		t.Fatalf("Wait(%s) = %+v, want type Finished, outcome succeeded", op.Name, final)
	}
	if len(seen) < 2 || seen[0] != carbonio.StateStarted || seen[len(seen)-1] != "Finished" {
		t.Errorf("progress states of %s = %v, want Started … Finished", op.Name, seen)
	}
	return final
}

// phase1 runs the whole provisioning phase and checks each step.
func phase1(t *testing.T, f *fixture, cli bool) {
	t.Helper()
	ctx := context.Background()
	c := f.c
	if cli {
		if err := c.MTA(ctx, false); err != nil {
			t.Fatalf("MTA stop: %v", err)
		}
		if f.srv.MTARunning() {
			t.Fatal("MTA still running after stop")
		}
	} else if err := c.MTA(ctx, false); !errors.Is(err, carbonio.ErrNeedsCLI) {
		t.Fatalf("MTA over SOAP: got %v, want ErrNeedsCLI", err)
	}

	op, err := c.SmartScan(ctx, carbonio.SmartScanOptions{})
	waitOK(t, c, op, err)

	// Before the restore the check must fail, naming what is missing.
	rep, err := c.CheckProvisioning(ctx, expectedFromSource())
	if err != nil {
		t.Fatalf("CheckProvisioning before restore: %v", err)
	}
	if rep.OK() || len(rep.Domains.Missing) != 1 {
		t.Fatalf("CheckProvisioning before restore passed: %+v", rep)
	}

	avail, err := c.AvailableAccounts(ctx, backupPath, sourceDomain)
	if err != nil {
		t.Fatalf("AvailableAccounts: %v", err)
	}
	if diff := cmp.Diff([]string{"alice@example.com", "bob@example.com", "carol@example.com"}, avail); diff != "" {
		t.Errorf("AvailableAccounts (-want +got):\n%s", diff)
	}
	doms, err := c.AvailableDomains(ctx, backupPath)
	if err != nil || len(doms) != 1 || doms[0] != sourceDomain {
		t.Errorf("AvailableDomains = %v, %v", doms, err)
	}

	op, err = c.ExternalRestore(ctx, backupPath, carbonio.RestoreOptions{
		Domains: []string{sourceDomain}, ProvisioningOnly: true, ConcurrentAccounts: 5})
	waitOK(t, c, op, err)
	var restoreArgs map[string]string
	for _, s := range f.srv.StartedOperations() {
		if s.Action == "doExternalRestore" {
			restoreArgs = s.Args
		}
	}
	want := map[string]string{"source_path": backupPath, "domains": sourceDomain, "provisioning_only": "true", "concurrent_accounts": "5"}
	if diff := cmp.Diff(want, restoreArgs); diff != "" {
		t.Errorf("restore arguments seen by the server (-want +got):\n%s", diff)
	}

	rep, err = c.CheckProvisioning(ctx, expectedFromSource())
	if err != nil {
		t.Fatalf("CheckProvisioning: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("CheckProvisioning after restore:\n%s", rep)
	}
	if rep.Accounts.Found != 3 || rep.Aliases.Found != 1 || rep.DistributionLists.Found != 1 {
		t.Errorf("report counts: %+v", rep)
	}

	op, err = c.Deduplicate(ctx, "", false)
	final := waitOK(t, c, op, err)
	if final.Name != "Deduplicate" {
		t.Errorf("dedup operation name = %q", final.Name)
	}
	var dedupArgs map[string]string
	for _, s := range f.srv.StartedOperations() {
		if s.Action == "doDeduplicate" {
			dedupArgs = s.Args
		}
	}
	if dedupArgs["volume_name"] != "message1" {
		t.Errorf("dedup volume = %q, want the current primary message1", dedupArgs["volume_name"])
	}

	if cli {
		if err := c.MTA(ctx, true); err != nil || !f.srv.MTARunning() {
			t.Fatalf("MTA start: %v (running %v)", err, f.srv.MTARunning())
		}
	}
}

func TestPhase1(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, tr)
			phase1(t, f, tr != "soap")
			if tr != "soap" {
				for _, cmd := range f.srv.CLICommands() {
					for _, a := range cmd {
						if strings.Contains(a, sentinelPass) {
							t.Errorf("password on a command line: %q", cmd)
						}
					}
				}
				if len(f.srv.CLICommands()) == 0 {
					t.Error("no command went through the CLI transport")
				}
			}
		})
	}
}

func TestTokenExpiresDuringOperation(t *testing.T) {
	for _, tr := range []string{"soap", "cli"} {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, tr)
			ctx := context.Background()
			if _, err := f.c.Domains(ctx); err != nil {
				t.Fatal(err)
			}
			op, err := f.c.ExternalRestore(ctx, backupPath, carbonio.RestoreOptions{ProvisioningOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			expired := false
			final, err := f.c.Wait(ctx, op, func(o carbonio.Operation) {
				if !expired {
					f.srv.ExpireTokens()
					expired = true
				}
			})
			if err != nil || final.Outcome != carbonio.OutcomeSucceeded {
				t.Fatalf("Wait = %+v, %v", final, err)
			}
			rep, err := f.c.CheckProvisioning(ctx, expectedFromSource())
			if err != nil || !rep.OK() {
				t.Fatalf("CheckProvisioning after expiry = %v, %v", rep, err)
			}
			if got := f.srv.AuthCount(); got != 2 {
				t.Errorf("AuthRequests = %d, want 2 (one login, one re-auth)", got)
			}
		})
	}
}

// TestFailedOperation: a restore whose log entry says type Exception, or a
// type the client does not know, or that vanishes, is never a success, on
// every transport and in both answer styles.
func TestFailedOperation(t *testing.T) {
	for _, tr := range transports {
		for _, style := range []carboniotest.AnswerStyle{carboniotest.NestedOK, carboniotest.Bare} {
			for _, end := range []string{"Exception", "Cancelled", "lost"} {
				t.Run(fmt.Sprintf("%s/style%d/%s", tr, style, end), func(t *testing.T) {
					if tr == "ssh" && (style != carboniotest.NestedOK || end != "Exception") {
						t.Skip("one SSH case is enough; the in-process CLI covers the rest")
					}
					f := newFixture(t, tr)
					f.srv.SetAnswers(style)
					switch end {
					case "Exception":
						f.srv.FailOperations("doExternalRestore", "disk full on /opt/zextras/backup")
					case "lost":
						f.srv.LoseOperations("doExternalRestore")
					default:
						f.srv.EndOperations("doExternalRestore", end)
					}
					ctx := context.Background()
					op, err := f.c.ExternalRestore(ctx, backupPath, carbonio.RestoreOptions{ProvisioningOnly: true})
					if err != nil {
						t.Fatal(err)
					}
					final, err := f.c.Wait(ctx, op, nil)
					if err == nil || final.Outcome == carbonio.OutcomeSucceeded {
						t.Fatalf("Wait = %+v, %v; want a failure", final, err)
					}
					if !strings.Contains(err.Error(), op.ID) {
						t.Errorf("error %q does not name the operation %s", err, op.ID)
					}
					var oe *carbonio.OperationError
					switch end {
					case "Exception":
						if !errors.As(err, &oe) || !errors.Is(err, carbonio.ErrOperationFailed) || final.Outcome != carbonio.OutcomeFailed || final.Type != "Exception" {
							t.Errorf("Wait = %+v, %v; want outcome failed, type Exception", final, err)
						}
					case "lost":
						if !errors.Is(err, carbonio.ErrOperationLost) || final.Outcome != carbonio.OutcomeUnknown {
							t.Errorf("Wait = %+v, %v; want ErrOperationLost", final, err)
						}
					default:
						if !errors.As(err, &oe) || !errors.Is(err, carbonio.ErrOutcomeUnknown) || !strings.Contains(err.Error(), `unknown outcome "Cancelled"`) {
							t.Errorf("Wait = %+v, %v; want unknown outcome \"Cancelled\"", final, err)
						}
					}
				})
			}
		}
	}
}

// TestStopOperation stops over SOAP (ZxCore doStopOperation, operationId)
// and over the command line alone (powerstore doStopOperation UUID).
func TestStopOperation(t *testing.T) {
	for _, tr := range []string{"soap", "cli-only"} {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, "cli")
			if tr == "cli-only" {
				f.c.URL = ""
			}
			ctx := context.Background()
			op, err := f.c.Deduplicate(ctx, "message1", false)
			if err != nil {
				t.Fatal(err)
			}
			before := len(f.srv.CLICommands())
			if err := f.c.StopOperation(ctx, op.ID); err != nil {
				t.Fatal(err)
			}
			var stopCLI []string
			for _, c := range f.srv.CLICommands()[before:] {
				if slices.Contains(c, "doStopOperation") {
					stopCLI = c
				}
			}
			switch {
			case tr == "soap" && stopCLI != nil:
				t.Errorf("stop went over the command line %q, want SOAP", stopCLI)
			case tr == "cli-only" && !slices.Equal(stopCLI, []string{"carbonio", "--json", "powerstore", "doStopOperation", op.ID}):
				t.Errorf("stop command line = %q", stopCLI)
			}
			final, err := f.c.Wait(ctx, op, nil)
			if err == nil || final.Outcome == carbonio.OutcomeSucceeded {
				t.Fatalf("Wait after stop = %+v, %v; want no success", final, err)
			}
			if err := f.c.StopOperation(ctx, op.ID); err == nil {
				t.Error("stopping a stopped operation succeeded")
			}
		})
	}
}

// TestNeedsTransport: without a command line and without the SOAP opt-in
// the do* commands refuse to run and say what to configure; listing
// operations still works over SOAP.
func TestNeedsTransport(t *testing.T) {
	f := newFixture(t, "soap")
	f.c.UnverifiedSOAP = false
	ctx := context.Background()
	_, err := f.c.SmartScan(ctx, carbonio.SmartScanOptions{})
	if !errors.Is(err, carbonio.ErrNoTransport) || !strings.Contains(err.Error(), "command line") || !strings.Contains(err.Error(), "ZxBackup doSmartScan") {
		t.Fatalf("SmartScan without a transport = %v", err)
	}
	if n := len(f.srv.StartedOperations()); n != 0 {
		t.Errorf("%d operations started", n)
	}
	if _, err := f.c.Operations(ctx); err != nil {
		t.Errorf("Operations over SOAP: %v", err)
	}
	cmd := carbonio.Command{Module: "ZxBackup", Action: "doExternalRestore"}
	if f.c.Unverified(cmd) {
		t.Error("Unverified without the opt-in")
	}
	f.c.UnverifiedSOAP = true
	if !f.c.Unverified(cmd) || f.c.Unverified(carbonio.Command{Module: "ZxCore", Action: "getAllOperations"}) {
		t.Error("Unverified does not tell the guessed request from the verified one")
	}
}

// cannedRunner prints out for every command.
type cannedRunner struct{ out string }

func (r cannedRunner) Run(ctx context.Context, argv []string) ([]byte, error) {
	return []byte(r.out), nil
}

// TestAnswerShapes parses the operation lists the public sources show, by
// shape, and refuses every other shape naming the request.
func TestAnswerShapes(t *testing.T) {
	ctx := context.Background()
	ok := []struct{ name, out string }{
		{"per server, nested and ok", `{"response":{"mbox1":{"ok":true,"response":{"operationList":[{"id":"a","state":"Finished","type":"Exception"}]}}},"nested":true,"ok":true}`},
		{"per server, bare", `{"response":{"mbox1":{"ok":true,"response":{"operationList":[{"id":"a","state":"Finished","type":"Exception"}]}}}}`},
		{"per server, ok without nested", `{"ok":true,"response":{"mbox1":{"ok":true,"response":{"operationList":[{"id":"a","state":"Finished","type":"Exception"}]}}}}`},
		{"flat with ok and serverId", `{"ok":true,"response":{"operationList":[{"id":"a","state":"Finished","type":"Exception","serverId":"mbox1"}]}}`},
		{"flat without ok", "Loading...\n" + `{"response":{"operationList":[{"id":"a","state":"Finished","type":"Exception","serverId":"mbox1"}]}}`},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			c := &carbonio.Client{Transport: &carbonio.CLI{Runner: cannedRunner{tt.out}}}
			ops, err := c.OperationLog(ctx)
			want := []carbonio.Operation{{ID: "a", State: "Finished", Type: "Exception", Outcome: carbonio.OutcomeFailed, Host: "mbox1"}}
			if tt.name[:4] == "flat" {
				want[0].ServerID = "mbox1"
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, ops); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	bad := []struct{ name, out string }{
		{"servers without ok", `{"response":{"mbox1":{"response":{"operationList":[]}}}}`},
		{"nested but not per server", `{"ok":true,"nested":true,"response":{"operationList":[]}}`},
		{"no operationList", `{"ok":true,"response":{"mbox1":{"ok":true,"response":{}}}}`},
		{"flat without operationList", `{"ok":true,"response":{}}`},
		{"operationList of strings", `{"ok":true,"response":{"operationList":"none"}}`},
		{"entry without id", `{"ok":true,"response":{"operationList":[{"state":"Started"}]}}`},
		{"no response", `{"nested":true}`},
		{"array", `[]`},
		{"response not an object", `{"ok":true,"response":[]}`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c := &carbonio.Client{Transport: &carbonio.CLI{Runner: cannedRunner{tt.out}}}
			ops, err := c.Operations(ctx)
			if !errors.Is(err, carbonio.ErrUnexpectedAnswer) || !strings.Contains(err.Error(), "ZxCore getAllOperations") {
				t.Fatalf("Operations = %v, %v; want ErrUnexpectedAnswer naming the request", ops, err)
			}
		})
	}
	// A server that failed is an error; the others still count.
	c := &carbonio.Client{Transport: &carbonio.CLI{Runner: cannedRunner{`{"response":{"a":{"ok":false,"error":{"message":"down"}},"b":{"ok":true,"response":{"operationList":[{"id":"x","state":"Started"}]}}}}`}}}
	ops, err := c.Operations(ctx)
	var me *carbonio.ModuleError
	if !errors.As(err, &me) || me.Server != "a" || len(ops) != 1 || ops[0].Outcome != carbonio.OutcomeRunning {
		t.Errorf("one failed server: %v, %v", ops, err)
	}
}

func TestUnexpectedShape(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, transport, inject, raw, wantReq string
		call                                  func(c *carbonio.Client) error
	}{
		{"volumes not an object", "soap", "GetAllVolumesRequest",
			`{"Body":{"GetAllVolumesResponse":"oops"}}`, "GetAllVolumesRequest",
			func(c *carbonio.Client) error { _, err := c.Volumes(ctx); return err }},
		{"wrong response element", "soap", "GetAccountRequest",
			`{"Body":{"GetDomainResponse":{}}}`, "GetAccountRequest",
			func(c *carbonio.Client) error { _, err := c.Account(ctx, "alice@example.com"); return err }},
		{"not JSON", "soap", "GetAllDomainsRequest", `<html>proxy error</html>`, "GetAllDomainsRequest",
			func(c *carbonio.Client) error { _, err := c.Domains(ctx); return err }},
		{"module content not JSON", "soap", "doSmartScan",
			`{"Body":{"response":{"content":"maintenance"}}}`, "ZxBackup doSmartScan",
			func(c *carbonio.Client) error { _, err := c.SmartScan(ctx, carbonio.SmartScanOptions{}); return err }},
		{"module answer without operationId", "soap", "doSmartScan",
			`{"Body":{"response":{"content":"{\"ok\":true,\"response\":{}}"}}}`, "ZxBackup doSmartScan",
			func(c *carbonio.Client) error { _, err := c.SmartScan(ctx, carbonio.SmartScanOptions{}); return err }},
		{"operation list of strings", "soap", "getAllOperations",
			`{"Body":{"response":{"content":"{\"ok\":true,\"nested\":true,\"response\":{\"mbox1\":{\"ok\":true,\"response\":{\"operationList\":\"x\"}}}}"}}}`, "ZxCore getAllOperations",
			func(c *carbonio.Client) error { _, err := c.Operations(ctx); return err }},
		{"operation log of unknown shape", "soap", "getOperationLog",
			`{"Body":{"response":{"content":"{\"ok\":true,\"response\":{\"mbox1\":{\"operations\":[]}}}"}}}`, "ZxCore getOperationLog",
			func(c *carbonio.Client) error { _, err := c.OperationLog(ctx); return err }},
		{"CLI prints no JSON", "cli", "doDeduplicate", "Error: license expired\n", "ZxPowerstore doDeduplicate",
			func(c *carbonio.Client) error { _, err := c.Deduplicate(ctx, "message1", true); return err }},
		{"CLI prints no response", "cli", "doExternalRestore", `{"operationId":"x"}`, "ZxBackup doExternalRestore",
			func(c *carbonio.Client) error {
				_, err := c.ExternalRestore(ctx, backupPath, carbonio.RestoreOptions{})
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.transport)
			f.srv.Inject(tt.inject, carboniotest.Failure{Raw: tt.raw})
			err := tt.call(f.c)
			if !errors.Is(err, carbonio.ErrUnexpectedAnswer) {
				t.Fatalf("got %v, want ErrUnexpectedAnswer", err)
			}
			if !strings.Contains(err.Error(), tt.wantReq) {
				t.Errorf("error %q does not name %q", err, tt.wantReq)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "soap")
	_, err := f.c.Account(ctx, "nobody@example.com")
	var ft *carbonio.Fault
	if !errors.Is(err, carbonio.ErrNoSuchAccount) || !errors.As(err, &ft) || ft.Request != "GetAccountRequest" {
		t.Fatalf("Account(nobody) = %v, want a NO_SUCH_ACCOUNT fault naming GetAccountRequest", err)
	}
	if errors.Is(err, carbonio.ErrNoSuchDomain) {
		t.Error("NO_SUCH_ACCOUNT matched ErrNoSuchDomain")
	}

	f.srv.Inject("GetAllServersRequest", carboniotest.Failure{Code: carbonio.CodeServiceFailure, Reason: "ldap down"})
	if _, err := f.c.Servers(ctx, "mailbox"); !errors.Is(err, carbonio.ErrServiceFailure) || !strings.Contains(err.Error(), "ldap down") {
		t.Errorf("Servers with an injected fault = %v", err)
	}
	f.srv.Inject("GetAllServersRequest", carboniotest.Failure{HTTPStatus: 502})
	if _, err := f.c.Servers(ctx, "mailbox"); err != nil {
		t.Errorf("a single 502 was not retried: %v", err)
	}
	f.srv.Inject("getAllOperations", carboniotest.Failure{ModuleError: "backup module not initialized"})
	var me *carbonio.ModuleError
	if _, err := f.c.Operations(ctx); !errors.As(err, &me) || !strings.Contains(err.Error(), "not initialized") {
		t.Errorf("Operations with a module error = %v", err)
	}

	bad := &carbonio.Client{URL: f.c.URL, Admin: adminName, Password: secret.New("wrong-" + sentinelPass), HTTPClient: f.srv.Client()}
	err = bad.Login(ctx)
	if !errors.Is(err, retry.ErrAuth) || !errors.Is(err, carbonio.ErrAuthFailed) || retry.Classify(err) != retry.Fatal {
		t.Fatalf("bad password: %v (class %v), want a fatal auth error", err, retry.Classify(err))
	}
	if strings.Contains(err.Error(), sentinelPass) {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestDirectory(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "soap")
	f.srv = carboniotest.New(carboniotest.Options{Admin: adminName, Password: sentinelPass, MaxSearchResults: 1000})
	t.Cleanup(f.srv.Close)
	f.c.URL, f.c.HTTPClient = f.srv.URL, f.srv.Client()
	for i := 0; i < 1203; i++ {
		f.srv.AddAccount(carboniotest.FixtureAccount{Name: fmt.Sprintf("u%04d@big.example", i),
			Attrs: map[string][]string{"zimbraMailHost": {"mbox1"}, "zimbraMailAlias": {fmt.Sprintf("a%d@big.example", i), fmt.Sprintf("b%d@big.example", i)}}})
	}
	accts, err := f.c.Accounts(ctx, "big.example", "zimbraMailHost", "zimbraMailAlias")
	if err != nil {
		t.Fatal(err)
	}
	if len(accts) != 1203 || accts[0].Name != "u0000@big.example" || accts[1202].Name != "u1202@big.example" {
		t.Fatalf("Accounts = %d entries (first %v)", len(accts), accts[0])
	}
	if got := accts[7].Attrs["zimbraMailAlias"]; len(got) != 2 || accts[7].Attr("zimbraMailHost") != "mbox1" {
		t.Errorf("attrs = %v", accts[7].Attrs)
	}
	pages := 0
	for _, r := range f.srv.Requests() {
		if r == "SearchDirectoryRequest" {
			pages++
		}
	}
	if pages != 3 {
		t.Errorf("SearchDirectory pages = %d, want 3 (and no TOO_MANY_SEARCH_RESULTS past the server's cap of 1000)", pages)
	}
	srvs, err := f.c.Servers(ctx, "mailbox")
	if err != nil || len(srvs) != 1 || srvs[0].Name != "mbox1.example.com" {
		t.Errorf("Servers = %v, %v", srvs, err)
	}
	d, err := f.c.Domain(ctx, "example.com")
	if err != nil || d.Name != "example.com" {
		t.Errorf("Domain = %v, %v", d, err)
	}
	if _, err := f.c.Domain(ctx, "nowhere.example"); !errors.Is(err, carbonio.ErrNoSuchDomain) {
		t.Errorf("Domain(nowhere) = %v", err)
	}
}

func TestFolders(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "soap")
	f.srv.AddAccount(carboniotest.DefaultFixture().Accounts[0])
	if err := f.srv.AddFolder("alice@example.com", carboniotest.FixtureFolder{Name: "Extra", View: "message", Count: 9}); err != nil {
		t.Fatal(err)
	}
	folders, err := f.c.Folders(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]carbonio.Folder{}
	for _, fo := range folders {
		by[fo.Path] = fo
	}
	checks := []struct {
		path, kind, view string
		count, uidnext   int64
		virtual          bool
	}{
		{"Inbox", "folder", "message", 3, 4, false},
		{"Inbox/Projects", "folder", "message", 2, 3, false},
		{"Calendar", "folder", "appointment", 0, 0, false},
		{"Bob's Calendar", "link", "appointment", 0, 0, true},
		{"Unread", "search", "message", 0, 0, true},
		{"Extra", "folder", "message", 9, 0, false},
	}
	for _, ck := range checks {
		fo, ok := by[ck.path]
		if !ok {
			t.Errorf("folder %q missing from %v", ck.path, folders)
			continue
		}
		if fo.Kind != ck.kind || fo.View != ck.view || fo.Count != ck.count || fo.UIDNext != ck.uidnext || fo.Virtual() != ck.virtual {
			t.Errorf("folder %q = %+v", ck.path, fo)
		}
	}
	if g := by["Calendar"].Grants; len(g) != 1 || g[0] != (carbonio.Grant{Type: "usr", Grantee: "bob@example.com", Perm: "r", ZID: g[0].ZID}) || g[0].ZID == "" {
		t.Errorf("Calendar grants = %+v, want bob@example.com (usr, r)", g)
	}
	if g := by["Inbox"].Grants; len(g) != 0 {
		t.Errorf("Inbox grants = %+v, want none", g)
	}
	if _, err := f.c.Folders(ctx, "ghost@example.com"); !errors.Is(err, carbonio.ErrNoSuchAccount) || !strings.Contains(err.Error(), "ghost@example.com") {
		t.Errorf("Folders(ghost) = %v", err)
	}
}

func TestUserToken(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "soap")
	f.srv.AddAccount(carboniotest.FixtureAccount{Name: "dave@carbonio.local"})
	t1, err := f.c.UserToken(ctx, "dave@carbonio.local")
	if err != nil {
		t.Fatal(err)
	}
	t2, err := f.c.UserToken(ctx, "dave@carbonio.local")
	if err != nil || t1.Reveal() != t2.Reveal() {
		t.Fatalf("second UserToken = %v, not cached", err)
	}
	if !f.srv.ValidUserToken("dave@carbonio.local", t1.Reveal()) {
		t.Error("the server does not know the delegated token")
	}
	if fmt.Sprint(t1) != secret.Redacted {
		t.Errorf("a token prints as %q", fmt.Sprint(t1))
	}
	n := 0
	for _, r := range f.srv.Requests() {
		if r == "DelegateAuthRequest" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("DelegateAuthRequests = %d, want 1", n)
	}
	if _, err := f.c.UserToken(ctx, "ghost@carbonio.local"); !errors.Is(err, carbonio.ErrNoSuchAccount) {
		t.Errorf("UserToken(ghost) = %v", err)
	}
}

func TestSSHHostKeyMismatch(t *testing.T) {
	srv := carboniotest.New(carboniotest.Options{})
	t.Cleanup(srv.Close)
	sshd := testssh.Start(t)
	dir := srv.InstallFakeCLI(t, fakeCLI(t))
	other := testssh.NewKey(t, filepath.Join(t.TempDir(), "other"))
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := testssh.WriteKnownHosts(kh, sshd.Addr, other); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty_known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, kh, want string }{
		{"mismatch", kh, "does not match"},
		{"unknown host", empty, "not in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runner := &carbonio.SSH{Addr: sshd.Addr, User: sshd.User, KnownHostsFile: tc.kh, KeyFiles: []string{sshd.ClientKey}}
			defer runner.Close()
			c := &carbonio.Client{Transport: &carbonio.CLI{Runner: runner, Program: filepath.Join(dir, "carbonio")}}
			_, err := c.SmartScan(context.Background(), carbonio.SmartScanOptions{})
			if !errors.Is(err, carbonio.ErrHostKey) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrHostKey (%s)", err, tc.want)
			}
			if n := len(srv.CLICommands()); n != 0 {
				t.Errorf("%d commands ran despite the host key", n)
			}
		})
	}
	// The right known_hosts works, so the refusal above is the host key's doing.
	runner := &carbonio.SSH{Addr: sshd.Addr, User: sshd.User, KnownHostsFile: sshd.KnownHosts, KeyFiles: []string{sshd.ClientKey}}
	defer runner.Close()
	c := &carbonio.Client{Transport: &carbonio.CLI{Runner: runner, Program: filepath.Join(dir, "carbonio")}}
	if _, err := c.SmartScan(context.Background(), carbonio.SmartScanOptions{}); err != nil {
		t.Fatalf("with the right known_hosts: %v", err)
	}
}

func TestSecretHygiene(t *testing.T) {
	for _, tr := range []string{"soap", "cli"} {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, tr)
			ctx := context.Background()
			phase1(t, f, tr == "cli")
			var texts []string
			f.srv.AddAccount(carboniotest.FixtureAccount{Name: "erin@carbonio.local"})
			tok, err := f.c.UserToken(ctx, "erin@carbonio.local")
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, fmt.Sprint(tok), fmt.Sprintf("%+v %#v", f.c, f.c))
			// Errors of every kind: fault, module error, failed operation, auth.
			_, err = f.c.Account(ctx, "nobody@example.com")
			texts = append(texts, fmt.Sprint(err))
			f.srv.FailOperations("doSmartScan", "scan failed")
			op, err := f.c.SmartScan(ctx, carbonio.SmartScanOptions{})
			if err == nil {
				_, err = f.c.Wait(ctx, op, nil)
			}
			texts = append(texts, fmt.Sprint(err))
			f.srv.ExpireTokens()
			if _, err := f.c.Domains(ctx); err != nil {
				t.Fatal(err)
			}
			bad := &carbonio.Client{URL: f.c.URL, Admin: adminName, Password: secret.New(sentinelPass + "x"), HTTPClient: f.srv.Client(), Logger: f.c.Logger}
			texts = append(texts, fmt.Sprint(bad.Login(ctx)))
			texts = append(texts, f.logs.String())
			if !strings.Contains(f.logs.String(), "AuthRequest") && !strings.Contains(f.logs.String(), "authenticat") {
				t.Error("the captured logs look empty; the check below would prove nothing")
			}
			all := strings.Join(texts, "\n")
			secrets := append([]string{sentinelPass}, f.srv.IssuedTokens()...)
			if len(secrets) < 3 {
				t.Fatalf("only %d secrets to look for", len(secrets))
			}
			for _, s := range secrets {
				if strings.Contains(all, s) {
					t.Errorf("secret %.6s… found in logs or errors", s)
				}
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	fls := false
	cmd := carbonio.Command{Module: "ZxBackup", Action: "doExternalRestore", Args: append(
		[]carbonio.Arg{{Name: "source_path", Value: "/tmp/export dir"}},
		carbonio.RestoreOptions{Domains: []string{"a.example", "b.example"}, ProvisioningOnly: true, ConcurrentAccounts: 5,
			SkipSystemAccounts: &fls}.Args()...)}
	got, err := cmd.CLIArgs()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"backup", "doExternalRestore", "/tmp/export dir", "domains", "a.example,b.example",
		"provisioning_only", "true", "concurrent_accounts", "5", "skip_system_accounts", "false"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CLIArgs (-want +got):\n%s", diff)
	}
	soap, err := cmd.SOAPFields()
	if err != nil {
		t.Fatal(err)
	}
	wantSOAP := map[string]any{"module": "ZxBackup", "action": "doExternalRestore", "source_path": "/tmp/export dir",
		"domains": "a.example,b.example", "provisioning_only": true, "concurrent_accounts": int64(5), "skip_system_accounts": false}
	if diff := cmp.Diff(wantSOAP, soap); diff != "" {
		t.Errorf("SOAPFields (-want +got):\n%s", diff)
	}
	for _, bad := range []carbonio.Command{
		{Module: "ZxBackup", Action: "doExternalRestore", Args: []carbonio.Arg{{Name: "source_path", Value: "/x"}, {Name: "password", Value: "x"}}},
		{Module: "ZxBackup", Action: "doExternalRestore", Args: []carbonio.Arg{{Name: "concurrent_accounts", Value: "five"}}},
		{Module: "ZxBackup", Action: "doExternalRestore"},
		{Module: "ZxNope", Action: "doIt"},
	} {
		if _, err := bad.CLIArgs(); err == nil {
			t.Errorf("CLIArgs(%+v) succeeded", bad)
		}
	}
	seen := map[string]bool{}
	for _, s := range carbonio.Commands {
		k := s.Module + " " + s.Action
		if seen[k] {
			t.Errorf("command %s twice in the table", k)
		}
		seen[k] = true
		if s.CLIModule == "" {
			continue
		}
		if c2, ok := carbonio.LookupCLICommand(s.CLIModule, s.Action); !ok || c2.Module != s.Module {
			t.Errorf("CLI lookup of %s %s = %v", s.CLIModule, s.Action, c2.Module)
		}
	}
}

// TestAdminTokens: the admin token source gives the admin's own token for
// any account, and a forgotten token is replaced by a new login.
func TestAdminTokens(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "soap")
	ts := f.c.AdminTokens()
	tok, err := ts.UserToken(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	issued := f.srv.IssuedTokens()
	if len(issued) != 1 || tok.Reveal() != issued[0] {
		t.Fatalf("admin token %q, issued %q", tok.Reveal(), issued)
	}
	ts.ForgetUserToken("alice@example.com")
	if _, err := ts.UserToken(ctx, "bob@example.com"); err != nil || f.srv.AuthCount() != 2 {
		t.Errorf("after forgetting: %v, %d logins", err, f.srv.AuthCount())
	}
	for _, c := range []struct {
		url  string
		want string
	}{{"https://mbox:7071", carbonio.CookieAdminAuthToken}, {"https://proxy:6071/", carbonio.CookieAdminAuthToken},
		{"https://mail.example.com/dav/", carbonio.CookieAuthToken}, {"https://mbox:8443/home/", carbonio.CookieAuthToken}} {
		if got := carbonio.AuthCookie(c.url); got != c.want {
			t.Errorf("AuthCookie(%s) = %s, want %s", c.url, got, c.want)
		}
	}
}

// TestDocumentedOptions: the documented CLI options reach the server by
// their documented names.
func TestDocumentedOptions(t *testing.T) {
	f := newFixture(t, "cli")
	ctx := context.Background()
	if _, err := f.c.SmartScan(ctx, carbonio.SmartScanOptions{RemoteMetadataUpload: true, CreateFakeBlob: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.ExternalRestore(ctx, backupPath, carbonio.RestoreOptions{ForceAsExternalRestore: true, BlobsArchive: "/tmp/blobs.tar"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]string{}
	for _, s := range f.srv.StartedOperations() {
		got[s.Action] = s.Args
	}
	want := map[string]map[string]string{
		"doSmartScan":       {"action": "start", "remote_metadata_upload": "true", "create_fake_blob": "true"},
		"doExternalRestore": {"source_path": backupPath, "force_as_external_restore": "true", "blobs_archive": "/tmp/blobs.tar"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("arguments seen by the server (-want +got):\n%s", diff)
	}
}
