package imaphostile

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Each test is one hostile behaviour: the server misbehaves in one way,
// and the run must end by itself within its bound, with bounded memory
// and disk, without a crash and without a raw control character on the
// terminal.

// "* 4294967295 EXISTS" must not size an allocation.
func TestHugeExists(t *testing.T) {
	dst := newDovecot(t)
	src := start(t, []Folder{{Wire: "INBOX", Messages: msgs(3)}}, Behaviour{
		Select: func(w *bufio.Writer, tag string, f *Folder) error {
			fmt.Fprintf(w, "* 4294967295 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 4] n\r\n%s OK [READ-ONLY] done\r\n", tag)
			return nil
		},
	})
	o := runMail(t, src, dst, std)
	fs := folderStats(t, o)["INBOX"]
	if got := num(fs, "copied"); got != 3 {
		t.Errorf("copied %d messages, want 3 (the three the server really has)\nstderr: %s", got, tail(o.stderr))
	}
}

// A 200 MB response line without CRLF.
func TestLongLine(t *testing.T) {
	dst := newDovecot(t)
	src := start(t, []Folder{{Wire: "INBOX", Messages: msgs(1)}}, Behaviour{
		List: func(w *bufio.Writer, tag string) error {
			w.WriteString(`* LIST () "/" "`)
			return Repeat(w, 'a', 200<<20)
		},
	})
	o := runMail(t, src, dst, std)
	if o.code == 0 || !strings.Contains(o.stderr, "line of") || !strings.Contains(o.stderr, "over the limit") {
		t.Errorf("exit %d; want a failure naming the line limit\nstderr: %s", o.code, tail(o.stderr))
	}
}

// A 600 MB literal mailbox name.
func TestHugeLiteralName(t *testing.T) {
	dst := newDovecot(t)
	src := start(t, []Folder{{Wire: "INBOX", Messages: msgs(1)}}, Behaviour{
		List: func(w *bufio.Writer, tag string) error {
			w.WriteString(`* LIST () "/" {600000000}` + "\r\n")
			return Repeat(w, 'n', 600_000_000)
		},
	})
	o := runMail(t, src, dst, std)
	if o.code == 0 || !strings.Contains(o.stderr, "literal of") {
		t.Errorf("exit %d; want a failure naming the literal limit\nstderr: %s", o.code, tail(o.stderr))
	}
}

// A 200 MB greeting before login.
func TestHugeGreeting(t *testing.T) {
	dst := newDovecot(t)
	src := start(t, nil, Behaviour{
		Greeting: func(w *bufio.Writer) error {
			w.WriteString("* OK ")
			return Repeat(w, 'g', 200<<20)
		},
	})
	o := runMail(t, src, dst, std)
	if o.code == 0 || !strings.Contains(o.stderr, "line of") {
		t.Errorf("exit %d; want a failure naming the line limit\nstderr: %s", o.code, tail(o.stderr))
	}
}

// A FETCH literal of {99999999999} for a 100-byte message is
// refused before a byte is stored, reported as that message's failure,
// and the rest is copied.
func TestLyingLiteral(t *testing.T) {
	dst := newDovecot(t)
	src := start(t, []Folder{{Wire: "INBOX", Messages: msgs(4)}}, Behaviour{
		FetchBody: func(w *bufio.Writer, tag string, f *Folder, uids []uint32) error {
			for _, u := range uids {
				if u != 2 {
					WriteMessage(w, f, u)
					continue
				}
				fmt.Fprintf(w, "* %d FETCH (UID %d BODY[] {99999999999}\r\n", u, u)
				// Keep sending until the client goes.
				if err := Repeat(w, 'x', 1<<40); err != nil {
					return err
				}
			}
			w.WriteString(tag + " OK done\r\n")
			return nil
		},
	})
	o := runMail(t, src, dst, std, "--max-size", "1000")
	if o.code != 3 {
		t.Errorf("exit %d, want 3 (partial)\nstderr: %s", o.code, tail(o.stderr))
	}
	fs := folderStats(t, o)["INBOX"]
	if got := num(fs, "copied"); got != 3 {
		t.Errorf("copied %d, want 3 (all but the liar)", got)
	}
	failed, _ := fs["failed"].([]any)
	if len(failed) != 1 || !strings.Contains(fmt.Sprint(failed[0]), "99999999999") {
		t.Errorf("failed = %v, want uid 2 refused for its literal", failed)
	}
	if src.Written.Load() > 1<<30 {
		t.Errorf("the client read %d bytes from the liar", src.Written.Load())
	}
}

// No answer to LIST.
func TestListHang(t *testing.T) {
	dst := newDovecot(t)
	src := start(t, []Folder{{Wire: "INBOX", Messages: msgs(1)}}, Behaviour{
		List: func(w *bufio.Writer, tag string) error { return HangNow(w) },
	})
	o := runMail(t, src, dst, std, "--idle-timeout", "1s")
	if o.code == 0 || !strings.Contains(o.stderr, "idle timeout") {
		t.Errorf("exit %d; want a failure naming the idle timeout\nstderr: %s", o.code, tail(o.stderr))
	}
}

