package chaos

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
)

// wideFolders is how many sibling folders zimbraAccount adds under "Wide":
// with the corpus tree that is well over Zimbra's 25 CREATEs in a row.
const wideFolders = 30

// plainMessage is a small message with a unique Message-ID.
func plainMessage(id string, body int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Sender <sender@example.com>\r\nTo: user1@example.com\r\nSubject: %s\r\n", id)
	fmt.Fprintf(&b, "Message-ID: <%s@chaos.example>\r\nDate: Mon, 02 Jan 2023 10:00:00 +0000\r\n\r\n", id)
	line := strings.Repeat("z", 76) + "\r\n"
	for b.Len() < body {
		b.WriteString(line)
	}
	return b.Bytes()
}

// zimbraAccount is a corpus mailbox (with Zimbra tag keywords) plus a wide
// folder tree and one message over Zimbra's APPEND limit, tagged, placed
// last in INBOX or, with mid, in the middle of INBOX.
func zimbraAccount(messages int, mid bool) (corpus.Mailbox, []byte) {
	a := corpus.Generate("user1", corpus.Options{Seed: 21, Messages: messages, Events: -1, Contacts: -1})
	mb := a.Mail
	mb.Folders = append(mb.Folders, corpus.Folder{Name: "Wide", NoSelect: true})
	date := time.Date(2023, 1, 2, 10, 0, 0, 0, time.UTC)
	for i := range wideFolders {
		name := fmt.Sprintf("Wide/W%02d", i)
		mb.Folders = append(mb.Folders, corpus.Folder{Name: name, Subscribed: true})
		mb.Messages = append(mb.Messages, corpus.Message{Folder: name, Raw: plainMessage(fmt.Sprintf("wide-%02d", i), 300),
			Flags: []string{`\Seen`, corpus.ZimbraTagKeyword}, InternalDate: date.Add(time.Duration(i) * time.Hour), Kind: "text"})
	}
	over := plainMessage("oversize", int(faultproxy.ZimbraRules().MaxLiteral)+4096)
	m := corpus.Message{Folder: "INBOX", Raw: over, Flags: []string{`\Flagged`, corpus.ZimbraTagKeyword}, InternalDate: date, Kind: "huge"}
	at := len(mb.Messages)
	if mid {
		var inbox []int
		for i, m := range mb.Messages {
			if m.Folder == "INBOX" {
				inbox = append(inbox, i)
			}
		}
		at = inbox[len(inbox)/2]
	}
	mb.Messages = slices.Insert(mb.Messages, at, m)
	return mb, over
}

// TestMailZimbraMannersDovecot copies a corpus account from a real Dovecot
// to a real Dovecot behind faultproxy.ZimbraRules (tag keywords refused on
// APPEND, the 10,240,000-byte limit, the 25-repeat throttle, the drop after
// 5 errors in a row) and a cap of 3 connections answered with "* BYE ...
// service busy" (the copier asks for more). The account holds Zimbra tag
// keywords, a message over the limit (last in INBOX) and 30 sibling
// folders (more than 25 CREATEs in a row). Everything but the oversize
// message must arrive byte-identical with its flags and INTERNALDATE,
// nothing twice; the oversize message must be reported with the server's
// reason and the rewritten tag keywords by name; the result is partial; a
// second run copies nothing and reports the same.
func TestMailZimbraMannersDovecot(t *testing.T) {
	zimbraMannersDovecot(t, false)
}

// TestMailZimbraMannersDovecotMidFolder is TestMailZimbraMannersDovecot
// with the oversize message in the middle of INBOX: the messages after it
// must arrive too, and the refusal be reported on the message (folder, UID,
// Message-ID), not as an error stopping the folder.
func TestMailZimbraMannersDovecotMidFolder(t *testing.T) {
	zimbraMannersDovecot(t, true)
}

