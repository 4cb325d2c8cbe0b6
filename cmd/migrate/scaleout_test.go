//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/state"
)

// davAdminProxy is a DAV server whose admin may open every home, as
// Zimbra's and Carbonio's are: it accepts the admin's Basic credentials
// and forwards each request to Radicale as the owner of the home the path
// names (/<user>/...).
func davAdminProxy(t *testing.T, r *testserver.Radicale, user, pass string) string {
	target, err := url.Parse(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="dav"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		owner, _, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/"), "/")
		owner, _ = url.PathUnescape(owner)
		pw, ok := r.Users[owner]
		if !ok {
			http.Error(w, "no such home", http.StatusForbidden)
			return
		}
		req.SetBasicAuth(owner, pw)
		rp.ServeHTTP(w, req)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// runnerProc is one `migrate run` process of the scale-out test.
type runnerProc struct {
	cmd *exec.Cmd
	id  atomic.Value // runner id, from its "runner registered" log line
	mu  sync.Mutex
	log strings.Builder
	// stdout is the report summary, read once the process ended.
	stdout strings.Builder
	done   chan error
	// claimed is signalled for every account the runner claims.
	claimed chan string
}

func startRunner(t *testing.T, bin, dir string, env []string, args ...string) *runnerProc {
	t.Helper()
	rp := &runnerProc{done: make(chan error, 1), claimed: make(chan string, 64)}
	rp.cmd = exec.Command(bin, args...)
	rp.cmd.Env = env
	rp.cmd.Dir = dir
	rp.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the test
	stderr, err := rp.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	rp.cmd.Stdout = &rp.stdout
	if err := rp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			rp.mu.Lock()
			rp.log.WriteString(line + "\n")
			rp.mu.Unlock()
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil {
				continue
			}
			switch m["msg"] {
			case "runner registered":
				if id, ok := m["runner"].(string); ok {
					rp.id.Store(id)
				}
			case "account claimed", "account taken over from a runner whose lease ran out":
				if a, ok := m["account"].(string); ok {
					select {
					case rp.claimed <- a:
					default:
					}
				}
			}
		}
		rp.done <- rp.cmd.Wait()
	}()
	t.Cleanup(func() {
		if rp.cmd.ProcessState == nil {
			_ = rp.cmd.Process.Kill()
		}
	})
	return rp
}

func (rp *runnerProc) logText() string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	s := rp.log.String()
	if rp.cmd.ProcessState != nil {
		s += rp.stdout.String()
	}
	return s
}

func (rp *runnerProc) runnerID() string {
	s, _ := rp.id.Load().(string)
	return s
}

