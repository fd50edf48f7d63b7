#!/usr/bin/env bash
# cpu.sh [TREE]: the task path's CPU-per-task table in one command:
# BenchmarkTaskPathCPU (root package) with the NATS server in a process of
# its own, so that getrusage counts the clients' CPU alone, then
# BenchmarkTaskPath for the natsbus / raw nats.go ratios, each line with
# the load beside it (run.sh).
#
# Environment: COUNT (default 5), BENCHTIME (default 50000x: tasks per
# variant), OUT (log file; default a fresh mktemp), NATS_SERVER (the
# nats-server binary; default the one on PATH).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tree=${1:-$(dirname "$here")}
count=${COUNT:-5}
benchtime=${BENCHTIME:-50000x}
out=${OUT:-$(mktemp /tmp/heddle-cpu.XXXXXX)}
server=${NATS_SERVER:-$(command -v nats-server)}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$server" -a 127.0.0.1 -p "$port" >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
	sleep 0.1
done
cd "$tree"
echo "results in $out" >&2
HEDDLE_TEST_NATS_URL="nats://127.0.0.1:$port" "$here/run.sh" "$out" \
	go test -run '^$' -bench 'BenchmarkTaskPathCPU$' -benchtime "$benchtime" -count "$count" .
"$here/run.sh" "$out" go test -run '^$' -bench 'BenchmarkTaskPath$' -benchmem -benchtime 2s -count "$count" .