func zimbraMannersDovecot(t *testing.T, mid bool) {
	users := map[string]string{"user1": mailPassword}
	src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "zimbra-src", Users: users})
	dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "zimbra-dst", Users: users})
	mb, over := zimbraAccount(size(1, 10_000), mid) // 1: the corpus minimum, every edge case
	if err := src.Seed(context.Background(), "user1", mb); err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.Listen(dst.Addr, faultproxy.Options{IMAP: faultproxy.ZimbraRules(), MaxConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := &mailRig{srcAddr: src.Addr, dstAddr: dst.Addr}
	want := readMailbox(t, r.direct(r.srcAddr), asCopied)
	tagged := 0
	for _, m := range mb.Messages {
		if slices.Contains(m.Flags, corpus.ZimbraTagKeyword) && !bytes.Equal(m.Raw, over) {
			tagged++
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(size(4, 30))*time.Minute)
	defer cancel()
	dstAcct := r.viaProxy(p)
	const reason = "maximum message size exceeded"
	for run := 1; run <= 2; run++ {
		// Concurrency 4 asks for more connections than the cap of 3. A
		// folder pass refused with "service busy" is retried with backoff;
		// 12 attempts (about 2 minutes of waiting) outlast the folders
		// holding the connections even in the full-size run, where the
		// default 6 (about 6 s) do not: see the H3 report.
		stats, err := copyOnce(t, ctx, &imapcopy.Copier{Concurrency: 4, RetryAttempts: 12}, dstAcct, r.direct(r.srcAddr))
		if err != nil {
			t.Fatalf("run %d: copy: %v", run, err)
		}
		tot := stats.Totals()
		// The result is partial, and only because of the oversize message.
		if complete(stats) {
			t.Errorf("run %d: copy reported complete, want partial (the oversize message)", run)
		}
		var failed, stopped []string
		for _, f := range stats.Folders {
			if f.Err != "" {
				stopped = append(stopped, fmt.Sprintf("%s: %s", f.Source, f.Err))
			}
			for _, it := range append(slices.Clone(f.Failed), f.SkippedItems...) {
				failed = append(failed, fmt.Sprintf("%s uid %d %s: %s", f.Source, it.UID, it.MessageID, it.Reason))
			}
		}
		named := len(failed) == 1 && strings.HasPrefix(failed[0], "INBOX uid ") &&
			strings.Contains(failed[0], "<oversize@chaos.example>") && strings.Contains(failed[0], reason)
		switch {
		case named && len(stopped) == 0:
		case mid:
			t.Errorf("run %d: reported %q and stopped folders %q; want exactly the oversize INBOX message by Message-ID with %q, no folder stopped",
				run, failed, stopped, reason)
		case len(failed) == 0 && len(stopped) == 1 && strings.HasPrefix(stopped[0], "INBOX: ") && strings.Contains(stopped[0], reason):
			// Today's imapcopy reports this refusal on the folder.
			t.Logf("run %d: the oversize message is reported on its folder, not by name: %q", run, stopped)
		default:
			t.Errorf("run %d: reported %q and stopped folders %q; want the oversize INBOX message with %q, and nothing else",
				run, failed, stopped, reason)
		}
		// Tag keywords are rewritten before APPEND and each rewrite is
		// reported by name.
		renamed := 0
		for _, it := range tot.Keywords {
			for _, c := range it.Changes {
				if c.From == corpus.ZimbraTagKeyword && c.To == "Project" {
					renamed++
				}
			}
		}
		if renamed < tagged {
			t.Errorf("run %d: %d rewrites of %q reported, want one per tagged message (%d)", run, renamed, corpus.ZimbraTagKeyword, tagged)
		}
		if run == 2 && tot.Copied != 0 {
			t.Errorf("second run copied %d messages again, want 0", tot.Copied)
		}
		t.Logf("run %d: %d copied, %d already present, %d keyword rewrites reported; destination proxy: %v",
			run, tot.Copied, tot.AlreadyPresent, renamed, p.Stats())
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
	if st.Rejected == 0 {
		t.Error("the destination refused no APPEND: the oversize message never reached the size rule")
	}
	if st.Busy == 0 {
		t.Error("the connection cap never answered busy: the test did not exercise it")
	}
	t.Logf("zimbra manners on Dovecot: %d messages in %d folders, destination == source but the oversize one; proxy %v",
		count(want), len(want), st)
}

// TestMailConsecutiveRefusals copies a folder in which 7 messages in a row
// are refused for good by the destination server (NO after the literal, as
// Carbonio does for a message it cannot store), through faultproxy.ZimbraRules,
// which drops the connection after 5 errors in a row as Zimbra's
// imap_max_consecutive_error does. Every other message must arrive once, and
// each refused one be reported by name with the server's reason.
func TestMailConsecutiveRefusals(t *testing.T) {
	// Refused messages are the ones of refusedSize bytes and up to 900 more.
	const refusedSize = 20_000
	refuse := func(_, _ string, _ []imap.Flag, size int64) error {
		if size >= refusedSize && size < refusedSize+1000 {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "message cannot be stored"}
		}
		return nil
	}
	src, dst := startMemPair(t, memimap.Options{}, memimap.Options{AppendHook: refuse}, mailPassword)

	date := time.Date(2023, 3, 4, 5, 6, 7, 0, time.UTC)
	var mb corpus.Mailbox
	mb.Folders = []corpus.Folder{{Name: "INBOX", Subscribed: true}, {Name: "Refused", Subscribed: true}}
	var refused []string
	add := func(folder, id string, size int, flags ...string) {
		raw := plainMessage(id, size)
		if size >= refusedSize && size < refusedSize+1000 {
			raw = raw[:size] // exactly size bytes
			refused = append(refused, "<"+id+"@chaos.example>")
		}
		mb.Messages = append(mb.Messages, corpus.Message{Folder: folder, Raw: raw, Flags: flags,
			InternalDate: date.Add(time.Duration(len(mb.Messages)) * time.Minute), Kind: "text"})
	}
	add("INBOX", "inbox-1", 500, `\Seen`)
	add("Refused", "before-1", 500, `\Seen`)
	add("Refused", "before-2", 500)
	for i := range 7 {
		flags := []string{`\Seen`}
		if i%2 == 1 {
			flags = append(flags, "Work") // a keyword: the copier may retry without it
		}
		add("Refused", fmt.Sprintf("refused-%d", i), refusedSize+100*i, flags...)
	}
	for i := range 4 {
		add("Refused", fmt.Sprintf("after-%d", i), 700, `\Answered`)
	}
	add("INBOX", "inbox-2", 500)
	if err := src.Seed("user1", mb); err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.Listen(dst.Addr(), faultproxy.Options{IMAP: faultproxy.ZimbraRules()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := &mailRig{srcAddr: src.Addr(), dstAddr: dst.Addr()}
	want := readMailbox(t, r.direct(r.srcAddr), nil)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stats, err := copyOnce(t, ctx, &imapcopy.Copier{RetryAttempts: 4}, r.viaProxy(p), r.direct(r.srcAddr))
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	reported := map[string]string{}
	for _, f := range stats.Folders {
		if f.Err != "" {
			t.Errorf("folder %q stopped: %s", f.Source, f.Err)
		}
		for _, it := range append(slices.Clone(f.Failed), f.SkippedItems...) {
			reported[it.MessageID] = f.Source + ": " + it.Reason
		}
	}
	for _, id := range refused {
		if reason, ok := reported[id]; !ok || !strings.Contains(reason, "message cannot be stored") {
			t.Errorf("refused message %s reported as %q, want its folder and the server's reason", id, reason)
		}
	}
	if len(reported) != len(refused) {
		t.Errorf("%d messages reported, want the %d refused ones: %q", len(reported), len(refused), reported)
	}
	got := readMailbox(t, r.direct(r.dstAddr), nil)
	var lost, other []string
	for _, l := range diffMailbox(want, got) {
		if strings.Contains(l, `"Refused": message`) && strings.Contains(l, "lost (0 of 1") {
			lost = append(lost, l)
		} else {
			other = append(other, l)
		}
	}
	if len(lost) != len(refused) || len(other) > 0 {
		t.Errorf("destination differs from source: %d messages missing from Refused (want the %d refused), other differences:\n%s",
			len(lost), len(refused), strings.Join(other, "\n"))
	}
	st := p.Stats()
	t.Logf("consecutive refusals: %d refused and reported, %d copied; proxy %v", len(reported), stats.Totals().Copied, st)
	if st.ErrorDrops == 0 {
		t.Errorf("the destination never dropped a connection after %d errors in a row: the test did not exercise the rule", faultproxy.ZimbraMaxConsecutiveErrors)
	}
}

// TestMailKeywordRefusedBeforeLiteral copies a folder into a destination
// that refuses APPENDs carrying the keyword "Work" with a NO in place of
// the literal's continuation request (go-imap sends synchronizing literals,
// so each refusal costs the connection). Every message must arrive exactly
// once with its other flags and its date, nothing be reported failed and no
// folder stop. (Whether "Work" is then set by the flag pass is not checked:
// the proxy refuses it on APPEND only.)
func TestMailKeywordRefusedBeforeLiteral(t *testing.T) {
	src, dst := startMemPair(t, memimap.Options{}, memimap.Options{}, mailPassword)
	date := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
	mb := corpus.Mailbox{Folders: []corpus.Folder{{Name: "INBOX", Subscribed: true}, {Name: "Tagged", Subscribed: true}}}
	withWork := 0
	for i := range 12 {
		flags := []string{`\Seen`}
		if i%3 != 0 {
			flags = append(flags, "Work")
			withWork++
		}
		mb.Messages = append(mb.Messages, corpus.Message{Folder: "Tagged", Raw: plainMessage(fmt.Sprintf("tagged-%d", i), 6000),
			Flags: flags, InternalDate: date.Add(time.Duration(i) * time.Minute), Kind: "text"})
	}
	if err := src.Seed("user1", mb); err != nil {
		t.Fatal(err)
	}
	rules := faultproxy.ZimbraRules()
	rules.RejectFlag = func(f string) bool { return f == "Work" }
	p, err := faultproxy.Listen(dst.Addr(), faultproxy.Options{IMAP: rules})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := &mailRig{srcAddr: src.Addr(), dstAddr: dst.Addr()}
	want := dropFlag(readMailbox(t, r.direct(r.srcAddr), nil), "Work")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stats, err := copyOnce(t, ctx, &imapcopy.Copier{}, r.viaProxy(p), r.direct(r.srcAddr))
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	tot := stats.Totals()
	if len(tot.Failed) > 0 || len(tot.SkippedItems) > 0 {
		t.Errorf("messages reported failed %v or skipped %v, want none", tot.Failed, tot.SkippedItems)
	}
	for _, f := range stats.Folders {
		if f.Err != "" {
			t.Errorf("folder %q stopped: %s", f.Source, f.Err)
		}
	}
	if d := diffMailbox(want, dropFlag(readMailbox(t, r.direct(r.dstAddr), nil), "Work")); len(d) > 0 {
		t.Errorf("destination differs from source (keyword %q left out on both sides):\n%s", "Work", strings.Join(d, "\n"))
	}
	if st := p.Stats(); st.Rejected < int64(withWork) {
		t.Errorf("the destination refused %d APPENDs, want at least %d (one per message with the keyword)", st.Rejected, withWork)
	}
	t.Logf("keyword refused before the literal: %d messages (%d with the keyword) arrived once; proxy %v", count(want), withWork, p.Stats())
}

// dropFlag removes flag from every message key of m.
func dropFlag(m mailbox, flag string) mailbox {
	out := mailbox{}
	for folder, msgs := range m {
		out[folder] = map[string]int{}
		for k, n := range msgs {
			parts := strings.SplitN(k, " ", 3) // digest, flags, date
			if len(parts) == 3 {
				var keep []string
				for _, f := range strings.Split(parts[1], ",") {
					if f != flag && f != "" {
						keep = append(keep, f)
					}
				}
				k = parts[0] + " " + strings.Join(keep, ",") + " " + parts[2]
			}
			out[folder][k] += n
		}
	}
	return out
}
