package imapcopy

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
)

// wanSetup is a copy between two Dovecots, each behind a 5 ms delay line
// (10 ms round trip to each server).
type wanSetup struct {
	src, dst         *testserver.Dovecot
	srcLine, dstLine *faultproxy.DelayLine
	srcAcct, dstAcct *Account
	acc              *corpus.Account
	msgBytes         int64
}

func newWAN(t *testing.T) *wanSetup {
	t.Helper()
	w := &wanSetup{
		src: testserver.StartDovecot(t, testserver.DovecotOptions{Name: "src"}),
		dst: testserver.StartDovecot(t, testserver.DovecotOptions{Name: "dst"}),
		acc: corpus.Generate("user1", corpus.Options{Seed: 19, Messages: 200, Events: -1, Contacts: -1}),
	}
	var err error
	opt := faultproxy.DelayOptions{Delay: 5 * time.Millisecond, Jitter: time.Millisecond, Seed: 19}
	if w.srcLine, err = faultproxy.ListenDelay(w.src.Addr, opt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.srcLine.Close() })
	if w.dstLine, err = faultproxy.ListenDelay(w.dst.Addr, opt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.dstLine.Close() })
	acct := func(addr string) *Account {
		return &Account{Addr: addr, Security: Plaintext, User: testserver.DefaultUser, Password: secret.New(testserver.DefaultPassword)}
	}
	w.srcAcct, w.dstAcct = acct(w.srcLine.Addr()), acct(w.dstLine.Addr())
	if err := w.src.Seed(context.Background(), testserver.DefaultUser, w.acc.Mail); err != nil {
		t.Fatal(err)
	}
	for _, m := range w.acc.Mail.Messages {
		w.msgBytes += int64(len(m.Raw))
	}
	return w
}

// copy copies the whole mailbox through the delay lines and checks that the
// destination holds exactly the source's messages, flags and dates.
func (w *wanSetup) copy(t *testing.T) *MemoryCheckpoint {
	t.Helper()
	cp := NewMemoryCheckpoint()
	before := w.dstLine.Stats()
	start := time.Now()
	st, err := (&Copier{Checkpoint: cp}).Copy(context.Background(), w.dstAcct, w.srcAcct)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	after := w.dstLine.Stats()
	checkStats(t, st)
	if got, want := totals(st).Copied, len(w.acc.Mail.Messages); got != want {
		t.Errorf("copied %d, want %d", got, want)
	}
	if d := diffDest(t, &pair{dst: w.dstAcct}, w.acc.Mail); d != nil {
		t.Fatalf("destination differs:\n%s", strings.Join(d, "\n"))
	}
	proof := ""
	for _, f := range st.Folders {
		if f.Verify != nil {
			proof = f.Verify.Proof
		}
	}
	t.Logf("copy through 2 × 5 ms delay lines: %d messages (%d bytes) in %v; destination link: %d bytes written to it, %d read from it (%.3f× the message bytes), proof %q",
		len(w.acc.Mail.Messages), w.msgBytes, time.Since(start).Round(time.Millisecond),
		after.BytesToServer-before.BytesToServer, after.BytesToClient-before.BytesToClient,
		float64(after.BytesToClient-before.BytesToClient)/float64(w.msgBytes), proof)
	if proof != "fingerprint + 5% sample" {
		t.Errorf("proof %q, want the default", proof)
	}
	// The budget: the default proof adds at most 10% of the
	// message bytes to what the destination link carries back (plus the
	// per-message fingerprints, about 1% here).
	if read := after.BytesToClient - before.BytesToClient; float64(read) > 0.11*float64(w.msgBytes) {
		t.Errorf("read %d bytes from the destination, over 11%% of %d", read, w.msgBytes)
	}
	return cp
}

// verify runs c.Verify through the delay lines and returns the INBOX
// verification with the bytes read from the destination link.
func (w *wanSetup) verify(t *testing.T, c *Copier) (*Verification, int64) {
	t.Helper()
	before := w.dstLine.Stats().BytesToClient
	st, err := c.Verify(context.Background(), w.dstAcct, w.srcAcct)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	read := w.dstLine.Stats().BytesToClient - before
	var inbox *Verification
	for _, f := range st.Folders {
		if f.Source == "INBOX" {
			inbox = f.Verify
		} else if f.Verify != nil && !f.Verify.OK() {
			t.Errorf("folder %q untouched but fails: %+v", f.Source, f.Verify)
		}
	}
	if inbox == nil {
		t.Fatal("no INBOX verification")
	}
	return inbox, read
}

// wanMsg is one message as the tests read it directly from a server.
type wanMsg struct {
	uid   imap.UID
	flags []imap.Flag
	date  time.Time
	raw   []byte
}

