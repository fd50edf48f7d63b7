package dispatch

// The shared subscriptions' bounds, for the tests that check them.
const (
	Linger  = linger
	MaxIdle = maxIdle
)
