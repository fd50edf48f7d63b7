//go:build !unix

package worker

// processCPU reports that the process's CPU time is not measured here.
func processCPU() (int64, bool) { return 0, false }
