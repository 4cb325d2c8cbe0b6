package transfer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProgress2(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Progress
		ok   bool
	}{
		{"        3000000  99%    2.11MB/s    0:00:01 (xfr#1, to-chk=2/4)", Progress{Bytes: 3000000, Files: 2, TotalFiles: 4}, true},
		{"          32768   1%    0.00kB/s    0:00:00  ", Progress{Bytes: 32768}, true},
		{"      1,238,099  10%    1.17MB/s    0:00:01 (xfr#1, ir-chk=1012/1014)", Progress{Bytes: 1238099, Files: 2, TotalFiles: 1014}, true},
		{"Number of files: 4 (reg: 2, dir: 2)", Progress{}, false},
		{"sent 3000928 bytes  received 62 bytes  2000660.00 bytes/sec", Progress{}, false},
		{"  -5  10%", Progress{}, false},
		{"  12  10% (xfr#1, to-chk=5/4)", Progress{Bytes: 12}, true},
		{"", Progress{}, false},
	} {
		got, ok := parseProgress2(tc.line)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseProgress2(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

const statsOut = `
Number of files: 1234 (reg: 1000, dir: 234)
Number of created files: 3 (reg: 2, dir: 1)
Number of deleted files: 0
Number of regular files transferred: 2
Total file size: 3000003 bytes
Total transferred file size: 3000003 bytes
Literal data: 1000003 bytes
Matched data: 2000000 bytes
File list size: 0
Total bytes sent: 3000928
Total bytes received: 62

sent 3000928 bytes  received 62 bytes  2000660.00 bytes/sec
total size is 3000003  speedup is 1.00
`

func TestParseStats(t *testing.T) {
	got, ok := parseStats([]byte(statsOut))
	want := Stats{Files: 1000, Dirs: 234, Bytes: 3000003, Transferred: 2, TransferredBytes: 3000003, Literal: 1000003, Matched: 2000000}
	if !ok {
		t.Fatal("no stats found")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseStats (-want +got):\n%s", diff)
	}
	if _, ok := parseStats([]byte("rsync: connection unexpectedly closed\n")); ok {
		t.Error("stats found in an error message")
	}
}

func TestItemized(t *testing.T) {
	out := ">f.st...... accounts/a/account_info\n" +
		"cd+++++++++ items/00/\n" +
		".d..t...... items/\n" +
		"*deleting   stale.bin\n" +
		"created directory /x\n" +
		statsOut
	differ, attrs, extra := itemized([]byte(out))
	if diff := cmp.Diff([]string{"accounts/a/account_info", "items/00/"}, differ); diff != "" {
		t.Errorf("differ (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"items/"}, attrs); diff != "" {
		t.Errorf("attrs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"stale.bin"}, extra); diff != "" {
		t.Errorf("extra (-want +got):\n%s", diff)
	}
}

func TestScanProgress(t *testing.T) {
	in := "\r      32768   1%    0.00kB/s    0:00:00  \r    3000003 100%    2.11MB/s    0:00:01 (xfr#2, to-chk=0/4)\n" + statsOut
	var got []Progress
	var rest bytes.Buffer
	scanProgress(strings.NewReader(in), func(p Progress) { got = append(got, p) }, &rest)
	want := []Progress{{Bytes: 32768}, {Bytes: 3000003, Files: 4, TotalFiles: 4}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	if s, ok := parseStats(rest.Bytes()); !ok || s.Bytes != 3000003 {
		t.Errorf("stats after progress = %+v, %v", s, ok)
	}
}

func TestRshQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/kh":         "/etc/kh",
		"/a b/kh":         "'/a b/kh'",
		"/a'b/kh":         `"/a'b/kh"`,
		"":                "''",
		"UserKnownHosts=": "UserKnownHosts=",
	} {
		got, err := rshQuote(in)
		if err != nil || got != want {
			t.Errorf("rshQuote(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := rshQuote(`a'b"c`); err == nil {
		t.Error("rshQuote accepted both quotes")
	}
}

func TestSSHCommand(t *testing.T) {
	m := &Remote{Addr: "[::1]:2222", User: "root", KnownHostsFile: "/etc/zx/known hosts", KeyFiles: []string{"/etc/zx/id"}}
	cmd, host, err := m.sshCommand()
	if err != nil {
		t.Fatal(err)
	}
	want := "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o 'UserKnownHostsFile=/etc/zx/known hosts' -p 2222 -o IdentitiesOnly=yes -i /etc/zx/id -l root"
	if cmd != want || host != "[::1]" {
		t.Errorf("sshCommand = %q, %q; want %q, [::1]", cmd, host, want)
	}
}

func FuzzParseProgress2(f *testing.F) {
	f.Add("        3000000  99%    2.11MB/s    0:00:01 (xfr#1, to-chk=2/4)")
	f.Add("      1,238,099  10%    1.17MB/s    0:00:01 (xfr#1, ir-chk=1012/1014)")
	f.Fuzz(func(t *testing.T, line string) {
		p, ok := parseProgress2(line)
		if !ok {
			return
		}
		if p.Bytes < 0 || p.Files < 0 || p.Files > p.TotalFiles {
			t.Fatalf("parseProgress2(%q) = %+v", line, p)
		}
	})
}

func FuzzParseStats(f *testing.F) {
	f.Add([]byte(statsOut))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _ := parseStats(b)
		if s.Files < 0 || s.Bytes < 0 || s.Literal < 0 || s.Matched < 0 {
			t.Fatalf("negative stats %+v", s)
		}
		itemized(b)
	})
}

func TestIsStaleTemp(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"items/ff/blob.big", "items/ff/.blob.big.Ab12Cd", "items/ff/.orphan.Ab12Cd", "map", ".map.x", ".map.Ab12C!"} {
		p := filepath.Join(dir, filepath.FromSlash(f))
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.WriteFile(p, []byte("x"), 0o600)
	}
	for rel, want := range map[string]bool{
		"items/ff/.blob.big.Ab12Cd": true,  // next to blob.big
		"items/ff/.orphan.Ab12Cd":   false, // no "orphan" next to it
		".map.x":                    false, // not six characters
		".map.Ab12C!":               false,
		"map":                       false,
	} {
		if got := isStaleTemp(dir, rel); got != want {
			t.Errorf("isStaleTemp(%q) = %v, want %v", rel, got, want)
		}
	}
}
