//go:build !race

package router_test

// raceEnabled: the tests run under the race detector.
const raceEnabled = false
