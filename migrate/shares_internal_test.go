package migrate

import "testing"

func TestSamePerm(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"rwidx", "xdiwr", true},
		{"r", "r", true},
		{"rw", "r", false},
		{"", "", true},
		{"rwidxa", "rwidx", false},
	} {
		if got := samePerm(tc.a, tc.b); got != tc.want {
			t.Errorf("samePerm(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