// No answer to a body FETCH: the folder fails after its
// attempts, the other folder is copied.
func TestFetchHang(t *testing.T) {
	dst := newDovecot(t)
	src := start(t, []Folder{{Wire: "INBOX", Messages: msgs(2)}, {Wire: "Hung", Messages: msgs(2)}}, Behaviour{
		FetchBody: func(w *bufio.Writer, tag string, f *Folder, uids []uint32) error {
			if f.Wire == "Hung" {
				return HangNow(w)
			}
			for _, u := range uids {
				WriteMessage(w, f, u)
			}
			w.WriteString(tag + " OK done\r\n")
			return nil
		},
	})
	o := runMail(t, src, dst, std, "--idle-timeout", "1s")
	if o.code != 3 {
		t.Errorf("exit %d, want 3 (partial)\nstderr: %s", o.code, tail(o.stderr))
	}
	fs := folderStats(t, o)
	if num(fs["INBOX"], "copied") != 2 {
		t.Errorf("INBOX: %v, want 2 copied", fs["INBOX"])
	}
	if e, _ := fs["Hung"]["error"].(string); !strings.Contains(e, "idle timeout") {
		t.Errorf("Hung: error %q, want the idle timeout", e)
	}
}

// A literal trickled slowly but steadily is progress, never
// cut: each byte comes well within the idle timeout (the rule: a
// connection is idle when no byte arrives for --idle-timeout; a body's
// literal is at most its RFC822.SIZE plus a margin, so a trickle ends).
func TestTrickleIsProgress(t *testing.T) {
	dst := newDovecot(t)
	src := start(t, []Folder{{Wire: "INBOX", Messages: msgs(1)}}, Behaviour{
		FetchBody: func(w *bufio.Writer, tag string, f *Folder, uids []uint32) error {
			for _, u := range uids {
				m := f.Messages[u-1]
				// The items a real server sends with the body: the proof's
				// sample reads the message again and compares its size too.
				fmt.Fprintf(w, "* %d FETCH (UID %d FLAGS (\\Seen) INTERNALDATE \"01-Jan-2024 10:00:00 +0000\" RFC822.SIZE %d BODY[] {%d}\r\n", u, u, len(m), len(m))
				// About 8 s in all, each byte 60 ms after the last: slower
				// than the idle timeout overall, never idle for it.
				if err := Trickle(w, m, 8*time.Second/time.Duration(len(m))); err != nil {
					return err
				}
				w.WriteString(")\r\n")
			}
			w.WriteString(tag + " OK done\r\n")
			return nil
		},
	})
	o := runMail(t, src, dst, std, "--idle-timeout", "2s")
	if o.code != 0 {
		t.Errorf("exit %d, want 0: a progressing transfer must not be cut\nstderr: %s\nstdout: %s\nfolders: %v", o.code, tail(o.stderr), tail(o.stdout), folderStats(t, o))
	}
}

// "* BYE" in the middle of a literal, socket left open.
func TestByeMidLiteral(t *testing.T) {
	dst := newDovecot(t)
	src := start(t, []Folder{{Wire: "INBOX", Messages: msgs(2)}}, Behaviour{
		FetchBody: func(w *bufio.Writer, tag string, f *Folder, uids []uint32) error {
			m := f.Messages[uids[0]-1]
			fmt.Fprintf(w, "* %d FETCH (UID %d BODY[] {%d}\r\n", uids[0], uids[0], len(m))
			w.Write(m[:10])
			w.WriteString("\r\n* BYE going away\r\n")
			return HangNow(w)
		},
	})
	o := runMail(t, src, dst, std, "--idle-timeout", "1s")
	if o.code != 3 {
		t.Errorf("exit %d, want 3 (partial)\nstderr: %s", o.code, tail(o.stderr))
	}
	if e, _ := folderStats(t, o)["INBOX"]["error"].(string); !strings.Contains(e, "idle timeout") {
		t.Errorf("INBOX: error %q, want the idle timeout", e)
	}
}

// Mailbox names carrying ESC, CR/LF, BEL through modified
// UTF-7 reach the terminal escaped.
func TestTerminalInjection(t *testing.T) {
	dst := newDovecot(t)
	src := start(t, []Folder{
		{Wire: "INBOX", Messages: msgs(1)},
		{Wire: "&ABs-[31mRED&ABs-]0;pwned&AAc-", Messages: msgs(1)},
		{Wire: "x&AA0ACg-injected: line FAILED", Messages: msgs(1)},
		{Wire: "rtl&IC4-gnp.exe", Messages: msgs(1)},
	}, Behaviour{})
	o := runMail(t, src, dst, std)
	for _, want := range []string{`\x1b[31mRED`, `\r\ninjected: line FAILED`, `\u202egnp.exe`} {
		if !strings.Contains(o.stdout+o.stderr, want) {
			t.Errorf("output does not show %q escaped\nstdout: %s\nstderr: %s", want, tail(o.stdout), tail(o.stderr))
		}
	}
}

