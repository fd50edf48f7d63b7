package jsstore_test

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaks a goroutine; the actors' logs are
// discarded unless a test gives its own logger.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}
