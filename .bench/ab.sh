#!/usr/bin/env bash
# ab.sh: A/B benchmark of the task path and of dispatch.Request
# (DispatchAndWait) between a base commit and the current code, in one run.
#
# Usage: .bench/ab.sh BASE_COMMIT [NEW_COMMIT]
#
#   BASE_COMMIT  checked out with `git worktree add` in $BASE_DIR
#                (default /tmp/heddle-base); the worktree is removed on exit
#                if this script created it.
#   NEW_COMMIT   optional: measure that commit, exported read-only with
#                `git archive` into $NEW_DIR (default /tmp/heddle-new).
#                Without it the working tree of this repository is measured
#                as it is (it must compile).
#
# Environment: ROUNDS (default 6), BENCHTIME (default 1s), OUT (directory
# for the raw results; default a fresh mktemp -d).
#
# Round i runs every benchmark command in both trees, base first in odd
# rounds and new first in even ones, and records `uptime` before the round
# and before each command. The benchmarks live in the root package (task
# path, both trees) and in the root package (base) or ./dispatch (new) for
# the round trips; when a tree has no dispatch/stream_bench_test.go the root
# package is used. benchstat compares base with new, ignoring the pkg key
# so that the same benchmark in different packages lines up.
set -euo pipefail

base=${1:?usage: ab.sh BASE_COMMIT [NEW_COMMIT]}
new=${2:-}
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
rounds=${ROUNDS:-6}
benchtime=${BENCHTIME:-1s}
out=${OUT:-$(mktemp -d /tmp/heddle-ab.XXXXXX)}
base_dir=${BASE_DIR:-/tmp/heddle-base}
benchstat=$(command -v benchstat || echo "$HOME/go/bin/benchstat")
mkdir -p "$out"

created=0
if [ -d "$base_dir" ]; then
	have=$(git -C "$base_dir" rev-parse HEAD)
	want=$(git -C "$repo" rev-parse "$base^{commit}")
	if [ "$have" != "$want" ]; then
		echo "ab.sh: $base_dir is at $have, not $base ($want)" >&2
		exit 1
	fi
else
	git -C "$repo" worktree add --detach "$base_dir" "$base" >&2
	created=1
fi
cleanup() {
	if [ "$created" = 1 ]; then
		git -C "$repo" worktree remove --force "$base_dir" >&2 || true
	fi
}
trap cleanup EXIT

if [ -n "$new" ]; then
	new_dir=${NEW_DIR:-/tmp/heddle-new}
	rm -rf "$new_dir"
	mkdir -p "$new_dir"
	git -C "$repo" archive "$new" | tar -x -C "$new_dir"
	new_label="$new ($(git -C "$repo" rev-parse --short "$new^{commit}"))"
else
	new_dir=$repo
	new_label="working tree of $repo at $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD -- || echo ', modified')"
fi

# dispatch_pkg prints the package holding the round-trip benchmarks.
dispatch_pkg() {
	if [ -f "$1/dispatch/stream_bench_test.go" ]; then echo ./dispatch; else echo .; fi
}

# run_tree LABEL DIR ROUND runs the benchmark commands in DIR, appending
# their output to $out/LABEL.txt.
run_tree() {
	local label=$1 dir=$2 round=$3 pkg
	pkg=$(dispatch_pkg "$dir")
	local cmds=(
		"go test -run ^\$ -bench BenchmarkTaskPath -benchmem -count=1 -benchtime=$benchtime ."
		"go test -run ^\$ -bench BenchmarkDispatchAndWait\$|BenchmarkDispatchAndWaitInterleaved -benchmem -count=1 -benchtime=$benchtime $pkg"
		"go test -run ^\$ -bench BenchmarkDispatchAndWaitParallel -benchmem -count=1 -benchtime=$benchtime $pkg"
	)
	local c
	for c in "${cmds[@]}"; do
		echo "round $round $label: $(uptime)" >>"$out/load.txt"
		echo "+ (cd $dir && $c)" >&2
		# Word splitting of $c is intended; the patterns hold no spaces.
		# shellcheck disable=SC2086
		(cd "$dir" && set -f && $c) | tee -a "$out/$label.txt" | { grep -E "^Benchmark" >&2 || true; }
	done
}

echo "base: $base in $base_dir; new: $new_label in $new_dir; results in $out" >&2
for i in $(seq 1 "$rounds"); do
	echo "round $i start: $(uptime)" | tee -a "$out/load.txt" >&2
	if [ $((i % 2)) = 1 ]; then
		run_tree base "$base_dir" "$i"
		run_tree new "$new_dir" "$i"
	else
		run_tree new "$new_dir" "$i"
		run_tree base "$base_dir" "$i"
	fi
done

echo "== load per round"
grep ' start: ' "$out/load.txt"
echo "== benchstat base=$base new=$new_label (raw results in $out)"
"$benchstat" -ignore pkg "base=$out/base.txt" "new=$out/new.txt"