func fetchFolder(t *testing.T, c *imapclient.Client, folder string) []wanMsg {
	t.Helper()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	bufs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []wanMsg
	for _, b := range bufs {
		m := wanMsg{uid: b.UID, flags: b.Flags, date: b.InternalDate}
		for _, s := range b.BodySection {
			m.raw = s.Bytes
		}
		out = append(out, m)
	}
	return out
}

// target picks an INBOX message on the destination whose size and
// Message-ID no other INBOX message shares and whose body has a lower-case
// letter, and returns it with its source UID.
func (w *wanSetup) target(t *testing.T, dc *imapclient.Client) (wanMsg, imap.UID) {
	t.Helper()
	dst := fetchFolder(t, dc, "INBOX")
	sc, err := w.src.Dial(testserver.DefaultUser)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	src := fetchFolder(t, sc, "INBOX")
	key := func(m wanMsg) string {
		return string(rune(len(m.raw))) + "|" + headerValues(m.raw, "Message-Id", "Date")[0]
	}
	count := map[string]int{}
	for _, m := range src {
		count[key(m)]++
	}
	for _, m := range dst {
		id := headerValues(m.raw, "Message-Id", "Date")[0]
		_, body, ok := bytes.Cut(m.raw, []byte("\r\n\r\n"))
		if id == "" || count[key(m)] != 1 || !ok || bytes.IndexFunc(body, func(r rune) bool { return r >= 'a' && r <= 'y' }) < 0 {
			continue
		}
		for _, s := range src {
			if bytes.Equal(s.raw, m.raw) {
				return m, s.uid
			}
		}
	}
	t.Fatal("no suitable INBOX message")
	return wanMsg{}, 0
}

func expunge(t *testing.T, c *imapclient.Client, uid imap.UID) {
	t.Helper()
	set := imap.UIDSetNum(uid)
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.UIDExpunge(set).Close(); err != nil {
		t.Fatal(err)
	}
}

