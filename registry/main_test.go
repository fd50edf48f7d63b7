package registry_test

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaks a goroutine. Actors log to
// slog.Default() unless told otherwise; the tests that read events give
// their own logger, so the default discards them, to keep the
// output readable.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}