// TestScaleOutRunners runs three `migrate run` processes on one plan and
// one PostgreSQL state, 30 accounts between two Dovecot servers (mail) and
// two Radicale servers (calendars, contacts), with carboniotest and its
// fake command line as the destination's admin (MTA stop and start,
// SmartScan, provisioning). Every runner reaches PostgreSQL through its
// own fault proxy; the source IMAP server sits behind one that counts its
// connections.
//
// kill-and-cut: one runner is killed with SIGKILL in the middle of an
// account; a second is cut off from PostgreSQL for longer than the lease
// (5 s). Afterwards every account is finished and its destination equals
// its source (messages by content, flags and dates, duplicates counted;
// DAV objects), every global phase ran exactly once (jobs table and the
// fake server's commands), the killed runner's account was taken over
// within lease + 10 s and the cut-off runner's late write was refused.
//
// budget: the mail of the same accounts into a second destination with a
// source IMAP budget of 4 and 4 accounts at once per runner: the source
// never sees more than 4 connections; lowered to 2 with `migrate limits`
// during the run, no more than 2 once the connections held beyond it ended.
//
// It takes about 2.5 minutes on two cores, so it runs when $CI or
// $ZXMIGRATE_SCALEOUT is set (and then fails when PostgreSQL, Dovecot or
// Radicale is missing).
func TestScaleOutRunners(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Getenv("CI") == "" && os.Getenv("ZXMIGRATE_SCALEOUT") == "" {
		t.Skip("about 2.5 minutes: set ZXMIGRATE_SCALEOUT=1 (or CI) to run it")
	}
	ctx := context.Background()
	const (
		domain   = "example.com"
		accounts = 30
		lease    = 5 * time.Second
		budget   = 4
		lowered  = 2
	)
	pg := testserver.StartPostgres(t, testserver.PostgresOptions{})
	users := map[string]string{}
	var list strings.Builder
	for i := 1; i <= accounts; i++ {
		u := fmt.Sprintf("user%02d@%s", i, domain)
		users[u] = fmt.Sprintf("pass%d", i)
		fmt.Fprintln(&list, u)
	}
	src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "so-src", Users: users})
	dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "so-dst", Users: users})
	dst2 := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "so-dst2", Users: users})
	rsrc := testserver.StartRadicale(t, users)
	rdst := testserver.StartRadicale(t, users)
	want := map[string]*corpus.Account{}
	total := 0
	for i := 1; i <= accounts; i++ {
		u := fmt.Sprintf("user%02d@%s", i, domain)
		a := corpus.Generate(u, corpus.Options{Seed: int64(i), Messages: 1, Events: 3, Contacts: 3})
		want[u] = a
		total += len(a.Mail.Messages)
		if err := src.Seed(ctx, u, a.Mail); err != nil {
			t.Fatal(err)
		}
		if err := testserver.SeedDAV(ctx, rsrc.CalendarHome(u), u, users[u], a.Calendars, a.AddressBooks); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d accounts, %d messages seeded", accounts, total)
	srcDAV := davAdminProxy(t, rsrc, "davadmin", "davpass")
	dstDAV := davAdminProxy(t, rdst, "davadmin", "davpass")
	srcProxy, err := faultproxy.Listen(src.Addr, faultproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srcProxy.Close() })

	// The destination admin: carboniotest, with the export to restore and
	// its fake command line (carbonio, zmmtactl) run as a local program.
	var fxAccts []carboniotest.FixtureAccount
	for u := range users {
		fxAccts = append(fxAccts, carboniotest.FixtureAccount{Name: u})
	}
	cliBin, err := carboniotest.BuildFakeCLIBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	admin := carboniotest.New(carboniotest.Options{Admin: "admin@carbonio.local", Password: "adminpw",
		Fixture: carboniotest.DestinationFixture(), OperationSteps: 1,
		Backups: map[string]*carboniotest.Fixture{"/backup": {Domains: []string{domain}, Accounts: fxAccts}}})
	t.Cleanup(admin.Close)
	cliDir := admin.InstallFakeCLI(t, cliBin)

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, admin.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	listFile := filepath.Join(dir, "accounts.txt")
	if err := os.WriteFile(listFile, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "migrate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := append(os.Environ(), "SO_MASTER="+src.MasterPassword, "SO_DAV=davpass", "SO_ADMIN=adminpw",
		state.PasswordEnv+"="+pg.Password, "PATH="+cliDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv(state.PasswordEnv, pg.Password)

	// start opens a fresh database and starts three runners on plan, each
	// through its own proxy to PostgreSQL.
	start := func(t *testing.T, name, plan string) (dbURL string, obs *state.Postgres, runners []*runnerProc, pgProxies []*faultproxy.Proxy) {
		dbURL, err := pg.NewDatabase(ctx)
		if err != nil {
			t.Fatal(err)
		}
		planPath := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(planPath, []byte(plan), 0o600); err != nil {
			t.Fatal(err)
		}
		obs, err = state.OpenPostgres(ctx, dbURL, state.PostgresOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { obs.Close() })
		pgURL, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			px, err := faultproxy.Listen(pgURL.Host, faultproxy.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { px.Close() })
			pgProxies = append(pgProxies, px)
			u := *pgURL
			u.Host = px.Addr()
			// fakecli finds its configuration next to argv[0] ("./zmmtactl").
			runners = append(runners, startRunner(t, bin, cliDir, env, "run", "--plan", planPath, "--state", u.String(),
				"--log-level", "info", "--log-format", "json", "--progress", "plain"))
		}
		return dbURL, obs, runners, pgProxies
	}
	wait := func(t *testing.T, runners []*runnerProc) {
		for i, rp := range runners {
			i := i + 3 - len(runners)
			select {
			case err := <-rp.done:
				if err != nil {
					t.Errorf("runner %d (%s): %v\n%s", i, rp.runnerID(), err, rp.logText())
				}
			case <-time.After(5 * time.Minute):
				t.Fatalf("runner %d did not finish\n%s", i, rp.logText())
			}
		}
	}
	mailOpts := &corpus.DiffOptions{MissingNoSelectOK: true, ExtraFoldersOK: true,
		IgnoreFlags: []string{corpus.ZimbraTagKeyword, strings.Split(corpus.ZimbraTagKeyword, ":")[0]}}
	sameMail := func(t *testing.T, d *testserver.Dovecot) {
		got := 0
		for u, a := range want {
			mb, err := d.Snapshot(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			got += len(mb.Messages)
			if diffs := corpus.DiffMail(a.Mail, mb, mailOpts); len(diffs) > 0 {
				t.Errorf("%s mail differs:\n%s", u, strings.Join(diffs, "\n"))
			}
		}
		t.Logf("destination holds %d messages, source %d", got, total)
		if got != total {
			t.Errorf("destination holds %d messages, source %d", got, total)
		}
	}
	allDone := func(t *testing.T, obs *state.Postgres) {
		rows, err := obs.Accounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != accounts {
			t.Errorf("%d accounts in the state, want %d", len(rows), accounts)
		}
		takeovers := 0
		for _, r := range rows {
			if !r.Finished || r.Status != "done" {
				t.Errorf("%s: finished %v, status %q (%s)", r.Source, r.Finished, r.Status, r.Error)
			}
			if r.Claims > 1 {
				takeovers++
			}
		}
		t.Logf("%d of %d accounts were claimed more than once", takeovers, accounts)
	}

	t.Run("kill-and-cut", func(t *testing.T) {
		plan := fmt.Sprintf(`name: scale-out
source:
  kind: imap
  imap: {address: %q, security: none, admin: %s, password_env: SO_MASTER}
  dav: {url: %q, auth: basic, user: davadmin, password_env: SO_DAV}
destination:
  admin: {url: %q, user: admin@carbonio.local, password_env: SO_ADMIN, ca_file: %q}
  imap: {address: %q, security: none, admin: %s, password_env: SO_MASTER}
  dav: {url: %q, auth: basic, user: davadmin, password_env: SO_DAV}
  cli: {mode: local, program: %q}
domains: [%s]
accounts: {list_file: %q}
phases: [mta_stop, smartscan, provisioning, provisioning_check, mail, calendars, contacts, verify, mta_start]
provisioning: {backup_path: /backup}
concurrency: {concurrent_accounts: 4, folders_per_account: 2}
mail: {writers_per_account: 1}
lease: %s
report: %q
`, src.Addr, src.MasterUser, srcDAV, admin.URL, ca, dst.Addr, dst.MasterUser, dstDAV,
			filepath.Join(cliDir, "carbonio"), domain, listFile, lease, filepath.Join(dir, "report"))
		dbURL, obs, runners, pgProxies := start(t, "kill", plan)

		// SIGKILL runner 0 in the middle of an account: once it claimed
		// one and the account started a phase.
		var killedAcct string
		select {
		case killedAcct = <-runners[0].claimed:
		case err := <-runners[0].done:
			t.Fatalf("runner 0 ended before claiming an account: %v\n%s", err, runners[0].logText())
		case <-time.After(3 * time.Minute):
			t.Fatalf("runner 0 claimed no account\n%s", runners[0].logText())
		}
		killedID := runners[0].runnerID()
		waitFor(t, 60*time.Second, "a phase of "+killedAcct, func() bool {
			row, ok, err := obs.Account(ctx, killedAcct)
			return err == nil && ok && row.Phase != ""
		})
		if err := runners[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killedAt := time.Now()
		<-runners[0].done
		t.Logf("runner %s killed while working on %s", killedID, killedAcct)

		waitFor(t, lease+10*time.Second, "takeover of "+killedAcct, func() bool {
			row, ok, err := obs.Account(ctx, killedAcct)
			return err == nil && ok && row.Claims > 1
		})
		t.Logf("%s taken over %s after the kill (lease %s)", killedAcct, time.Since(killedAt).Round(100*time.Millisecond), lease)

		// Cut runner 1 off from PostgreSQL for longer than the lease.
		var cutAcct string
		waitFor(t, 2*time.Minute, "an account of runner 1", func() bool {
			rows, err := obs.Accounts(ctx)
			for _, r := range rows {
				if err == nil && !r.Finished && r.Runner == runners[1].runnerID() && r.Phase != "" {
					cutAcct = r.Source
					return true
				}
			}
			return false
		})
		pgProxies[1].SetRefuse(true)
		pgProxies[1].DropAll()
		cutAt := time.Now()
		t.Logf("runner %s cut off from PostgreSQL while working on %s", runners[1].runnerID(), cutAcct)

		time.Sleep(time.Until(cutAt.Add(lease + 3*time.Second)))
		pgProxies[1].SetRefuse(false)

		out, err := exec.Command(bin, "status", "--state", dbURL).CombinedOutput()
		if err != nil {
			t.Errorf("migrate status: %v\n%s", err, out)
		}
		t.Logf("status during the run:\n%s", out)
		if !strings.Contains(string(out), ": running\n") {
			t.Errorf("status during the run does not say running:\n%s", out)
		}
		wait(t, runners[1:])

		if l := runners[1].logText(); !strings.Contains(l, "late write refused") || !strings.Contains(l, "lease lost") {
			t.Errorf("the cut-off runner logged no refused late write:\n%s", l)
		}
		allDone(t, obs)
		jobs, err := obs.Globals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, j := range jobs {
			names[j.Name] = true
			if j.Status != state.GlobalDone || j.Claims != 1 {
				t.Errorf("global phase %s: status %s, claimed %d times, want done once", j.Name, j.Status, j.Claims)
			}
		}
		for _, ph := range []string{"mta_stop", "smartscan", "provisioning", "provisioning_check", "mta_start"} {
			if !names[ph] {
				t.Errorf("global phase %s has no job", ph)
			}
		}
		var cmds []string
		stops, starts := 0, 0
		for _, c := range admin.CLICommands() {
			s := strings.Join(c, " ")
			cmds = append(cmds, s)
			if strings.Contains(s, "zmmtactl") && strings.HasSuffix(s, " stop") {
				stops++
			}
			if strings.Contains(s, "zmmtactl") && strings.HasSuffix(s, " start") {
				starts++
			}
		}
		t.Logf("destination commands: %q", cmds)
		if stops != 1 || starts != 1 {
			t.Errorf("MTA stopped %d and started %d times, want once each: %q", stops, starts, cmds)
		}
		ops := map[string]int{}
		for _, o := range admin.StartedOperations() {
			ops[o.Action]++
		}
		t.Logf("destination operations: %v", ops)
		if len(ops) == 0 {
			t.Error("no operation started on the destination")
		}
		for action, n := range ops {
			if n != 1 {
				t.Errorf("operation %s started %d times, want 1", action, n)
			}
		}
		sameMail(t, dst)
		for u := range want {
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
			if diffs := corpus.DiffCollections(srcCals, cals, &corpus.DiffOptions{}); len(diffs) > 0 {
				t.Errorf("%s calendars differ:\n%s", u, strings.Join(diffs, "\n"))
			}
			if diffs := corpus.DiffCollections(srcBooks, books, &corpus.DiffOptions{}); len(diffs) > 0 {
				t.Errorf("%s address books differ:\n%s", u, strings.Join(diffs, "\n"))
			}
		}
	})

	t.Run("budget", func(t *testing.T) {
		plan := fmt.Sprintf(`name: scale-out budget
source:
  kind: imap
  imap: {address: %q, security: none, admin: %s, password_env: SO_MASTER}
destination:
  imap: {address: %q, security: none, admin: %s, password_env: SO_MASTER}
domains: [%s]
accounts: {list_file: %q}
phases: [mail]
concurrency: {concurrent_accounts: 4, folders_per_account: 2}
mail: {writers_per_account: 1}
limits: {source_imap: %d}
lease: %s
report: %q
`, srcProxy.Addr(), src.MasterUser, dst2.Addr, dst2.MasterUser, domain, listFile, budget, lease, filepath.Join(dir, "report2"))
		var maxAll, maxLowered atomic.Int64
		var drained atomic.Bool
		var lowerSet atomic.Bool
		stopSampling := make(chan struct{})
		var sampled sync.WaitGroup
		sampled.Add(1)
		go func() {
			defer sampled.Done()
			tk := time.NewTicker(5 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stopSampling:
					return
				case <-tk.C:
				}
				n := int64(srcProxy.Active())
				if n > maxAll.Load() {
					maxAll.Store(n)
				}
				if lowerSet.Load() {
					if !drained.Load() && n <= lowered {
						drained.Store(true)
					} else if drained.Load() && n > maxLowered.Load() {
						maxLowered.Store(n)
					}
				}
			}
		}()
		dbURL, obs, runners, _ := start(t, "budget", plan)
		// Lower the budget once about a third of the mail is copied.
		waitFor(t, 3*time.Minute, "a third of the mail", func() bool {
			rows, err := obs.Accounts(ctx)
			if err != nil {
				return false
			}
			var n int64
			for _, r := range rows {
				n += r.Messages
			}
			return n >= int64(total/3)
		})
		out, err := exec.Command(bin, "limits", "--state", dbURL, "set", "source.imap", fmt.Sprint(lowered)).CombinedOutput()
		if err != nil {
			t.Fatalf("migrate limits set: %v\n%s", err, out)
		}
		lowerSet.Store(true)
		loweredAt := time.Now()
		out, _ = exec.Command(bin, "limits", "--state", dbURL).CombinedOutput()
		t.Logf("budgets after lowering:\n%s", out)
		wait(t, runners)
		close(stopSampling)
		sampled.Wait()
		t.Logf("source connections: at most %d with a budget of %d; at most %d once lowered to %d (set %s before the end)",
			maxAll.Load(), budget, maxLowered.Load(), lowered, time.Since(loweredAt).Round(time.Second))
		if maxAll.Load() == 0 {
			t.Error("no source connection sampled")
		}
		if maxAll.Load() > budget {
			t.Errorf("the source saw %d connections at once, budget %d", maxAll.Load(), budget)
		}
		if !drained.Load() {
			t.Errorf("the source connections never went down to the lowered budget %d", lowered)
		} else if maxLowered.Load() > lowered {
			t.Errorf("after the budget was lowered to %d the source saw %d connections at once", lowered, maxLowered.Load())
		}
		allDone(t, obs)
		sameMail(t, dst2)
	})
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func countObjects(cs []corpus.Collection) int {
	n := 0
	for _, c := range cs {
		n += len(c.Objects)
	}
	return n
}
