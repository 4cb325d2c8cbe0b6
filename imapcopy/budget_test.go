package imapcopy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
)

// TestSharedBudgetNoDeadlock: many accounts copy at once under one small
// connection budget, as a plan's accounts do. Pools keep the slots of
// their idle connections, so a folder waiting for a slot must take an idle
// connection of its own pool when one comes back, and reclaim one that
// another account (or the append pool) keeps idle; otherwise every account
// ends up with one folder waiting while its own idle connections hold the
// last slots, and the run hangs.
func TestSharedBudgetNoDeadlock(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		src := startMem(t, memimap.Options{})
		dst := startMem(t, memimap.Options{})
		sharedBudgetCopy(t, func(u string, mb corpus.Mailbox) (dstA, srcA *Account) {
			src.AddUser(u, "p")
			dst.AddUser(u, "p")
			if err := src.Seed(u, mb); err != nil {
				t.Fatal(err)
			}
			return memAccount(dst, u, "", "p"), memAccount(src, u, "", "p")
		})
	})
	t.Run("dovecot", func(t *testing.T) {
		users := map[string]string{}
		for a := 0; a < sharedAccounts; a++ {
			users[fmt.Sprintf("user%d@example.com", a)] = "p"
		}
		src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "budget-src", Users: users})
		dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "budget-dst", Users: users})
		sharedBudgetCopy(t, func(u string, mb corpus.Mailbox) (dstA, srcA *Account) {
			u += "@example.com"
			if err := src.Seed(context.Background(), u, mb); err != nil {
				t.Fatal(err)
			}
			acct := func(d *testserver.Dovecot) *Account {
				return &Account{Addr: d.Addr, Security: Plaintext, User: u, Password: secret.New("p")}
			}
			return acct(dst), acct(src)
		})
	})
}

const sharedAccounts = 6

