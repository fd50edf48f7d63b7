#!/usr/bin/env bash
# all.sh OUTDIR [TREE]: runs every benchmark command of BENCHMARKS.md
# (all but the A/B of ab.sh) one after the other in TREE (default: this
# repository), each through run.sh, so that OUTDIR/<section>.txt holds the
# results with `uptime` before each command and the load average beside
# each run. Run it on an otherwise idle machine; it takes about 12 minutes
# on 2 vCPUs.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: all.sh OUTDIR [TREE]}
tree=${2:-$(dirname "$here")}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$tree" || exit 1
run() { local log=$1; shift; "$here/run.sh" "$out/$log.txt" "$@"; }

# Request-reply (dispatch.Request against nats.go)
run request go test -run '^$' -bench 'BenchmarkDispatchAndWaitInterleaved' -benchmem -benchtime 3s -count 5 ./dispatch
run request go test -run '^$' -bench 'BenchmarkDispatchAndWait$' -benchmem -benchtime 3s -count 5 ./dispatch
run request go test -run '^$' -bench 'BenchmarkDispatchAndWaitParallel' -benchmem -benchtime 3s -count 5 ./dispatch
# Bus throughput
run bus go test -run '^$' -bench BenchmarkPublishSubscribe -benchmem -benchtime 2s -count 5 ./membus
run bus go test -run '^$' -bench BenchmarkPublishSubscribe -benchmem -benchtime 2s -count 5 ./natsbus
run bus go test -run '^$' -bench BenchmarkValidatePublishSubject -benchmem -count 5 ./bus
# Wire codec and contracts
run wire go test -run '^$' -bench BenchmarkWire -benchmem -count 5 .
run wire go test -run '^$' -bench 'BenchmarkWorkerInputDecode' -benchmem -count 5 ./worker
run contracts go test -run '^$' -bench . -benchmem -count 5 ./contracts
# Rate limiter
run ratelimit go test -run '^$' -bench . -benchmem -count 5 ./ratelimit
# Capped collection
run capped go test -run '^$' -bench BenchmarkCappedCollection -benchtime=3x -count=5 ./dispatch
# Task path, router, worker
run taskpath go test -run '^$' -bench BenchmarkTaskPath -benchmem -benchtime 2s -count 5 .
run taskpath go test -run '^$' -bench 'BenchmarkRouterRoute|BenchmarkParseRouterRules|BenchmarkDeadLetterConsumerReceive' -benchmem -benchtime 2s -count 5 ./router
run taskpath go test -run '^$' -bench BenchmarkWorkerRoundTrip -benchmem -benchtime 2s -count 5 ./worker
# Fan-out and pipeline
run fanout go test -run '^$' -bench BenchmarkOrchestratorFanOut1000 -benchmem -benchtime 2s -count 5 ./dispatch
run fanout go test -run '^$' -bench BenchmarkPipelineDiamond -benchmem -benchtime 2s -count 5 ./pipeline
