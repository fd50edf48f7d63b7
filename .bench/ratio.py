#!/usr/bin/env python3
"""ratio.py LOG UNIT NUM DEN: the ratio NUM/DEN of one metric, run by run
(the i-th result of NUM with the i-th of DEN), from run.sh logs; prints
the ratios and their min–max."""
import re
import sys

LINE = re.compile(r"^(Benchmark\S+)\s+\d+\s+(.*)$")
path, unit, num, den = sys.argv[1:5]
vals = {num: [], den: []}
for line in open(path):
    m = LINE.match(line.rstrip("\n"))
    if not m:
        continue
    name = re.sub(r"-\d+$", "", m.group(1))
    if name in vals:
        f = m.group(2).split()
        d = {f[i + 1]: float(f[i]) for i in range(0, len(f) - 1, 2)}
        vals[name].append(d[unit])
r = [a / b for a, b in zip(vals[num], vals[den])]
print(f"{num} / {den} ({unit}): " + " ".join(f"{x:.3f}" for x in r) + f"  range {min(r):.2f}–{max(r):.2f}")
