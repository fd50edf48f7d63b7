package ratelimit

import "math"

// Limit describes one token bucket.
type Limit struct {
	// RatePerSecond is the refill rate. Zero (or a negative or NaN value)
	// means no refill: the bucket grants Burst tokens in its lifetime.
	// math.Inf(1) means unlimited.
	RatePerSecond float64
	// Burst is the capacity, and the number of tokens a new bucket holds.
	// Below one, the bucket grants nothing (unless the rate is infinite).
	Burst int
}

// normalized folds the out-of-range values into the ones they mean, so that
// equal behaviour means equal Limit values.
func (l Limit) normalized() Limit {
	if math.IsNaN(l.RatePerSecond) || l.RatePerSecond < 0 {
		l.RatePerSecond = 0
	}
	if l.Burst < 0 {
		l.Burst = 0
	}
	return l
}

// FromMaxConcurrent returns the limit the Python Heddle router builds from a
// tier's max_concurrent: capacity maxConcurrent, starting full, refilled at
// maxConcurrent tokens per 60 seconds (one every 60/maxConcurrent s). A
// maxConcurrent of zero or less gives a limit that grants nothing.
func FromMaxConcurrent(maxConcurrent int) Limit {
	if maxConcurrent <= 0 {
		return Limit{}
	}
	return Limit{RatePerSecond: float64(maxConcurrent) / 60, Burst: maxConcurrent}
}
