package heddle

import "log/slog"

// Option configures the cross-cutting concerns every actor shares. Settings
// specific to one actor live in its Config struct.
type Option func(*actorOptions)

type actorOptions struct {
	logger *slog.Logger
}

// WithLogger sets the logger an actor writes its events to. Each event is
// a slog record whose message is the event name (worker.completed,
// router.dead_lettered, ...) and whose attributes use the wire field names.
// The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *actorOptions) {
		if l != nil {
			o.logger = l
		}
	}
}

func applyOptions(opts []Option) actorOptions {
	o := actorOptions{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
