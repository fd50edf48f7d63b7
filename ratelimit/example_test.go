package ratelimit_test

import (
	"fmt"
	"time"

	"github.com/heddle-go/heddle/ratelimit"
)

func ExampleTierLimiter() {
	clock := ratelimit.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	limiter := ratelimit.NewTierLimiter(map[string]ratelimit.Limit{
		"local": ratelimit.FromMaxConcurrent(4), // 4 at once, then one per 15 s
	}, ratelimit.WithClock(clock))

	for i := range 5 {
		fmt.Println("local", i+1, limiter.Allow("local"))
	}
	clock.Advance(15 * time.Second)
	fmt.Println("after 15s", limiter.Allow("local"))
	fmt.Println("frontier (no limit)", limiter.Allow("frontier"))
	// Output:
	// local 1 true
	// local 2 true
	// local 3 true
	// local 4 true
	// local 5 false
	// after 15s true
	// frontier (no limit) true
}
