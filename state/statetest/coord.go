package statetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/carbonio/files"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/state"
)

// This file holds the coordination tests: leases, fencing, global jobs,
// budgets, the snapshot and Keep.

func putAccounts(t *testing.T, s state.Store, n int) {
	c := ctx(t)
	for i := range n {
		must(t, s.PutAccount(c, fmt.Sprintf("u%03d@x", i), fmt.Sprintf("u%03d@y", i), int64(1000+i*7%n)))
	}
}

func testClaimOrder(t *testing.T, s state.Store) {
	c := ctx(t)
	sizes := map[string]int64{"small@x": 10, "huge@x": 5000, "mid@x": 300, "big@x": 2000, "tiny@x": 1}
	for src, size := range sizes {
		must(t, s.PutAccount(c, src, src+".dst", size))
	}
	var order []string
	for range sizes {
		l, ok, err := s.ClaimAccount(c, "r1", long)
		must(t, err)
		if !ok {
			t.Fatalf("claim ended after %v", order)
		}
		if l.Kind != state.LeaseAccount || l.Runner != "r1" || l.Token == 0 || l.Size != sizes[l.Key] || l.Destination != l.Key+".dst" || l.PrevRunner != "" {
			t.Fatalf("lease = %+v", l)
		}
		if d := time.Until(l.Expires); d < long/2 || d > 2*long {
			t.Errorf("lease expires in %v, want about %v", d, long)
		}
		order = append(order, l.Key)
	}
	if want := "[huge@x big@x mid@x small@x tiny@x]"; fmt.Sprint(order) != want {
		t.Fatalf("claim order %v, want %s", order, want)
	}
	if l, ok, err := s.ClaimAccount(c, "r2", long); err != nil || ok {
		t.Fatalf("claim with every account leased = %+v, %v, %v", l, ok, err)
	}
	rows, err := s.Accounts(c)
	must(t, err)
	for _, a := range rows {
		if a.Runner != "r1" || a.LeaseExpires.IsZero() || a.Claims != 1 {
			t.Errorf("status of %s: runner %q expires %v claims %d", a.Source, a.Runner, a.LeaseExpires, a.Claims)
		}
	}
}

func testClaimsConcurrent(t *testing.T, s state.Store) {
	const n, workers = 120, 8
	putAccounts(t, s, n)
	c := ctx(t)
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runner := fmt.Sprintf("r%d", w)
			for {
				l, ok, err := s.ClaimAccount(c, runner, long)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					return
				}
				mu.Lock()
				prev, dup := seen[l.Key]
				seen[l.Key] = runner
				mu.Unlock()
				if dup {
					t.Errorf("%s claimed by %s and %s", l.Key, prev, runner)
					return
				}
				if err := s.Release(c, l, true); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d accounts claimed, want %d", len(seen), n)
	}
}

func testTakeover(t *testing.T, s state.Store) {
	c := ctx(t)
	must(t, s.PutAccount(c, "a@x", "a@y", 100))
	l1, ok, err := s.ClaimAccount(c, "r1", short)
	must(t, err)
	if !ok {
		t.Fatal("no claim")
	}
	if _, ok, _ := s.ClaimAccount(c, "r2", long); ok {
		t.Fatal("a live lease was claimed again")
	}
	time.Sleep(expire)
	l2, ok, err := s.ClaimAccount(c, "r2", long)
	must(t, err)
	if !ok || l2.Key != "a@x" || l2.PrevRunner != "r1" || l2.Token == l1.Token {
		t.Fatalf("takeover = %+v, %v", l2, ok)
	}
	if _, err := s.Renew(c, l1, long); !errors.Is(err, state.ErrLeaseLost) {
		t.Fatalf("renew of the lost lease: %v, want ErrLeaseLost", err)
	}
	if err := s.Release(c, l1, true); !errors.Is(err, state.ErrLeaseLost) {
		t.Fatalf("release of the lost lease: %v, want ErrLeaseLost", err)
	}
	l2, err = s.Renew(c, l2, long)
	must(t, err)
	if n, err := s.Heartbeat(c, "r2", long); err != nil || n != 1 {
		t.Fatalf("heartbeat extended %d, %v; want 1", n, err)
	}
	a, _, _ := s.Account(c, "a@x")
	if a.Runner != "r2" || a.Claims != 2 {
		t.Fatalf("account after takeover: runner %q claims %d", a.Runner, a.Claims)
	}
	must(t, s.Release(c, l2, true))
}

