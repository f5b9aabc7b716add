#!/usr/bin/env python3
"""Medians over several runs of `ctxstore-bench --json`, as the tables of
docs/performance.md.

usage: scripts/bench-summary.py run1.txt run2.txt run3.txt ...

Each file is the whole output of one run (its JSON lines and its target and
bounds tables). Prints the rows table (median ops/s, p50, p99 per row), the
targets with each run's ratio and the median, and the bounds tables.
"""

import json
import statistics
import sys

# Rows of docs/performance.md: a label and the bench rows it shows side by side.
ROWS = [
    ("bare CAF round trip, blocking `scoped_actor`", ["caf.blocking.1"]),
    ("bare CAF round trip, async, 1 / 64 in flight",
     ["caf.async.1", "caf.async.64"]),
    ("`std::mutex` + `unordered_map`: copy out / get-modify-put / 64 threads "
     "over 1,000 keys / store new / replace",
     ["mutex.snapshot", "mutex.cycle", "mutex.cycle.64x1000",
      "mutex.store.new", "mutex.store.replace"]),
    ("FIFO hand-over lock + `unordered_map`: get-modify-put, 64 threads on "
     "ONE key", ["mutex.fifo.64"]),
    ("1. snapshot, blocking (a copy of `T`) / as a `view` (shared)",
     ["snapshot.blocking.1", "snapshot.view.blocking.1"]),
    ("1. snapshot, async, 1 / 64 in flight",
     ["snapshot.async.1", "snapshot.async.64"], "handler takes `const T&`"),
    ("2. cycle 1 key, blocking / async", ["cycle.blocking.1", "cycle.async.1"]),
    ("2. cycle 64 clients over 1,000 keys, blocking / async / async read only",
     ["cycle.blocking.64x1000", "cycle.async.64x1000",
      "cycle.async.64x1000.read"]),
    ("3. contention 64 on ONE key, blocking / async",
     ["contention.blocking.64", "contention.async.64"]),
    ("4. snapshot while held + 100 queued, blocking / async",
     ["held.blocking.1", "held.async.1"]),
    ("4. snapshot of a free context in alternation with them, blocking / async",
     ["held.free.blocking.1", "held.free.async.1"]),
    ("5. store new, a copy of `T` each: blocking / async / async 64 in flight",
     ["store.blocking.new", "store.async.new", "store.async.new.64"]),
    ("5. store new, one `shared_value`: blocking / async / async 64 in flight",
     ["store.blocking.new.shared", "store.async.new.shared",
      "store.async.new.64.shared"], "no copy of `T`"),
    ("5. store replacing, a copy of `T` each: blocking / async",
     ["store.blocking.replace", "store.async.replace"]),
    ("5. store replacing, one `shared_value`: blocking / async",
     ["store.blocking.replace.shared", "store.async.replace.shared"]),
    ("6. remote bare CAF round trip, blocking / async 1 / async 64",
     ["remote.caf.blocking.1", "remote.caf.async.1", "remote.caf.async.64"]),
    ("6. remote snapshot, blocking / async 1 / async 64",
     ["remote.snapshot.blocking.1", "remote.snapshot.async.1",
      "remote.snapshot.async.64"]),
    ("6. remote cycle, blocking / async / async 64 over 1,000 keys",
     ["remote.cycle.blocking.1", "remote.cycle.async.1",
      "remote.cycle.async.64x1000"]),
    ("6. remote cycle, 2 threads one key / distinct keys",
     ["remote.cycle.blocking.2same", "remote.cycle.blocking.2distinct"]),
    ("6. remote store new, blocking / async; replacing, blocking",
     ["remote.store.blocking.new", "remote.store.async.new",
      "remote.store.blocking.replace"]),
    ("7. scale: create 1,000,000 small contexts, async 2 x 64 in flight / "
     "blocking 2 threads", ["scale.create", "scale.create.blocking"],
     "rss"),
    ("7. scale: snapshots of random ones, blocking / async 64",
     ["scale.snapshot.blocking.1", "scale.snapshot.async.64"]),
    ("Python a1 / a2 (store new / replace)", ["python.a1", "python.a2"]),
    ("Python b1 / b2 / b3y (cycle 1 task / 64 tasks 64 ids / 64 on one id "
     "+yield)", ["python.b1", "python.b2", "python.b3y"]),
    ("Python c1 (snapshot)", ["python.c1"]),
    ("Redis GET / lock cycle 1 client", ["redis.1-get-1c", "redis.2-lock-1c"]),
    ("Redis lock cycle 2 clients one key / distinct keys",
     ["redis.3-lock-2c-samekey", "redis.3-lock-2c-distinct"]),
    ("Redis 64 pipelined GETs", ["redis.5-pipe64-1c"]),
]


