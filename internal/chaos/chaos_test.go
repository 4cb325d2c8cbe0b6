package chaos

import (
	"os"
	"os/exec"
	"testing"
)

// full reports whether the full-size run was asked for (ZXM_CHAOS_FULL=1).
func full() bool { return os.Getenv("ZXM_CHAOS_FULL") == "1" }

// size returns reduced or, in a full run, fullSize.
func size(reduced, fullSize int) int {
	if full() {
		return fullSize
	}
	return reduced
}

// needBinary skips the test when bin is not installed, or fails it in CI
// (CI set), where a skipped real-server test would hide a gap.
func needBinary(t *testing.T, bin string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed: %v (CI must run this test)", bin, err)
		}
		t.Skipf("%s not installed: %v", bin, err)
	}
}
