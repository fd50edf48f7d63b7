#!/usr/bin/env bash
# binab.sh BASE_BIN NEW_BIN DIR ARGS...: interleaved A/B of two test
# binaries built beforehand (`go test -c -o ...` in each tree), run from
# DIR (the package's directory, for its testdata) with the same test flags
# (ARGS, e.g. -test.bench X -test.benchmem -test.count 1).
#
# Round i runs base then new in odd rounds, new then base in even ones;
# each run goes through run.sh, so every result line has the load beside
# it. Results go to $OUT/base.txt and $OUT/new.txt, whose k-th results
# come from the same round: `python3 .bench/paired.py OUT/base.txt
# OUT/new.txt` gives the per-round ratios.
#
# Environment: ROUNDS (default 6), OUT (default a fresh mktemp -d),
# HEDDLE_TEST_NATS_URL as for any test binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=$(realpath "${1:?usage: binab.sh BASE_BIN NEW_BIN DIR ARGS...}")
new=$(realpath "${2:?usage: binab.sh BASE_BIN NEW_BIN DIR ARGS...}")
dir=${3:?usage: binab.sh BASE_BIN NEW_BIN DIR ARGS...}
shift 3
rounds=${ROUNDS:-6}
out=${OUT:-$(mktemp -d /tmp/heddle-binab.XXXXXX)}
mkdir -p "$out"
cd "$dir"
echo "base $base, new $new, in $PWD: $*; results in $out" >&2
for i in $(seq 1 "$rounds"); do
	echo "round $i start: $(uptime)" | tee -a "$out/load.txt" >&2
	if [ $((i % 2)) = 1 ]; then order="base new"; else order="new base"; fi
	for side in $order; do
		bin=$base
		[ "$side" = new ] && bin=$new
		"$here/run.sh" "$out/$side.txt" "$bin" "$@" | { grep -E '^Benchmark' >&2 || true; }
	done
done
