package migrate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/secret"
)

// TestRunnerSourceBudgetStateFile: one runner on a state file keeps the
// plan's source IMAP budget inside the process: 8 accounts, 4 at once with
// 2 folders each, a budget of 2; the source (behind a proxy that counts
// its connections) never sees more than 2, and every message arrives once.
func TestRunnerSourceBudgetStateFile(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	ctx := context.Background()
	users := map[string]string{}
	var list strings.Builder
	for i := 1; i <= 8; i++ {
		u := fmt.Sprintf("b%d@example.com", i)
		users[u] = "pw"
		fmt.Fprintln(&list, u)
	}
	src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "bud-src", Users: users})
	dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "bud-dst", Users: users})
	want := map[string]corpus.Mailbox{}
	for u := range users {
		a := corpus.Generate(u, corpus.Options{Seed: 3, Messages: 1, Events: -1, Contacts: -1})
		want[u] = a.Mail
		if err := src.Seed(ctx, u, a.Mail); err != nil {
			t.Fatal(err)
		}
	}
	px, err := faultproxy.Listen(src.Addr, faultproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	dir := t.TempDir()
	listFile := filepath.Join(dir, "accounts.txt")
	if err := os.WriteFile(listFile, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	master := migrate.Credential{Password: secret.New(src.MasterPassword)}
	p := &migrate.Plan{
		Name:        "budget",
		Source:      migrate.Endpoint{Kind: "imap", IMAP: migrate.IMAPEndpoint{Address: px.Addr(), Security: "none", Admin: src.MasterUser, Credential: master}},
		Destination: migrate.Endpoint{IMAP: migrate.IMAPEndpoint{Address: dst.Addr, Security: "none", Admin: dst.MasterUser, Credential: master}},
		Domains:     []string{"example.com"},
		Accounts:    migrate.Selection{ListFile: listFile},
		Phases:      []migrate.Phase{migrate.PhaseMail},
		Concurrency: migrate.Concurrency{ConcurrentAccounts: 4, FoldersPerAccount: 2},
		Limits:      migrate.Limits{SourceIMAP: 2},
		State:       filepath.Join(dir, "state.db"),
		Report:      filepath.Join(dir, "report"),
	}
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			if n := int64(px.Active()); n > peak.Load() {
				peak.Store(n)
			}
		}
	}()
	rep, err := (&migrate.Runner{Plan: p}).Run(ctx)
	close(stop)
	wg.Wait()
	if err != nil || !rep.OK() {
		t.Fatalf("run: %v, outcome %v", err, rep.Outcome)
	}
	t.Logf("at most %d source connections with a budget of 2 (%d accepted)", peak.Load(), px.Stats().Accepted)
	if peak.Load() > 2 || peak.Load() == 0 {
		t.Errorf("the source saw %d connections at once, budget 2", peak.Load())
	}
	opts := &corpus.DiffOptions{MissingNoSelectOK: true, ExtraFoldersOK: true,
		IgnoreFlags: []string{corpus.ZimbraTagKeyword, strings.Split(corpus.ZimbraTagKeyword, ":")[0]}}
	for u, mb := range want {
		got, err := dst.Snapshot(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if diffs := corpus.DiffMail(mb, got, opts); len(diffs) > 0 {
			t.Errorf("%s differs:\n%s", u, strings.Join(diffs, "\n"))
		}
	}
}
