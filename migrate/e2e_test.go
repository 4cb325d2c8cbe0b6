package migrate_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/secret"
)

// e2eConfig is what the parent test hands the child process that runs the
// plan (so that the parent can SIGKILL it).
type e2eConfig struct {
	SrcIMAP, DstIMAP   string
	Master, MasterPass string
	SrcDAV, DstDAV     string
	Users              map[string]string // address -> password (DAV)
	State, Report      string
	Provisioned        bool // the destination already holds the accounts
	ListFile           string
	Domain             string
	SlowDown           bool
	Delete             bool // mail.delete, calendars.delete, contacts.delete
}

const e2eEnv = "ZXMIGRATE_E2E_CHILD_CONFIG"

// TestE2EChild is the child half of TestE2EDovecot; it does nothing unless
// the parent started it.
func TestE2EChild(t *testing.T) {
	path := os.Getenv(e2eEnv)
	if path == "" {
		t.Skip("run by TestE2EDovecot only")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c e2eConfig
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	rep, err := e2eRunner(t, c, func(ev migrate.Event) {
		if p, ok := ev.(migrate.Progress); ok && p.Phase == migrate.PhaseMail {
			fmt.Printf("PROGRESS %s %d\n", p.Account, p.Items)
		}
	}).Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !rep.OK() {
		var b strings.Builder
		_ = rep.WriteText(&b)
		t.Fatalf("run not OK:\n%s", b.String())
	}
}

// e2eRunner builds the runner of the e2e plan: Dovecot to Dovecot (admin
// login as the master user), Radicale to Radicale (per-user Basic), and
// carboniotest as the destination admin API (SmartScan, restore,
// provisioning check).
func e2eRunner(t *testing.T, c e2eConfig, onEvent func(migrate.Event)) *migrate.Runner {
	var accts []carboniotest.FixtureAccount
	for u := range c.Users {
		accts = append(accts, carboniotest.FixtureAccount{Name: u})
	}
	backup := &carboniotest.Fixture{Domains: []string{c.Domain}, Accounts: accts}
	fx := carboniotest.DestinationFixture()
	if c.Provisioned {
		// A real server keeps what the restore created; the fake starts
		// anew in each process.
		fx.Domains = append(fx.Domains, c.Domain)
		fx.Accounts = append(fx.Accounts, accts...)
	}
	dst := carboniotest.New(carboniotest.Options{Admin: "admin@carbonio.local", Password: "pw", Fixture: fx,
		Backups: map[string]*carboniotest.Fixture{"/backup": backup}, OperationSteps: 1})
	t.Cleanup(dst.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, dst.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	master := migrate.Credential{Password: secret.New(c.MasterPass)}
	p := &migrate.Plan{
		Name: "e2e",
		Source: migrate.Endpoint{Kind: "imap",
			IMAP: migrate.IMAPEndpoint{Address: c.SrcIMAP, Security: "none", Admin: c.Master, Credential: master},
			DAV:  migrate.DAVEndpoint{URL: c.SrcDAV, Auth: "basic"}},
		Destination: migrate.Endpoint{
			Admin: migrate.AdminEndpoint{URL: dst.URL, User: "admin@carbonio.local", Credential: migrate.Credential{Password: secret.New("pw")}, CAFile: ca,
				UnverifiedSOAP: true}, // carboniotest accepts the guessed SOAP fields
			IMAP: migrate.IMAPEndpoint{Address: c.DstIMAP, Security: "none", Admin: c.Master, Credential: master},
			DAV:  migrate.DAVEndpoint{URL: c.DstDAV, Auth: "basic"}},
		Domains:      []string{c.Domain},
		Accounts:     migrate.Selection{ListFile: c.ListFile},
		Phases:       []migrate.Phase{migrate.PhaseSmartScan, migrate.PhaseProvisioning, migrate.PhaseProvisioningCheck, migrate.PhaseMail, migrate.PhaseCalendars, migrate.PhaseContacts, migrate.PhaseVerify},
		Provisioning: migrate.Provisioning{BackupPath: "/backup"},
		Concurrency:  migrate.Concurrency{ConcurrentAccounts: 4, FoldersPerAccount: 2},
		Mail:         migrate.MailOptions{WritersPerAccount: 1, Delete: c.Delete},
		Calendars:    migrate.DAVOptions{Delete: c.Delete},
		Contacts:     migrate.DAVOptions{Delete: c.Delete},
		State:        c.State,
		Report:       c.Report,
	}
	return &migrate.Runner{Plan: p, OnEvent: onEvent, Hooks: migrate.Hooks{
		PollInterval: 20 * time.Millisecond,
		DAVCredentials: func(side, account string) (string, secret.Secret, bool) {
			pw, ok := c.Users[account]
			return account, secret.New(pw), ok
		},
	}}
}

// TestE2EDovecot migrates 4 accounts between real Dovecot and Radicale
// servers with carboniotest as the destination admin API. The first run is
// killed with SIGKILL midway; the resumed run must end with everything on
// the destination exactly once, verification passing, and a third run
// must do nothing.
func TestE2EDovecot(t *testing.T) {
	if os.Getenv(e2eEnv) != "" {
		t.Skip("child process")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	ctx := context.Background()
	const domain = "example.com"
	users := map[string]string{}
	for i := 1; i <= 4; i++ {
		users[fmt.Sprintf("user%d@%s", i, domain)] = fmt.Sprintf("pass%d", i)
	}
	src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "e2e-src", Users: users})
	dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "e2e-dst", Users: users})
	rsrc := testserver.StartRadicale(t, users)
	rdst := testserver.StartRadicale(t, users)

	dir := t.TempDir()
	want := map[string]*corpus.Account{}
	var list strings.Builder
	total := 0
	for u, pw := range users {
		a := corpus.Generate(u, corpus.Options{Seed: 6, Messages: 1, Events: 8, Contacts: 8})
		want[u] = a
		total += len(a.Mail.Messages)
		if err := src.Seed(ctx, u, a.Mail); err != nil {
			t.Fatal(err)
		}
		if err := testserver.SeedDAV(ctx, rsrc.CalendarHome(u), u, pw, a.Calendars, a.AddressBooks); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&list, u)
	}
	listFile := filepath.Join(dir, "accounts.txt")
	if err := os.WriteFile(listFile, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e2eConfig{SrcIMAP: src.Addr, DstIMAP: dst.Addr, Master: src.MasterUser, MasterPass: src.MasterPassword,
		SrcDAV: rsrc.URL, DstDAV: rdst.URL, Users: users, State: filepath.Join(dir, "state.db"),
		Report: filepath.Join(dir, "report"), ListFile: listFile, Domain: domain}

	// Run 1: killed with SIGKILL once about a third of the mail is copied.
	copied := runChild(t, cfg, total/3)
	t.Logf("first run killed after %d messages reported copied (of %d)", copied, total)
	if copied >= total {
		t.Logf("the first run finished before the kill: the resume below still runs")
	}

	// Run 2: resume to the end.
	cfg.Provisioned = true
	if n := runChild(t, cfg, -1); n < 0 {
		t.Fatal("resumed run failed")
	}

	// 0 lost, 0 duplicated: the destination equals the source exactly.
	// Mail compares with the generated corpus; the one deliberate change is
	// the Zimbra tag keyword NAME:FLAGnnn, which Carbonio refuses and the
	// copier sanitises to NAME (reported per message).
	mailOpts := &corpus.DiffOptions{MissingNoSelectOK: true, ExtraFoldersOK: true,
		IgnoreFlags: []string{corpus.ZimbraTagKeyword, strings.Split(corpus.ZimbraTagKeyword, ":")[0]}}
	// DAV compares with what the source server holds: Radicale itself
	// alters some objects on the way in (it truncates vCard 4 data: URI
	// photos), which is not the copier's doing.
	davOpts := &corpus.DiffOptions{}
	for u, a := range want {
		got, err := dst.Snapshot(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if diffs := corpus.DiffMail(a.Mail, got, mailOpts); len(diffs) > 0 {
			t.Errorf("%s mail differs after kill and resume:\n%s", u, strings.Join(diffs, "\n"))
		}
		srcCals, srcBooks, err := testserver.SnapshotDAV(ctx, rsrc.CalendarHome(u), u, users[u])
		if err != nil {
			t.Fatal(err)
		}
		cals, books, err := testserver.SnapshotDAV(ctx, rdst.CalendarHome(u), u, users[u])
		if err != nil {
			t.Fatal(err)
		}
		if n := countObjects(cals) + countObjects(books); n == 0 || n != countObjects(srcCals)+countObjects(srcBooks) {
			t.Errorf("%s: %d DAV objects on the destination, %d on the source", u, n, countObjects(srcCals)+countObjects(srcBooks))
		}
		if diffs := corpus.DiffCollections(srcCals, cals, davOpts); len(diffs) > 0 {
			t.Errorf("%s calendars differ:\n%s", u, strings.Join(diffs, "\n"))
		}
		if diffs := corpus.DiffCollections(srcBooks, books, davOpts); len(diffs) > 0 {
			t.Errorf("%s address books differ:\n%s", u, strings.Join(diffs, "\n"))
		}
	}

	// Run 3, in process: nothing left to do, and verification still passes.
	var started atomic.Int32
	r := e2eRunner(t, cfg, func(ev migrate.Event) {
		if p, ok := ev.(migrate.PhaseStarted); ok && p.Account != "" {
			started.Add(1)
		}
	})
	rep, err := r.Run(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("third run: %v, outcome %v", err, rep.Outcome)
	}
	if n := started.Load(); n != 0 {
		t.Errorf("third run started %d account phases, want 0", n)
	}
	v, err := e2eRunner(t, cfg, nil).Verify(ctx)
	if err != nil || !v.OK() {
		var b strings.Builder
		if v != nil {
			_ = v.WriteText(&b)
		}
		t.Errorf("verify after resume: %v\n%s", err, b.String())
	}

	// Run 4, the delta pass before a cut-over: since run 3, user1 expunged
	// a message and deleted an event at the source. With delete on, their
	// copies go from the destination, and nothing else does.
	u := "user1@" + domain
	gone := want[u].Mail.Messages[0] // UID 1 of its folder (seeded in corpus order)
	c, err := src.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select(gone.Folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.UIDExpunge(imap.UIDSetNum(1)).Close(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	srcCals, _, err := testserver.SnapshotDAV(ctx, rsrc.CalendarHome(u), u, users[u])
	if err != nil {
		t.Fatal(err)
	}
	var event string
	for _, col := range srcCals {
		if len(col.Objects) > 0 {
			event = rsrc.CalendarHome(u) + col.Name + "/" + col.Objects[0].Name
			break
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, event, nil)
	req.SetBasicAuth(u, users[u])
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("DELETE %s at the source: %v %v", event, resp, err)
	} else {
		resp.Body.Close()
	}
	dstBefore, err := dst.Snapshot(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	calsBefore, _, err := testserver.SnapshotDAV(ctx, rdst.CalendarHome(u), u, users[u])
	if err != nil {
		t.Fatal(err)
	}
	cfg.Delete = true
	r = e2eRunner(t, cfg, nil)
	r.Delta = true
	rep, err = r.Run(ctx)
	if err != nil || !rep.OK() {
		var b strings.Builder
		if rep != nil {
			_ = rep.WriteText(&b)
		}
		t.Fatalf("run with delete: %v\n%s", err, b.String())
	}
	if a := rep.Account(u); a == nil || a.Phase(migrate.PhaseMail).Deleted != 1 || a.Phase(migrate.PhaseCalendars).Deleted != 1 || rep.Totals.Deleted != 2 {
		t.Errorf("report of the run with delete: %+v; want 1 message and 1 event deleted for %s, 2 in all", rep.Totals, u)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "Deleted:  2 copies") {
		t.Errorf("text report does not show the deletions (%v):\n%s", err, text.String())
	}
	dstAfter, err := dst.Snapshot(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if len(dstAfter.Messages) != len(dstBefore.Messages)-1 {
		t.Errorf("user1 has %d messages on the destination after the run with delete, want %d", len(dstAfter.Messages), len(dstBefore.Messages)-1)
	}
	goneID := corpus.MessageID(gone.Raw)
	for _, m := range dstAfter.Messages {
		if m.Folder == gone.Folder && corpus.MessageID(m.Raw) == goneID {
			t.Errorf("the expunged message %s is still in %s on the destination", goneID, gone.Folder)
		}
	}
	calsAfter, _, err := testserver.SnapshotDAV(ctx, rdst.CalendarHome(u), u, users[u])
	if err != nil {
		t.Fatal(err)
	}
	if n, was := countObjects(calsAfter), countObjects(calsBefore); n != was-1 {
		t.Errorf("user1 has %d calendar objects on the destination after the run with delete, want %d", n, was-1)
	}
	for v := range want {
		if v == u {
			continue
		}
		if got, err := dst.Snapshot(ctx, v); err != nil || len(got.Messages) != len(want[v].Mail.Messages) {
			t.Errorf("%s: %d messages on the destination, want %d untouched (%v)", v, len(got.Messages), len(want[v].Mail.Messages), err)
		}
	}
}

func countObjects(cs []corpus.Collection) int {
	n := 0
	for _, c := range cs {
		n += len(c.Objects)
	}
	return n
}

// runChild runs the plan in a child process. With killAt >= 0 it sends
// SIGKILL once the child reports killAt copied messages and returns how
// many it had reported; with killAt < 0 it waits and returns -1 when the
// child failed.
func runChild(t *testing.T, cfg e2eConfig, killAt int) int {
	t.Helper()
	b, _ := json.Marshal(cfg)
	cf := filepath.Join(t.TempDir(), "child.json")
	if err := os.WriteFile(cf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestE2EChild$", "-test.v")
	cmd.Env = append(os.Environ(), e2eEnv+"="+cf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	perAccount := map[string]int{}
	sum := 0
	killed := false
	var log strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "PROGRESS" {
			n, _ := strconv.Atoi(f[2])
			sum += n - perAccount[f[1]]
			perAccount[f[1]] = n
			if killAt >= 0 && sum >= killAt && !killed {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				killed = true
			}
			continue
		}
		log.WriteString(line + "\n")
	}
	err = cmd.Wait()
	if killAt >= 0 {
		if !killed && err != nil {
			t.Fatalf("first run failed before the kill: %v\n%s%s", err, log.String(), stderr.String())
		}
		return sum
	}
	if err != nil {
		t.Errorf("child run: %v\n%s%s", err, log.String(), stderr.String())
		return -1
	}
	return sum
}
