package execrun

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxErrorStderr bounds how much of stderr an ExitError's message quotes;
// the full capture stays in ExitError.Stderr.
const maxErrorStderr = 1024

// ExitError reports a command that exited with a status other than 0, or
// was ended by a signal that Run did not send.
type ExitError struct {
	// Code is the exit status, or -1 when a signal ended the process.
	Code int
	// Stderr is the captured standard error (bounded by MaxOutputBytes).
	Stderr string

	command string
	state   string // as os.ProcessState.String: "exit status 3", "signal: killed"
}

// Error names the command and its exit status and quotes the end of stderr,
// where the cause is usually found.
func (e *ExitError) Error() string {
	state := e.state
	if state == "" {
		state = fmt.Sprintf("exit status %d", e.Code)
	}
	command := e.command
	if command == "" {
		command = "command"
	}
	return fmt.Sprintf("execrun: %s failed (%s): %s", command, state, stderrExcerpt(e.Stderr))
}

// stderrExcerpt trims stderr and keeps its last maxErrorStderr bytes.
func stderrExcerpt(stderr string) string {
	s := strings.TrimSpace(stderr)
	if s == "" {
		return "no stderr output"
	}
	if len(s) <= maxErrorStderr {
		return s
	}
	cut := len(s) - maxErrorStderr
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return "..." + s[cut:]
}
