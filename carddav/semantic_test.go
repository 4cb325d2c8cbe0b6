package carddav

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/internal/davtext/respell"
)

// benchCard is a vCard 3.0 with Apple-style groups (item1.EMAIL with its
// item1.X-ABLabel), TYPE lists, structured N/ADR/ORG, CATEGORIES, an
// escaped NOTE and a base64 PHOTO.
func benchCard(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "semantic", "bench-group.vcf"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func edit(t testing.TB, s string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("edit: %q not in the card", pairs[i])
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s
}

func dropLine(t testing.TB, s, prefix string) string {
	t.Helper()
	var out []string
	n := 0
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
			continue
		}
		out = append(out, l)
	}
	if n == 0 {
		t.Fatalf("dropLine: no line starts with %q", prefix)
	}
	return strings.Join(out, "")
}

func TestSemanticEqual(t *testing.T) {
	base := benchCard(t)
	tests := []struct {
		name string
		edit func(t *testing.T, s string) string
	}{
		{"groups renamed", func(t *testing.T, s string) string {
			return edit(t, s, "item1.", "ITEM7.", "item2.", "Other.")
		}},
		{"grouped properties apart and reordered", func(t *testing.T, s string) string {
			s = dropLine(t, s, "item1.X-ABLabel")
			return edit(t, s, "END:VCARD", "item1.X-ABLabel:_$!<Work>!$_\r\nEND:VCARD")
		}},
		{"TYPE as repeated parameters, in another order and case", func(t *testing.T, s string) string {
			return edit(t, s, "EMAIL;TYPE=INTERNET,HOME:", "EMAIL;type=home;TYPE=internet:")
		}},
		{"TYPE list quoted", func(t *testing.T, s string) string {
			return edit(t, s, "TEL;TYPE=CELL,VOICE:", `TEL;TYPE="voice,cell":`)
		}},
		{"vCard 2.1 bare TYPE parameters", func(t *testing.T, s string) string {
			return edit(t, s, "TEL;TYPE=CELL,VOICE:", "TEL;CELL;VOICE:")
		}},
		{"names in lower case", func(t *testing.T, s string) string {
			return edit(t, s, "FN:", "fn:", "item1.X-ABLabel", "item1.x-ablabel", "ADR;TYPE=", "Adr;type=")
		}},
		{"ENCODING=BASE64 for b, PHOTO folded", func(t *testing.T, s string) string {
			return edit(t, s, "PHOTO;ENCODING=b;TYPE=PNG:iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB", "PHOTO;ENCODING=BASE64;TYPE=png:iVBORw0KGgoAAAANSUhE\r\n UgAAAAEAAAAB")
		}},
		{"trailing empty N components dropped", func(t *testing.T, s string) string {
			return edit(t, s, "N:User;Bench;;;", "N:User;Bench")
		}},
		{"CATEGORIES reordered", func(t *testing.T, s string) string {
			return edit(t, s, "CATEGORIES:Friends,Work", "CATEGORIES:Work,Friends")
		}},
		{"TEXT escape \\N for \\n", func(t *testing.T, s string) string {
			return edit(t, s, `NOTE:Line one\nLine two`, `NOTE:Line one\NLine two`)
		}},
		{"REV and PRODID from the server", func(t *testing.T, s string) string {
			return edit(t, s, "REV:20250101T000000Z", "REV:20261206T101010Z\r\nPRODID:-//Xandikos//EN")
		}},
		{"LF line ends, folded at 10 octets", func(t *testing.T, s string) string {
			var b strings.Builder
			for _, l := range strings.SplitAfter(s, "\r\n") {
				l = strings.TrimSuffix(l, "\r\n")
				for len(l) > 10 {
					b.WriteString(l[:10] + "\n ")
					l = l[10:]
				}
				if l != "" {
					b.WriteString(l + "\n")
				}
			}
			return b.String()
		}},
	}
	var legacyFlagged []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := tt.edit(t, base)
			if other == base {
				t.Fatal("the edit changed nothing")
			}
			if d := (Rules{}).Diff([]byte(base), []byte(other)); len(d) != 0 {
				t.Errorf("Diff = %v, want none", d)
			}
			_, ha, errA := Rules{}.Fingerprint([]byte(base))
			_, hb, errB := Rules{}.Fingerprint([]byte(other))
			if errA != nil || errB != nil {
				t.Fatalf("Fingerprint: %v, %v", errA, errB)
			}
			if ha != hb {
				t.Errorf("fingerprints differ")
			}
			la, _ := legacyHash([]byte(base))
			lb, _ := legacyHash([]byte(other))
			if la != lb {
				legacyFlagged = append(legacyFlagged, tt.name)
			}
		})
	}
	t.Logf("the legacy fingerprint flags %d of %d respellings: %q", len(legacyFlagged), len(tests), legacyFlagged)
}

