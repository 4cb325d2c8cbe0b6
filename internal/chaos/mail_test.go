package chaos

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/state"
)

// mailbox is what a server holds, as multisets per folder: key = digest of
// the bytes, the sorted flags and the INTERNALDATE; value = how many copies.
type mailbox map[string]map[string]int

// zimbraTag matches Zimbra tag keywords ("Project:FLAG211").
var zimbraTag = regexp.MustCompile(`^([^:]+):FLAG[0-9]+$`)

// asCopied maps a source flag to what imapcopy sends: Zimbra tag keywords
// lose their ":FLAGnnn" suffix (a documented, reported sanitisation).
func asCopied(f string) string { return zimbraTag.ReplaceAllString(f, "$1") }

// readMailbox reads every selectable folder of the account behind d,
// passing each flag through mapFlag when it is not nil.
func readMailbox(t *testing.T, d imapcopy.Dialer, mapFlag func(string) string) mailbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := d.Dial(ctx)
	if err != nil {
		t.Fatalf("read %s: %v", d, err)
	}
	defer c.Close()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatalf("read %s: list: %v", d, err)
	}
	out := mailbox{}
	for _, l := range list {
		if slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) || slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		name := l.Mailbox
		if l.Delim != 0 && l.Delim != '/' {
			name = strings.ReplaceAll(name, string(l.Delim), "/")
		}
		msgs := map[string]int{}
		out[name] = msgs
		sel, err := c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatalf("read %s: select %q: %v", d, l.Mailbox, err)
		}
		if sel.NumMessages == 0 {
			continue
		}
		var all imap.SeqSet
		all.AddRange(1, 0)
		fc := c.Fetch(all, &imap.FetchOptions{Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		for {
			m := fc.Next()
			if m == nil {
				break
			}
			buf, err := m.Collect()
			if err != nil {
				t.Fatalf("read %s: fetch %q: %v", d, l.Mailbox, err)
			}
			var flags []string
			for _, f := range buf.Flags {
				if strings.EqualFold(string(f), `\Recent`) {
					continue
				}
				if mapFlag != nil {
					flags = append(flags, mapFlag(string(f)))
				} else {
					flags = append(flags, string(f))
				}
			}
			sort.Strings(flags)
			sum := sha256.Sum256(buf.FindBodySection(&imap.FetchItemBodySection{Peek: true}))
			msgs[fmt.Sprintf("%x %s %d", sum[:8], strings.Join(flags, ","), buf.InternalDate.Unix())]++
		}
		if err := fc.Close(); err != nil {
			t.Fatalf("read %s: fetch %q: %v", d, l.Mailbox, err)
		}
	}
	return out
}

// diffMailbox lists the differences: folders missing or extra, messages
// lost (fewer copies) or duplicated (more copies), with flags and dates
// part of the identity.
func diffMailbox(want, got mailbox) []string {
	var d []string
	for f, wm := range want {
		gm, ok := got[f]
		if !ok {
			d = append(d, fmt.Sprintf("folder %q missing (%d messages)", f, len(wm)))
			continue
		}
		for k, n := range wm {
			if g := gm[k]; g < n {
				d = append(d, fmt.Sprintf("%q: message %s lost (%d of %d copies)", f, k, g, n))
			} else if g > n {
				d = append(d, fmt.Sprintf("%q: message %s duplicated (%d copies, want %d)", f, k, g, n))
			}
		}
		for k, g := range gm {
			if _, ok := wm[k]; !ok {
				d = append(d, fmt.Sprintf("%q: unexpected message %s (%d copies)", f, k, g))
			}
		}
	}
	for f, gm := range got {
		if _, ok := want[f]; !ok && len(gm) > 0 {
			d = append(d, fmt.Sprintf("unexpected folder %q (%d messages)", f, len(gm)))
		}
	}
	sort.Strings(d)
	return d
}

func count(m mailbox) (n int) {
	for _, f := range m {
		for _, c := range f {
			n += c
		}
	}
	return n
}

