package migrate_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/secret"
)

// TestBenchDomain measures a 4-account domain copy (the mail phase of a
// plan, 4 accounts in parallel) against 4 parallel mbsync processes on the
// same Dovecot pair, median of 3 runs each, and prints aggregate messages
// per second and the ratio. It runs only with ZXMIGRATE_BENCH=1 (see
// bench/domain.sh); ZXMIGRATE_BENCH_MESSAGES sets messages per account
// (default 2500).
func TestBenchDomain(t *testing.T) {
	if os.Getenv("ZXMIGRATE_BENCH") == "" {
		t.Skip("benchmark: set ZXMIGRATE_BENCH=1 (bench/domain.sh)")
	}
	perAccount := 2500
	if v, err := strconv.Atoi(os.Getenv("ZXMIGRATE_BENCH_MESSAGES")); err == nil && v > 0 {
		perAccount = v
	}
	ctx := context.Background()
	users := map[string]string{}
	var names []string
	for i := 1; i <= 4; i++ {
		u := fmt.Sprintf("user%d@bench.test", i)
		users[u] = fmt.Sprintf("pass%d", i)
		names = append(names, u)
	}
	src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "bench-src", Users: users})
	dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "bench-dst", Users: users})
	total, bytes := 0, int64(0)
	for i, u := range names {
		a := corpus.Generate(u, corpus.Options{Seed: int64(i), Messages: perAccount, Events: -1, Contacts: -1})
		if err := src.Seed(ctx, u, a.Mail); err != nil {
			t.Fatal(err)
		}
		total += len(a.Mail.Messages)
		for _, m := range a.Mail.Messages {
			bytes += int64(len(m.Raw))
		}
	}
	t.Logf("corpus: 4 accounts, %d messages, %.1f MB", total, float64(bytes)/1e6)
	dir := t.TempDir()
	list := filepath.Join(dir, "accounts.txt")
	if err := os.WriteFile(list, []byte(strings.Join(names, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reset := func() {
		for _, u := range names {
			if err := dst.ResetUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	master := migrate.Credential{Password: secret.New(src.MasterPassword)}
	var ours, theirs []time.Duration
	for run := 0; run < 3; run++ {
		reset()
		p := &migrate.Plan{
			Source:      migrate.Endpoint{Kind: "imap", IMAP: migrate.IMAPEndpoint{Address: src.Addr, Security: "none", Admin: src.MasterUser, Credential: master}},
			Destination: migrate.Endpoint{Kind: "imap", IMAP: migrate.IMAPEndpoint{Address: dst.Addr, Security: "none", Admin: dst.MasterUser, Credential: master}},
			Accounts:    migrate.Selection{ListFile: list},
			Phases:      []migrate.Phase{migrate.PhaseMail},
			Concurrency: migrate.Concurrency{ConcurrentAccounts: 4},
			State:       filepath.Join(dir, fmt.Sprintf("state-%d.db", run)),
		}
		r := &migrate.Runner{Plan: p}
		t0 := time.Now()
		rep, err := r.Run(ctx)
		d := time.Since(t0)
		if err != nil {
			t.Fatalf("zxmigrate run %d: %v", run, err)
		}
		if rep.Totals.Messages != int64(total) {
			t.Errorf("zxmigrate run %d copied %d of %d messages", run, rep.Totals.Messages, total)
		}
		ours = append(ours, d)
		t.Logf("zxmigrate run %d: %s, %.0f msg/s", run, d.Round(time.Millisecond), float64(total)/d.Seconds())

		reset()
		d, err = runMbsync(ctx, dir, src, dst, names, run)
		if err != nil {
			t.Fatalf("mbsync run %d: %v", run, err)
		}
		theirs = append(theirs, d)
		t.Logf("mbsync    run %d: %s, %.0f msg/s", run, d.Round(time.Millisecond), float64(total)/d.Seconds())
	}
	mo, mt := median(ours), median(theirs)
	fmt.Printf("BENCH domain: 4 accounts, %d messages, %.1f MB\n", total, float64(bytes)/1e6)
	fmt.Printf("BENCH zxmigrate (mail phase, copy + verify): median %s, %.0f msg/s aggregate\n", mo.Round(time.Millisecond), float64(total)/mo.Seconds())
	fmt.Printf("BENCH 4 x mbsync (copy only):                median %s, %.0f msg/s aggregate\n", mt.Round(time.Millisecond), float64(total)/mt.Seconds())
	fmt.Printf("BENCH ratio zxmigrate/mbsync msg/s: %.2f\n", mt.Seconds()/mo.Seconds())
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// runMbsync runs one mbsync per account in parallel, one-way with CopyArrivalDate.
func runMbsync(ctx context.Context, dir string, src, dst *testserver.Dovecot, names []string, run int) (time.Duration, error) {
	bin, err := exec.LookPath("mbsync")
	if err != nil {
		return 0, err
	}
	var cmds []*exec.Cmd
	for _, u := range names {
		stateDir := filepath.Join(dir, fmt.Sprintf("mbsync-%d-%s", run, u)) + "/"
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			return 0, err
		}
		rc := testserver.MbsyncConfig(src.Addr, dst.Addr, u, src.Users[u], dst.Users[u], stateDir)
		rcPath := filepath.Join(dir, fmt.Sprintf("mbsyncrc-%d-%s", run, u))
		if err := os.WriteFile(rcPath, []byte(rc), 0o600); err != nil {
			return 0, err
		}
		cmds = append(cmds, exec.CommandContext(ctx, bin, "-c", rcPath, "-q", "AtoB"))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cmds))
	t0 := time.Now()
	for i, c := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := c.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("%v: %s", err, out)
			}
		}()
	}
	wg.Wait()
	d := time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return d, err
		}
	}
	return d, nil
}
