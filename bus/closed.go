package bus

// Closer is an optional interface of a Bus: it says when the bus has
// closed, for whatever reason (Close or Drain called, a reconnect budget
// spent, credentials revoked). Every actor watches it, so that a process
// whose bus is gone for good does not stay up doing nothing: its Run
// returns an error wrapping ErrClosed and its supervisor can restart it.
//
// membus and natsbus implement it. A Bus that wraps another should
// forward both methods to the wrapped bus.
type Closer interface {
	// Done returns a channel that is closed once the bus has closed. When
	// Close or Drain closes the bus, it is closed by the time that call
	// returns.
	Done() <-chan struct{}
	// Err returns nil while the bus is open; once Done is closed it returns
	// an error that wraps ErrClosed and says why the bus closed.
	Err() error
}

// Done returns b's Done channel when b implements Closer, or nil (a channel
// that is never ready) when it does not.
func Done(b Bus) <-chan struct{} {
	if c, ok := b.(Closer); ok {
		return c.Done()
	}
	return nil
}

// Err returns why b closed when b implements Closer and has closed, and
// nil otherwise. The error wraps ErrClosed.
func Err(b Bus) error {
	if c, ok := b.(Closer); ok {
		return c.Err()
	}
	return nil
}