// copyOnce runs one Copy and fails the test, instead of hanging it, when
// Copy does not return within a minute after ctx ends.
func copyOnce(t *testing.T, ctx context.Context, cp *imapcopy.Copier, dst, src imapcopy.Dialer) (*imapcopy.Stats, error) {
	t.Helper()
	type result struct {
		s   *imapcopy.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := cp.Copy(ctx, dst, src)
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-ctx.Done():
	}
	select {
	case r := <-done:
		return r.s, r.err
	case <-time.After(time.Minute):
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("imapcopy.Copy hangs: still running a minute after its context ended\n%s", buf[:n])
		return nil, nil
	}
}

// complete reports whether every folder was copied and verified; sanitised
// keywords (reported by design) do not count against it.
func complete(s *imapcopy.Stats) bool { return s != nil && problems(s) == "" }

// problems summarises what is not complete in s.
func problems(s *imapcopy.Stats) string {
	if s == nil {
		return "no stats"
	}
	var p []string
	for _, f := range s.Folders {
		switch {
		case f.Err != "":
			p = append(p, fmt.Sprintf("%q: %s", f.Source, f.Err))
		case len(f.Failed) > 0:
			p = append(p, fmt.Sprintf("%q: %d failed (first: uid %d: %s)", f.Source, len(f.Failed), f.Failed[0].UID, f.Failed[0].Reason))
		case len(f.DeleteFailed) > 0:
			p = append(p, fmt.Sprintf("%q: %d deletions not done (first: %s)", f.Source, len(f.DeleteFailed), f.DeleteFailed[0].Reason))
		case len(f.SkippedItems) > 0:
			p = append(p, fmt.Sprintf("%q: %d skipped (first: %s)", f.Source, len(f.SkippedItems), f.SkippedItems[0].Reason))
		case f.Skipped != "" || f.NoSelect || f.Unchanged:
		case !f.Verify.OK():
			p = append(p, fmt.Sprintf("%q: not verified (%+v)", f.Source, f.Verify))
		}
	}
	if len(p) > 3 {
		p = append(p[:3], fmt.Sprintf("and %d more", len(p)-3))
	}
	return strings.Join(p, "; ")
}

// mix gives even connections a's faults and odd ones b's.
func mix(a, b faultproxy.Schedule) faultproxy.Schedule {
	return faultproxy.ScheduleFunc(func(n int) []faultproxy.Fault {
		if n%2 == 0 {
			return a.Faults(n / 2)
		}
		return b.Faults(n / 2)
	})
}

// mailFaults is the fault plan for one side: big offsets in the bulk
// direction (mid-FETCH literal on the source, mid-APPEND literal on the
// destination), small ones in the other.
func mailFaults(seed uint64, bulk faultproxy.Direction) faultproxy.Schedule {
	bye := []byte("* BYE service busy\r\n")
	return mix(
		faultproxy.Random{Seed: seed, Rate: 0.35, Dirs: []faultproxy.Direction{bulk}, MinOffset: 200, MaxOffset: 600_000,
			Kinds: []faultproxy.Kind{faultproxy.Reset, faultproxy.Reset, faultproxy.Close, faultproxy.Stall}, StallFor: 300 * time.Millisecond},
		faultproxy.Random{Seed: seed + 1, Rate: 0.25, Dirs: []faultproxy.Direction{faultproxy.ToClient}, MaxOffset: 4000,
			Kinds: []faultproxy.Kind{faultproxy.Reset, faultproxy.Inject}, InjectData: bye},
	)
}

// mailPassword is the password of user1 on both mail servers: a sentinel,
// so that the kill tests can scan their processes' output for it.
const mailPassword = "S3ntinel-mail-pw-5d21e0"

type mailRig struct {
	srcAddr, dstAddr   string // the servers themselves, for reading
	srcProxy, dstProxy *faultproxy.Proxy
	want               mailbox
	msgs               int
}