func appendRaw(t *testing.T, c *imapclient.Client, m wanMsg) {
	t.Helper()
	cmd := c.Append("INBOX", int64(len(m.raw)), &imap.AppendOptions{Flags: m.flags, Time: m.date})
	if _, err := io.Copy(cmd, bytes.NewReader(m.raw)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestWANDelayLine copies through the delay line and proves that the
// default proof (fingerprints of every message and a sample of whole
// bodies) catches each kind of damage on the destination, at a fraction of
// the bytes the deep proof reads.
func TestWANDelayLine(t *testing.T) {
	t.Run("Clean", func(t *testing.T) {
		w := newWAN(t)
		cp := w.copy(t)
		v, def := w.verify(t, &Copier{Checkpoint: cp})
		if !v.OK() || v.Sampled == 0 {
			t.Fatalf("default proof: %+v", v)
		}
		vd, deep := w.verify(t, &Copier{Checkpoint: cp, DeepVerify: true})
		if !vd.OK() || vd.Proof != ProofDeep {
			t.Fatalf("deep proof: %+v", vd)
		}
		t.Logf("verify alone, bytes read from the destination link: default proof %d (%.3f× the %d message bytes), deep proof %d (%.3f×)",
			def, float64(def)/float64(w.msgBytes), w.msgBytes, deep, float64(deep)/float64(w.msgBytes))
		if def >= deep {
			t.Errorf("default proof read %d bytes, deep %d", def, deep)
		}
	})

	damage := []struct {
		name  string
		harm  func(t *testing.T, c *imapclient.Client, m wanMsg)
		check func(v *Verification) bool
	}{
		{"Deleted", func(t *testing.T, c *imapclient.Client, m wanMsg) { expunge(t, c, m.uid) },
			func(v *Verification) bool { return v.Missing == 1 }},
		{"Duplicated", func(t *testing.T, c *imapclient.Client, m wanMsg) { appendRaw(t, c, m) },
			func(v *Verification) bool { return v.Duplicated == 1 }},
		{"FlagChanged", func(t *testing.T, c *imapclient.Client, m wanMsg) {
			op := imap.StoreFlagsAdd
			if slices.Contains(m.flags, imap.FlagFlagged) {
				op = imap.StoreFlagsDel
			}
			if err := c.Store(imap.UIDSetNum(m.uid), &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
				t.Fatal(err)
			}
		}, func(v *Verification) bool { return v.FlagMismatches == 1 }},
	}
	for _, tc := range damage {
		t.Run(tc.name, func(t *testing.T) {
			w := newWAN(t)
			cp := w.copy(t)
			dc, err := w.dst.Dial(testserver.DefaultUser)
			if err != nil {
				t.Fatal(err)
			}
			defer dc.Close()
			m, _ := w.target(t, dc)
			tc.harm(t, dc, m)
			v, _ := w.verify(t, &Copier{Checkpoint: cp})
			if v.OK() || !tc.check(v) {
				t.Fatalf("default proof missed it: %+v", v)
			}
		})
	}

	// A body changed in place, same size, same headers the fingerprint
	// reads: the fingerprint alone cannot see it; the deep proof and a
	// sample that holds the message do.
	t.Run("BodyChangedSameSize", func(t *testing.T) {
		w := newWAN(t)
		cp := w.copy(t)
		dc, err := w.dst.Dial(testserver.DefaultUser)
		if err != nil {
			t.Fatal(err)
		}
		defer dc.Close()
		m, srcUID := w.target(t, dc)
		head, body, _ := bytes.Cut(m.raw, []byte("\r\n\r\n"))
		i := bytes.IndexFunc(body, func(r rune) bool { return r >= 'a' && r <= 'y' })
		changed := wanMsg{flags: m.flags, date: m.date,
			raw: slices.Concat(head, []byte("\r\n\r\n"), body[:i], []byte{body[i] + 1}, body[i+1:])}
		if len(changed.raw) != len(m.raw) {
			t.Fatal("size changed")
		}
		expunge(t, dc, m.uid)
		appendRaw(t, dc, changed)

		v, _ := w.verify(t, &Copier{Checkpoint: cp, VerifySample: -1})
		if !v.OK() {
			t.Fatalf("fingerprint alone should not see a same-size body change (the reason for the sample): %+v", v)
		}
		v, _ = w.verify(t, &Copier{Checkpoint: cp, DeepVerify: true})
		if v.OK() || v.Missing != 1 {
			t.Fatalf("deep proof missed it: %+v", v)
		}
		// A 5% sample whose seed draws the message.
		seed := uint64(1)
		for sampleScore(seed, "INBOX", srcUID) >= DefaultVerifySample {
			seed++
		}
		v, _ = w.verify(t, &Copier{Checkpoint: cp, VerifySeed: seed})
		if v.OK() || v.BodyMismatches != 1 || !slices.Contains(v.BodyExamples, srcUID) {
			t.Fatalf("sample with seed %d missed source uid %d: %+v", seed, srcUID, v)
		}
		t.Logf("seed %d: %d of %d INBOX messages sampled, body mismatch found", seed, v.Sampled, v.SourceCount)
	})
}

// TestPickSample: the sample is reproducible from its seed, holds about f
// of the messages, keeps its floor within the byte budget and leaves out
// ambiguous pairs.
func TestPickSample(t *testing.T) {
	var pairs []verifyPair
	for i := 1; i <= 10000; i++ {
		pairs = append(pairs, verifyPair{src: imap.UID(i), dst: imap.UID(i + 5), size: 1000, exact: i%10 != 0})
	}
	a := pickSample(pairs, 0.05, 42, "INBOX")
	if b := pickSample(pairs, 0.05, 42, "INBOX"); !slices.Equal(a, b) {
		t.Fatal("same seed, different sample")
	}
	if c := pickSample(pairs, 0.05, 43, "INBOX"); slices.Equal(a, c) {
		t.Fatal("different seeds, same sample")
	}
	if n := len(a); n < 9000*4/100 || n > 9000*6/100 {
		t.Errorf("%d of 9000 exact pairs sampled, want about 5%%", n)
	}
	for _, p := range a {
		if !p.exact {
			t.Fatalf("ambiguous pair %v sampled", p)
		}
	}
	// A small folder gets its floor; one of a few huge messages does not
	// read them all.
	small := []verifyPair{{src: 1, size: 100, exact: true}, {src: 2, size: 200, exact: true}, {src: 3, size: 300, exact: true}, {src: 4, size: 50, exact: true}}
	if got := pickSample(small, 0.05, 1, "x"); len(got) != MinVerifySample {
		t.Errorf("small folder: %d sampled, want %d", len(got), MinVerifySample)
	}
	huge := []verifyPair{{src: 1, size: 10 << 20, exact: true}, {src: 2, size: 10 << 20, exact: true}, {src: 3, size: 10 << 20, exact: true}}
	var bytes int64
	for seed := uint64(1); seed <= 100; seed++ {
		for _, p := range pickSample(huge, 0.05, seed, "x") {
			bytes += p.size
		}
	}
	if limit := int64(100 * 0.10 * 30 << 20); bytes > limit {
		t.Errorf("huge folder: %d bytes sampled over 100 seeds, want at most %d", bytes, limit)
	}
	if got := pickSample(pairs, 0, 1, "x"); got != nil {
		t.Errorf("f=0 sampled %d", len(got))
	}
}
