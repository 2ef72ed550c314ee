#!/usr/bin/env python3
"""Replay protocol v2 requests against upload-pack servers with --stateless-rpc, side by side.

Usage: replay.py [--runs K] [--behind OID] [--requests a,b,..] [--concurrent N] [--tsv FILE]
                 REPO LABEL=CMD [LABEL=CMD...]

Each request is built the way git's client builds it (want every branch and tag, the
capabilities git 2.47 sends) and fed to `CMD --stateless-rpc REPO` with GIT_PROTOCOL=version=2;
the response is read from a pipe as a client would. Measured from wait4() on the server: CPU
(user+sys, waited-for children included: git's pack-objects), peak RSS (the largest process of
the tree) and the pack bytes in the response (side-band 1 after the `packfile` header). Runs
alternate between the servers; medians are printed, with ratios against the first server.

Requests:
  clone     want every branch and tag, done
  filter    clone with filter blob:none
  shallow   clone with deepen 1
  fetch     a client at --behind (default: REPO/bench-behind, or main~300): have it, done
  lsrefs    ls-refs with symrefs, peel and the ref-prefixes git's fetch sends
  noop      what a no-op `git fetch` costs the server: the capability advertisement and ls-refs
            (git sends no fetch when nothing changed)
  ttfb      time from start to the first pack byte of a clone (milliseconds, not CPU)
anon MiB is the peak of the summed RssAnon (private memory) of the server's processes, sampled
every 2 ms. --concurrent N runs N clones of each server at once and reports total CPU and the summed
private RSS (RssAnon of each process at its peak is not available from wait4: the sum of
each tree's peak RSS and of its peak anonymous RSS, sampled from /proc every 5 ms).
Reports numbers only; exits non-zero only when a server fails.
"""
import os, statistics, subprocess, sys, tempfile, time, threading

args = sys.argv[1:]
runs, behind, requests, concurrent, tsv = 3, None, "clone,filter,shallow,fetch,lsrefs,noop,ttfb", 0, None
while args and args[0].startswith("--"):
    opt = args.pop(0)
    if opt == "--runs":
        runs = int(args.pop(0))
    elif opt == "--behind":
        behind = args.pop(0)
    elif opt == "--requests":
        requests = args.pop(0)
    elif opt == "--concurrent":
        concurrent = int(args.pop(0))
    elif opt == "--tsv":
        tsv = args.pop(0)
    else:
        sys.exit(f"replay.py: unknown option {opt}")
repo = args.pop(0)
servers = [a.split("=", 1) for a in args]


def pkt(s):
    b = s.encode() if isinstance(s, str) else s
    return b"%04x" % (len(b) + 4) + b


def git(*a):
    return subprocess.run(["git", "-C", repo, *a], capture_output=True, text=True, check=True).stdout


refs = sorted(set(git("for-each-ref", "--format=%(objectname)", "refs/heads", "refs/tags").split()))
if behind is None:
    f = os.path.join(repo, "bench-behind")
    behind = open(f).read().strip() if os.path.exists(f) else git("rev-parse", "HEAD~300").strip()
head = ["command=fetch\n", "agent=git/2.47.3\n", "object-format=sha1\n"]
caps = ["thin-pack\n", "ofs-delta\n"]


def fetch_req(extra=(), haves=()):
    r = b"".join(pkt(l) for l in head) + b"0001" + b"".join(pkt(l) for l in caps)
    r += b"".join(pkt(f"want {o}\n") for o in refs)
    r += b"".join(pkt(l) for l in extra)
    r += b"".join(pkt(f"have {h}\n") for h in haves)
    return r + pkt("done\n") + b"0000"


lsrefs = (pkt("command=ls-refs\n") + pkt("agent=git/2.47.3\n") + pkt("object-format=sha1\n") + b"0001"
          + pkt("peel\n") + pkt("symrefs\n") + pkt("unborn\n")
          + b"".join(pkt(f"ref-prefix {p}\n") for p in ["HEAD", "refs/heads/", "refs/tags/"]) + b"0000")
