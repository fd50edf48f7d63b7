// Package natslimit keeps the shared token buckets of
// ratelimit.SharedLimiter in a JetStream key-value bucket, so that router
// replicas in separate processes draw from one bucket per tier. It is a
// package of its own because it needs nats.go: a membus-only program does
// not build it.
//
// Each tier is one key, holding the bucket's tokens and the time they
// were counted, in JSON. An admission reads the key (one KV get) and
// writes it back if its revision is unchanged (one KV update with the
// expected revision, or a create for a tier never seen): two round trips
// to the server per task, three or more when other replicas won the race.
package natslimit

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/ratelimit"
)

// DefaultBucket names the key-value bucket when Config.Bucket is empty.
const DefaultBucket = "heddle_rate_limits"

// Config configures a Store.
type Config struct {
	// Bucket names the key-value bucket; empty means DefaultBucket. Every
	// replica sharing a limit uses the same bucket. The name gets the
	// bus's subject prefix, as stream names do (natsbus.WireStreamName).
	Bucket string
	// Replicas is how many servers keep the bucket; zero means 1.
	Replicas int
	// File keeps the bucket on disk instead of in memory: the buckets'
	// tokens then survive a restart of the servers. In memory (the
	// default) a restart gives every tier a full bucket.
	File bool
}

// Store is a ratelimit.Store on a JetStream key-value bucket. It is safe
// for concurrent use, by any number of processes at once.
type Store struct {
	kv jetstream.KeyValue
}

var _ ratelimit.Store = (*Store)(nil)

// Open creates the key-value bucket when it is missing and returns the
// store. A nil bus or a negative Replicas is an error wrapping
// heddle.ErrConfig that names it; a bus without JetStream fails.
func Open(ctx context.Context, b *natsbus.Bus, cfg Config) (*Store, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: natslimit: the bus is nil", heddle.ErrConfig)
	}
	if cfg.Replicas < 0 {
		return nil, fmt.Errorf("%w: natslimit: Config.Replicas must not be negative, got %d", heddle.ErrConfig, cfg.Replicas)
	}
	js, err := b.JetStream()
	if err != nil {
		return nil, err
	}
	kvc := jetstream.KeyValueConfig{Bucket: b.WireStreamName(cmp.Or(cfg.Bucket, DefaultBucket)),
		Description: "heddle rate-limit token buckets, one key per tier", History: 1,
		Replicas: max(cfg.Replicas, 1), Storage: jetstream.MemoryStorage}
	if cfg.File {
		kvc.Storage = jetstream.FileStorage
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, kvc)
	if err != nil {
		return nil, fmt.Errorf("natslimit: bucket %q: %w", kvc.Bucket, err)
	}
	return &Store{kv: kv}, nil
}

// record is a bucket's state as the key holds it.
type record struct {
	Tokens float64 `json:"tokens"`
	At     int64   `json:"at_unix_nano"`
}

// Get returns the state of tier's bucket and its revision, 0 when the key
// is absent.
func (s *Store) Get(ctx context.Context, tier string) (ratelimit.BucketState, uint64, error) {
	e, err := s.kv.Get(ctx, key(tier))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ratelimit.BucketState{}, 0, nil
	}
	if err != nil {
		return ratelimit.BucketState{}, 0, fmt.Errorf("natslimit: %w", err)
	}
	var r record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return ratelimit.BucketState{}, 0, fmt.Errorf("natslimit: key %q: %w", e.Key(), err)
	}
	return ratelimit.BucketState{Tokens: r.Tokens, At: time.Unix(0, r.At)}, e.Revision(), nil
}

// CompareAndSwap writes tier's state if the key's revision is still rev
// (0: if the key is absent), and reports whether it did.
func (s *Store) CompareAndSwap(ctx context.Context, tier string, st ratelimit.BucketState, rev uint64) (bool, error) {
	data, err := json.Marshal(record{Tokens: st.Tokens, At: st.At.UnixNano()})
	if err != nil {
		return false, fmt.Errorf("natslimit: tier %q: %w", tier, err)
	}
	if rev == 0 {
		_, err = s.kv.Create(ctx, key(tier), data)
	} else {
		_, err = s.kv.Update(ctx, key(tier), data, rev)
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists) || wrongRevision(err):
		return false, nil
	}
	return false, fmt.Errorf("natslimit: %w", err)
}

func wrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// key names tier's key: "tier_" and the tier when it is made of letters,
// digits, '-' and '_' (as every heddle.ModelTier is), else "tierhex_" and
// its bytes in hex, so any tier string is a valid key.
func key(tier string) string {
	plain := tier != ""
	for _, c := range []byte(tier) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			plain = false
			break
		}
	}
	if plain {
		return "tier_" + tier
	}
	return "tierhex_" + hex.EncodeToString([]byte(tier))
}
