#!/usr/bin/env bash
# run.sh LOG CMD...: runs CMD (a `go test -bench` command) in the current
# directory, prints its output and appends it to LOG, adding
#
#   # cmd: ...      the directory and the command,
#   # uptime: ...   `uptime` just before the command starts,
#   # load: ...     after every result line, /proc/loadavg (1, 5, 15 min)
#                   and the time at the moment the line was printed,
#
# so that each run (each line of a -count N) has the machine's load beside
# it. benchstat ignores the added lines. The load averages include the
# benchmark itself (one to two busy cores of the two).
set -uo pipefail
log=${1:?usage: run.sh LOG CMD...}
shift
{
	echo "# cmd: (cd $PWD && $*)"
	echo "# uptime: $(uptime)"
} | tee -a "$log"
"$@" 2>&1 | while IFS= read -r line; do
	printf '%s\n' "$line"
	case $line in
	Benchmark*\ ns/op*) printf '# load: %s at %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date +%T)" ;;
	esac
done | tee -a "$log"
exit "${PIPESTATUS[0]}"
