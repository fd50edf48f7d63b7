package bus

// SubscribeOptions is the resolved form of a Subscribe call's options.
// Implementations call NewSubscribeOptions to obtain it.
type SubscribeOptions struct {
	// Queue is the queue group name; "" for a plain subscription.
	Queue string
	// PendingMsgs and PendingBytes bound the messages held for a slow
	// handler. Zero means the bus default.
	PendingMsgs  int
	PendingBytes int
	// LocalInterest relaxes subscribe-before-publish to the subscribing
	// connection's own later publishes; see LocalInterest.
	LocalInterest bool
}

// SubscribeOption configures one subscription.
type SubscribeOption func(*SubscribeOptions)

// Queue makes the subscription a member of queue group name: each message
// goes to exactly one member of the group.
func Queue(name string) SubscribeOption {
	return func(o *SubscribeOptions) { o.Queue = name }
}

// PendingLimits bounds the messages and payload bytes a subscription holds
// while its handler is busy. When either is reached, new messages are
// dropped and reported as ErrSlowConsumer. Values <= 0 keep the default.
func PendingLimits(msgs, bytes int) SubscribeOption {
	return func(o *SubscribeOptions) {
		if msgs > 0 {
			o.PendingMsgs = msgs
		}
		if bytes > 0 {
			o.PendingBytes = bytes
		}
	}
}

// LocalInterest asks only that the subscription see what follows from
// publishes made later on the same connection: the messages themselves and
// every reply another connection sends in response to them. It does not
// promise that a publish another connection makes right after Subscribe
// returns is delivered. A bus may use it to skip work: natsbus skips the
// flush round trip to the server, because the server handles one
// connection's subscription before that connection's later publishes.
// membus ignores it; its interest is always live at once.
//
// The request-reply path uses it: subscribe to the reply subject, then
// publish the request on the same connection.
func LocalInterest() SubscribeOption {
	return func(o *SubscribeOptions) { o.LocalInterest = true }
}

// NewSubscribeOptions applies opts over the defaults and validates the
// queue group name.
func NewSubscribeOptions(opts ...SubscribeOption) (SubscribeOptions, error) {
	o := SubscribeOptions{PendingMsgs: DefaultPendingMsgs, PendingBytes: DefaultPendingBytes}
	for _, opt := range opts {
		opt(&o)
	}
	if o.Queue != "" {
		if err := ValidateQueue(o.Queue); err != nil {
			return o, err
		}
	}
	return o, nil
}
