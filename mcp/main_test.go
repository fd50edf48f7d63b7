package mcp_test

import (
	"log/slog"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaks a goroutine. When the stdio test
// starts this binary as the gateway's process, it serves instead (see
// serveStdioChild). Actors log to slog.Default() unless told otherwise;
// the tests that read events give their own logger, so the default
// discards them, to keep the output readable.
func TestMain(m *testing.M) {
	if url := os.Getenv(stdioChildEnv); url != "" {
		os.Exit(serveStdioChild(url, os.Getenv(stdioChildWorkerEnv)))
	}
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}
