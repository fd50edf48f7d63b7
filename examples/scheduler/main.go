// Command scheduler publishes goals and tasks on a timetable: the
// schedules of a YAML config in the Python Heddle's scheduler shape
// (schedules.yaml, beside this file, is one), until it gets SIGINT or
// SIGTERM.
//
//	go run ./examples/scheduler -nats nats://127.0.0.1:4222 -config examples/scheduler/schedules.yaml
//
// Without -config it runs the schedules.yaml built into it. A config with
// a mistake stops it at once, with every problem named by its path and
// line, and exit status 1.
//
// Tasks go to heddle.tasks.incoming, so a router (router.New, in a
// process of its own) must run for them to reach their workers; goals go
// to the pipelines and orchestrators. Run one scheduler per timetable: two
// copies of one would send each message twice.
package main

import (
	"context"
	_ "embed"
	"flag"
	"log"
	_ "time/tzdata" // the time zones the config names, whatever the host has

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/scheduler"
)

// exampleConfig is schedules.yaml, the timetable run without -config.
//
//go:embed schedules.yaml
var exampleConfig []byte

func main() {
	natsURL := flag.String("nats", natsbus.DefaultURL, "NATS server URL")
	configPath := flag.String("config", "", "the scheduler config (YAML); empty: the schedules.yaml built in")
	flag.Parse()
	cfg, err := loadConfig(*configPath)
	if err != nil {
		log.Fatal(err)
	}
	b, err := natsbus.Connect(*natsURL)
	if err != nil {
		log.Fatal(err)
	}
	err = serve(context.Background(), b, cfg)
	b.Close()
	if err != nil {
		log.Fatal(err)
	}
}

// loadConfig reads the config at path, or the built-in one when path is
// empty.
func loadConfig(path string) (scheduler.Config, error) {
	if path == "" {
		return scheduler.ParseConfig(exampleConfig)
	}
	return scheduler.LoadConfig(path)
}

// serve runs a scheduler for cfg on b until SIGINT, SIGTERM or the end of
// ctx.
func serve(ctx context.Context, b bus.Bus, cfg scheduler.Config, opts ...heddle.Option) error {
	s, err := scheduler.New(b, cfg, opts...)
	if err != nil {
		return err
	}
	return heddle.Serve(ctx, s)
}
