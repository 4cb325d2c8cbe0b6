package caldav_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtest"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
)

func TestConformanceMemory(t *testing.T) {
	src, _ := davtest.MemSide(t, "mem-src")
	dst, _ := davtest.MemSide(t, "mem-dst")
	davtest.RunCalendars(t, src, dst, davtest.Options{Events: 40, Malformed: true})
}

// TestMalformedAmongThousand: one malformed object among 1,000 is reported
// with its reason; the other 999 arrive.
func TestMalformedAmongThousand(t *testing.T) {
	src, srv := davtest.MemSide(t, "mem-src")
	dst, dsrv := davtest.MemSide(t, "mem-dst")
	objs := davtest.EventFixtures(0)
	for k := range objs {
		delete(objs, k)
	}
	for i := 0; i < 999; i++ {
		objs[fmt.Sprintf("e%04d.ics", i)] = davtest.GenEvent(i)
	}
	davtest.SeedCalendar(t, src, "big", "Big", []string{"VEVENT"}, objs)
	if err := srv.Put("user1", memdav.CalendarHome("user1")+"big/", "bad.ics", []byte(davtest.Malformed)); err != nil {
		t.Fatal(err)
	}
	s, _ := caldav.NewDAV(src.Endpoint())
	d, _ := caldav.NewDAV(dst.Endpoint())
	var failed []string
	st, err := (&dav.Copier{Rules: caldav.Rules{}, OnError: func(item string, err error) error {
		failed = append(failed, item)
		return nil
	}}).Copy(context.Background(), d, s)
	if err != nil {
		t.Fatal(err)
	}
	tot := st.Totals()
	if tot.Objects != 1000 || tot.Created != 999 || tot.Skipped != 1 || tot.Failed != 0 {
		t.Fatalf("totals %+v, want 1000 objects, 999 created, 1 skipped", tot)
	}
	errs := st.Collections[0].Errors
	if len(errs) != 1 || !strings.HasSuffix(errs[0].Item, "/bad.ics") || !strings.Contains(errs[0].Reason, "has no DTSTART") {
		t.Errorf("errors %+v, want bad.ics with its reason", errs)
	}
	if len(failed) != 1 || !strings.HasSuffix(failed[0], "/bad.ics") {
		t.Errorf("OnError got %v", failed)
	}
	if got := len(dsrv.Snapshot("user1", memdav.CalendarHome("user1")+"big/")); got != 999 {
		t.Errorf("destination holds %d objects, want 999", got)
	}
}