def grouped(x):
    return f"{x:,.0f}"


def short(us):
    if us is None or us < 0:
        return None
    if us >= 100:
        return grouped(us)
    if us >= 10:
        return f"{us:.0f}"
    return f"{us:.2f}".rstrip("0").rstrip(".") if us < 1 else f"{us:.2f}"


def read_run(path):
    rows, targets, bounds = {}, [], []
    section = None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("{"):
                d = json.loads(line)
                rows[d["key"]] = d
            elif line.startswith("Targets"):
                section = "targets"
            elif line.startswith("Bounds"):
                section = "bounds"
            elif line.startswith("| ") and section:
                cells = [c.strip() for c in line.strip("|").split("|")]
                if cells[0] in ("target", "bound") or cells[0].startswith("-"):
                    continue
                (targets if section == "targets" else bounds).append(cells)
    return rows, targets, bounds


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def main(paths):
    runs = [read_run(p) for p in paths]
    print("| row | ops/s | p50 µs | p99 µs | notes |")
    print("|---|---:|---:|---:|---|")
    for spec in ROWS:
        label, keys = spec[0], spec[1]
        note = spec[2] if len(spec) > 2 else ""
        rates, p50s, p99s = [], [], []
        for key in keys:
            found = [r[0][key] for r in runs if key in r[0]]
            rates.append(median([d["ops_per_s"] for d in found]))
            p50s.append(short(median([d["p50_us"] for d in found])))
            p99s.append(short(median([d["p99_us"] for d in found])))
        if all(r is None for r in rates):
            continue
        if note == "rss":
            rss = [r[0]["scale.rss_per_context"]["value"] for r in runs
                   if "scale.rss_per_context" in r[0]]
            note = (f"{min(rss):.0f}-{max(rss):.0f} B resident per context"
                    if rss else "")
        fmt = lambda xs, f: " / ".join(f(x) if x is not None else "-"
                                       for x in xs)
        p50 = fmt(p50s, str) if any(p50s) else ""
        p99 = fmt(p99s, str) if any(p99s) else ""
        print(f"| {label} | {fmt(rates, grouped)} | {p50} | {p99} | {note} |")
    print()
    print("| target | runs | median | required | status |")
    print("|---|---:|---:|---:|---|")
    names = [t[0] for t in runs[0][1]]
    met = 0
    for i, name in enumerate(names):
        ratios = [number(r[1][i][1]) for r in runs if i < len(r[1])]
        required = runs[0][1][i][2]
        m = median(ratios)
        bound = number(required.split()[-1])
        ok = m is not None and (m >= bound if required.startswith(">=")
                                else m <= bound)
        met += ok
        shown = " / ".join(r[1][i][1] for r in runs if i < len(r[1]))
        text = f"{m:.2f}" if m is not None and m < 10 else f"{m:.0f}"
        print(f"| {name} | {shown} | {text} | {required} | "
              f"{'met' if ok else 'NOT met'} |")
    print(f"\n{met} of {len(names)} met by the median\n")
    print("| bound (each run) | best possible ratio | required |")
    print("|---|---:|---:|")
    for i, b in enumerate(runs[0][2]):
        shown = " / ".join(r[2][i][1] for r in runs if i < len(r[2]))
        print(f"| {b[0]} | {shown} | {b[2]} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