func testFencing(t *testing.T, s state.Store) {
	c := ctx(t)
	must(t, s.PutAccount(c, "a@x", "a@y", 100))
	old, _, err := s.ClaimAccount(c, "r1", short)
	must(t, err)
	stale := s.Fenced(old)
	must(t, stale.SetPhase(c, "a@x", "mail", "running", "")) // live: accepted
	time.Sleep(expire)
	cur, ok, err := s.ClaimAccount(c, "r2", long)
	must(t, err)
	if !ok {
		t.Fatal("no takeover")
	}
	fresh := s.Fenced(cur)
	writes := map[string]func(cp state.Checkpoints) error{
		"SetPhase": func(cp state.Checkpoints) error {
			tag := "live"
			if cp == stale {
				tag = "late"
			}
			return cp.SetPhase(c, "a@x", "mail", "done", tag)
		},
		"SetAccountStatus": func(cp state.Checkpoints) error { return cp.SetAccountStatus(c, "a@x", "mail", "done", "") },
		"SetProgress":      func(cp state.Checkpoints) error { return cp.SetProgress(c, "a@x", 5, 50) },
		"Mail.SaveFolder": func(cp state.Checkpoints) error {
			return cp.Mail("a@x -> a@y").SaveFolder(c, imapcopy.FolderState{Source: "INBOX", Destination: "INBOX"})
		},
		"Mail.Done": func(cp state.Checkpoints) error {
			return cp.Mail("a@x -> a@y").Done(c, "INBOX", []imapcopy.Mapping{{Src: 1, Dst: 1}})
		},
		"Mail.MarkInFlight": func(cp state.Checkpoints) error {
			return cp.Mail("a@x -> a@y").MarkInFlight(c, "INBOX", []imap.UID{2})
		},
		"Calendars.Save": func(cp state.Checkpoints) error {
			return cp.Calendars("a@x").Save(c, "home", dav.Record{SrcHref: "/1", UID: "1"})
		},
		"Contacts.SaveBatch": func(cp state.Checkpoints) error {
			return cp.Contacts("a@x").(dav.BatchCheckpoint).SaveBatch(c, "ab", []dav.Record{{SrcHref: "/1", UID: "1"}, {SrcHref: "/2", UID: "2"}})
		},
		"Files.SetNode": func(cp state.Checkpoints) error {
			return cp.Files().SetNode(c, "a@x", "d", files.Mapping{NodeID: "n"})
		},
	}
	for name, w := range writes {
		if err := w(stale); !errors.Is(err, state.ErrLeaseLost) {
			t.Errorf("%s with the stale token: %v, want ErrLeaseLost", name, err)
		}
		if err := w(fresh); err != nil {
			t.Errorf("%s with the live token: %v", name, err)
		}
	}
	if p, _, _ := s.Phase(c, "a@x", "mail"); p.Detail != "live" {
		t.Errorf("phase detail %q, want the live runner's", p.Detail)
	}
	done, _, err := s.Mail("a@x -> a@y").Mappings(c, "INBOX")
	must(t, err)
	if len(done) != 1 {
		t.Errorf("mappings = %v, want the live runner's one", done)
	}
	// A released lease fences like a lost one.
	must(t, s.Release(c, cur, true))
	if err := fresh.SetProgress(c, "a@x", 9, 9); !errors.Is(err, state.ErrLeaseLost) {
		t.Errorf("write after release: %v, want ErrLeaseLost", err)
	}
}

