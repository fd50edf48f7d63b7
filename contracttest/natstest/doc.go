// Package natstest runs real NATS for tests: an embedded nats-server on a
// random loopback port (RunServer, StartServer), one that can be stopped
// and started again on its port (StartRestartableServer), a cluster of
// them (StartCluster), and EachBus, which runs a test on membus and on
// natsbus.
//
// It lives apart from contracttest so that a Bus author who runs
// contracttest.TestBus does not build nats-server: only this package
// imports it. Set HEDDLE_TEST_NATS_URL (EnvNATSURL) to run the natsbus
// tests against an external server instead; each test then works in a
// subject namespace of its own.
package natstest