// newMailRig seeds an in-memory source and puts fault proxies in front of it
// and of an in-memory destination.
func newMailRig(t *testing.T, messages int, seed int64) *mailRig {
	t.Helper()
	dst, err := memimap.Start(memimap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	dst.AddUser("user1", mailPassword)
	return newMailRigTo(t, messages, seed, dst.Addr())
}

// newMailRigTo is newMailRig with the destination server at dstAddr (user1
// with mailPassword must exist there).
func newMailRigTo(t *testing.T, messages int, seed int64, dstAddr string) *mailRig {
	t.Helper()
	src, err := memimap.Start(memimap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	src.AddUser("user1", mailPassword)
	a := corpus.Generate("user1", corpus.Options{Seed: seed, Messages: messages, Events: -1, Contacts: -1})
	if err := src.Seed("user1", a.Mail); err != nil {
		t.Fatal(err)
	}
	return newMailRigBetween(t, src.Addr(), dstAddr, len(a.Mail.Messages))
}

// newMailRigBetween puts the fault proxies in front of two running servers,
// the source already seeded with msgs messages.
func newMailRigBetween(t *testing.T, srcAddr, dstAddr string, msgs int) *mailRig {
	t.Helper()
	r := &mailRig{srcAddr: srcAddr, dstAddr: dstAddr, msgs: msgs}
	var err error
	if r.srcProxy, err = faultproxy.Listen(r.srcAddr, faultproxy.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.srcProxy.Close() })
	// The destination behaves like Carbonio: 25-repeat throttle and a
	// connection cap. Tag keywords are let through here so that the copy
	// can be compared byte for byte; TestMailZimbraManners covers them.
	rules := &faultproxy.IMAPRules{RepeatLimit: faultproxy.ZimbraRepeatLimit, RejectFlag: func(string) bool { return false }}
	if r.dstProxy, err = faultproxy.Listen(r.dstAddr, faultproxy.Options{IMAP: rules, MaxConns: 12}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.dstProxy.Close() })
	r.want = readMailbox(t, r.direct(r.srcAddr), asCopied)
	return r
}

// direct reaches a server without the proxies.
func (r *mailRig) direct(addr string) imapcopy.Dialer {
	return &imapcopy.Account{Addr: addr, Security: imapcopy.Plaintext, User: "user1", Password: secret.New(mailPassword)}
}

func (r *mailRig) viaProxy(p *faultproxy.Proxy) *imapcopy.Account {
	return &imapcopy.Account{Addr: p.Addr(), Security: imapcopy.Plaintext, User: "user1", Password: secret.New(mailPassword), DialTimeout: 20 * time.Second}
}

func (r *mailRig) faults(on bool, seed uint64) {
	if !on {
		r.srcProxy.SetSchedule(nil)
		r.dstProxy.SetSchedule(nil)
		return
	}
	r.srcProxy.SetSchedule(mailFaults(seed, faultproxy.ToClient))
	r.dstProxy.SetSchedule(mailFaults(seed+100, faultproxy.ToServer))
}

func (r *mailRig) faultCount() int64 {
	return r.srcProxy.Stats().Faults() + r.dstProxy.Stats().Faults()
}

// check compares the destination with the source and fails on any lost,
// duplicated or altered message.
func (r *mailRig) check(t *testing.T) {
	t.Helper()
	got := readMailbox(t, r.direct(r.dstAddr), nil)
	if d := diffMailbox(r.want, got); len(d) > 0 {
		if len(d) > 20 {
			d = append(d[:20], fmt.Sprintf("... and %d more", len(d)-20))
		}
		t.Fatalf("destination differs from source (%d vs %d messages):\n%s", count(got), count(r.want), strings.Join(d, "\n"))
	}
}

