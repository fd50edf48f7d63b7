// Package contracttest holds the test kits of Heddle for Go, for the SDK's
// own tests and for yours:
//
//   - TestBus, the Bus conformance suite: every promise of the bus
//     contract, one subtest each. Any bus.Bus implementation must pass it.
//   - WireFixtures and WireFixtureFiles: golden TaskMessage, TaskResult,
//     OrchestratorGoal and dead-letter documents as the Python mesh writes
//     them, valid and invalid, embedded in the package.
//   - RunServer and StartServer: an embedded nats-server on a random
//     loopback port, shut down when the test ends; RunServer returns the
//     URL in HEDDLE_TEST_NATS_URL instead when that is set.
//   - EachBus and Transports: run one test body on membus and on natsbus,
//     so actors are proved on both transports.
//
// Production code never imports this package.
package contracttest
