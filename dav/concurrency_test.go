package dav_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
)

// seeded returns a source with n events in calendar "work" and an empty
// destination.
func seeded(t *testing.T, n int) (src, dst *dav.Remote, to *memdav.Server) {
	t.Helper()
	from, srcEP, stop1 := server("work")
	t.Cleanup(stop1)
	to, dstEP, stop2 := server()
	t.Cleanup(stop2)
	for i := range n {
		uid := fmt.Sprintf("e%03d@example.com", i)
		if err := from.Put("alice", memdav.CalendarHome("alice")+"work/", uid+".ics", fmt.Appendf(nil, event, uid, "Event")); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if src, err = caldav.NewDAV(srcEP); err != nil {
		t.Fatal(err)
	}
	if dst, err = caldav.NewDAV(dstEP); err != nil {
		t.Fatal(err)
	}
	return src, dst, to
}

// TestCopierConcurrentCalls runs Copy and then Verify on several server
// pairs at once with one Copier, as its documentation allows; under -race
// this also checks that the calls share no unguarded state.
func TestCopierConcurrentCalls(t *testing.T) {
	const pairs, objects = 4, 12
	type pair struct{ src, dst *dav.Remote }
	ps := make([]pair, pairs)
	for i := range ps {
		ps[i].src, ps[i].dst, _ = seeded(t, objects+i)
	}
	var mu sync.Mutex
	done := 0
	c := &dav.Copier{Rules: caldav.Rules{}, Concurrency: 3, BatchSize: 5, OnEvent: func(ev dav.Event) {
		if _, ok := ev.(dav.ObjectDone); ok {
			mu.Lock()
			done++
			mu.Unlock()
		}
	}}
	ctx := context.Background()
	var wg sync.WaitGroup
	stats := make([]*dav.Stats, pairs)
	checks := make([]*dav.Verification, pairs)
	errs := make([]error, pairs)
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if stats[i], errs[i] = c.Copy(ctx, p.dst, p.src); errs[i] != nil {
				return
			}
			checks[i], errs[i] = c.Verify(ctx, p.dst, p.src)
		}()
	}
	wg.Wait()
	want := 0
	for i := range ps {
		if errs[i] != nil {
			t.Fatalf("pair %d: %v", i, errs[i])
		}
		if got := stats[i].Totals().Created; got != objects+i {
			t.Errorf("pair %d: created %d, want %d", i, got, objects+i)
		}
		if !checks[i].OK() || checks[i].Collections[0].Matched != objects+i {
			t.Errorf("pair %d: verification %+v", i, checks[i].Collections)
		}
		want += objects + i
	}
	if done != want {
		t.Errorf("%d ObjectDone events, want %d", done, want)
	}
}

// TestCopierCancel cancels a copy from its first event: Copy returns an
// error that matches context.Canceled, with the stats so far, and a new
// Copy with the same checkpoint completes the rest: what was written stays
// and is not written twice.
func TestCopierCancel(t *testing.T) {
	src, dst, to := seeded(t, 40)
	cp := dav.NewMemoryCheckpoint()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &dav.Copier{Rules: caldav.Rules{}, Concurrency: 1, BatchSize: 5, Checkpoint: cp, OnEvent: func(ev dav.Event) {
		if _, ok := ev.(dav.ObjectDone); ok {
			cancel()
		}
	}}
	st, err := c.Copy(ctx, dst, src)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Copy: error %v, want context.Canceled", err)
	}
	if st == nil {
		t.Fatal("cancelled Copy returned no stats")
	}
	first := st.Totals().Created
	if first == 0 || first >= 40 {
		t.Fatalf("cancelled Copy created %d of 40", first)
	}
	st, err = (&dav.Copier{Rules: caldav.Rules{}, Checkpoint: cp}).Copy(context.Background(), dst, src)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created+tot.Unchanged != 40 || tot.Created > 40-first || tot.Failed != 0 {
		t.Errorf("second Copy: %+v after %d created", tot, first)
	}
	if n := len(to.Snapshot("alice", memdav.CalendarHome("alice")+"work/")); n != 40 {
		t.Errorf("destination holds %d objects, want 40", n)
	}
}