REQ = {
    "clone": fetch_req(),
    "filter": fetch_req(["filter blob:none\n"]),
    "shallow": fetch_req(["deepen 1\n"]),
    "fetch": fetch_req(haves=[behind]),
    "lsrefs": lsrefs,
    "noop": None,  # advertisement + ls-refs
    "ttfb": fetch_req(),
}


def run_one(cmd, req, ttfb=False):
    env = dict(os.environ, GIT_PROTOCOL="version=2")
    for k in list(env):
        if k.startswith("GIT_TRACE"):
            del env[k]
    argv = cmd.split()
    t0 = time.monotonic()
    if req is None:
        # advertisement, then ls-refs: two processes as over HTTP
        cpu = rss = anon = 0.0
        for extra, body in ((["--advertise-refs"], b""), ([], lsrefs)):
            c, r, _, _, a = spawn(argv + ["--stateless-rpc"] + extra + [repo], body, env)
            cpu += c
            rss = max(rss, r)
            anon = max(anon, a)
        return cpu, rss, 0, None, anon
    return spawn(argv + ["--stateless-rpc", repo], req, env, t0 if ttfb else None)


def tree_of(pid):
    out = [pid]
    try:
        for c in open(f"/proc/{pid}/task/{pid}/children").read().split():
            out += tree_of(int(c))
    except OSError:
        pass
    return out


class AnonPeak:
    """Samples the summed RssAnon (private memory) of a process tree every 2 ms, keeps the peak."""

    def __init__(self, pid):
        self.pid, self.peak, self.done = pid, 0, threading.Event()
        self.th = threading.Thread(target=self.run)
        self.th.start()

    def run(self):
        while not self.done.is_set():
            total = 0
            for p in tree_of(self.pid):
                try:
                    for line in open(f"/proc/{p}/status"):
                        if line.startswith("RssAnon:"):
                            total += int(line.split()[1])
                except OSError:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.002)

    def stop(self):
        self.done.set()
        self.th.join()
        return self.peak / 1024.0


class PackCounter:
    """Counts side-band 1 bytes after the `packfile` header in a response read in pieces."""

    def __init__(self):
        self.buf, self.in_pack, self.n = b"", False, 0

    def feed(self, chunk):
        self.buf += chunk
        i = 0
        while len(self.buf) - i >= 4:
            try:
                size = int(self.buf[i:i + 4], 16)
            except ValueError:
                self.buf = b""
                return
            if size < 4:
                i += 4
                continue
            if len(self.buf) - i < size:
                break
            data = self.buf[i + 4:i + size]
            if self.in_pack and data[:1] == b"\x01":
                self.n += len(data) - 1
            elif data == b"packfile\n":
                self.in_pack = True
            i += size
        self.buf = self.buf[i:]


TIME = "/usr/bin/time"


def spawn(argv, body, env, t0=None):
    # The server is started by GNU time, which forks it from its own small process: a process
    # started by this one (vfork or fork) would count this Python's resident set in its peak.
    # Without GNU time, wait4's figures are used (their peak RSS has that floor).
    stats = None
    if os.access(TIME, os.X_OK):
        fd, stats = tempfile.mkstemp(prefix="replay-time.")
        os.close(fd)
        argv = [TIME, "-f", "%U %S %M %x", "-o", stats] + argv
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)

    def feed():
        try:
            p.stdin.write(body)
            p.stdin.close()
        except OSError:
            pass

    th = threading.Thread(target=feed)
    th.start()
    anon = AnonPeak(p.pid)
    counter, first, seen = PackCounter(), None, b""
    while True:
        c = p.stdout.read1(1 << 16)
        if not c:
            break
        if t0 is not None and first is None:
            seen = (seen + c)[-70000:]
            if b"PACK\x00\x00\x00" in seen:
                first = (time.monotonic() - t0) * 1000
        counter.feed(c)
    th.join()
    peak_anon = anon.stop()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"replay.py: {' '.join(argv)} exited {p.returncode}")
    if stats:
        fields = open(stats).read().split()
        os.unlink(stats)
        user, system, maxrss = float(fields[-4]), float(fields[-3]), int(fields[-2])
        return user + system, maxrss / 1024.0, counter.n, first, peak_anon
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0, counter.n, first, peak_anon


