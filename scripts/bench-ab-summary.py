#!/usr/bin/env python3
"""The table of a paired A/B (scripts/bench-ab.sh OUTDIR): per row, the
median ops/s of each binary, and the median and range of new/old over the
pairs (a pair ran back to back, so its ratio is steadier than the medians)."""
import glob
import json
import statistics
import sys

def load(d, prefix):
    runs = []
    files = glob.glob(f"{d}/{prefix}.*.txt")
    for f in sorted(files, key=lambda x: int(x.split(".")[-2])):
        rows = {}
        for line in open(f):
            if line.startswith('{"key"'):
                j = json.loads(line)
                rows[j["key"]] = j["ops_per_s"]
        runs.append(rows)
    return runs

d = sys.argv[1]
old, new = load(d, "old"), load(d, "new")
print(f"| row | old ops/s | new ops/s | new/old, median of {len(old)} pairs | range |")
print("|---|---:|---:|---:|---:|")
for key in old[0]:
    ratios = [b[key] / a[key] for a, b in zip(old, new) if key in a and key in b]
    if not ratios:
        continue
    mo = statistics.median(a[key] for a in old if key in a)
    mn = statistics.median(b[key] for b in new if key in b)
    print(f"| {key} | {mo:,.0f} | {mn:,.0f} | {statistics.median(ratios):.3f} "
          f"| {min(ratios):.2f}..{max(ratios):.2f} |")
