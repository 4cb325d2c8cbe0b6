package imapcopy

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/google/go-cmp/cmp"
)

func TestSanitizeFlags(t *testing.T) {
	tests := []struct {
		name      string
		in, perm  []imap.Flag
		want      []imap.Flag
		changeFor []string
	}{
		{"system flags canonical, recent dropped", []imap.Flag{`\SEEN`, `\Recent`, `\deleted`}, nil,
			[]imap.Flag{imap.FlagDeleted, imap.FlagSeen}, nil},
		{"unknown system flag reported", []imap.Flag{`\Indexed`, `\Seen`}, nil, []imap.Flag{imap.FlagSeen}, []string{`\Indexed`}},
		{"zimbra tag keeps its name", []imap.Flag{"TEST:FLAG211", "$Forwarded"}, nil, []imap.Flag{"$Forwarded", "TEST"}, []string{"TEST:FLAG211"}},
		{"8-bit and specials replaced", []imap.Flag{"caf\xc3\xa9", "a]b"}, nil, []imap.Flag{"a_b", "caf__"}, []string{"caf\xc3\xa9", "a]b"}},
		{"duplicates after mapping collapse", []imap.Flag{"Work", "work"}, nil, []imap.Flag{"Work"}, nil},
		{"permanentflags without \\* drops new keywords", []imap.Flag{"$Forwarded", "Custom", `\Seen`}, []imap.Flag{imap.FlagSeen, "$Forwarded"},
			[]imap.Flag{"$Forwarded", imap.FlagSeen}, []string{"Custom"}},
		{"permanentflags with \\* allows all", []imap.Flag{"Custom"}, []imap.Flag{imap.FlagWildcard}, []imap.Flag{"Custom"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changes := SanitizeFlags(tt.in, tt.perm)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("flags (-want +got):\n%s", diff)
			}
			var from []string
			for _, c := range changes {
				from = append(from, c.From)
			}
			if diff := cmp.Diff(tt.changeFor, from); diff != "" {
				t.Errorf("reported changes (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzSanitizeFlags(f *testing.F) {
	f.Add("TEST:FLAG211", `\Seen`)
	f.Add("caf\xc3\xa9", "a b")
	f.Fuzz(func(t *testing.T, a, b string) {
		got, _ := SanitizeFlags([]imap.Flag{imap.Flag(a), imap.Flag(b)}, nil)
		for _, fl := range got {
			s := string(fl)
			if s == "" {
				t.Fatalf("empty flag from %q %q", a, b)
			}
			for i := 0; i < len(s); i++ {
				ch := s[i]
				if ch == '\\' && i == 0 {
					continue
				}
				if ch <= 0x20 || ch >= 0x7f || strings.IndexByte(`(){%*"\]`, ch) >= 0 {
					t.Fatalf("invalid byte %q in %q (from %q %q)", ch, s, a, b)
				}
			}
		}
	})
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		p, n string
		want bool
	}{
		{"Lists/*", "Lists/golang-nuts", true},
		{"Lists/*", "Lists", false},
		{"*", "a/b/c", true},
		{"Arch?ve", "Archive", true},
		{"inbox", "INBOX", true},
		{"Work", "Work/Projects", false},
		{"*Beta*", "Work/Projects/Beta v1.2", true},
	}
	for _, tt := range tests {
		if got := matchPattern(tt.p, tt.n); got != tt.want {
			t.Errorf("matchPattern(%q, %q) = %v, want %v", tt.p, tt.n, got, tt.want)
		}
	}
}

func FuzzMatchPattern(f *testing.F) {
	f.Add("*a?b*", "xxaybzz")
	f.Fuzz(func(t *testing.T, p, n string) {
		_ = matchPattern(p, n) // must not panic or hang
		if !matchPattern("*", n) {
			t.Fatalf("* does not match %q", n)
		}
	})
}

func TestNameTranslation(t *testing.T) {
	tests := []struct {
		name     string
		src      nsInfo
		dst      nsInfo
		want     string
		renamed  bool
		wantPath []string
	}{
		{"Work/Projects/Beta v1.2", nsInfo{Delim: '/'}, nsInfo{Delim: '.'}, "Work.Projects.Beta v1_2", true, []string{"Work", "Projects", "Beta v1.2"}},
		{"INBOX.Sent", nsInfo{Prefix: "INBOX.", Delim: '.'}, nsInfo{Delim: '/'}, "Sent", false, []string{"Sent"}},
		{"Archive/2019", nsInfo{Delim: '/'}, nsInfo{Prefix: "INBOX.", Delim: '.'}, "INBOX.Archive.2019", false, []string{"Archive", "2019"}},
		{"inbox", nsInfo{Delim: '/'}, nsInfo{Prefix: "INBOX.", Delim: '.'}, "INBOX", false, []string{"INBOX"}},
		{"日本語 メール", nsInfo{Delim: '/'}, nsInfo{Delim: '.'}, "日本語 メール", false, []string{"日本語 メール"}},
	}
	for _, tt := range tests {
		path := splitName(tt.name, tt.src)
		if diff := cmp.Diff(tt.wantPath, path); diff != "" {
			t.Errorf("splitName(%q) (-want +got):\n%s", tt.name, diff)
		}
		got, renamed := joinName(path, tt.dst)
		if got != tt.want || renamed != tt.renamed {
			t.Errorf("%q → %q (renamed %v), want %q (%v)", tt.name, got, renamed, tt.want, tt.renamed)
		}
	}
}

func FuzzNameTranslation(f *testing.F) {
	f.Add("Work/Projects/Beta v1.2", byte('.'))
	f.Fuzz(func(t *testing.T, name string, delim byte) {
		if delim == 0 || delim >= 0x80 || name == "" {
			return
		}
		ns := nsInfo{Delim: rune(delim)}
		got, _ := joinName(splitName(name, nsInfo{Delim: '/'}), ns)
		// Every segment maps to exactly one destination segment.
		if !strings.EqualFold(name, "INBOX") {
			if n, m := strings.Count(name, "/"), strings.Count(got, string(rune(delim))); n != m {
				t.Fatalf("%q → %q: %d separators, want %d", name, got, m, n)
			}
		}
	})
}

func TestPlanFolders(t *testing.T) {
	src := []srcFolder{
		{Name: "INBOX", Path: []string{"INBOX"}},
		{Name: "Sent", Path: []string{"Sent"}, SpecialUse: imap.MailboxAttrSent},
		{Name: "Deleted Items", Path: []string{"Deleted Items"}, SpecialUse: imap.MailboxAttrTrash},
		{Name: "Lists", Path: []string{"Lists"}, NoSelect: true},
		{Name: "Lists/go", Path: []string{"Lists", "go"}},
		{Name: "Old", Path: []string{"Old"}},
		{Name: "a.b", Path: []string{"a.b"}},
		{Name: "a_b", Path: []string{"a_b"}},
		{Name: "Shared", Path: []string{"Shared"}},
	}
	dstList := []*imap.ListData{
		{Mailbox: "INBOX"}, {Mailbox: "Sent Messages", Attrs: []imap.MailboxAttr{imap.MailboxAttrSent}}, {Mailbox: "Trash", Attrs: []imap.MailboxAttr{imap.MailboxAttrTrash}},
	}
	c := &Copier{Exclude: []string{"Lists/*"}, Map: map[string]string{"Old": "Archive/Old"},
		SkipFolder: func(n string) (bool, string) { return n == "Shared", "mountpoint" }}
	plans, err := c.planFolders(src, nsInfo{Delim: '/'}, nsInfo{Delim: '.'}, dstList, true)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range plans {
		v := p.Dst
		if p.Skip != "" {
			v = "skip: " + p.Skip
		}
		if p.Err != "" {
			v = "err"
		}
		got[p.Src.Name] = v
	}
	want := map[string]string{
		"INBOX":         "INBOX",
		"Sent":          "Sent Messages",
		"Deleted Items": "Trash",
		"Lists":         "Lists",
		"Lists/go":      "skip: excluded by Lists/*",
		"Old":           "Archive.Old",
		"a.b":           "a_b",
		"a_b":           "err",
		"Shared":        "skip: mountpoint",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}
