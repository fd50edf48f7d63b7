//go:build membus_clone

package membus

import (
	"bytes"
	"slices"
)

// payloadCopier makes the payload copies of Publish: one bytes.Clone per
// publish, clipped so that its capacity equals its length (subscriptions
// share the copy; one appending to it must not write where another could).
type payloadCopier struct{}

func (*payloadCopier) copy(p []byte) []byte { return slices.Clip(bytes.Clone(p)) }
