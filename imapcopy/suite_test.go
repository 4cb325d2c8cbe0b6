package imapcopy

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
)

// pair is one source/destination server pair of the conformance suite.
type pair struct {
	src, dst Dialer
	// srcDelim and dstDelim are the hierarchy separators (0 means '/').
	srcDelim, dstDelim rune
	// seed fills the source mailbox.
	seed func(t *testing.T, m corpus.Mailbox)
	// adapt, when set, changes the corpus the way seed had to (folder
	// names the source cannot hold).
	adapt func(corpus.Mailbox) corpus.Mailbox
	// condstore is set when the source reports HIGHESTMODSEQ, so that a
	// re-run skips unchanged folders without opening them.
	condstore bool
}

func (p *pair) mail(m corpus.Mailbox) corpus.Mailbox {
	if p.adapt == nil {
		return m
	}
	return p.adapt(m)
}

// snapshot reads a whole mailbox over IMAP (corpus.SnapshotIMAP).
func snapshot(t *testing.T, d Dialer) corpus.Mailbox {
	t.Helper()
	c, err := d.Dial(context.Background())
	if err != nil {
		t.Fatalf("snapshot: dial %s: %v", d, err)
	}
	defer c.Close()
	m, err := corpus.SnapshotIMAP(context.Background(), c)
	if err != nil {
		t.Fatalf("snapshot %s: %v", d, err)
	}
	return m
}

// diffDest compares the destination with want (names with '/'): bytes,
// flags, dates, folder tree and subscriptions, with multiplicity. The
// documented deviations are allowed: the Zimbra tag keyword is sent as its
// name, and a name segment holding the destination separator has it
// replaced by '_'.
func diffDest(t *testing.T, p *pair, want corpus.Mailbox) []string {
	t.Helper()
	delim := p.dstDelim
	opts := &corpus.DiffOptions{
		IgnoreFlags:       []string{corpus.ZimbraTagKeyword, "Project"},
		ExtraFoldersOK:    true,
		MissingNoSelectOK: true,
		Folder: func(name string) string {
			if delim == 0 || delim == '/' {
				return name
			}
			return strings.ReplaceAll(name, string(delim), "_")
		},
	}
	return corpus.DiffMail(want, snapshot(t, p.dst), opts)
}

// onlyZimbraTags reports whether every issue in s is the documented
// sanitising of corpus.ZimbraTagKeyword: the one expected deviation.
func checkStats(t *testing.T, s *Stats) {
	t.Helper()
	for _, f := range s.Folders {
		if f.Err != "" || len(f.Failed) > 0 || len(f.SkippedItems) > 0 {
			t.Errorf("folder %q: err %q, failed %v, skipped %v", f.Source, f.Err, f.Failed, f.SkippedItems)
		}
		for _, k := range f.Keywords {
			for _, ch := range k.Changes {
				if ch.From != corpus.ZimbraTagKeyword {
					t.Errorf("folder %q uid %d: unexpected keyword change %+v", f.Source, k.UID, ch)
				}
			}
		}
		if f.Skipped == "" && !f.NoSelect && !f.Unchanged && !f.Verify.OK() {
			t.Errorf("folder %q: verification failed: %+v", f.Source, f.Verify)
		}
	}
}

func totals(s *Stats) FolderStats { return s.Totals() }

// appendMessages adds messages through IMAP (for "new mail" steps).
func appendMessages(t *testing.T, d Dialer, msgs []corpus.Message) {
	t.Helper()
	c, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range msgs {
		flags := make([]imap.Flag, len(m.Flags))
		for i, f := range m.Flags {
			flags[i] = imap.Flag(f)
		}
		cmd := c.Append(m.Folder, int64(len(m.Raw)), &imap.AppendOptions{Flags: flags, Time: m.InternalDate})
		if _, err := cmd.Write(m.Raw); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("append to %q: %v", m.Folder, err)
		}
	}
}

// toggleSeen flips \Flagged on the first n messages of folder and returns
// what the corpus now expects.
func toggleFlagged(t *testing.T, d Dialer, folder string, n int) {
	t.Helper()
	c, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: uint32(n)}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		op := imap.StoreFlagsAdd
		if hasFlag(m.Flags, imap.FlagFlagged) {
			op = imap.StoreFlagsDel
		}
		if err := c.Store(imap.UIDSetNum(m.UID), &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagFlagged, "Important"}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runSuite is the conformance suite every server pair runs. With full
