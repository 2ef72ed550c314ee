#!/usr/bin/env python3
"""Ref listings at 1k, 10k and 100k refs: git's upload-pack and packserve side by side.

Usage: refs.py [--runs K] [--sizes N,N,..] [--requests a,b,..] [--cache DIR] [--tsv FILE]
               LABEL=CMD LABEL=CMD

For each size N a bare repository is generated (and cached in DIR, default
target/bench-cache): 500 commits on main, then N refs pointing at them, 40% branches
(refs/heads/b-*), 20% annotated tags, 20% lightweight tags and 20% refs/pull/*/head (which a
fetch's ref-prefixes leave out), all packed by `git pack-refs --all` ("packed"); and a copy of
it with N/100 (at least 10) loose refs on top ("loose"): new branches, branches moved away from
their packed value, a loose annotated tag and a symbolic ref.

Requests, as git 2.47's clients send them (from GIT_TRACE_PACKET):
  lsrefs    v2 ls-refs as `git fetch` sends it: peel, symrefs, unborn, ref-prefix refs/heads/,
            refs/heads/main and refs/tags/ (--stateless-rpc, one request, as over HTTP)
  lsremote  v2 ls-refs as `git ls-remote` sends it: every ref (--stateless-rpc)
  noop      a no-op `git fetch` over ssh or file://: one stateful v2 process; the capability
            advertisement, the fetch's ls-refs and the client's closing flush (git sends no
            fetch command when it has every tip)
  v0adv     the v0 ref advertisement (--advertise-refs --stateless-rpc, no GIT_PROTOCOL), as
            the first request of a v0 fetch over HTTP

Each server process is started by a small C program (compiled with cc into the cache
directory) that forks it and reports wait4()'s user+sys CPU in microseconds and peak RSS:
nothing of this Python counts in the server's peak. Runs alternate between the servers; the
medians of --runs (default 11) are printed with the ratios of the second server to the first.
Every response is compared with the first server's, packet by packet, with agent= values
blanked: "same" or "DIFFERS" in the last column. Exits non-zero when a server fails or a
response differs; never because of a ratio.
"""
import hashlib, os, re, shutil, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

args = sys.argv[1:]
runs, sizes, requests, cache, tsv = 11, [1000, 10000, 100000], "lsrefs,lsremote,noop,v0adv", None, None
while args and args[0].startswith("--"):
    opt = args.pop(0)
    if opt == "--runs":
        runs = int(args.pop(0))
    elif opt == "--sizes":
        sizes = [int(s) for s in args.pop(0).split(",")]
    elif opt == "--requests":
        requests = args.pop(0)
    elif opt == "--cache":
        cache = args.pop(0)
    elif opt == "--tsv":
        tsv = args.pop(0)
    else:
        sys.exit(f"refs.py: unknown option {opt}")
servers = [a.split("=", 1) for a in args]
if len(servers) != 2:
    sys.exit("refs.py: give two servers, LABEL=CMD LABEL=CMD")
cache = cache or os.path.join(ROOT, "target", "bench-cache")
os.makedirs(cache, exist_ok=True)

TIMER_C = r"""
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3) return 2;
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) { execv(argv[2], argv + 2); _exit(127); }
    int st; struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) return 2;
    FILE *f = fopen(argv[1], "w");
    if (!f) return 2;
    fprintf(f, "%ld %ld %ld %d\n",
            (long)ru.ru_utime.tv_sec * 1000000L + (long)ru.ru_utime.tv_usec,
            (long)ru.ru_stime.tv_sec * 1000000L + (long)ru.ru_stime.tv_usec,
            (long)ru.ru_maxrss, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return fclose(f) != 0;
}
"""


def timer():
    path = os.path.join(cache, "refs-timer-" + hashlib.sha256(TIMER_C.encode()).hexdigest()[:12])
    if not os.access(path, os.X_OK):
        src = path + ".c"
        open(src, "w").write(TIMER_C)
        subprocess.run(["cc", "-O2", "-o", path, src], check=True)
    return path


TIMER = timer()


def sh(*a, **kw):
    return subprocess.run(a, check=True, **kw)


def git(repo, *a, **kw):
    return subprocess.run(["git", "-C", repo, *a], check=True, capture_output=True, **kw).stdout


COMMITS = 500
GEN_VERSION = "2"  # bump when the repositories below change


