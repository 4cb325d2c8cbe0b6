package dav_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-webdav"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
)

// slowPuts holds every PUT for a round trip and records how many were in
// flight at once.
type slowPuts struct {
	next  webdav.HTTPClient
	delay time.Duration

	mu            sync.Mutex
	inFlight, max int
}

func (s *slowPuts) Do(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPut {
		return s.next.Do(req)
	}
	s.mu.Lock()
	s.inFlight++
	s.max = max(s.max, s.inFlight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	time.Sleep(s.delay)
	return s.next.Do(req)
}

// TestSmallCollectionWritesOverlap copies one calendar of 30 events, fewer
// than one default batch, with writes that each take 20 ms: the copy keeps
// Concurrency writes in flight, and every event arrives once.
func TestSmallCollectionWritesOverlap(t *testing.T) {
	from, srcEP, stop1 := server("work")
	defer stop1()
	to, dstEP, stop2 := server()
	defer stop2()
	const n = 30
	for i := range n {
		uid := fmt.Sprintf("s%03d@example.com", i)
		if err := from.Put("alice", memdav.CalendarHome("alice")+"work/", uid+".ics", fmt.Appendf(nil, event, uid, "Event")); err != nil {
			t.Fatal(err)
		}
	}
	slow := &slowPuts{next: dstEP.HTTPClient, delay: 20 * time.Millisecond}
	dstEP.HTTPClient = slow
	src, err := caldav.NewDAV(srcEP)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := caldav.NewDAV(dstEP)
	if err != nil {
		t.Fatal(err)
	}
	st, err := (&dav.Copier{Rules: caldav.Rules{}, Concurrency: 4}).Copy(context.Background(), dst, src)
	if err != nil {
		t.Fatal(err)
	}
	if tot := st.Totals(); tot.Created != n || !st.OK() {
		t.Fatalf("copy: %+v", tot)
	}
	if slow.max < 4 {
		t.Errorf("at most %d PUTs in flight, want 4 (Concurrency)", slow.max)
	}
	seen := map[string]bool{}
	objs := to.Snapshot("alice", memdav.CalendarHome("alice")+"work/")
	for _, o := range objs {
		if seen[o.UID] {
			t.Errorf("UID %s twice at the destination", o.UID)
		}
		seen[o.UID] = true
	}
	if len(objs) != n {
		t.Errorf("destination holds %d events, want %d", len(objs), n)
	}
}
