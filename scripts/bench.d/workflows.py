#!/usr/bin/env python3
"""Real-client workflows against two upload-pack servers (scripts/bench --workflows).

Usage: workflows.py [--requests W,W,..] [--file F] [--lazy-rev REV] [--timeout SEC]
                    [--tsv FILE] --repo DIR [--repo DIR ..] LABEL_A=SERVER_A LABEL_B=SERVER_B

For each bare repository and each workflow, the real git client (whatever `git` is on
PATH) runs the workflow over file:// once per server. Every upload-pack process the
workflow starts -- the clone's or fetch's own and the lazy fetches of a partial clone,
which git starts from `git fetch` subprocesses -- goes through a wrapper
(bench.d/rusage.py) that appends wall time, user+sys CPU of the server's process tree
(wait4, children included) and its peak RSS to a log. The wrapper is given as
`--upload-pack=<wrapper>`, as `-c remote.origin.uploadpack=<wrapper>` on every client
command and in the clone's own configuration (written at clone time, before the
checkout, and checked afterwards). Every upload-pack process the client starts is also
counted from GIT_TRACE2_EVENT (child class transport/file); a process that did not go
through the wrapper is an error.

Workflows (default all but lazy-one; `all` selects every one):
  clone      full clone with checkout
  ci         clone --depth=1, then fetch --deepen=50
  unshallow  fetch --unshallow from a depth-1 clone (made beforehand with plain git)
  blobless   clone --filter=blob:none (its checkout fetches HEAD's blobs lazily), then
             git log -p -20 -- FILE and git blame -L1,5 FILE (lazy fetches)
  treeless   clone --filter=tree:0, then git log --stat -5 (lazy fetches)
  fetch300   a single-branch clone of the default branch at its 300th first-parent
             ancestor (made beforehand with plain git; the repository's bench-behind
             file if it has one), then git fetch
  mirror     clone --mirror
  lsremote   git ls-remote
  lazy-one   one lazy fetch of one old blob: git show REV:FILE in a blobless clone made
             beforehand with plain git (--no-checkout)

FILE defaults per repository: Makefile for git.git (git.c and Makefile at the top),
Cargo.toml where there is one, otherwise the most-changed top-level file of the last
200 commits. REV defaults to HEAD~3500, or HEAD~(half the first-parent depth) when the
history is shorter; if FILE is not in REV's tree, the first top-level file of it is used.

After each workflow the client state -- all refs, HEAD, the shallow file, HEAD's tree
when there is a work tree, and the output of the read commands (log, blame, show,
ls-remote) -- must be the same with both servers; a difference is an error (exit 1),
a ratio never is.
"""
import argparse
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ORDER = ["clone", "ci", "unshallow", "blobless", "treeless", "fetch300", "mirror", "lsremote", "lazy-one"]
DEFAULT = ORDER[:-1]

# client settings that keep the client from doing extra work of its own; given with -c
# they reach the client's subprocesses (lazy fetches) through GIT_CONFIG_PARAMETERS
GC = ["-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "fetch.writeCommitGraph=false",
      "-c", "transfer.fsckObjects=false", "-c", "fetch.showForcedUpdates=false",
      "-c", "advice.detachedHead=false", "-c", "core.pager=cat"]


class Failure(Exception):
    pass


def log(msg):
    print(f"workflows: {msg}", file=sys.stderr, flush=True)