def concurrent_run(cmd, n):
    """n clones at once: total CPU, sum of peak RSS and of peak anonymous RSS."""
    procs = []
    t_cpu = 0.0
    peaks = {}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for pid in list(peaks):
                tree = [pid] + children(pid)
                rss = anon = 0
                for p in tree:
                    try:
                        for line in open(f"/proc/{p}/status"):
                            if line.startswith("VmRSS:"):
                                rss += int(line.split()[1])
                            elif line.startswith("RssAnon:"):
                                anon += int(line.split()[1])
                    except OSError:
                        pass
                a, b = peaks[pid]
                peaks[pid] = (max(a, rss), max(b, anon))
            time.sleep(0.005)

    def children(pid):
        out = []
        try:
            for c in open(f"/proc/{pid}/task/{pid}/children").read().split():
                out.append(int(c))
                out += children(int(c))
        except OSError:
            pass
        return out

    results = []
    lock = threading.Lock()

    def one():
        env = dict(os.environ, GIT_PROTOCOL="version=2")
        argv = cmd.split() + ["--stateless-rpc", repo]
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        with lock:
            peaks[p.pid] = (0, 0)
        p.stdin.write(REQ["clone"])
        p.stdin.close()
        while p.stdout.read1(1 << 16):
            pass
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        with lock:
            results.append(ru.ru_utime + ru.ru_stime)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    stop.set()
    sampler.join()
    return sum(results), sum(a for a, _ in peaks.values()) / 1024, sum(b for _, b in peaks.values()) / 1024, wall


rows = []
for req in requests.split(","):
    if req not in REQ:
        sys.exit(f"replay.py: unknown request {req}")
    res = {label: [] for label, _ in servers}
    for r in range(runs):
        order = servers if r % 2 == 0 else list(reversed(servers))
        for label, cmd in order:
            res[label].append(run_one(cmd, REQ[req], ttfb=(req == "ttfb")))
    rows.append((req, res))

base = servers[0][0]
print(f"repository: {repo} ({len(refs)} refs wanted; fetch from {behind[:12]}), medians of {runs}")
print(f"{'request':<9} {'server':<12} {'cpu s':>8} {'ratio':>6} {'rss MiB':>8} {'ratio':>6} {'pack bytes':>12} {'ratio':>6} {'anon MiB':>9}")
out_tsv = []
for req, res in rows:
    med = {}
    for label, v in res.items():
        if req == "ttfb":
            med[label] = (statistics.median(x[3] or 0 for x in v), 0, 0, 0)
        else:
            med[label] = (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
                          statistics.median(x[2] for x in v), statistics.median(x[4] for x in v))
    b = med[base]
    for label, (cpu, rss, nbytes, anon) in med.items():
        ratio = lambda x, y: f"{x / y:6.2f}" if y else "     -"
        if req == "ttfb":
            print(f"{req:<9} {label:<12} {cpu:7.1f}ms {ratio(cpu, b[0])}")
        else:
            print(f"{req:<9} {label:<12} {cpu:8.3f} {ratio(cpu, b[0])} {rss:8.1f} {ratio(rss, b[1])} {int(nbytes):12d} {ratio(nbytes, b[2])} {anon:9.1f}")
        out_tsv.append(f"{req}\t{label}\t{cpu}\t{rss}\t{nbytes}\t{anon}")
if concurrent:
    print(f"{concurrent} concurrent clones:")
    for label, cmd in servers:
        cpu, rss, anon, wall = concurrent_run(cmd, concurrent)
        print(f"  {label:<12} total cpu {cpu:7.2f} s, sum of peak RSS {rss:8.1f} MiB, of peak private (anon) RSS {anon:8.1f} MiB, wall {wall:.1f} s")
        out_tsv.append(f"concurrent{concurrent}\t{label}\t{cpu}\t{rss}\t{anon}")
if tsv:
    open(tsv, "w").write("\n".join(out_tsv) + "\n")
