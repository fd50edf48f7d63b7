package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/heddle-go/heddle/ratelimit"
)

func ExampleTierLimiter() {
	limiter := ratelimit.NewTierLimiter(map[string]ratelimit.Limit{
		"local": ratelimit.FromMaxConcurrent(4), // 4 at once, then one per 15 s
	})

	for i := range 5 {
		fmt.Println("local", i+1, limiter.Allow("local"))
	}
	fmt.Println("frontier (no limit)", limiter.Allow("frontier"))

	// The next local token is 15 s away: a Wait that may last only a second
	// returns at once instead of waiting out its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := limiter.Wait(ctx, "local")
	fmt.Println("wait 1s for local:", errors.Is(err, context.DeadlineExceeded))
	// Output:
	// local 1 true
	// local 2 true
	// local 3 true
	// local 4 true
	// local 5 false
	// frontier (no limit) true
	// wait 1s for local: true
}