def git_out(repo, *args, check=True):
    r = subprocess.run(["git", "-C", repo, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and r.returncode != 0:
        raise Failure(f"git -C {repo} {' '.join(args)} failed: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout.decode(errors="replace") if r.returncode == 0 else None


# The wrapper execs this small program, which forks the server and appends one line per
# server process to a log: wall seconds, user seconds, sys seconds, peak RSS (KiB), exit
# status, from wait4() (the server's waited-for children included, pack-objects for git's
# upload-pack). A server forked by Python (rusage.py) would count Python's resident set in
# its peak (about 10 MiB), which hides the differences of small requests.
TIMER_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3) return 126;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) return 126;
    if (pid == 0) { execvp(argv[2], argv + 2); perror(argv[2]); _exit(127); }
    int st; struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) return 126;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    char line[256];
    int n = snprintf(line, sizeof line, "%.6f %ld.%06ld %ld.%06ld %ld %d\n",
                     (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
                     (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
                     (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, (long)ru.ru_maxrss, code);
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0 || write(fd, line, n) != n) return 126;
    close(fd);
    return code;
}
"""


def build_timer(work, here):
    src, exe = os.path.join(work, "timer.c"), os.path.join(work, "timer")
    with open(src, "w") as f:
        f.write(TIMER_C)
    if subprocess.run(["cc", "-O2", "-o", exe, src], stderr=subprocess.DEVNULL).returncode == 0:
        return [exe]
    log("no C compiler: servers are started by rusage.py (their peak RSS includes ~10 MiB of Python)")
    return ["python3", os.path.join(here, "rusage.py")]


class Side:
    def __init__(self, key, label, server, work, timer):
        self.key, self.label, self.server = key, label, server
        self.log = os.path.join(work, f"rusage-{key}")
        self.trace = os.path.join(work, f"trace2-{key}")
        self.wrapper = os.path.join(work, f"upload-pack-{key}")
        # rusage.py takes the server as one string; the C timer takes its words
        words = [server] if timer[0] == "python3" else shlex.split(server)
        with open(self.wrapper, "w") as f:
            f.write("#!/bin/sh\n# tracing is for the client only\n")
            f.write("unset GIT_TRACE2_EVENT GIT_TRACE2 GIT_TRACE2_PERF\n")
            f.write(f"exec {shlex.join(timer)} {shlex.quote(self.log)} {shlex.join(words)} \"$@\"\n")
        os.chmod(self.wrapper, 0o755)

    def reset(self):
        for p in (self.log, self.trace):
            open(p, "w").close()

    def records(self):
        out = []
        with open(self.log) as f:
            for line in f:
                w, u, s, m, c = line.split()
                out.append((float(w), float(u) + float(s), int(m), int(c)))
        return out

    def spawned(self):
        """upload-pack processes the client started, from its trace2 events"""
        n = 0
        with open(self.trace, errors="replace") as f:
            for line in f:
                if '"child_start"' not in line:
                    continue
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("child_class") == "transport/file":
                    n += 1
                    if self.wrapper not in " ".join(ev.get("argv", [])):
                        raise Failure(f"the client started an upload-pack without the wrapper: {ev.get('argv')}")
        return n


class Runner:
    def __init__(self, args, work, sides):
        self.args, self.work, self.sides = args, work, sides
        self.steps = []   # (command, server processes it started) of the current workflow

    def client(self, side, argv, cwd=None, what=None):
        """run a client git command against SIDE's server; returns its stdout (bytes)"""
        cmd = ["git", *GC, "-c", f"remote.origin.uploadpack={side.wrapper}", *argv]
        env = dict(os.environ, GIT_TRACE2_EVENT=side.trace)
        env.pop("GIT_TRACE2", None)
        env.pop("GIT_TRACE2_PERF", None)
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = p.communicate(timeout=self.args.timeout)
        except BaseException as e:
            # timeout, or this script interrupted (SIGTERM/SIGINT): the client runs in a session
            # of its own, so its whole process group (servers included) goes with it
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.communicate()
            if not isinstance(e, subprocess.TimeoutExpired):
                raise
            raise Failure(f"{what or argv[0]} with server '{side.label}' timed out after {self.args.timeout}s: "
                          f"{shlex.join(cmd)}")
        if p.returncode != 0:
            tail = "\n".join("  | " + l for l in err.decode(errors="replace").splitlines()[-20:])
            raise Failure(f"{what or argv[0]} with server '{side.label}' failed (exit {p.returncode}):\n"
                          f"  server: {side.server}\n  client: {shlex.join(cmd)}\n{tail}")
        n = len(side.records())
        self.steps.append((what or argv[0], n - sum(k for _, k in self.steps)))
        return out

    def check_config(self, side, d):
        v = git_out(d, "config", "remote.origin.uploadpack", check=False)
        if (v or "").strip() != side.wrapper:
            raise Failure(f"{d}: remote.origin.uploadpack is {v!r}, not the wrapper")


def fingerprint(d, worktree):
    parts = [git_out(d, "for-each-ref", "--format=%(objectname) %(refname) %(symref)")]
    parts.append("HEAD " + (git_out(d, "symbolic-ref", "-q", "HEAD", check=False) or
                            git_out(d, "rev-parse", "HEAD", check=False) or "-"))
    gd = git_out(d, "rev-parse", "--absolute-git-dir").strip()
    sh = os.path.join(gd, "shallow")
    parts.append("shallow " + (" ".join(sorted(open(sh).read().split())) if os.path.exists(sh) else "-"))
    if worktree:
        parts.append("tree " + git_out(d, "rev-parse", "HEAD^{tree}").strip())
    return "\n".join(parts)


def first_blob(repo, rev):
    """the first file of REV's tree, top level first"""
    for rec in ([], ["-r"]):
        for l in git_out(repo, "ls-tree", *rec, rev).split("\n"):
            if l and l.split()[1] == "blob":
                return l.split("\t", 1)[1]
    raise Failure(f"{repo}: no file in {rev}")


def digest(b):
    return f"{hashlib.sha256(b).hexdigest()[:16]} ({len(b)} bytes)"


class Repo:
    def __init__(self, path, args, work):
        self.path = path
        self.name = os.path.basename(path.rstrip("/"))
        if self.name.endswith(".git"):
            self.name = self.name[:-4] or path
        self.url = "file://" + path
        self.work = work
        self.branch = git_out(path, "symbolic-ref", "--short", "HEAD").strip()
        self.file = args.file or self.default_file()
        self._lazy = None
        self.lazy_rev_arg = args.lazy_rev
        self.prepared = {}

    def default_file(self):
        top = set(git_out(self.path, "ls-tree", "--name-only", "HEAD").split("\n"))
        if "git.c" in top and "Makefile" in top:
            return "Makefile"
        if "Cargo.toml" in top:
            return "Cargo.toml"
        counts, anywhere = {}, {}
        names = git_out(self.path, "log", "-200", "--format=", "--name-only", "HEAD")
        for n in names.split("\n"):
            if n:
                anywhere[n] = anywhere.get(n, 0) + 1
                if "/" not in n:
                    counts[n] = counts.get(n, 0) + 1
        # no top-level file changed: the most-changed file anywhere that HEAD still has
        for c in (counts, anywhere):
            for n in sorted(c, key=lambda n: (-c[n], n)):
                if git_out(self.path, "cat-file", "-e", f"HEAD:{n}", check=False) is not None:
                    return n
        return first_blob(self.path, "HEAD")

    def lazy_target(self):
        if self._lazy:
            return self._lazy
        rev = self.lazy_rev_arg
        if not rev:
            depth = int(git_out(self.path, "rev-list", "--first-parent", "--count", "HEAD"))
            rev = "HEAD~3500" if depth > 3500 else f"HEAD~{depth // 2}"
        if git_out(self.path, "rev-parse", "--verify", "-q", rev + "^{commit}", check=False) is None:
            raise Failure(f"{self.path}: no commit {rev}")
        f = self.file
        if git_out(self.path, "cat-file", "-e", f"{rev}:{f}", check=False) is None:
            f = first_blob(self.path, rev)
        self._lazy = (rev, f)
        return self._lazy

    def behind(self):
        p = os.path.join(self.path, "bench-behind")
        if os.path.exists(p):
            return open(p).read().strip()
        revs = git_out(self.path, "rev-list", "--first-parent", "-301", "HEAD").split()
        return revs[-1]

    # untimed preparations with plain git (git's own upload-pack, no wrapper)
    def prepare(self, what):
        if what in self.prepared:
            return self.prepared[what]
        d = os.path.join(self.work, f"prep-{what}")
        shutil.rmtree(d, ignore_errors=True)
        log(f"{self.name}: preparing the {what} client with plain git (not timed)")
        base = ["git", *GC]
        if what == "depth1":
            subprocess.run([*base, "clone", "-q", "--depth=1", self.url, d], check=True)
        elif what == "behind":
            shadow = os.path.join(self.work, "prep-shadow")
            shutil.rmtree(shadow, ignore_errors=True)
            subprocess.run(["git", "clone", "-q", "--bare", "--shared", self.path, shadow], check=True)
            subprocess.run(["git", "-C", shadow, "update-ref", f"refs/heads/{self.branch}", self.behind()], check=True)
            subprocess.run([*base, "clone", "-q", "--single-branch", "--branch", self.branch,
                            "file://" + shadow, d], check=True)
            shutil.rmtree(shadow)
            subprocess.run(["git", "-C", d, "remote", "set-url", "origin", self.url], check=True)
        elif what == "blobless-nocheckout":
            subprocess.run([*base, "clone", "-q", "--filter=blob:none", "--no-checkout", self.url, d], check=True)
        else:
            raise ValueError(what)
        subprocess.run(["git", "-C", d, "config", "gc.auto", "0"], check=True)
        self.prepared[what] = d
        return d

    def copy(self, what, dst):
        shutil.rmtree(dst, ignore_errors=True)
        subprocess.run(["cp", "-a", self.prepare(what), dst], check=True)
        return dst


def run_workflow(r, repo, wf, side, order_tag):
    """run workflow WF for SIDE; returns (fingerprint text, client wall seconds)"""
    dst = os.path.join(r.work, f"wf-{side.key}")
    shutil.rmtree(dst, ignore_errors=True)
    up = f"--upload-pack={side.wrapper}"
    cl = ["-c", f"remote.origin.uploadpack={side.wrapper}"]
    out = []
    t0 = time.monotonic()
    if wf == "clone":
        r.client(side, ["clone", "-q", up, *cl, repo.url, dst], what="clone")
        r.check_config(side, dst)
        fp = fingerprint(dst, True)
    elif wf == "ci":
        r.client(side, ["clone", "-q", "--depth=1", up, *cl, repo.url, dst], what="clone --depth=1")
        r.check_config(side, dst)
        r.client(side, ["-C", dst, "fetch", "-q", "--deepen=50", up], what="fetch --deepen=50")
        fp = fingerprint(dst, True)
    elif wf == "unshallow":
        repo.copy("depth1", dst)
        subprocess.run(["git", "-C", dst, "config", "remote.origin.uploadpack", side.wrapper], check=True)
        t0 = time.monotonic()
        r.client(side, ["-C", dst, "fetch", "-q", "--unshallow", up], what="fetch --unshallow")
        fp = fingerprint(dst, True)
    elif wf == "blobless":
        r.client(side, ["clone", "-q", "--filter=blob:none", up, *cl, repo.url, dst], what="clone --filter=blob:none")
        r.check_config(side, dst)
        out.append("log " + digest(r.client(side, ["-C", dst, "log", "-p", "-20", "--", repo.file],
                                            what="log -p -20")))
        out.append("blame " + digest(r.client(side, ["-C", dst, "blame", "-L1,5", repo.file],
                                              what="blame -L1,5")))
        fp = fingerprint(dst, True)
    elif wf == "treeless":
        r.client(side, ["clone", "-q", "--filter=tree:0", up, *cl, repo.url, dst], what="clone --filter=tree:0")
        r.check_config(side, dst)
        out.append("log " + digest(r.client(side, ["-C", dst, "log", "--stat", "-5"], what="log --stat -5")))
        fp = fingerprint(dst, True)
    elif wf == "fetch300":
        repo.copy("behind", dst)
        subprocess.run(["git", "-C", dst, "config", "remote.origin.uploadpack", side.wrapper], check=True)
        t0 = time.monotonic()
        r.client(side, ["-C", dst, "fetch", "-q", up], what="fetch")
        fp = fingerprint(dst, True)
    elif wf == "mirror":
        r.client(side, ["clone", "-q", "--mirror", up, *cl, repo.url, dst], what="clone --mirror")
        r.check_config(side, dst)
        fp = fingerprint(dst, False)
    elif wf == "lsremote":
        out.append(r.client(side, ["ls-remote", up, repo.url], what="ls-remote").decode(errors="replace"))
        fp = ""
    elif wf == "lazy-one":
        rev, f = repo.lazy_target()
        repo.copy("blobless-nocheckout", dst)
        subprocess.run(["git", "-C", dst, "config", "remote.origin.uploadpack", side.wrapper], check=True)
        t0 = time.monotonic()
        out.append(f"show {rev}:{f} " + digest(r.client(side, ["-C", dst, "show", f"{rev}:{f}"],
                                                        what=f"show {rev}:{f}")))
        fp = fingerprint(dst, False)
    else:
        raise ValueError(wf)
    wall = time.monotonic() - t0
    shutil.rmtree(dst, ignore_errors=True)
    return fp + "\n" + "\n".join(out), wall


def fmt_cpu(a, b, ms):
    ratio = f"{b / a:.2f}" if a > 0 else "-"
    if ms:
        return f"{a * 1000:.1f}ms → {b * 1000:.1f}ms ({ratio})"
    return f"{a:.2f}s → {b:.2f}s ({ratio})"


def fmt_rss(a, b):
    ratio = f"{b / a:.2f}" if a > 0 else "-"
    return f"{a / 1024:.1f} → {b / 1024:.1f} MiB ({ratio})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", default=",".join(DEFAULT))
    ap.add_argument("--file")
    ap.add_argument("--lazy-rev")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--tsv")
    ap.add_argument("--repo", action="append", required=True)
    ap.add_argument("servers", nargs=2)
    args = ap.parse_args()
    wfs = ORDER if args.requests == "all" else args.requests.split(",")
    for w in wfs:
        if w not in ORDER:
            sys.exit(f"workflows: unknown workflow '{w}' ({', '.join(ORDER)}, all)")
    wfs = [w for w in ORDER if w in wfs]

    here = os.path.dirname(os.path.abspath(__file__))
    # on SIGTERM, unwind (kill the running client's process group, remove the work directory)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="packserve-workflows.")
    status = 0
    rows = []
    try:
        sides = []
        timer = build_timer(work, here)
        for key, s in zip("AB", args.servers):
            label, server = s.split("=", 1)
            sides.append(Side(key, label, server, work, timer))
        r = Runner(args, work, sides)
        print(f"A = {sides[0].label}: {sides[0].server}")
        print(f"B = {sides[1].label}: {sides[1].server}")
        print(f"client: {subprocess.run(['git', '--version'], stdout=subprocess.PIPE, text=True).stdout.strip()}"
              f", one run per workflow and server, order alternating; timeout {args.timeout}s per command")
        for rp in args.repo:
            rp = os.path.realpath(rp)
            try:
                repo = Repo(rp, args, os.path.join(work, "repo"))
            except Failure as e:
                log(f"error: {e}")
                status = 1
                continue
            os.makedirs(repo.work, exist_ok=True)
            if git_out(rp, "config", "--bool", "uploadpack.allowFilter", check=False) != "true\n":
                log(f"warning: {rp} has no uploadpack.allowFilter=true: git's upload-pack refuses filters")
            repo_wfs = list(wfs)
            notes = [f"file {repo.file}", f"default branch {repo.branch}"]
            if "fetch300" in wfs:
                notes.append(f"behind point {repo.behind()[:12]}")
            if "lazy-one" in wfs:
                try:
                    rev, f = repo.lazy_target()
                    notes.append(f"lazy-one {rev}:{f}")
                except Failure as e:
                    log(f"error: {e}")
                    status = 1
                    rows.append((repo.name, "lazy-one", None, None, "error"))
                    repo_wfs.remove("lazy-one")
            print(f"repository {repo.name} ({rp}): " + ", ".join(notes), flush=True)
            for i, wf in enumerate(repo_wfs):
                res = {}
                try:
                    for side in (sides if i % 2 == 0 else sides[::-1]):
                        side.reset()
                        r.steps = []
                        fp, wall = run_workflow(r, repo, wf, side, i)
                        recs = side.records()
                        spawned = side.spawned()
                        if spawned != len(recs):
                            raise Failure(f"{wf}: the client started {spawned} upload-pack process(es), "
                                          f"the wrapper recorded {len(recs)}")
                        bad = [c for *_, c in recs if c != 0]
                        if bad:
                            raise Failure(f"{wf}: server '{side.label}' exited {bad[0]} (the client succeeded)")
                        res[side.key] = dict(fp=fp, wall=wall, n=len(recs),
                                             cpu=sum(x[1] for x in recs), swall=sum(x[0] for x in recs),
                                             rss=max((x[2] for x in recs), default=0),
                                             rss_sum=sum(x[2] for x in recs),
                                             steps=", ".join(f"{w}: {k}" for w, k in r.steps))
                        log(f"{repo.name} {wf:<9} {side.label:<10} {len(recs)} server process(es), "
                            f"cpu {res[side.key]['cpu']:.3f}s, peak rss {res[side.key]['rss'] / 1024:.1f} MiB, "
                            f"client wall {wall:.2f}s ({res[side.key]['steps']})")
                except Failure as e:
                    log(f"error: {repo.name} {wf}: {e}")
                    status = 1
                    rows.append((repo.name, wf, None, None, "error"))
                    continue
                a, b = res["A"], res["B"]
                equal = a["fp"] == b["fp"]
                if not equal:
                    status = 1
                    log(f"error: {repo.name} {wf}: the client ends differently with the two servers:")
                    la, lb = a["fp"].split("\n"), b["fp"].split("\n")
                    for x in [l for l in la if l not in lb][:10]:
                        log(f"  {sides[0].label}: {x}")
                    for x in [l for l in lb if l not in la][:10]:
                        log(f"  {sides[1].label}: {x}")
                rows.append((repo.name, wf, a, b, "yes" if equal else "NO"))
            shutil.rmtree(repo.work, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    la, lb = sides[0].label, sides[1].label
    head = ("repository", "workflow", "procs", f"server CPU {la} → {lb} (ratio)",
            f"peak RSS {la} → {lb} (ratio)", "equal")
    table = []
    for name, wf, a, b, eq in rows:
        if a is None:
            table.append((name, wf, "-", "-", "-", eq))
            continue
        n = str(a["n"]) if a["n"] == b["n"] else f"{a['n']}/{b['n']}"
        table.append((name, wf, n, fmt_cpu(a["cpu"], b["cpu"], wf in ("lazy-one", "lsremote")),
                      fmt_rss(a["rss"], b["rss"]), eq))
    w = [max(len(str(x[i])) for x in [head] + table) for i in range(len(head))]
    print()
    for j, row in enumerate([head] + table):
        print(" | ".join(str(v).ljust(w[i]) if i < 2 or i == 5 else str(v).rjust(w[i]) for i, v in enumerate(row)).rstrip())
        if j == 0:
            print("-+-".join("-" * x for x in w))
    print()
    print("procs: upload-pack processes the workflow started (A/B when they differ); CPU: user+sys of")
    print("the server process trees summed over the workflow; peak RSS: the largest single process.")
    if args.tsv:
        with open(args.tsv, "w") as f:
            f.write("#repo\tworkflow\tlabel\tprocesses\tserver_wall\tcpu\tmaxrss_kib\tsum_maxrss_kib\tclient_wall\tequal\tprocesses_per_command\n")
            for name, wf, a, b, eq in rows:
                for lab, x in ((la, a), (lb, b)):
                    if x is None:
                        f.write(f"{name}\t{wf}\t{lab}\t\t\t\t\t\t\t{eq}\t\n")
                    else:
                        f.write(f"{name}\t{wf}\t{lab}\t{x['n']}\t{x['swall']:.6f}\t{x['cpu']:.6f}\t{x['rss']}\t"
                                f"{x['rss_sum']}\t{x['wall']:.3f}\t{eq}\t{x['steps']}\n")
        print(f"raw results: {args.tsv}")
    return status


if __name__ == "__main__":
    sys.exit(main())