def generate(n):
    """The packed repository with n refs (cached), and its loose-ref copy."""
    base = os.path.join(cache, f"refs-{n}")
    stamp = f"{GEN_VERSION} {n} {COMMITS}"
    packed, loose = base + "-packed", base + "-loose"
    if all(os.path.exists(r) for r in (packed, loose)) and open(base + ".stamp").read() == stamp:
        return packed, loose
    for r in (packed, loose):
        shutil.rmtree(r, ignore_errors=True)
    print(f"refs.py: generating {packed} and {loose}", file=sys.stderr)
    sh("git", "init", "-q", "--bare", "--initial-branch=main", packed)
    heads, annotated, light = n * 4 // 10, n * 2 // 10, n * 2 // 10
    pulls = n - heads - annotated - light
    out = []
    t = 1700000000
    for i in range(1, COMMITS + 1):
        msg = f"commit {i}\n".encode()
        body = f"line {i}\n".encode() * (i % 7 + 1)
        out.append(b"commit refs/heads/main\nmark :%d\ncommitter B <b@example.com> %d +0000\n" % (i, t + i))
        out.append(b"data %d\n%s" % (len(msg), msg))
        if i > 1:
            out.append(b"from :%d\n" % (i - 1))
        out.append(b"M 100644 inline f%d\ndata %d\n%s\n" % (i % 10, len(body), body))
    at = lambda k: 1 + (k * 7919) % COMMITS  # noqa: E731 - spread refs over the history
    for k in range(heads):
        out.append(b"reset refs/heads/b-%06d\nfrom :%d\n\n" % (k, at(k)))
    for k in range(annotated):
        msg = b"tag %d\n" % k
        out.append(b"tag a-%06d\nfrom :%d\ntagger T <t@example.com> %d +0000\ndata %d\n%s\n"
                   % (k, at(k + 1), t, len(msg), msg))
    for k in range(light):
        out.append(b"reset refs/tags/t-%06d\nfrom :%d\n\n" % (k, at(k + 2)))
    for k in range(pulls):
        out.append(b"reset refs/pull/%d/head\nfrom :%d\n\n" % (k + 1, at(k + 3)))
    out.append(b"done\n")
    subprocess.run(["git", "-C", packed, "fast-import", "--quiet", "--done"], input=b"".join(out), check=True)
    git(packed, "pack-refs", "--all")
    git(packed, "repack", "-adq")
    # The directories the loose refs were in are empty now but as large as they grew (ext4 does
    # not shrink them): made again, as a clone's would be.
    for d in ("heads", "tags", "pull"):
        path = os.path.join(packed, "refs", d)
        left = [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs]
        if left:
            sys.exit(f"refs.py: loose refs left after pack-refs: {left[:3]}")
        shutil.rmtree(path, ignore_errors=True)
    os.makedirs(os.path.join(packed, "refs", "heads"))
    os.makedirs(os.path.join(packed, "refs", "tags"))
    # The loose copy: the same objects (a hard-linked copy), some refs loose on top.
    sh("cp", "-al", packed, loose)
    os.unlink(os.path.join(loose, "packed-refs"))
    shutil.copy(os.path.join(packed, "packed-refs"), os.path.join(loose, "packed-refs"))
    commits = git(loose, "rev-list", "main").decode().split()
    m = max(10, n // 100)
    tag = git(loose, "rev-parse", "refs/tags/a-000000").decode().strip()
    ops = []
    for k in range(m // 2):
        ops.append(f"create refs/heads/loose-{k:05d} {commits[k % len(commits)]}\n")
    for k in range(m - m // 2):
        ops.append(f"update refs/heads/b-{(k * 37) % heads:06d} {commits[(k + 3) % len(commits)]}\n")
    ops.append(f"create refs/tags/loose-annotated {tag}\n")
    git(loose, "update-ref", "--stdin", input="".join(ops).encode())
    git(loose, "symbolic-ref", "refs/heads/alias", "refs/heads/main")
    open(base + ".stamp", "w").write(stamp)
    return packed, loose


def pkt(s):
    b = s.encode() if isinstance(s, str) else s
    return b"%04x" % (len(b) + 4) + b


def ls_refs(prefixes):
    return (pkt("command=ls-refs\n") + pkt("agent=git/2.47.3\n") + pkt("object-format=sha1\n") + b"0001"
            + pkt("peel\n") + pkt("symrefs\n") + pkt("unborn\n")
            + b"".join(pkt(f"ref-prefix {p}\n") for p in prefixes) + b"0000")


FETCH_LS = ls_refs(["refs/heads/", "refs/heads/main", "refs/tags/"])
# name: (extra arguments, GIT_PROTOCOL, stdin)
REQ = {
    "lsrefs": (["--stateless-rpc"], "version=2", FETCH_LS),
    "lsremote": (["--stateless-rpc"], "version=2", ls_refs([])),
    "noop": ([], "version=2", FETCH_LS + b"0000"),
    "v0adv": (["--stateless-rpc", "--advertise-refs"], None, b""),
}


def run_one(cmd, req, repo):
    extra, proto, body = REQ[req]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    if proto:
        env["GIT_PROTOCOL"] = proto
    argv = cmd.split()
    if not os.path.isabs(argv[0]):
        argv[0] = shutil.which(argv[0]) or argv[0]
    fd, stats = tempfile.mkstemp(prefix="refs-timer.")
    os.close(fd)
    p = subprocess.Popen([TIMER, stats] + argv + extra + [repo], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)

    out, err = p.communicate(body)
    fields = open(stats).read().split()
    os.unlink(stats)
    if p.returncode != 0 or len(fields) != 4 or fields[3] != "0":
        sys.exit(f"refs.py: {' '.join(argv + extra + [repo])} ({req}) failed: {fields} {err.decode(errors='replace')}")
    return (int(fields[0]) + int(fields[1])) / 1e6, int(fields[2]) / 1024.0, out


def packets(data):
    """The pkt-lines of a response, agent= values blanked."""
    out, i = [], 0
    while i < len(data):
        size = int(data[i:i + 4], 16)
        if size < 4:
            out.append(data[i:i + 4])
            i += 4
            continue
        out.append(re.sub(rb"agent=[^ \0\n]*", b"agent=*", data[i + 4:i + size]))
        i += size
    return out


rows = []
failed = False
for n in sizes:
    packed, loose = generate(n)
    for variant, repo in (("packed", packed), ("loose", loose)):
        count = len(git(repo, "for-each-ref", "--format=x").splitlines())
        for req in requests.split(","):
            if req not in REQ:
                sys.exit(f"refs.py: unknown request {req}")
            res = {label: [] for label, _ in servers}
            outputs = {}
            for r in range(runs):
                order = servers if r % 2 == 0 else list(reversed(servers))
                for label, cmd in order:
                    cpu, rss, out = run_one(cmd, req, repo)
                    res[label].append((cpu, rss))
                    outputs.setdefault(label, packets(out))
            (la, _), (lb, _) = servers
            same = outputs[la] == outputs[lb]
            failed |= not same
            med = {label: (statistics.median(c for c, _ in v), statistics.median(r for _, r in v))
                   for label, v in res.items()}
            rows.append((n, variant, count, req, med[la], med[lb], same, len(outputs[la])))

(la, ca), (lb, cb) = servers
print(f"A = {la}: {ca}\nB = {lb}: {cb}\nmedians of {runs} runs, alternating; CPU is user+sys, RSS the peak")
print(f"{'refs':>7} {'store':<6} {'request':<9} | {la + ' ms':>9} {lb + ' ms':>12} {'ratio':>6} |"
      f" {la + ' MiB':>9} {lb + ' MiB':>13} {'ratio':>6} | {'pkts':>6} output")
tsv_rows = []
for n, variant, count, req, (ac, ar), (bc, br), same, npk in rows:
    print(f"{count:>7} {variant:<6} {req:<9} | {ac * 1e3:9.2f} {bc * 1e3:12.2f} {bc / ac:6.2f} |"
          f" {ar:9.1f} {br:13.1f} {br / ar:6.2f} | {npk:>6} {'same' if same else 'DIFFERS'}")
    tsv_rows.append(f"{n}\t{variant}\t{count}\t{req}\t{ac}\t{ar}\t{bc}\t{br}\t{int(same)}")
if tsv:
    open(tsv, "w").write("#size\tstore\trefs\trequest\tA_cpu_s\tA_rss_mib\tB_cpu_s\tB_rss_mib\tsame\n"
                         + "\n".join(tsv_rows) + "\n")
if failed:
    sys.exit("refs.py: responses differ (see the last column)")
