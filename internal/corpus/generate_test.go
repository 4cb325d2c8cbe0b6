package corpus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"net/mail"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// small is the corpus most tests use; generated once.
var small = sync.OnceValue(func() *Account { return Generate("user1", Options{Seed: 7, Messages: 300}) })

func manifestSHA(t *testing.T, a *Account) [32]byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteManifest(&b, a); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b.Bytes())
}

func TestGenerateDeterministic(t *testing.T) {
	a := small()
	b := Generate("user1", Options{Seed: 7, Messages: 300})
	if manifestSHA(t, a) != manifestSHA(t, b) {
		t.Fatal("same seed gave different manifests")
	}
	for i := range a.Mail.Messages {
		if !bytes.Equal(a.Mail.Messages[i].Raw, b.Mail.Messages[i].Raw) {
			t.Fatalf("message %d differs between runs", i)
		}
	}
	c := Generate("user1", Options{Seed: 8, Messages: 300})
	if manifestSHA(t, a) == manifestSHA(t, c) {
		t.Fatal("different seeds gave the same manifest")
	}
}

var update = flag.Bool("update", false, "rewrite testdata/manifest.sha256")

// TestGolden pins the bytes of a small corpus across versions and
// platforms: a change to the generator must be deliberate (go test -update).
func TestGolden(t *testing.T) {
	sum := manifestSHA(t, small())
	got := hex.EncodeToString(sum[:]) + "\n"
	const path = "testdata/manifest.sha256"
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("manifest of Generate(\"user1\", Options{Seed: 7, Messages: 300}) has sha256 %s, want %s; if the generator changed on purpose, run go test -update", got, want)
	}
}

