// Command logline measures what one worker.completed record costs when
// logging is on, written by slog.Default as a program gets it (the log
// package's handler, before any slog.SetDefault; its output set to
// os.DevNull) and by a slog.TextHandler writing to os.DevNull (as
// BenchmarkTaskPathCPU's heddle_logging): wall time and the process's CPU
// time (getrusage) per record; the emit_ variants write it through
// internal/emit, as the worker does; write_only writes the record's text
// alone, one write per record. A program of its own, since the root
// package's tests replace slog.Default. Run from the repository's root:
//
//	go run ./.bench/logline [-n 200000] [-count 5]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/emit"
)

func main() {
	n := flag.Int("n", 200000, "records per run")
	count := flag.Int("count", 5, "runs of each")
	flag.Parse()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		log.Fatal(err)
	}
	defaultLogger := slog.Default() // read before log's output changes: the same handler
	log.SetOutput(devNull)
	text := slog.New(slog.NewTextHandler(devNull, nil))
	for range *count {
		for _, v := range []struct {
			name   string
			logger *slog.Logger
			emit   bool
		}{{"slog_default", defaultLogger, false}, {"text_handler", text, false},
			{"emit_slog_default", defaultLogger, true}, {"emit_text_handler", text, true}} {
			f := run
			if v.emit {
				f = runEmit
			}
			wall, cpu := f(v.logger, *n)
			report(v.name, *n, wall, cpu)
		}
		wall, cpu := writeOnly(devNull, *n)
		report("write_only", *n, wall, cpu)
	}
}

func report(name string, n int, wall, cpu time.Duration) {
	fmt.Fprintf(os.Stdout, "BenchmarkLogLine/%s\t%d\t%.1f ns/op\t%.1f cpu-ns/op\n", name, n,
		float64(wall)/float64(n), float64(cpu)/float64(n))
}

// writeOnly writes a record's text, as the TextHandler formats it, with
// one write per record: the floor under any handler writing a line.
func writeOnly(f *os.File, n int) (wall, cpu time.Duration) {
	line := []byte(`time=2026-12-07T18:00:00.000Z level=INFO msg=worker.completed worker_type=echo task_id=6f1c2f0e-4b7a-4a53-9a55-0d3c1b8e7f21 parent_task_id="" model_tier=standard processing_time_ms=0 retry_count=0` + "\n")
	w0, c0 := time.Now(), processCPU()
	for range n {
		if _, err := f.Write(line); err != nil {
			log.Fatal(err)
		}
	}
	return time.Since(w0), processCPU() - c0
}

func run(logger *slog.Logger, n int) (wall, cpu time.Duration) {
	logger = logger.With(slog.String("worker_type", "echo"))
	ctx := context.Background()
	w0, c0 := time.Now(), processCPU()
	for range n {
		logger.LogAttrs(ctx, slog.LevelInfo, "worker.completed",
			slog.String("task_id", "6f1c2f0e-4b7a-4a53-9a55-0d3c1b8e7f21"), slog.String("parent_task_id", ""),
			slog.String("model_tier", "standard"), slog.Int("processing_time_ms", 0), slog.Int("retry_count", 0))
	}
	return time.Since(w0), processCPU() - c0
}

// runEmit writes the record as a worker does, through internal/emit.
func runEmit(logger *slog.Logger, n int) (wall, cpu time.Duration) {
	e := emit.New(emit.Config{Logger: logger, Actor: "worker"}).With(slog.String("worker_type", "echo"))
	ctx := context.Background()
	w0, c0 := time.Now(), processCPU()
	for range n {
		e.Emit(ctx, slog.LevelInfo, event.Event{Name: event.WorkerCompleted, TaskID: "6f1c2f0e-4b7a-4a53-9a55-0d3c1b8e7f21"},
			slog.String("task_id", "6f1c2f0e-4b7a-4a53-9a55-0d3c1b8e7f21"), slog.String("parent_task_id", ""),
			slog.String("model_tier", "standard"), slog.Int("processing_time_ms", 0), slog.Int("retry_count", 0))
	}
	return time.Since(w0), processCPU() - c0
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
