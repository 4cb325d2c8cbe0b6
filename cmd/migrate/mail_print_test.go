package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/migrate"
)

// The mail progress lines escape server text.
func TestMailProgressEscapes(t *testing.T) {
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
