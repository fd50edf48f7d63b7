//go:build !membus_clone

package membus

import "github.com/heddle-go/heddle/internal/slab"

// payloadCopier makes the payload copies of Publish. This variant carves
// them out of shared chunks (internal/slab); copy_clone.go, built with the
// tag membus_clone, is the standard alternative it is benchmarked against.
type payloadCopier struct{ s slab.Slab }

func (c *payloadCopier) copy(p []byte) []byte { return c.s.Copy(p) }