// false only the copy/re-run/incremental part runs (the resume parts are
// the same code on every pair); IMAPCOPY_FULL=1 forces everything.
func runSuite(t *testing.T, newPair func(t *testing.T) *pair, full bool) {
	full = full || os.Getenv("IMAPCOPY_FULL") != ""
	acc := corpus.Generate("user1", corpus.Options{Seed: 3, Messages: 300, Events: -1, Contacts: -1})

	t.Run("CopyRerunIncremental", func(t *testing.T) {
		p := newPair(t)
		p.seed(t, acc.Mail)
		ctx := context.Background()
		cp := NewMemoryCheckpoint()
		c := &Copier{Checkpoint: cp}
		st, err := c.Copy(ctx, p.dst, p.src)
		if err != nil {
			t.Fatalf("Copy: %v", err)
		}
		checkStats(t, st)
		if got, want := totals(st).Copied, len(acc.Mail.Messages); got != want {
			t.Errorf("copied %d, want %d", got, want)
		}
		// The proof took most source fingerprints from the bytes copied
		// (edge cases with odd headers are read from the source again).
		fromCopy := 0
		for _, f := range st.Folders {
			if f.Verify != nil {
				fromCopy += f.Verify.SourceFromCopy
			}
		}
		if fromCopy < len(acc.Mail.Messages)*9/10 {
			t.Errorf("%d of %d source fingerprints taken from the copy, want at least 90%%", fromCopy, len(acc.Mail.Messages))
		}
		if d := diffDest(t, p, p.mail(acc.Mail)); d != nil {
			t.Fatalf("destination differs:\n%s", strings.Join(d, "\n"))
		}

		// A re-run copies nothing.
		st, err = c.Copy(ctx, p.dst, p.src)
		if err != nil {
			t.Fatalf("re-run: %v", err)
		}
		checkStats(t, st)
		if tt := totals(st); tt.Copied != 0 || tt.FlagUpdates != 0 {
			t.Errorf("re-run copied %d, flag updates %d; want 0, 0", tt.Copied, tt.FlagUpdates)
		}
		if p.condstore {
			for _, f := range st.Folders {
				if f.Skipped == "" && !f.NoSelect && !f.Unchanged {
					t.Errorf("re-run opened unchanged folder %q; want it skipped by its STATUS snapshot", f.Source)
				}
			}
		}

		// 10 new messages and 10 flag changes propagate, nothing else.
		extra := corpus.Generate("user9", corpus.Options{Seed: 99, Messages: 300, Events: -1, Contacts: -1}).Mail.Messages
		var add []corpus.Message
		for _, m := range extra {
			if m.Folder == "INBOX" && len(add) < 10 {
				add = append(add, m)
			}
		}
		if len(add) != 10 {
			t.Fatalf("test corpus has %d new INBOX messages, want 10", len(add))
		}
		appendMessages(t, p.src, add)
		toggleFlagged(t, p.src, "INBOX", 10)
		st, err = c.Copy(ctx, p.dst, p.src)
		if err != nil {
			t.Fatalf("incremental run: %v", err)
		}
		checkStats(t, st)
		if tt := totals(st); tt.Copied != 10 || tt.FlagUpdates != 10 {
			t.Errorf("incremental run copied %d, flag updates %d; want 10, 10; stats %+v", tt.Copied, tt.FlagUpdates, st)
		}
		if d := diffDest(t, p, snapshot(t, p.src)); d != nil {
			t.Fatalf("after incremental run, destination differs from source:\n%s", strings.Join(d, "\n"))
		}
	})

	if !full {
		return
	}
	t.Run("ResumeAfterCancel", func(t *testing.T) {
		p := newPair(t)
		p.seed(t, acc.Mail)
		cp := NewMemoryCheckpoint()
		for i, stopAfter := range []int64{17, 120} {
			ctx, cancel := context.WithCancel(context.Background())
			var n atomic.Int64
			c := &Copier{Checkpoint: cp, Logger: testLogger(t), OnEvent: func(e Event) {
				if _, ok := e.(MessageCopied); ok && n.Add(1) == stopAfter {
					cancel()
				}
			}}
			_, err := c.Copy(ctx, p.dst, p.src)
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run %d: err %v, want context.Canceled", i, err)
			}
		}
		st, err := (&Copier{Checkpoint: cp, Logger: testLogger(t)}).Copy(context.Background(), p.dst, p.src)
		if err != nil {
			t.Fatal(err)
		}
		checkStats(t, st)
		if d := diffDest(t, p, p.mail(acc.Mail)); d != nil {
			t.Fatalf("after resume, destination differs (lost or duplicated):\n%s", strings.Join(d, "\n"))
		}
	})

	t.Run("StateLost", func(t *testing.T) {
		p := newPair(t)
		p.seed(t, acc.Mail)
		ctx, cancel := context.WithCancel(context.Background())
		var n atomic.Int64
		c := &Copier{OnEvent: func(e Event) {
			if _, ok := e.(MessageCopied); ok && n.Add(1) == 150 {
				cancel()
			}
		}}
		_, _ = c.Copy(ctx, p.dst, p.src)
		cancel()
		// A new, empty checkpoint: reconciliation by fingerprint only.
		st, err := (&Copier{}).Copy(context.Background(), p.dst, p.src)
		if err != nil {
			t.Fatal(err)
		}
		checkStats(t, st)
		if tt := totals(st); tt.AlreadyPresent == 0 {
			t.Errorf("no message found already present after a partial copy; reconciliation did not run")
		}
		if d := diffDest(t, p, p.mail(acc.Mail)); d != nil {
			t.Fatalf("without state, destination differs (lost or duplicated):\n%s", strings.Join(d, "\n"))
		}
		// Verify alone agrees.
		vs, err := (&Copier{}).Verify(context.Background(), p.dst, p.src)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range vs.Folders {
			if f.Verify != nil && (f.Verify.Missing != 0 || f.Verify.Extra != 0) {
				t.Errorf("Verify %q: %+v", f.Source, f.Verify)
			}
		}
	})
}

// testLogger logs through t when IMAPCOPY_DEBUG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("IMAPCOPY_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
