#!/usr/bin/env python3
"""ranges.py LOG...: min–max of every metric of every benchmark in run.sh
logs, with the number of runs and the range of the 1-minute load average
printed beside them (the "# load:" lines)."""
import re
import sys
from collections import defaultdict

LINE = re.compile(r"^(Benchmark\S+)\s+\d+\s+(.*)$")


def fmt(x):
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


runs = defaultdict(lambda: defaultdict(list))
loads = defaultdict(list)
order = []
for path in sys.argv[1:]:
    last = None
    for line in open(path):
        line = line.rstrip("\n")
        m = LINE.match(line)
        if m:
            name = re.sub(r"-\d+$", "", m.group(1))
            if name not in runs:
                order.append(name)
            f = m.group(2).split()
            for i in range(0, len(f) - 1, 2):
                runs[name][f[i + 1]].append(float(f[i]))
            last = name
        elif line.startswith("# load:") and last:
            loads[last].append(float(line.split()[2]))
            last = None
for name in order:
    l = loads[name]
    ld = f"{min(l):.2f}–{max(l):.2f}" if l else "?"
    parts = []
    for unit, v in runs[name].items():
        parts.append(f"{unit} {fmt(min(v))}–{fmt(max(v))}")
    n = max(len(v) for v in runs[name].values())
    print(f"{name} | n={n} | load {ld} | " + " | ".join(parts))