func testReleaseReopen(t *testing.T, s state.Store) {
	c := ctx(t)
	putAccounts(t, s, 3)
	var ls []state.Lease
	for range 3 {
		l, _, err := s.ClaimAccount(c, "r1", long)
		must(t, err)
		ls = append(ls, l)
	}
	must(t, s.SetAccountStatus(c, ls[0].Key, "mail", "failed", "x"))
	must(t, s.Release(c, ls[0], true))
	must(t, s.Release(c, ls[1], true))
	must(t, s.Release(c, ls[2], false)) // open again
	l, ok, err := s.ClaimAccount(c, "r2", long)
	must(t, err)
	if !ok || l.Key != ls[2].Key || l.PrevRunner != "" {
		t.Fatalf("claim after releases = %+v %v, want %s without takeover", l, ok, ls[2].Key)
	}
	if _, ok, _ := s.ClaimAccount(c, "r2", long); ok {
		t.Fatal("a finished account was claimed")
	}
	n, err := s.ReopenAccounts(c, "failed")
	must(t, err)
	if n != 1 {
		t.Fatalf("reopened %d, want 1", n)
	}
	l, ok, err = s.ClaimAccount(c, "r2", long)
	must(t, err)
	if !ok || l.Key != ls[0].Key {
		t.Fatalf("claim after reopen = %+v %v", l, ok)
	}
	rows, _ := s.Accounts(c)
	finished := 0
	for _, a := range rows {
		if a.Finished {
			finished++
		}
	}
	if finished != 1 {
		t.Errorf("%d accounts finished, want 1", finished)
	}
}

