package transfer

import (
	"os/exec"
	"syscall"
	"time"
)

// configure runs the command in its own process group, which gets SIGTERM
// when ctx ends (rsync then keeps the partial file, rsync(1) --partial) and
// when this process dies, and SIGKILL if it has not ended 15 seconds
// later.
func configure(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = 15 * time.Second
}
