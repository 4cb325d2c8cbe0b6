package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/migrate"
)

// The summary escapes server text and folds cancelled folders into one
// line, however many there are.
func TestPrintMailSummaryHostile(t *testing.T) {
	s := &imapcopy.Stats{}
	s.Folders = append(s.Folders,
		imapcopy.FolderStats{Source: "\x1b[31mRED", Destination: "\x1b[31mRED", Err: "imap: NO bad \x1b]0;title\x07"},
		imapcopy.FolderStats{Source: "INBOX", Destination: "INBOX",
			Failed: []imapcopy.ItemIssue{{UID: 3, MessageID: "<a\r\nb>", Reason: "x\u202ey"}}},
	)
	for i := range 50_000 {
		s.Folders = append(s.Folders, imapcopy.FolderStats{Source: fmt.Sprintf("F%d", i), Cancelled: true})
	}
	var out bytes.Buffer
	printMailSummary(&out, s, false)
	got := out.String()
	for _, r := range got {
		if (r < 0x20 && r != '\n') || r == 0x7f || r == 0x202e {
			t.Fatalf("raw control %U in summary:\n%s", r, got)
		}
	}
	for _, want := range []string{`\x1b[31mRED`, `\x1b]0;title\x07`, `<a\r\nb>`, `x\u202ey`, "cancelled: 50000 folders"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n"); n > 20 {
		t.Errorf("summary has %d lines for 2 folders and 50,000 cancelled ones", n)
	}

	var prog bytes.Buffer
	p := newMailProgress(&prog)
	p.event(imapcopy.MessageFailed{Folder: "a\rb", UID: 1, Err: errors.New("no\x1b[2J")})
	p.event(imapcopy.FolderDone{Stats: imapcopy.FolderStats{Source: "x\ny", Err: "bad\x00"}})
	if strings.ContainsAny(prog.String(), "\r\x1b\x00") || strings.Count(prog.String(), "\n") != 2 {
		t.Errorf("progress lines not escaped: %q", prog.String())
	}
}

// The run's progress lines escape server text too.
func TestProgressEscapes(t *testing.T) {
	var out bytes.Buffer
	p, err := newProgress(&out, "plain")
	if err != nil {
		t.Fatal(err)
	}
	p.OnEvent(migrate.ItemProblem{Account: "a@example.org", Phase: migrate.PhaseMail, Item: "\x1b[31mINBOX UID 1", Reason: "NO \r\nforged: line\u202e"})
	got := out.String()
	if strings.ContainsAny(got, "\x1b\r\u202e") || !strings.Contains(got, `\x1b[31mINBOX`) || !strings.Contains(got, `\r\nforged`) {
		t.Errorf("progress line not escaped: %q", got)
	}
}