// sharedBudgetCopy copies sharedAccounts mailboxes of 8 folders at once
// under a budget of 4 connections per server; account seeds the source
// mailbox of user u and returns its two Accounts.
func sharedBudgetCopy(t *testing.T, account func(u string, mb corpus.Mailbox) (dst, src *Account)) {
	const accounts, folders, perFolder = sharedAccounts, 8, 4
	mb := corpus.Mailbox{Folders: []corpus.Folder{{Name: "INBOX", Subscribed: true}}}
	for f := 0; f < folders; f++ {
		name := fmt.Sprintf("F%d", f)
		if f > 0 {
			mb.Folders = append(mb.Folders, corpus.Folder{Name: name, Subscribed: true})
		} else {
			name = "INBOX"
		}
		for m := 0; m < perFolder; m++ {
			id := fmt.Sprintf("%s-%d", name, m)
			mb.Messages = append(mb.Messages, corpus.Message{Folder: name,
				Raw:          []byte("From: a@example.com\r\nMessage-ID: <" + id + "@x>\r\nSubject: " + id + "\r\n\r\nbody " + id + "\r\n"),
				InternalDate: time.Date(2024, 1, 2, 3, 4, m, 0, time.UTC)})
		}
	}
	dsts, srcs := make([]*Account, accounts), make([]*Account, accounts)
	for a := 0; a < accounts; a++ {
		dsts[a], srcs[a] = account(fmt.Sprintf("user%d", a), mb)
	}
	budget := NewConnBudget(4)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	stats := make([]*Stats, accounts)
	for a := 0; a < accounts; a++ {
		g.Go(func() error {
			c := &Copier{Budget: budget, Concurrency: 4}
			st, err := c.Copy(gctx, dsts[a], srcs[a])
			stats[a] = st
			if err != nil {
				return fmt.Errorf("%s: %w", srcs[a].User, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("copy under a shared budget of 4 connections: %v (a hang ends at the 60 s deadline)", err)
	}
	for a, st := range stats {
		tot := st.Totals()
		if tot.Copied != folders*perFolder || tot.DestCount != folders*perFolder {
			t.Errorf("user%d: copied %d, destination %d, want %d", a, tot.Copied, tot.DestCount, folders*perFolder)
		}
		for _, f := range st.Folders {
			if f.Verify == nil || !f.Verify.OK() {
				t.Errorf("user%d %s: proof %+v", a, f.Source, f.Verify)
			}
		}
	}
	for _, key := range []string{srcs[0].Addr, dsts[0].Addr} {
		if n := len(budget.sem(key)); n != 0 {
			t.Errorf("%s: %d budget slots still held after every copy ended", key, n)
		}
	}
}

// TestWaitSlotIdleAndReclaim: a folder waiting for a connection slot takes
// the connection its own pool gets back, and reclaims the idle connection
// another pool keeps, sooner when its own pool has none out.
func TestWaitSlotIdleAndReclaim(t *testing.T) {
	srv := startMem(t, memimap.Options{})
	srv.AddUser("a", "p")
	srv.AddUser("b", "p")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("own connection back", func(t *testing.T) {
		budget := NewConnBudget(1)
		pa := newPool(memAccount(srv, "a", "", "p"), budget)
		defer pa.closeAll()
		c1, err := pa.get(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(300*time.Millisecond, func() { pa.put(c1, true) })
		c2, err := pa.get(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if c2 != c1 {
			t.Error("the waiting get dialled anew instead of taking the connection put back")
		}
		pa.put(c2, true)
	})

	// twoPools returns the pools of accounts a and b under one budget of
	// n, with one connection of first put back idle.
	twoPools := func(t *testing.T, n int, first string) (pa, pb *pool) {
		budget := NewConnBudget(n)
		pa = newPool(memAccount(srv, "a", "", "p"), budget)
		pb = newPool(memAccount(srv, "b", "", "p"), budget)
		t.Cleanup(pa.closeAll)
		t.Cleanup(pb.closeAll)
		p := map[string]*pool{"a": pa, "b": pb}[first]
		c, err := p.get(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		p.put(c, true)
		return pa, pb
	}

	t.Run("another pool's idle connection", func(t *testing.T) {
		pa, pb := twoPools(t, 1, "a") // a's idle connection holds the only slot
		t0 := time.Now()
		cb, err := pb.get(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d >= reclaimAfter {
			t.Errorf("a pool with nothing out waited %v for another pool's idle connection, want under %v", d, reclaimAfter)
		}
		if c := pa.idleConn(); c != nil {
			t.Error("the other pool's idle connection was not closed")
			c.discard()
		}
		pb.put(cb, true)
	})

	t.Run("own connections out first", func(t *testing.T) {
		pa, pb := twoPools(t, 2, "b") // b: one idle
		ca, err := pa.get(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(reclaimAfter/2, func() { pa.put(ca, true) })
		ca2, err := pa.get(ctx, 0) // a has one out: it waits for it
		if err != nil {
			t.Fatal(err)
		}
		if ca2 != ca {
			t.Error("a took a new connection instead of its own one coming back")
		}
		if c := pb.idleConn(); c == nil {
			t.Error("b's idle connection was reclaimed although a's own one was due back")
		} else {
			c.discard()
		}
		pa.put(ca2, true)
	})
}

// TestConcurrencySharedAmongAccounts: a zero Concurrency is the folders in
// flight per server, divided among the Copy calls under way against the
// same servers; a set one is kept (within the budget's share).
func TestConcurrencySharedAmongAccounts(t *testing.T) {
	src := startMem(t, memimap.Options{})
	dst := startMem(t, memimap.Options{})
	src.AddUser("u", "p")
	dst.AddUser("u", "p")
	if err := src.Seed("u", corpus.Mailbox{Folders: []corpus.Folder{{Name: "INBOX", Subscribed: true}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		others, conc, want int
	}{
		{0, 0, DefaultConcurrency},
		{1, 0, max(1, DefaultConcurrency/2)},
		{3, 0, 1},
		{3, 2, 2},
	} {
		budget := NewConnBudget(32)
		leave := budget.join(src.Addr(), dst.Addr()) // others copying at once
		for i := 1; i < tc.others; i++ {
			defer budget.join(src.Addr(), dst.Addr())()
		}
		if tc.others == 0 {
			leave()
			leave = func() {}
		}
		st, err := (&Copier{Budget: budget, Concurrency: tc.conc}).Copy(context.Background(), memAccount(dst, "u", "", "p"), memAccount(src, "u", "", "p"))
		leave()
		if err != nil {
			t.Fatal(err)
		}
		if st.FolderConcurrency != tc.want {
			t.Errorf("%d other accounts, Concurrency %d: %d folders in parallel, want %d", tc.others, tc.conc, st.FolderConcurrency, tc.want)
		}
	}
}

// TestConcurrencySameServer: a Copy between two mailboxes of one server is
// one Copy against it, not two: it keeps the default folders in parallel.
func TestConcurrencySameServer(t *testing.T) {
	srv := startMem(t, memimap.Options{})
	srv.AddUser("a", "p")
	srv.AddUser("b", "p")
	if err := srv.Seed("a", corpus.Mailbox{Folders: []corpus.Folder{{Name: "INBOX", Subscribed: true}}}); err != nil {
		t.Fatal(err)
	}
	st, err := (&Copier{Budget: NewConnBudget(32)}).Copy(context.Background(), memAccount(srv, "b", "", "p"), memAccount(srv, "a", "", "p"))
	if err != nil {
		t.Fatal(err)
	}
	if st.FolderConcurrency != DefaultConcurrency {
		t.Errorf("%d folders in parallel, want %d", st.FolderConcurrency, DefaultConcurrency)
	}
}
