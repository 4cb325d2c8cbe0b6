package imapcopy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
)

// TestBusyGreetingWaits: a destination at its connection cap answers new
// connections with "* BYE ... service busy" (Zimbra). With one folder pass
// attempt only, every folder must still be copied: the pool waits and dials
// again instead of spending the folder's attempt.
func TestBusyGreetingWaits(t *testing.T) {
	src := startMem(t, memimap.Options{})
	dst := startMem(t, memimap.Options{})
	src.AddUser("user1", "pass1")
	dst.AddUser("user1", "pass1")
	date := time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC)
	var mb corpus.Mailbox
	for f := range 8 {
		name := fmt.Sprintf("F%d", f)
		mb.Folders = append(mb.Folders, corpus.Folder{Name: name, Subscribed: true})
		for i := range 4 {
			raw := fmt.Sprintf("From: a@example.com\r\nTo: b@example.com\r\nSubject: %s-%d\r\nMessage-ID: <%s-%d@busy.example>\r\nDate: Sat, 03 Feb 2024 04:05:06 +0000\r\n\r\nbody %s %d\r\n", name, i, name, i, name, i)
			mb.Messages = append(mb.Messages, corpus.Message{Folder: name, Raw: []byte(raw), Flags: []string{`\Seen`}, InternalDate: date, Kind: "text"})
		}
	}
	if err := src.Seed("user1", mb); err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.Listen(dst.Addr(), faultproxy.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dstAcct := memAccount(dst, "user1", "", "pass1")
	dstAcct.Addr = p.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := &Copier{Concurrency: 6, RetryAttempts: 1}
	st, err := c.Copy(ctx, dstAcct, memAccount(src, "user1", "", "pass1"))
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	copied := 0
	for _, f := range st.Folders {
		if f.Err != "" {
			t.Errorf("folder %s stopped: %s", f.Source, f.Err)
		}
		copied += f.Copied
	}
	if copied != len(mb.Messages) || !st.OK() {
		t.Errorf("copied %d of %d messages, stats OK %v", copied, len(mb.Messages), st.OK())
	}
	if p.Stats().Busy == 0 {
		t.Errorf("the destination never answered busy (%v): the test did not exercise the cap", p.Stats())
	}
	t.Logf("proxy: %v", p.Stats())
}
