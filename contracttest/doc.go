// Package contracttest holds the test kits of Heddle for Go, for the SDK's
// own tests and for yours:
//
//   - TestBus, the Bus conformance suite: every promise of the bus
//     contract, one subtest each. Any bus.Bus implementation must pass it.
//   - WireFixtures and WireFixtureFiles: golden TaskMessage, TaskResult,
//     OrchestratorGoal and dead-letter documents as the Python mesh writes
//     them, valid and invalid, embedded in the package.
//
// The embedded NATS server and cluster, and EachBus (one test body on
// membus and on natsbus), are in the package natstest beside this one, so
// that running TestBus does not build nats-server: this package imports
// bus, the wire vocabulary and the standard library only.
//
// Production code never imports this package.
package contracttest
