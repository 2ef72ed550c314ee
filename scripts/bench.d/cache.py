#!/usr/bin/env python3
"""Concurrent identical requests: git's upload-pack, packserve without and with the response cache.

Usage: cache.py [--counts 16,64] [--requests ci,full] [--admission N:SECS] [--runs git,uncached,cached]
                [--tsv FILE] REPO GIT_UPLOAD_PACK PACKSERVE

Replays protocol v2 fetch requests as git 2.47 builds them with --stateless-rpc (no client-side
indexing, so the server's cost is what is measured):
  ci    a CI clone, `git clone --depth=1 --single-branch`: want HEAD's branch, deepen 1
  full  a full clone: want every branch and tag
For each count N, N identical requests start at once against each server; reported: total
server CPU (user+sys of every process, pack-objects children included, from GNU time), wall
time until the last one ends, summed peak RSS, and how many finished / were refused. The cached
runs start from an empty cache (one miss, the rest follow or hit). Then, per request, the CPU
of one miss (empty cache) and of one hit, and whether the cached response is byte-identical
to the uncached one (the whole response, and the pack in it).

--runs picks the concurrent runs (git, uncached, cached; limit comes with --admission); the
single-request figures are always measured. --admission N:SECS adds, per count, a packserve run without the cache under
packserve.limit.perHost=N and queueTimeout=SECS (requests over the limit wait, then are refused).

Reports numbers only; exits non-zero only when a server fails in a way that is not a refusal.
"""
import hashlib, os, subprocess, sys, tempfile, threading, time, shutil

args = sys.argv[1:]
counts, requests, admission, tsv = [16, 64], ["ci", "full"], None, None
which = {"git", "uncached", "cached"}
while args and args[0].startswith("--"):
    opt = args.pop(0)
    if opt == "--counts":
        counts = [int(x) for x in args.pop(0).split(",")]
    elif opt == "--requests":
        requests = args.pop(0).split(",")
    elif opt == "--admission":
        n, secs = args.pop(0).split(":")
        admission = (int(n), int(secs))
    elif opt == "--runs":
        which = set(args.pop(0).split(","))
    elif opt == "--tsv":
        tsv = args.pop(0)
    else:
        sys.exit(f"cache.py: unknown option {opt}")
if len(args) != 3:
    sys.exit(__doc__)
repo, git_up, packserve = args
TIME = "/usr/bin/time"
if not os.access(TIME, os.X_OK):
    sys.exit("cache.py: needs GNU time (/usr/bin/time)")


def pkt(s):
    b = s.encode() if isinstance(s, str) else s
    return b"%04x" % (len(b) + 4) + b


def git(*a):
    return subprocess.run(["git", "-C", repo, *a], capture_output=True, text=True, check=True).stdout


head_ref = git("symbolic-ref", "HEAD").strip()
head_oid = git("rev-parse", head_ref).strip()
all_refs = sorted(set(git("for-each-ref", "--format=%(objectname)", "refs/heads", "refs/tags").split()))
preamble = b"".join(pkt(l) for l in ["command=fetch\n", "agent=git/2.47.3\n", "object-format=sha1\n"]) + b"0001"
REQ = {
    "ci": preamble + b"".join(pkt(l) for l in ["thin-pack\n", "ofs-delta\n", "deepen 1\n", f"want {head_oid}\n", "done\n"]) + b"0000",
    "full": preamble + b"".join(pkt(l) for l in ["thin-pack\n", "include-tag\n", "ofs-delta\n"] + [f"want {o}\n" for o in all_refs] + ["done\n"]) + b"0000",
}


def env_with(config):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_TRACE") and not k.startswith("GIT_CONFIG")}
    env["GIT_PROTOCOL"] = "version=2"
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (k, v) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"] = k
        env[f"GIT_CONFIG_VALUE_{i}"] = v
    return env


def pack_of(resp):
    """The side-band 1 bytes after `packfile`."""
    out, i, in_pack = bytearray(), 0, False
    while i + 4 <= len(resp):
        try:
            n = int(resp[i:i + 4], 16)
        except ValueError:
            break
        if n < 4:
            i += 4
            continue
        d = resp[i + 4:i + n]
        if in_pack and d[:1] == b"\x01":
            out += d[1:]
        elif d == b"packfile\n":
            in_pack = True
        i += n
    return bytes(out)


