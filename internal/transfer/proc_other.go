//go:build !linux

package transfer

import (
	"os"
	"os/exec"
	"time"
)

// configure sends an interrupt when ctx ends (rsync then keeps the partial
// file) and kills the command if it has not ended 15 seconds later.
func configure(cmd *exec.Cmd) {
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return cmd.Process.Signal(os.Interrupt)
	}
	cmd.WaitDelay = 15 * time.Second
}
