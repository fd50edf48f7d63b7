// Command heddle operates a Heddle mesh over NATS: it checks a node's
// connectivity (preflight), runs the mesh's actors from their YAML files
// (router, processor, pipeline, scheduler, dead-letter monitor, worker
// registry, MCP gateway), submits goals and tasks, lists the live workers
// (workers), validates config files and publishes control messages. The files
// are those of the Python Heddle, so one file runs under either runtime.
//
// Install it with
//
//	go install github.com/heddle-go/heddle/cmd/heddle@latest
//
// and run heddle --help, or heddle VERB --help, for each verb's flags.
// Every verb takes --nats-url (default $NATS_URL, then
// nats://127.0.0.1:4222).
//
// Exit codes, for scripts:
//
//	0  success (a long-running verb: stopped by SIGINT or SIGTERM and drained)
//	1  the operation failed: a task or goal failed or was dead-lettered,
//	   a config is invalid, an actor stopped with an error
//	2  usage error: unknown verb or flag, missing or bad argument
//	3  cannot connect to NATS
//	4  timed out waiting for a result, or for a worker registry's answer
//
// The operator's guide is docs/operating.md in the repository.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