// TestMailCopyUnderFaults copies a mailbox through proxies that reset,
// close, stall and inject BYE at seeded random offsets (mid-FETCH on the
// source, mid-APPEND literal on the destination), re-running Copy with a
// SQLite checkpoint until a pass is clean, sometimes after deleting the
// state file. The destination must end equal to the source: bytes, flags,
// keywords, INTERNALDATE and multiplicity.
func TestMailCopyUnderFaults(t *testing.T) {
	mailCopyUnderFaults(t, newMailRig(t, size(300, 10_000), 7))
}

// TestMailCopyUnderFaultsDovecot is TestMailCopyUnderFaults between two
// real servers: Dovecot to Dovecot.
func TestMailCopyUnderFaultsDovecot(t *testing.T) {
	users := map[string]string{"user1": mailPassword}
	src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "chaos-src", Users: users})
	dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "chaos-dst", Users: users})
	a := corpus.Generate("user1", corpus.Options{Seed: 8, Messages: size(300, 10_000), Events: -1, Contacts: -1})
	if err := src.Seed(context.Background(), "user1", a.Mail); err != nil {
		t.Fatal(err)
	}
	mailCopyUnderFaults(t, newMailRigBetween(t, src.Addr, dst.Addr, len(a.Mail.Messages)))
}

func mailCopyUnderFaults(t *testing.T, r *mailRig) {
	minFaults := int64(size(30, 100))
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(size(4, 30))*time.Minute)
	defer cancel()
	dir := t.TempDir()
	statePath := filepath.Join(dir, "state.db")

	var passes, failedPasses, stateRemovals int
	for round := 0; ; round++ {
		r.faults(true, uint64(round)*1000)
		if round%4 == 3 && os.Getenv("ZXM_CHAOS_KEEP_STATE") != "1" {
			// Lose the checkpoint: the copier must find what is already
			// there instead of appending it again.
			for _, p := range []string{statePath, statePath + "-wal", statePath + "-shm"} {
				_ = os.Remove(p)
			}
			stateRemovals++
		}
		st, err := state.Open(ctx, statePath)
		if err != nil {
			t.Fatal(err)
		}
		cp := &imapcopy.Copier{Checkpoint: st.Mail("user1 -> user1"), RetryAttempts: 3}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
		stats, err := copyOnce(t, pctx, cp, r.viaProxy(r.dstProxy), r.viaProxy(r.srcProxy))
		pcancel()
		st.Close()
		passes++
		if ctx.Err() != nil {
			t.Fatalf("pass %d: out of time (%v) after %d faults", passes, err, r.faultCount())
		}
		clean := err == nil && complete(stats)
		if !clean {
			failedPasses++
			t.Logf("pass %d under faults: err=%v; %s", passes, err, problems(stats))
		}
		if r.faultCount() >= minFaults && clean {
			break
		}
		if passes > 200 {
			t.Fatalf("no clean pass after %d passes and %d faults", passes, r.faultCount())
		}
	}
	injected := r.faultCount()
	// A last pass with the network healed must find nothing to do.
	r.faults(false, 0)
	st, err := state.Open(ctx, statePath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stats, err := copyOnce(t, ctx, &imapcopy.Copier{Checkpoint: st.Mail("user1 -> user1")}, r.viaProxy(r.dstProxy), r.viaProxy(r.srcProxy))
	if err != nil || !complete(stats) {
		t.Fatalf("final pass: %v (%s)", err, problems(stats))
	}
	t.Logf("mail: %d messages, %d faults injected (source %v; destination %v), %d passes (%d hit by faults), %d state-file removals",
		r.msgs, injected, r.srcProxy.Stats(), r.dstProxy.Stats(), passes, failedPasses, stateRemovals)
	if tot := stats.Totals(); tot.Copied != 0 {
		t.Errorf("final pass copied %d messages again, want 0", tot.Copied)
	}
	r.check(t)
	t.Logf("mail: all %d faults survived; destination == source (bytes, flags, keywords, dates, multiplicity)", injected)
	if injected < minFaults {
		t.Errorf("only %d faults injected, want at least %d", injected, minFaults)
	}
}
