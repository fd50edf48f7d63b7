package ratelimit

import (
	"testing"

	"golang.org/x/time/rate"
)

// The buckets here refill fast enough that Allow almost always succeeds, so
// the figures measure the granting path; the refusing path does the same
// work minus the state update.
const (
	benchRate  = 1e9
	benchBurst = 1 << 20
)

var benchTiers = []string{"local", "standard", "frontier"}

func BenchmarkBucketAllow(b *testing.B) {
	b.Run("heddle", func(b *testing.B) {
		bk := newBucket(Limit{RatePerSecond: benchRate, Burst: benchBurst})
		b.ReportAllocs()
		for b.Loop() {
			bk.allow()
		}
	})
	b.Run("x-time-rate", func(b *testing.B) {
		lim := rate.NewLimiter(benchRate, benchBurst)
		b.ReportAllocs()
		for b.Loop() {
			lim.Allow()
		}
	})
}

func BenchmarkLimiterAllow(b *testing.B) {
	b.Run("heddle", func(b *testing.B) {
		l := NewTierLimiter(benchLimits())
		b.ReportAllocs()
		for b.Loop() {
			l.Allow("standard")
		}
	})
	b.Run("heddle-unlimited-tier", func(b *testing.B) {
		l := NewTierLimiter(benchLimits())
		b.ReportAllocs()
		for b.Loop() {
			l.Allow("unknown")
		}
	})
	b.Run("x-time-rate-map", func(b *testing.B) {
		m := benchRateMap()
		b.ReportAllocs()
		for b.Loop() {
			m["standard"].Allow()
		}
	})
}

func BenchmarkLimiterAllowParallel(b *testing.B) {
	b.Run("heddle-one-tier", func(b *testing.B) {
		l := NewTierLimiter(benchLimits())
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow("standard")
			}
		})
	})
	b.Run("heddle-three-tiers", func(b *testing.B) {
		l := NewTierLimiter(benchLimits())
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				l.Allow(benchTiers[i%len(benchTiers)])
				i++
			}
		})
	})
	b.Run("x-time-rate-one-tier", func(b *testing.B) {
		m := benchRateMap()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m["standard"].Allow()
			}
		})
	})
}

func benchLimits() map[string]Limit {
	limits := make(map[string]Limit, len(benchTiers))
	for _, tier := range benchTiers {
		limits[tier] = Limit{RatePerSecond: benchRate, Burst: benchBurst}
	}
	return limits
}

func benchRateMap() map[string]*rate.Limiter {
	m := make(map[string]*rate.Limiter, len(benchTiers))
	for _, tier := range benchTiers {
		m[tier] = rate.NewLimiter(benchRate, benchBurst)
	}
	return m
}
