//go:build !membus_slicequeue

package membus

import "github.com/heddle-go/heddle/internal/blockqueue"

// pendingQueue is a subscription's pending queue, written by publishers
// under the subscription's lock, and pendingReader the delivery
// goroutine's side of it. This variant is internal/blockqueue;
// queue_slice.go, built with the tag membus_slicequeue, is the standard
// alternative it is benchmarked against.
type (
	pendingQueue  = blockqueue.Queue[envelope]
	pendingReader = blockqueue.Reader[envelope]
)