func testGlobalOnce(t *testing.T, s state.Store) {
	c := ctx(t)
	const callers = 12
	var claimed atomic.Int32
	var runs atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			runner := fmt.Sprintf("r%d", i)
			for {
				l, st, err := s.ClaimGlobal(c, "mta_stop", runner, long)
				if err != nil {
					t.Error(err)
					return
				}
				switch st {
				case state.GlobalClaimed:
					claimed.Add(1)
					runs.Add(1)
					time.Sleep(50 * time.Millisecond) // the job
					if err := s.Fenced(l).SetPhase(c, state.GlobalAccount, "mta_stop", "done", ""); err != nil {
						t.Error(err)
					}
					if err := s.FinishGlobal(c, l, true, "stopped"); err != nil {
						t.Error(err)
					}
					return
				case state.GlobalRunning:
					time.Sleep(10 * time.Millisecond)
				case state.GlobalDone:
					return
				default:
					t.Errorf("status %q", st)
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if claimed.Load() != 1 || runs.Load() != 1 {
		t.Fatalf("job claimed %d times, want 1", claimed.Load())
	}
	_, st, err := s.ClaimGlobal(c, "mta_stop", "late", long)
	must(t, err)
	if st != state.GlobalDone {
		t.Fatalf("after finish: %q", st)
	}
	l, st, err := s.ClaimGlobal(c, "dedup", "r1", long)
	must(t, err)
	must(t, s.FinishGlobal(c, l, false, "boom"))
	if _, st, _ = s.ClaimGlobal(c, "dedup", "r2", long); st != state.GlobalFailed {
		t.Fatalf("failed job answers %q", st)
	}
	gs, err := s.Globals(c)
	must(t, err)
	if len(gs) != 2 || gs[0].Name != "dedup" || gs[0].Status != state.GlobalFailed || gs[0].Detail != "boom" ||
		gs[1].Status != state.GlobalDone || gs[1].Claims != 1 {
		t.Fatalf("globals = %+v", gs)
	}
	must(t, s.ReopenGlobal(c, "dedup"))
	if _, st, _ = s.ClaimGlobal(c, "dedup", "r2", long); st != state.GlobalClaimed {
		t.Fatalf("reopened job answers %q", st)
	}
}

func testGlobalDeadHolder(t *testing.T, s state.Store) {
	c := ctx(t)
	dead, st, err := s.ClaimGlobal(c, "provisioning", "r1", short)
	must(t, err)
	if st != state.GlobalClaimed {
		t.Fatalf("first claim: %q", st)
	}
	if _, st, _ := s.ClaimGlobal(c, "provisioning", "r2", long); st != state.GlobalRunning {
		t.Fatalf("while held: %q", st)
	}
	time.Sleep(expire)
	l, st, err := s.ClaimGlobal(c, "provisioning", "r2", long)
	must(t, err)
	if st != state.GlobalClaimed || l.PrevRunner != "r1" {
		t.Fatalf("after the holder died: %q %+v", st, l)
	}
	if err := s.FinishGlobal(c, dead, true, ""); !errors.Is(err, state.ErrLeaseLost) {
		t.Fatalf("finish by the dead holder: %v, want ErrLeaseLost", err)
	}
	if err := s.Fenced(dead).SetPhase(c, state.GlobalAccount, "provisioning", "done", ""); !errors.Is(err, state.ErrLeaseLost) {
		t.Fatalf("fenced write by the dead holder: %v", err)
	}
	must(t, s.FinishGlobal(c, l, true, ""))
}

func testSlotsConcurrent(t *testing.T, s state.Store) {
	c := ctx(t)
	const limit, workers, rounds = 3, 10, 8
	must(t, s.SetLimit(c, "imap-src:host:993", limit))
	var held, maxHeld atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runner := fmt.Sprintf("r%d", w%3)
			for range rounds {
				sl, err := state.WaitSlot(c, s, "imap-src:host:993", runner, long, 5*time.Millisecond)
				if err != nil {
					t.Error(err)
					return
				}
				n := held.Add(1)
				for {
					m := maxHeld.Load()
					if n <= m || maxHeld.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(10 * time.Millisecond)
				held.Add(-1)
				if err := s.ReleaseSlot(c, sl); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if m := maxHeld.Load(); m > limit || m < 1 {
		t.Fatalf("at most %d slots held at once, want 1..%d", m, limit)
	}
	t.Logf("slots held at once: at most %d (limit %d)", maxHeld.Load(), limit)
	ls, err := s.Limits(c)
	must(t, err)
	if len(ls) != 1 || ls[0].Max != limit || ls[0].InUse != 0 {
		t.Fatalf("limits = %+v", ls)
	}
}

func testLiveLimit(t *testing.T, s state.Store) {
	c := ctx(t)
	key := "http:dst.example:443"
	acquire := func(runner string) (state.Slot, bool) {
		t.Helper()
		sl, ok, err := s.AcquireSlot(c, key, runner, long)
		must(t, err)
		return sl, ok
	}
	// Without a budget every request gets a slot.
	free, ok := acquire("r0")
	if !ok {
		t.Fatal("unbudgeted slot refused")
	}
	must(t, s.ReleaseSlot(c, free))
	must(t, s.SetLimit(c, key, 4))
	var held []state.Slot
	for i := range 4 {
		sl, ok := acquire(fmt.Sprintf("r%d", i%2))
		if !ok {
			t.Fatalf("slot %d of 4 refused", i+1)
		}
		held = append(held, sl)
	}
	if _, ok := acquire("r2"); ok {
		t.Fatal("a fifth slot was granted under a budget of 4")
	}
	ls, _ := s.Limits(c)
	if len(ls) != 1 || ls[0].InUse != 4 || ls[0].ByRunner["r0"] != 2 || ls[0].ByRunner["r1"] != 2 {
		t.Fatalf("limits = %+v", ls)
	}
	must(t, s.SetLimit(c, key, 2)) // lowered while held
	must(t, s.ReleaseSlot(c, held[0]))
	if _, ok := acquire("r2"); ok {
		t.Fatal("slot granted with 3 held under a lowered budget of 2")
	}
	must(t, s.ReleaseSlot(c, held[1]))
	must(t, s.ReleaseSlot(c, held[2]))
	if _, ok := acquire("r2"); !ok {
		t.Fatal("slot refused with 1 held under a budget of 2")
	}
	must(t, s.SetLimit(c, key, 0)) // budget removed
	for range 5 {
		if _, ok := acquire("r3"); !ok {
			t.Fatal("slot refused after the budget was removed")
		}
	}
}

func testSlotExpiry(t *testing.T, s state.Store) {
	c := ctx(t)
	must(t, s.SetLimit(c, "k", 1))
	if _, ok, err := s.AcquireSlot(c, "k", "dead", short); err != nil || !ok {
		t.Fatalf("first slot: %v %v", ok, err)
	}
	if _, ok, _ := s.AcquireSlot(c, "k", "r2", long); ok {
		t.Fatal("second slot under a budget of 1")
	}
	time.Sleep(expire)
	live, ok, err := s.AcquireSlot(c, "k", "r2", short)
	must(t, err)
	if !ok {
		t.Fatal("the dead runner's slot did not run out")
	}
	// A heartbeat keeps a live runner's slot past its first ttl.
	if n, err := s.Heartbeat(c, "r2", long); err != nil || n != 1 {
		t.Fatalf("heartbeat extended %d, %v; want 1", n, err)
	}
	time.Sleep(expire)
	if _, ok, _ := s.AcquireSlot(c, "k", "r3", long); ok {
		t.Fatal("a heartbeated slot ran out")
	}
	must(t, s.ReleaseSlot(c, live))
	if _, ok, _ := s.AcquireSlot(c, "k", "r3", long); !ok {
		t.Fatal("slot refused after release")
	}
	ls, _ := s.Limits(c)
	sort.Slice(ls, func(i, j int) bool { return ls[i].Key < ls[j].Key })
	if len(ls) != 1 || ls[0].InUse != 1 || ls[0].ByRunner["r3"] != 1 {
		t.Fatalf("limits = %+v", ls)
	}
}

func testSnapshot(t *testing.T, s state.Store) {
	c := ctx(t)
	putAccounts(t, s, 3)
	l, _, err := s.ClaimAccount(c, "r1", long)
	must(t, err)
	must(t, s.Fenced(l).SetAccountStatus(c, l.Key, "mail", "running", ""))
	must(t, s.Fenced(l).SetProgress(c, l.Key, 250, 1<<20))
	_, _, err = s.ClaimGlobal(c, "smartscan", "r2", long)
	must(t, err)
	must(t, s.SetLimit(c, "imap-src", 4))
	_, _, err = s.AcquireSlot(c, "imap-src", "r1", long)
	must(t, err)
	snap, err := state.TakeSnapshot(c, s)
	must(t, err)
	if d := time.Since(snap.Now); d < -time.Minute || d > time.Minute {
		t.Errorf("store clock %v is off by %v", snap.Now, d)
	}
	if snap.Running != 1 || snap.ByStatus["running"] != 1 || snap.ByStatus["pending"] != 2 {
		t.Fatalf("snapshot counts: running %d, by status %v", snap.Running, snap.ByStatus)
	}
	for _, a := range snap.Accounts {
		if a.Source != l.Key {
			continue
		}
		if a.Runner != "r1" || !a.LeaseExpires.After(snap.Now) || a.Phase != "mail" || a.Messages != 250 || a.Bytes != 1<<20 {
			t.Fatalf("running account in the snapshot: %+v", a)
		}
	}
	if len(snap.Globals) != 1 || snap.Globals[0].Status != state.GlobalRunning || snap.Globals[0].Runner != "r2" {
		t.Fatalf("globals = %+v", snap.Globals)
	}
	if len(snap.Limits) != 1 || snap.Limits[0].Max != 4 || snap.Limits[0].InUse != 1 {
		t.Fatalf("limits = %+v", snap.Limits)
	}
}

func testKeep(t *testing.T, s state.Store) {
	c := ctx(t)
	must(t, s.PutAccount(c, "a@x", "a@y", 1))
	l, _, err := s.ClaimAccount(c, "r1", short)
	must(t, err)
	work, stop := state.Keep(c, s, l, short)
	defer stop()
	time.Sleep(2 * expire) // past two lease times: only renewals keep it
	if work.Err() != nil {
		t.Fatalf("kept lease reported lost: %v", context.Cause(work))
	}
	if _, ok, _ := s.ClaimAccount(c, "r2", long); ok {
		t.Fatal("a kept lease was taken over")
	}
	must(t, s.Fenced(l).SetProgress(c, "a@x", 1, 1))
	// Lost from outside (here: released): the work context ends.
	must(t, s.Release(c, l, false))
	select {
	case <-work.Done():
	case <-time.After(10 * short):
		t.Fatal("the loss of a kept lease was not reported")
	}
	if !errors.Is(context.Cause(work), state.ErrLeaseLost) {
		t.Fatalf("cause %v, want ErrLeaseLost", context.Cause(work))
	}
}
