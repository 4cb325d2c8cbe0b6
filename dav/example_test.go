package dav_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sort"
	"sync"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/secret"
)

const event = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//example//EN\r\n" +
	"BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260101T090000Z\r\nDTSTART:20260105T090000Z\r\n" +
	"DTEND:20260105T100000Z\r\nSUMMARY:%s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

// server starts an in-memory CalDAV server with user alice and returns it
// with the Endpoint of alice's calendar home.
func server(calendars ...string) (*memdav.Server, dav.Endpoint, func()) {
	s := memdav.New()
	s.AddUser("alice", "pw")
	for _, c := range calendars {
		s.AddCalendar("alice", c, c)
	}
	ts := httptest.NewTLSServer(s)
	e := dav.Endpoint{URL: ts.URL + memdav.CalendarHome("alice"), User: "alice", Password: secret.New("pw"), HTTPClient: ts.Client()}
	return s, e, ts.Close
}

// A Copier copies every calendar of the source to the calendar of the same
// name at the destination, creating it when missing. With a Checkpoint, a
// second run finds nothing to do; Verify compares both sides by meaning.
func ExampleCopier() {
	from, srcEP, stop1 := server("work")
	defer stop1()
	_, dstEP, stop2 := server()
	defer stop2()
	from.Put("alice", memdav.CalendarHome("alice")+"work/", "a.ics", fmt.Appendf(nil, event, "a@example.com", "Planning"))
	from.Put("alice", memdav.CalendarHome("alice")+"work/", "b.ics", fmt.Appendf(nil, event, "b@example.com", "Review"))

	src, _ := caldav.NewDAV(srcEP)
	dst, _ := caldav.NewDAV(dstEP)
	c := &dav.Copier{Rules: caldav.Rules{}, Checkpoint: dav.NewMemoryCheckpoint()}
	ctx := context.Background()
	for run := 1; run <= 2; run++ {
		stats, err := c.Copy(ctx, dst, src)
		if err != nil {
			fmt.Println(err)
			return
		}
		t := stats.Totals()
		fmt.Printf("run %d: %d objects, %d created, %d unchanged, ok %v\n", run, t.Objects, t.Created, t.Unchanged, stats.OK())
	}
	v, err := c.Verify(ctx, dst, src)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("verified:", v.OK(), v.Collections[0].Matched, "of", v.Collections[0].Items)
	// Output:
	// run 1: 2 objects, 2 created, 0 unchanged, ok true
	// run 2: 2 objects, 0 created, 2 unchanged, ok true
	// verified: true 2 of 2
}

// OnEvent receives progress while Copy runs. It may be called
// concurrently, so it guards what it shares.
func ExampleCopier_onEvent() {
	from, srcEP, stop1 := server("work")
	defer stop1()
	_, dstEP, stop2 := server("work")
	defer stop2()
	from.Put("alice", memdav.CalendarHome("alice")+"work/", "a.ics", fmt.Appendf(nil, event, "a@example.com", "Planning"))

	src, _ := caldav.NewDAV(srcEP)
	dst, _ := caldav.NewDAV(dstEP)
	var (
		mu     sync.Mutex
		events []string
	)
	c := &dav.Copier{Rules: caldav.Rules{}, OnEvent: func(ev dav.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case dav.CollectionStarted:
			events = append(events, fmt.Sprintf("started: %d objects", ev.Objects))
		case dav.ObjectDone:
			events = append(events, fmt.Sprintf("%s %s", ev.Action, ev.UID))
		case dav.CollectionDone:
			events = append(events, fmt.Sprintf("done: %d created", ev.Stats.Created))
		}
	}}
	if _, err := c.Copy(context.Background(), dst, src); err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range events {
		fmt.Println(e)
	}
	// Output:
	// started: 1 objects
	// created a@example.com
	// done: 1 created
}

// MemoryCheckpoint keeps records per collection pair; state.Store keeps
// the same records in SQLite.
func ExampleMemoryCheckpoint() {
	cp := dav.NewMemoryCheckpoint()
	ctx := context.Background()
	pair := "/alice/calendars/work/ => /alice/calendars/work/"
	cp.Save(ctx, pair, dav.Record{SrcHref: "/a.ics", SrcETag: "1", UID: "a@example.com", DstHref: "/x/a.ics", DstETag: "7"})
	cp.Save(ctx, pair, dav.Record{SrcHref: "/a.ics", SrcETag: "2", UID: "a@example.com", DstHref: "/x/a.ics", DstETag: "8"})
	recs, _ := cp.Records(ctx, pair)
	pairs, _ := cp.Collections(ctx)
	sort.Strings(pairs)
	fmt.Println(len(recs), recs[0].SrcETag, recs[0].DstETag)
	fmt.Println(pairs)
	// Output:
	// 1 2 8
	// [/alice/calendars/work/ => /alice/calendars/work/]
}
