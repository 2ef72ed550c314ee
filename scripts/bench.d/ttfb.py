#!/usr/bin/env python3
"""Time to the first pack byte of a full clone (protocol v2 fetch of every ref), per server.

Usage: ttfb.py REPO RUNS LABEL=CMD [LABEL=CMD...]
Speaks the v2 fetch request itself (want every advertised ref, done) and measures from the
server's start to the first byte of the pack ("PACK" on side-band 1). Prints one line per
server with the median in milliseconds. Reports only; never fails on a number.
"""
import os, statistics, subprocess, sys, time

repo, runs = sys.argv[1], int(sys.argv[2])


def pkt(s):
    b = s.encode() if isinstance(s, str) else s
    return b"%04x" % (len(b) + 4) + b


refs = subprocess.run(["git", "-C", repo, "for-each-ref", "--format=%(objectname)", "refs/heads", "refs/tags"],
                      capture_output=True, text=True, check=True).stdout.split()
req = pkt("command=fetch\n") + pkt("agent=bench\n") + b"0001" + pkt("ofs-delta\n") + pkt("thin-pack\n")
req += b"".join(pkt(f"want {r}\n") for r in sorted(set(refs))) + pkt("done\n") + b"0000"

for spec in sys.argv[3:]:
    label, cmd = spec.split("=", 1)
    times = []
    for _ in range(runs):
        env = dict(os.environ, GIT_PROTOCOL="version=2")
        t0 = time.monotonic()
        p = subprocess.Popen(cmd.split() + ["--stateless-rpc", repo], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        p.stdin.write(req)
        p.stdin.close()
        seen, first = b"", None
        while True:
            chunk = p.stdout.read1(65536)
            if not chunk:
                break
            if first is None:
                seen = (seen + chunk)[-70000:]
                if b"PACK\x00\x00\x00" in seen:
                    first = time.monotonic() - t0
        p.wait()
        if first is not None:
            times.append(first * 1000)
    if times:
        print(f"time to first pack byte, {label}: {statistics.median(times):.1f} ms (median of {len(times)})")
    else:
        print(f"time to first pack byte, {label}: no pack seen")
