package imapcopy_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/imapcopy"
)

// WriteText escapes server text and folds cancelled folders into one
// line, however many there are.
func TestStatsWriteTextHostile(t *testing.T) {
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
	if err := s.WriteText(&out); err != nil {
		t.Fatal(err)
	}
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
}
