#!/usr/bin/env bash
# cpuab.sh BIN DIR PREFIX TASKS ROUNDS MODE...: CPU per task of each mode
# of one benchmark, each in a process of its own. Round r runs
# BIN -test.bench "PREFIX/MODE$" -test.benchtime TASKSx for every MODE, in
# the order given in odd rounds and reversed in even ones, from DIR (the
# package's directory), and reads the process's user + system time
# (/usr/bin/time) divided by TASKS. It prints each run, then each round's
# ratio of every mode to the first, with the load average beside each
# round.
#
# Wall time per task in the pipelined task-path benchmarks swings by
# +-15 % between runs and with the order of sub-benchmarks in a process;
# CPU per task in processes of their own is what the seam's budgets
# (issue 18) are stated in.
#
#   .bench/cpuab.sh /tmp/metrics.test metrics BenchmarkTaskPath/membus 300000 8 off on
set -euo pipefail
bin=$(realpath "${1:?usage: cpuab.sh BIN DIR PREFIX TASKS ROUNDS MODE...}")
dir=${2:?}
prefix=${3:?}
tasks=${4:?}
rounds=${5:?}
shift 5
modes=("$@")
[ "${#modes[@]}" -ge 2 ] || { echo "cpuab.sh: give at least two modes" >&2; exit 2; }
cd "$dir"
t=$(mktemp)
trap 'rm -f "$t"' EXIT
for r in $(seq 1 "$rounds"); do
	order=("${modes[@]}")
	if [ $((r % 2)) -eq 0 ]; then
		order=()
		for ((i = ${#modes[@]} - 1; i >= 0; i--)); do order+=("${modes[$i]}"); done
	fi
	load=$(cut -d' ' -f1 /proc/loadavg)
	for m in "${order[@]}"; do
		/usr/bin/time -o "$t" -f "%U %S" "$bin" -test.run '^$' -test.bench "${prefix}/${m}\$" \
			-test.benchtime "${tasks}x" >/dev/null 2>&1
		echo "$r $m $(cat "$t") $load"
	done
done | awk -v n="$tasks" -v first="${modes[0]}" '
	{ cpu = ($3 + $4) / n * 1e6; v[$1 "," $2] = cpu; load[$1] = $5; seen[$2] = 1
	  printf "round %s %s %.2f us/task (load %s)\n", $1, $2, cpu, $5 }
	END {
		for (r = 1; (r "," first) in v; r++) {
			line = sprintf("round %d (load %s):", r, load[r])
			for (m in seen) if (m != first) line = line sprintf(" %s/%s %.3f", m, first, v[r "," m] / v[r "," first])
			print line
		}
	}'
