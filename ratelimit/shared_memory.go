package ratelimit

import (
	"context"
	"sync"
)

// MemoryStore is a Store in this process's memory: the limiters that share
// one MemoryStore share their buckets. It suits replicas in one process
// (on membus, or in tests); replicas in separate processes need a store
// they can all reach, such as natslimit.Store. The zero value is empty and
// ready to use; it is safe for concurrent use.
type MemoryStore struct {
	mu      sync.Mutex
	buckets map[string]memoryEntry
	rev     uint64 // the last revision handed out, over all keys
}

type memoryEntry struct {
	state BucketState
	rev   uint64
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// Get returns the state under key and its revision (0 when absent). It
// fails only when ctx has ended.
func (s *MemoryStore) Get(ctx context.Context, key string) (BucketState, uint64, error) {
	if err := ctx.Err(); err != nil {
		return BucketState{}, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.buckets[key]
	return e.state, e.rev, nil
}

// CompareAndSwap stores state under key when its revision is rev (0: when
// it is absent). It fails only when ctx has ended.
func (s *MemoryStore) CompareAndSwap(ctx context.Context, key string, state BucketState, rev uint64) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[key].rev != rev {
		return false, nil
	}
	if s.buckets == nil {
		s.buckets = map[string]memoryEntry{}
	}
	s.rev++
	s.buckets[key] = memoryEntry{state: state, rev: s.rev}
	return true, nil
}
