package bus

// Pender is implemented by a Subscription that can say what it holds:
// the messages (and their payload bytes) delivered to it and not yet
// handled, the one being handled included, as nats.go counts them. Both
// membus and natsbus subscriptions implement it; a gauge of it shows a
// consumer falling behind before it reaches its pending limits and drops.
type Pender interface {
	Pending() (msgs, bytes int)
}

// Pending returns what sub holds (see Pender), and false when sub cannot
// say.
func Pending(sub Subscription) (msgs, bytes int, ok bool) {
	p, ok := sub.(Pender)
	if !ok {
		return 0, 0, false
	}
	msgs, bytes = p.Pending()
	return msgs, bytes, true
}
