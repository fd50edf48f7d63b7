//go:build !unix

package execrun

import "os/exec"

// setProcessGroup does nothing where process groups do not exist.
func setProcessGroup(*exec.Cmd) {}

// killProcessGroup kills the command's own process; children it started
// are not reached on this platform.
func killProcessGroup(cmd *exec.Cmd) error { return cmd.Process.Kill() }
