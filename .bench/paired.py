#!/usr/bin/env python3
"""paired.py BASE.txt NEW.txt: per-round paired ratios of an ab.sh run.

ab.sh runs every benchmark once per round in each tree, so the k-th result
of a benchmark in BASE.txt and the k-th in NEW.txt come from the same round
(run back to back). For each benchmark and unit this prints the ranges of
both sides, and the median, min and max of the per-round ratios new/base.
"""
import re
import statistics
import sys
from collections import defaultdict

LINE = re.compile(r"^(Benchmark\S+)\s+\d+\s+(.*)$")


def parse(path):
    runs = defaultdict(list)  # name -> [ {unit: value} ]
    order = []
    for line in open(path):
        m = LINE.match(line.rstrip("\n"))
        if not m:
            continue
        name = re.sub(r"-\d+$", "", m.group(1))
        f = m.group(2).split()
        vals = {f[i + 1]: float(f[i]) for i in range(0, len(f) - 1, 2)}
        if name not in runs:
            order.append(name)
        runs[name].append(vals)
    return order, runs


def fmt(x):
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def main():
    units = sys.argv[3].split(",") if len(sys.argv) > 3 else None
    order, base = parse(sys.argv[1])
    _, new = parse(sys.argv[2])
    print("| benchmark | unit | base (min–max) | new (min–max) | new/base per round: median (min–max) | n |")
    print("|---|---|---:|---:|---:|---:|")
    for name in order:
        if name not in new:
            continue
        b, n = base[name], new[name]
        k = min(len(b), len(n))
        for unit in b[0]:
            if units and unit not in units:
                continue
            bv = [r[unit] for r in b[:k] if unit in r]
            nv = [r[unit] for r in n[:k] if unit in r]
            ratios = [y / x for x, y in zip(bv, nv) if x]
            if not ratios:
                continue
            print(f"| {name} | {unit} | {fmt(min(bv))}–{fmt(max(bv))} | {fmt(min(nv))}–{fmt(max(nv))} | "
                  f"{statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f}) | {len(ratios)} |")


main()