func TestEachMessageMatchesGenerate(t *testing.T) {
	a := small()
	i := 0
	err := EachMessage("user1", Options{Seed: 7, Messages: 300}, func(m Message) error {
		if i >= len(a.Mail.Messages) {
			t.Fatalf("EachMessage gave more than %d messages", len(a.Mail.Messages))
		}
		w := a.Mail.Messages[i]
		if !bytes.Equal(w.Raw, m.Raw) {
			t.Fatalf("message %d: EachMessage bytes differ from Generate", i)
		}
		w.Raw, m.Raw = nil, nil
		if diff := cmp.Diff(w, m); diff != "" {
			t.Fatalf("message %d (-Generate +EachMessage):\n%s", i, diff)
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if i != len(a.Mail.Messages) {
		t.Fatalf("EachMessage gave %d messages, want %d", i, len(a.Mail.Messages))
	}
	stop := errors.New("stop")
	n := 0
	if err := EachMessage("user1", Options{Seed: 7, Messages: 300}, func(Message) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("EachMessage after an error = %v after %d calls, want stop after 1", err, n)
	}
}

func TestSmallCorpusShape(t *testing.T) {
	a := small()
	if got := len(a.Mail.Messages); got != 300 {
		t.Errorf("messages = %d, want 300", got)
	}
	checkShape(t, a)
	for _, name := range EdgeCaseNames() {
		found := false
		for _, m := range a.Mail.Messages {
			if m.Kind == "edge/"+name {
				found = true
			}
		}
		if !found {
			t.Errorf("edge case %q missing", name)
		}
	}
}

func TestMinimumCorpus(t *testing.T) {
	a := Generate("u", Options{Messages: 1, Events: -1, Contacts: -1})
	if len(a.Mail.Messages) != MinMessages {
		t.Errorf("Messages: 1 gave %d messages, want MinMessages = %d", len(a.Mail.Messages), MinMessages)
	}
	if a.Calendars != nil || a.AddressBooks != nil {
		t.Errorf("negative Events/Contacts gave collections")
	}
	checkShape(t, a)
	if b := Generate("u", Options{Messages: -1}); len(b.Mail.Messages)+len(b.Mail.Folders) != 0 {
		t.Errorf("Messages: -1 gave %d messages, %d folders", len(b.Mail.Messages), len(b.Mail.Folders))
	}
}

// TestReferenceCorpus checks the 10,121-message reference corpus. It
// takes a few seconds (more under -race), so -short skips it.
func TestReferenceCorpus(t *testing.T) {
	if testing.Short() || (raceEnabled && os.Getenv("CORPUS_REFERENCE") == "") {
		t.Skip("reference corpus: set CORPUS_REFERENCE=1 to run it under -race")
	}
	a := Generate("user1", Options{})
	s := Summarize(a)
	if s.Messages != ReferenceMessages {
		t.Errorf("messages = %d, want %d", s.Messages, ReferenceMessages)
	}
	want := map[string]int{}
	for _, f := range referenceFolders() {
		want[f.Name] = f.n
	}
	for _, f := range s.Folders {
		if f.Messages != want[f.Name] {
			t.Errorf("folder %q: %d messages, want %d", f.Name, f.Messages, want[f.Name])
		}
	}
	if s.Duplicates != 121 {
		t.Errorf("duplicate copies = %d, want 121", s.Duplicates)
	}
	if s.EdgeCases != 102 {
		t.Errorf("edge cases = %d, want 102", s.EdgeCases)
	}
	// Approximate shape: ±25 % of the spec.
	near := func(what string, got, want float64) {
		if got < want*0.75 || got > want*1.25 {
			t.Errorf("%s = %.0f, want about %.0f", what, got, want)
		}
	}
	near("bytes", float64(s.Bytes), 590_212_440)
	near("p50", float64(s.P50), 4000)
	near("p90", float64(s.P90), 20_000)
	near("p99", float64(s.P99), 1_100_000)
	near("without Message-ID", float64(s.NoMessageID), 0.005*9898)
	checkShape(t, a)
	kinds := map[string]int{}
	flags := map[string]int{}
	for _, m := range a.Mail.Messages {
		if !strings.HasPrefix(m.Kind, "edge/") {
			kinds[strings.TrimSuffix(m.Kind, "+dup")]++
		}
		for _, f := range m.Flags {
			flags[f]++
		}
	}
	frac := func(f string) float64 { return float64(flags[f]) / float64(len(a.Mail.Messages)) }
	for _, f := range []struct {
		flag   string
		lo, hi float64
	}{{`\Seen`, 0.78, 0.88}, {`\Answered`, 0.06, 0.12}, {`\Flagged`, 0.03, 0.07}, {"$Forwarded", 0.025, 0.05}} {
		if x := frac(f.flag); x < f.lo || x > f.hi {
			t.Errorf("%s on %.3f of the messages, want %.2f…%.2f", f.flag, x, f.lo, f.hi)
		}
	}
	t.Logf("kinds: %v", kinds)
	t.Logf("flags: %v", flags)
	t.Logf("reference corpus: %d messages, %d bytes, p50 %d p90 %d p99 %d max %d, %d without Message-ID, %d duplicate copies",
		s.Messages, s.Bytes, s.P50, s.P90, s.P99, s.Max, s.NoMessageID, s.Duplicates)
}

// checkShape asserts what every corpus, however small, must have.
func checkShape(t *testing.T, a *Account) {
	t.Helper()
	if diff := cmp.Diff(Folders(), a.Mail.Folders); diff != "" {
		t.Errorf("folders (-want +got):\n%s", diff)
	}
	if len(a.Mail.Folders) != 29 {
		t.Errorf("%d folders, want 29", len(a.Mail.Folders))
	}
	count := map[string]int{}
	folderOf := map[[32]byte]map[string]int{}
	ids := map[string][32]byte{}
	kw := map[string]int{}
	var deleted, noID, badDate int
	for i, m := range a.Mail.Messages {
		count[m.Folder]++
		sum := sha256.Sum256(m.Raw)
		if folderOf[sum] == nil {
			folderOf[sum] = map[string]int{}
		}
		folderOf[sum][m.Folder]++
		if bytes.IndexByte(m.Raw, 0) >= 0 {
			t.Errorf("message %d (%s) has a NUL byte", i, m.Kind)
		}
		if bad := bareLineEnd(m.Raw); bad >= 0 {
			t.Errorf("message %d (%s): bare CR or LF at byte %d", i, m.Kind, bad)
		}
		if !slices.IsSorted(m.Flags) {
			t.Errorf("message %d: flags not sorted: %v", i, m.Flags)
		}
		for _, f := range m.Flags {
			kw[f]++
			if f == `\Deleted` {
				deleted++
				if m.Folder != "INBOX" {
					t.Errorf("message %d: \\Deleted outside INBOX", i)
				}
			}
		}
		switch m.Folder {
		case "Drafts":
			if !slices.Contains(m.Flags, `\Draft`) {
				t.Errorf("Drafts message %d without \\Draft", i)
			}
		case "Junk":
			if !slices.Contains(m.Flags, "$Junk") {
				t.Errorf("Junk message %d without $Junk", i)
			}
		case "Sent", "Trash", "Archive":
			if !slices.Contains(m.Flags, `\Seen`) {
				t.Errorf("%s message %d not \\Seen", m.Folder, i)
			}
		}
		if y, ok := strings.CutPrefix(m.Folder, "Archive/"); ok && m.InternalDate.UTC().Format("2006") != y {
			t.Errorf("message %d in %s has INTERNALDATE %v", i, m.Folder, m.InternalDate)
		}
		if m.InternalDate.Before(time.Date(2014, 1, 1, 0, 0, 0, 0, time.UTC)) || m.InternalDate.After(time.Date(2025, 11, 1, 3, 0, 0, 0, time.UTC)) {
			t.Errorf("message %d: INTERNALDATE %v outside 2014-01 … 2025-10", i, m.InternalDate)
		}
		if strings.HasPrefix(m.Kind, "edge/") {
			if m.Folder != "EdgeCases" {
				t.Errorf("edge case %s in %q", m.Kind, m.Folder)
			}
			continue
		}
		id := MessageID(m.Raw)
		if id == "" {
			noID++
		} else if prev, ok := ids[id]; ok && prev != sum {
			t.Errorf("Message-ID %s shared by different messages", id)
		} else {
			ids[id] = sum
		}
		hdr, err := mail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			t.Errorf("message %d (%s) does not parse: %v", i, m.Kind, err)
			continue
		}
		d, err := mail.ParseDate(hdr.Header.Get("Date"))
		if err != nil {
			badDate++
			continue
		}
		if lag := m.InternalDate.Sub(d); lag < 0 || lag > 3*time.Hour+time.Second {
			t.Errorf("message %d (%s): INTERNALDATE %v is %v after Date %v", i, m.Kind, m.InternalDate, lag, d)
		}
	}
	for _, f := range a.Mail.Folders {
		switch {
		case f.NoSelect || f.Name == "Empty":
			if count[f.Name] != 0 {
				t.Errorf("folder %q holds %d messages", f.Name, count[f.Name])
			}
		case count[f.Name] == 0:
			t.Errorf("folder %q is empty", f.Name)
		}
	}
	if count["EdgeCases"] < len(edgeCases) {
		t.Errorf("EdgeCases holds %d messages, want at least %d", count["EdgeCases"], len(edgeCases))
	}
	if deleted != DeletedInInbox {
		t.Errorf("%d \\Deleted messages, want %d", deleted, DeletedInInbox)
	}
	for _, k := range append(Keywords, `\Seen`, `\Answered`, `\Flagged`, `\Draft`) {
		if kw[k] == 0 {
			t.Errorf("flag %s never used", k)
		}
	}
	if noID == 0 || badDate == 0 {
		t.Errorf("%d messages without Message-ID, %d with a bad Date; want some of each", noID, badDate)
	}
	var cross, same int
	for _, fs := range folderOf {
		if len(fs) > 1 {
			cross++
		}
		for _, n := range fs {
			if n > 1 {
				same++
			}
		}
	}
	if cross == 0 || same == 0 {
		t.Errorf("duplicates: %d across folders, %d within a folder; want both", cross, same)
	}
}

// bareLineEnd returns the offset of the first CR or LF that is not part of
// a CRLF pair, or -1.
func bareLineEnd(b []byte) int {
	for i, c := range b {
		switch c {
		case '\r':
			if i+1 >= len(b) || b[i+1] != '\n' {
				return i
			}
		case '\n':
			if i == 0 || b[i-1] != '\r' {
				return i
			}
		}
	}
	return -1
}

func TestEdgeCases(t *testing.T) {
	a := small()
	by := map[string][]byte{}
	for _, m := range a.Mail.Messages {
		by[m.Kind] = m.Raw
	}
	if n := len(EdgeCaseNames()); n != 102 {
		t.Errorf("%d edge cases, want 102", n)
	}
	if got := len(by["edge/exact-4096"]); got != 4096 {
		t.Errorf("exact-4096 is %d bytes", got)
	}
	if got := len(by["edge/exact-4097"]); got != 4097 {
		t.Errorf("exact-4097 is %d bytes", got)
	}
	for _, k := range []string{"edge/header-never-ends-1", "edge/header-never-ends-2"} {
		if bytes.Contains(by[k], []byte("\r\n\r\n")) || len(by[k]) == 0 {
			t.Errorf("%s has an end of header", k)
		}
	}
	if !bytes.ContainsFunc(by["edge/8bit-header-1"], func(r rune) bool { return r > 127 }) {
		t.Errorf("8bit-header-1 has no 8-bit header bytes")
	}
	nul := Generate("u", Options{Messages: 1, NUL: true, Events: -1, Contacts: -1})
	found := false
	for _, m := range nul.Mail.Messages {
		if m.Kind == "edge/nul" {
			found = bytes.IndexByte(m.Raw, 0) >= 0
		}
	}
	if !found {
		t.Error("Options.NUL gave no message with a NUL byte")
	}
}

func TestBigFolder(t *testing.T) {
	a := Generate("u", Options{Messages: 1, BigFolder: 2000, Events: -1, Contacts: -1})
	n := 0
	for _, m := range a.Mail.Messages {
		if m.Folder == BigFolderName {
			n++
		}
	}
	if n != 2000 || len(a.Mail.Messages) != MinMessages+2000 {
		t.Errorf("BigFolder: %d messages in %s, %d in all", n, BigFolderName, len(a.Mail.Messages))
	}
	if last := a.Mail.Folders[len(a.Mail.Folders)-1]; last.Name != BigFolderName || a.Mail.Messages[len(a.Mail.Messages)-1].Folder != BigFolderName {
		t.Errorf("the big folder is not last: %+v", last)
	}
	a.Mail.Messages = slices.DeleteFunc(a.Mail.Messages, func(m Message) bool { return m.Folder == BigFolderName })
	a.Mail.Folders = a.Mail.Folders[:len(a.Mail.Folders)-1]
	checkShape(t, a)
}

func TestHuge(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB message")
	}
	a := Generate("u", Options{Messages: 1, Huge: true, Events: -1, Contacts: -1})
	for _, m := range a.Mail.Messages {
		if m.Kind == "huge" {
			if len(m.Raw) < 50_000_000 {
				t.Errorf("huge message is %d bytes", len(m.Raw))
			}
			return
		}
	}
	t.Error("Options.Huge gave no huge message")
}

func TestLayoutTotals(t *testing.T) {
	for n := 1; n <= 12000; n += 7 {
		l := newLayout(n)
		if want := max(n, MinMessages); l.total != want {
			t.Fatalf("newLayout(%d).total = %d, want %d", n, l.total, want)
		}
	}
	for _, n := range []int{MinMessages, MinMessages + 1, 200, 777, 2500} {
		if got := len(plan(Options{Messages: n})); got != n {
			t.Errorf("plan for %d messages has %d", n, got)
		}
	}
}
