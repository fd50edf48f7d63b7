// Package version holds this SDK's version, which its heartbeats carry as
// sdk_version and its tracer names as its instrumentation version. It is
// the version CHANGELOG.md gives the release being made.
package version

// SDK is this SDK's version.
const SDK = "0.1.0"
