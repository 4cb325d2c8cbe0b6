package chaos

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/state"
)

// expungeEvery flags every nth message of every selectable folder of the
// server at addr \Deleted and expunges (with the messages that were
// flagged \Deleted already).
func expungeEvery(t *testing.T, addr string, n int) {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("user1", mailPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range boxes {
		sel, err := c.Select(b.Mailbox, nil).Wait()
		if err != nil || sel.NumMessages == 0 {
			continue
		}
		var set imap.SeqSet
		for i := uint32(1); i <= sel.NumMessages; i += uint32(n) {
			set.AddNum(i)
		}
		if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Expunge().Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMailDeleteUnderFaults: after a complete copy, a fifth of the source's
// messages are expunged; passes with Delete run through the fault proxies
// (connections reset, closed, stalled, BYE mid-command on both sides) with
// the SQLite state kept, until one is clean. The destination must then equal
// the source exactly: every copy of an expunged message gone, nothing else
// lost or doubled, and a last pass finds nothing to delete or copy.
func TestMailDeleteUnderFaults(t *testing.T) {
	r := newMailRig(t, size(300, 5_000), 21)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(size(4, 20))*time.Minute)
	defer cancel()
	statePath := filepath.Join(t.TempDir(), "state.db")
	pass := func(del bool, faults bool, seed uint64) (*imapcopy.Stats, error) {
		r.faults(faults, seed)
		st, err := state.Open(ctx, statePath)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		cp := &imapcopy.Copier{Checkpoint: st.Mail("user1 -> user1"), Delete: del, RetryAttempts: 3}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
		defer pcancel()
		return copyOnce(t, pctx, cp, r.viaProxy(r.dstProxy), r.viaProxy(r.srcProxy))
	}
	if stats, err := pass(false, false, 0); err != nil || !complete(stats) {
		t.Fatalf("first copy: %v (%s)", err, problems(stats))
	}
	before := count(r.want)
	expungeEvery(t, r.srcAddr, 5)
	r.want = readMailbox(t, r.direct(r.srcAddr), asCopied)
	gone := before - count(r.want)

	minFaults := r.faultCount() + int64(size(20, 60))
	deleted, passes := 0, 0
	for round := 1; ; round++ {
		stats, err := pass(true, true, uint64(round)*1000)
		passes++
		if stats != nil {
			deleted += stats.Totals().Deleted
		}
		if ctx.Err() != nil {
			t.Fatalf("pass %d: out of time (%v)", passes, err)
		}
		clean := err == nil && complete(stats)
		if !clean {
			t.Logf("pass %d under faults: err=%v; %s", passes, err, problems(stats))
		}
		if clean && r.faultCount() >= minFaults {
			break
		}
		if passes > 200 {
			t.Fatalf("no clean pass after %d passes", passes)
		}
	}
	stats, err := pass(true, false, 0)
	if err != nil || !complete(stats) {
		t.Fatalf("final pass: %v (%s)", err, problems(stats))
	}
	if tt := stats.Totals(); tt.Deleted != 0 || tt.Copied != 0 {
		t.Errorf("final pass deleted %d and copied %d, want 0 and 0", tt.Deleted, tt.Copied)
	}
	t.Logf("delete: %d of %d messages expunged at the source; %d deletions reported over %d passes under %d faults",
		gone, r.msgs, deleted, passes, r.faultCount())
	// A deletion whose answer a fault cut off is done but not counted:
	// the next pass finds the copy gone. Never more than gone in all.
	if deleted == 0 || deleted > gone {
		t.Errorf("%d deletions reported, want 1..%d", deleted, gone)
	}
	r.check(t)
}
