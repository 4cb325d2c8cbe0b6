package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
)

// TestMailZimbraManners copies a mailbox, including one message over
// Zimbra's 10,240,000-byte APPEND limit and Zimbra tag keywords, into a
// destination that behaves like Carbonio (faultproxy.ZimbraRules: tag
// keywords refused with "NO APPEND failed", the size limit, the 25-repeat
// throttle, a connection cap). Everything but the oversize message must
// arrive; that one is reported by name with the server's reason; no
// connection is dropped by the throttle.
func TestMailZimbraManners(t *testing.T) {
	src, dst := startMemPair(t, memimap.Options{}, memimap.Options{}, mailPassword)
	a := corpus.Generate("user1", corpus.Options{Seed: 13, Messages: 1, Huge: true, Events: -1, Contacts: -1})
	if err := src.Seed("user1", a.Mail); err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.Listen(dst.Addr(), faultproxy.Options{IMAP: faultproxy.ZimbraRules(), MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := &mailRig{srcAddr: src.Addr(), dstAddr: dst.Addr()}
	want := readMailbox(t, r.direct(r.srcAddr), asCopied)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stats, err := copyOnce(t, ctx, &imapcopy.Copier{}, r.viaProxy(p), r.direct(r.srcAddr))
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	// The refusal must be reported with the server's reason: per message
	// (best) or, since go-imap drops the connection after a refused
	// synchronizing literal, at least on the folder.
	var reported []string
	named := false
	for _, f := range stats.Folders {
		for _, it := range append(append([]imapcopy.ItemIssue{}, f.Failed...), f.SkippedItems...) {
			reported = append(reported, fmt.Sprintf("%s uid %d: %s", f.Source, it.UID, it.Reason))
			named = named || strings.Contains(it.Reason, "maximum message size exceeded")
		}
		if f.Err != "" {
			reported = append(reported, f.Source+": "+f.Err)
		}
	}
	if !strings.Contains(strings.Join(reported, "\n"), "maximum message size exceeded") {
		t.Errorf("the refused oversize message is not reported with the server's reason; reported: %q", reported)
	}
	if !named {
		t.Logf("note: the oversize message is reported on its folder, not by UID: %q", reported)
	}
	got := readMailbox(t, r.direct(r.dstAddr), nil)
	d := diffMailbox(want, got)
	if len(d) != 1 || !strings.Contains(d[0], `"INBOX": message`) || !strings.Contains(d[0], "lost (0 of 1") {
		t.Errorf("destination differs from source by %d lines, want only the oversize message:\n%s", len(d), strings.Join(d[:min(len(d), 10)], "\n"))
	}
	st := p.Stats()
	if st.Dropped != 0 {
		t.Errorf("the throttle dropped %d connections: the copier repeated a command more than %d times", st.Dropped, faultproxy.ZimbraRepeatLimit)
	}
	if st.Rejected != 1 {
		t.Errorf("the destination refused %d APPENDs, want 1 (the oversize one; tag keywords must be sanitised first)", st.Rejected)
	}
	t.Logf("zimbra manners: %d messages, %d refused by the destination (%v), reported: %q", r.count(want), st.Rejected, st, reported)
}

func (r *mailRig) count(m mailbox) int { return count(m) }

// startMemPair starts an in-memory source and destination with the given
// options, each holding user1 with password pass; both stop with the test.
func startMemPair(t *testing.T, srcOpts, dstOpts memimap.Options, pass string) (src, dst *memimap.Server) {
	t.Helper()
	for _, side := range []struct {
		s    **memimap.Server
		opts memimap.Options
	}{{&src, srcOpts}, {&dst, dstOpts}} {
		s, err := memimap.Start(side.opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		s.AddUser("user1", pass)
		*side.s = s
	}
	return src, dst
}