def run_many(cmd, req, n, env, keep=False):
    """n identical requests at once; (cpu s, wall s, summed peak RSS MiB, ok, refused, responses)."""
    procs = []
    t0 = time.monotonic()
    for _ in range(n):
        fd, stats = tempfile.mkstemp(prefix="cachebench-time.")
        os.close(fd)
        argv = [TIME, "-f", "%U %S %M %x", "-o", stats, cmd, "--stateless-rpc", repo]
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        procs.append((p, stats))
    results = [None] * n

    def drive(i, p):
        try:
            p.stdin.write(req)
            p.stdin.close()
        except OSError:
            pass
        h, size, chunks = hashlib.sha256(), 0, []
        while True:
            c = p.stdout.read(1 << 20)
            if not c:
                break
            size += len(c)
            h.update(c)
            if keep or size < 65536:
                chunks.append(c)
        p.wait()
        results[i] = (h.hexdigest(), size, b"".join(chunks))

    threads = [threading.Thread(target=drive, args=(i, p)) for i, (p, _) in enumerate(procs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    cpu = rss = 0.0
    ok = refused = 0
    for (p, stats), (digest, size, body) in zip(procs, results):
        u, s, m, x = open(stats).read().split()[-4:]
        os.unlink(stats)
        cpu += float(u) + float(s)
        rss += int(m) / 1024.0
        if int(x) == 0:
            ok += 1
        elif b"server busy" in body:
            refused += 1
        else:
            sys.exit(f"cache.py: {cmd} failed (exit {x}): {body[:300]!r}")
    return cpu, wall, rss, ok, refused, results


rows = []


def report(req, n, label, r):
    cpu, wall, rss, ok, refused, _ = r
    rows.append((req, n, label, cpu, wall, rss, ok, refused))
    print(f"{req:5} {n:4} {label:24} {cpu:9.2f} {wall:8.2f} {rss:10.1f} {ok:4} {refused:4}", flush=True)


print(f"repository: {repo} (HEAD {head_ref}, {len(all_refs)} refs wanted by a full clone)")
print(f"{'req':5} {'N':>4} {'server':24} {'CPU s':>9} {'wall s':>8} {'RSS MiB':>10} {'ok':>4} {'busy':>4}")
plain = env_with([])
single = {}
for req in requests:
    body = REQ[req]
    # One request of each: the reference for the ratios, and the cached response's identity.
    one_git = run_many(git_up, body, 1, plain)
    one_ps = run_many(packserve, body, 1, plain, keep=True)
    cache = tempfile.mkdtemp(prefix="cachebench-")
    cenv = env_with([("packserve.cache.dir", cache)])
    miss = run_many(packserve, body, 1, cenv, keep=True)
    hit = run_many(packserve, body, 1, cenv, keep=True)
    shutil.rmtree(cache, ignore_errors=True)
    same_resp = miss[5][0][0] == hit[5][0][0] == one_ps[5][0][0]
    same_pack = pack_of(hit[5][0][2]) == pack_of(one_ps[5][0][2])
    single[req] = (one_git, one_ps, miss, hit, same_resp, same_pack)
    report(req, 1, "git upload-pack", one_git)
    report(req, 1, "packserve uncached", one_ps)
    report(req, 1, "packserve cache miss", miss)
    report(req, 1, "packserve cache hit", hit)
    for n in counts:
        if "git" in which:
            report(req, n, "git upload-pack", run_many(git_up, body, n, plain))
        if "uncached" in which:
            report(req, n, "packserve uncached", run_many(packserve, body, n, plain))
        digests = {0}
        if "cached" in which:
            cache = tempfile.mkdtemp(prefix="cachebench-")
            r = run_many(packserve, body, n, env_with([("packserve.cache.dir", cache)]))
            shutil.rmtree(cache, ignore_errors=True)
            digests = {d for d, _, _ in r[5]}
            report(req, n, "packserve cached", r)
        if len(digests) != 1:
            print(f"      !! {len(digests)} different responses among the cached ones (sizes {sorted({s for _, s, _ in r[5]})})")
        if admission:
            slots = tempfile.mkdtemp(prefix="cachebench-slots-")
            aenv = env_with([("packserve.limit.dir", slots), ("packserve.limit.perHost", str(admission[0])),
                             ("packserve.limit.queueTimeout", str(admission[1]))])
            report(req, n, f"packserve limit {admission[0]}/{admission[1]}s", run_many(packserve, body, n, aenv))
            shutil.rmtree(slots, ignore_errors=True)

print()
for req, (one_git, one_ps, miss, hit, same_resp, same_pack) in single.items():
    print(f"{req}: one hit {hit[0]:.3f}s CPU vs one miss {miss[0]:.3f}s ({100 * hit[0] / max(miss[0], 1e-9):.1f}%); "
          f"cached response byte-identical to uncached: {'yes' if same_resp else 'no'} (pack: {'yes' if same_pack else 'no'})")
    for n in counts:
        c = [r for r in rows if r[0] == req and r[1] == n and r[2] == "packserve cached"]
        if c:
            print(f"{req}: {n} cached requests cost {c[0][3] / max(one_ps[0], 1e-9):.2f}x one uncached packserve request "
                  f"({c[0][3] / max(one_git[0], 1e-9):.2f}x one git upload-pack request) in total server CPU")
if tsv:
    with open(tsv, "w") as f:
        f.write("request\tn\tserver\tcpu_s\twall_s\trss_mib\tok\trefused\n")
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")