// One name that is not modified UTF-7 is one bad folder; the
// rest is copied; --exclude names it by its raw form.
func TestBadUTF7Name(t *testing.T) {
	dst := newDovecot(t)
	src := start(t, []Folder{
		{Wire: "INBOX", Messages: msgs(2)},
		{Wire: "Bad&Jjo", Messages: msgs(1)},
		{Wire: "Good", Messages: msgs(3)},
	}, Behaviour{})
	o := runMail(t, src, dst, std)
	if o.code != 3 {
		t.Errorf("exit %d, want 3 (partial)\nstderr: %s", o.code, tail(o.stderr))
	}
	fs := folderStats(t, o)
	if num(fs["Good"], "copied") != 3 || num(fs["INBOX"], "copied") != 2 {
		t.Errorf("Good %v, INBOX %v: want 3 and 2 copied", fs["Good"], fs["INBOX"])
	}
	if e, _ := fs["Bad&Jjo"]["error"].(string); !strings.Contains(e, `"Bad&Jjo"`) || !strings.Contains(e, "modified UTF-7") {
		t.Errorf("Bad&Jjo: error %q, want the raw name and the reason", e)
	}
	o = runMail(t, src, dst, std, "--exclude", "Bad&Jjo")
	if o.code != 0 {
		t.Errorf("with --exclude: exit %d, want 0\nstderr: %s", o.code, tail(o.stderr))
	}
	if s, _ := folderStats(t, o)["Bad&Jjo"]["skipped"].(string); !strings.Contains(s, "excluded") {
		t.Errorf("with --exclude: Bad&Jjo skipped = %q", s)
	}
}

// With 100,000 folders, SIGTERM stops the run within 10 s,
// no new folder starts, and the cancelled folders are one line.
func TestPromptStop(t *testing.T) {
	dst := newDovecot(t)
	folders := make([]Folder, 100_000)
	for i := range folders {
		folders[i] = Folder{Wire: fmt.Sprintf("F%06d", i)}
	}
	folders[0] = Folder{Wire: "INBOX", Messages: msgs(1)}
	src := start(t, folders, Behaviour{
		// Every folder is slow to open: the run is long.
		Select: func(w *bufio.Writer, tag string, f *Folder) error {
			time.Sleep(20 * time.Millisecond)
			n := 0
			if f != nil {
				n = len(f.Messages)
			}
			fmt.Fprintf(w, "* %d EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT %d] n\r\n%s OK [READ-ONLY] done\r\n", n, n+1, tag)
			return nil
		},
	})
	// --dry-run skips creating 100,000 destination folders before the
	// copy; the folder passes still run one by one, as in a copy.
	b := std
	b.exitWithin = 5 * time.Minute // the listing itself; the stop is timed below
	// Listing 100,000 folders on both sides and their plans is real work
	// (about 2 KB a folder), not a server's doing.
	b.maxRSS = 400 * mb
	startAt := time.Now()
	var o outcome
	o = runMailSignal(t, src, dst, b, 8*time.Second, "--dry-run")
	stopTook := time.Since(startAt) - 8*time.Second
	if stopTook > 10*time.Second {
		t.Errorf("exit %v after SIGTERM, want within 10 s", stopTook)
	}
	if o.code != 130 {
		t.Errorf("exit %d, want 130 (interrupted)\nstderr: %s", o.code, tail(o.stderr))
	}
	if n := strings.Count(o.stderr, "context canceled"); n > 10 {
		t.Errorf("%d lines about a cancelled context on stderr, want a summary", n)
	}
	if _, err := os.Stat(o.state); err != nil {
		t.Errorf("state not saved: %v", err)
	}
	if !strings.Contains(o.stdout, "cancelled:") {
		t.Errorf("no cancelled summary line\nstdout: %s", tail(o.stdout))
	}
	if len(o.stdout) > 1<<20 {
		t.Errorf("stdout is %d bytes: a stop must not print every folder", len(o.stdout))
	}
}

// Found by FuzzIMAPResponse: a '(' in a capability list makes go-imap
// v2.0.0-beta.8 spin forever (Decoder.SP takes '(' for a space without
// consuming it). The guard refuses the line; the run ends.
func TestCapabilityParenthesis(t *testing.T) {
	dst := newDovecot(t)
	src := start(t, []Folder{{Wire: "INBOX", Messages: msgs(1)}}, Behaviour{
		Greeting: func(w *bufio.Writer) error {
			w.WriteString("* OK [CAPABILITY IMAP4rev1 LITER(L+] ready\r\n")
			return nil
		},
	})
	o := runMail(t, src, dst, std)
	if o.code == 0 || !strings.Contains(o.stderr, "capability list") {
		t.Errorf("exit %d; want a failure naming the capability list\nstderr: %s", o.code, tail(o.stderr))
	}
}
