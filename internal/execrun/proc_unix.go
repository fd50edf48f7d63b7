//go:build unix

package execrun

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup starts the command as the leader of a new process group,
// so killProcessGroup reaches the children it starts.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup sends SIGKILL to the command's whole process group. A
// group already gone is reported as os.ErrProcessDone, which os/exec reads
// as "nothing to cancel".
func killProcessGroup(cmd *exec.Cmd) error {
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}
