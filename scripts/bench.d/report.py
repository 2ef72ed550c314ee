#!/usr/bin/env python3
"""Summarise scripts/bench raw results (TSV) into a table of medians.

Input columns: proto request label run wall user sys maxrss_kib invocations exit pack_bytes objects
Usage: report.py RESULTS.tsv LABEL_A LABEL_B
"""
import statistics
import sys
from collections import OrderedDict

path, la, lb = sys.argv[1:4]
rows = OrderedDict()
for line in open(path):
    if line.startswith("#") or not line.strip():
        continue
    proto, req, label, run, wall, user, sys_, rss, inv, code, pbytes, objs = line.split("\t")
    d = rows.setdefault((proto, req), {}).setdefault(label, {
        "cpu": [], "rss": [], "wall": [], "bytes": [], "objs": [], "bad": 0, "n": 0})
    d["cpu"].append(float(user) + float(sys_))
    d["rss"].append(int(rss) / 1024.0)
    d["wall"].append(float(wall))
    d["bytes"].append(int(pbytes))
    d["objs"].append(int(objs))
    d["bad"] += int(code) != 0
    d["n"] += 1


def med(d, k):
    return statistics.median(d[k]) if d and d[k] else None


def ratio(a, b):
    if a is None or b is None:
        return "-"
    if a == 0:
        return "-" if b == 0 else "inf"
    return f"{b / a:.2f}"


def fcpu(x):
    return "-" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.2f}")


def frss(x):
    return "-" if x is None else f"{x:.1f}"


def fbytes(x):
    if x is None:
        return "-"
    if x >= 10 * 1024 * 1024:
        return f"{x / 1048576:.1f}M"
    if x >= 10 * 1024:
        return f"{x / 1024:.1f}K"
    return str(int(x))


def fobjs(d):
    if not d:
        return "-"
    vals = set(d["objs"])
    s = "/".join(str(v) for v in sorted(vals))
    return s


head = ["request", f"{la} cpu", f"{lb} cpu", "ratio", f"{la} rss", f"{lb} rss", "ratio",
        f"{la} bytes", f"{lb} bytes", "ratio", f"{la} objs", f"{lb} objs",
        f"{la} wall", f"{lb} wall"]
table = [head]
notes = []
for (proto, req), by in rows.items():
    a, b = by.get(la), by.get(lb)
    ca, cb = med(a, "cpu"), med(b, "cpu")
    ra, rb = med(a, "rss"), med(b, "rss")
    ba, bb = med(a, "bytes"), med(b, "bytes")
    wa, wb = med(a, "wall"), med(b, "wall")
    table.append([f"{req} ({proto})", fcpu(ca), fcpu(cb), ratio(ca, cb), frss(ra), frss(rb),
                  ratio(ra, rb), fbytes(ba), fbytes(bb), ratio(ba, bb), fobjs(a), fobjs(b),
                  fcpu(wa), fcpu(wb)])
    for lab, d in ((la, a), (lb, b)):
        if d and d["bad"]:
            notes.append(f"note: {req} ({proto}): {lab} server exited non-zero in {d['bad']} of {d['n']} runs")

widths = [max(len(r[i]) for r in table) for i in range(len(head))]
for n, r in enumerate(table):
    cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
    print(" | ".join(cells))
    if n == 0:
        print("-+-".join("-" * w for w in widths))
print()
print(f"medians over runs; cpu = server user+sys seconds, rss = server peak RSS MiB (largest process"
      f" of the server's tree), bytes = pack bytes received (GIT_TRACE_PACKFILE), objs = objects in"
      f" the pack header, wall = server wall seconds; ratio = {lb}/{la} (below 1: {lb} uses less)")
for n in notes:
    print(n)