func TestSemanticDifferent(t *testing.T) {
	base := benchCard(t)
	tests := []struct {
		name string
		edit func(t *testing.T, s string) string
		want []string
	}{
		{"FN changed", func(t *testing.T, s string) string {
			return edit(t, s, "FN:Bench User", "FN:Bench user")
		}, []string{"FN"}},
		{"a label moved to the other address", func(t *testing.T, s string) string {
			return edit(t, s, "item1.X-ABLabel", "item2.X-ABLabel")
		}, []string{"EMAIL", "X-ABLABEL"}},
		{"a label dropped", func(t *testing.T, s string) string {
			return dropLine(t, s, "item1.X-ABLabel")
		}, []string{"EMAIL", "X-ABLABEL"}},
		{"an EMAIL dropped", func(t *testing.T, s string) string {
			return dropLine(t, s, "item2.EMAIL")
		}, []string{"EMAIL", "X-ABLABEL"}},
		{"an EMAIL taken out of its group", func(t *testing.T, s string) string {
			s = edit(t, s, "item2.EMAIL", "EMAIL")
			return s
		}, []string{"EMAIL", "X-ABLABEL"}},
		{"TEL TYPE changed", func(t *testing.T, s string) string {
			return edit(t, s, "TEL;TYPE=CELL,VOICE:", "TEL;TYPE=HOME,VOICE:")
		}, []string{"TEL"}},
		{"ADR street changed", func(t *testing.T, s string) string {
			return edit(t, s, "Hauptstraße 1", "Hauptstraße 2")
		}, []string{"ADR"}},
		{"ADR components shifted", func(t *testing.T, s string) string {
			return edit(t, s, "ADR;TYPE=WORK:;;Hauptstraße 1;", "ADR;TYPE=WORK:;Hauptstraße 1;;")
		}, []string{"ADR"}},
		{"ORG unit dropped", func(t *testing.T, s string) string {
			return edit(t, s, "ORG:Bench GmbH;R&D", "ORG:Bench GmbH")
		}, []string{"ORG"}},
		{"a CATEGORY lost", func(t *testing.T, s string) string {
			return edit(t, s, "CATEGORIES:Friends,Work", "CATEGORIES:Friends")
		}, []string{"CATEGORIES"}},
		{"PHOTO altered", func(t *testing.T, s string) string {
			return edit(t, s, "ErkJggg==", "ErkJggA=")
		}, []string{"PHOTO"}},
		{"PHOTO truncated at the comma (Radicale data: URI bug)", func(t *testing.T, s string) string {
			return edit(t, s, "PHOTO;ENCODING=b;TYPE=PNG:iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "PHOTO:data:image/png\\;base64")
		}, []string{"PHOTO"}},
		{"PHOTO dropped", func(t *testing.T, s string) string {
			return dropLine(t, s, "PHOTO")
		}, []string{"PHOTO"}},
		{"NOTE escape changes the text", func(t *testing.T, s string) string {
			return edit(t, s, `Line two\, with`, `Line two\\, with`)
		}, []string{"NOTE"}},
		{"converted to vCard 4.0", func(t *testing.T, s string) string {
			return edit(t, s, "VERSION:3.0", "VERSION:4.0")
		}, []string{"VERSION"}},
	}
	valid := regexp.MustCompile(`^[A-Z0-9-]+(/[A-Z0-9-]+)*$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := tt.edit(t, base)
			got := Rules{}.Diff([]byte(base), []byte(other))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
			for _, p := range got {
				if !valid.MatchString(p) {
					t.Errorf("path %q holds more than names", p)
				}
			}
			_, ha, _ := Rules{}.Fingerprint([]byte(base))
			_, hb, err := Rules{}.Fingerprint([]byte(other))
			if err != nil {
				t.Fatal(err)
			}
			if ha == hb {
				t.Errorf("fingerprints equal")
			}
			re, ok := respell.Respell([]byte(other), respell.Options{Seed: 11, Groups: true})
			if !ok {
				t.Fatal("Respell: does not parse")
			}
			if diff := cmp.Diff(tt.want, Rules{}.Diff([]byte(base), re)); diff != "" {
				t.Errorf("Diff after respelling (-want +got):\n%s", diff)
			}
		})
	}
}
