package metrics

import (
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// DefaultLabelLimit is how many distinct values one label (worker_type,
// tier, reason, ...) takes before further new values are counted under
// OtherLabel. Worker types are the user's, a few dozen at most; the limit
// is there for what a hostile or broken peer sends: dead letters of
// invented worker types, results of invented ones.
const DefaultLabelLimit = 1000

// MaxLabelLength is the longest label value kept, in bytes; a longer one
// is counted under OtherLabel, as is one that is not valid UTF-8.
const MaxLabelLength = 128

// OtherLabel stands for every label value beyond a label's limit, longer
// than MaxLabelLength or not valid UTF-8.
const OtherLabel = "other"

// labelSet bounds the values of one label. Values seen are kept in a
// sync.Map, so that the common case, a value seen before, takes no lock.
type labelSet struct {
	name  string
	limit int
	seen  sync.Map // string -> struct{}
	n     atomic.Int64
	mu    sync.Mutex // serializes admissions
	// overflow counts values folded into OtherLabel; it feeds
	// heddle_metrics_label_overflow_total.
	overflow func()
}

// value returns v when it may be a label value, OtherLabel otherwise.
func (s *labelSet) value(v string) string {
	if v == "" {
		return v
	}
	if _, ok := s.seen.Load(v); ok {
		return v
	}
	if len(v) > MaxLabelLength || !utf8.ValidString(v) {
		s.overflow()
		return OtherLabel
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen.Load(v); ok {
		return v
	}
	if int(s.n.Load()) >= s.limit {
		s.overflow()
		return OtherLabel
	}
	s.seen.Store(v, struct{}{})
	s.n.Add(1)
	return v
}
