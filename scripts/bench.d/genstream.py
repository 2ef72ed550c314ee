#!/usr/bin/env python3
"""Emit a deterministic `git fast-import` stream for a repository of realistic shape.

Usage: genstream.py --objects N [--seed S]   (stream goes to stdout)

Shape (scaled with N):
  * an initial import of ~N/60 text files (1-20 KiB, line oriented) in a tree of
    nested directories (up to 4 levels below the root);
  * ~N/40 ordinary commits, each editing a handful of files (change / insert /
    delete a few lines in 1-3 hunks), now and then adding or deleting a file;
  * topic branches forked from main and merged back with merge commits (the
    last ones stay unmerged), a `maint` branch that gets fixes, is merged into
    main at each release and then fast-forwarded to it;
  * annotated release tags and lightweight snapshot tags every few hundred commits.

The number of edited files per commit is chosen adaptively so that the final
object count (blobs + trees + commits + tags) lands close to N.
A summary is printed to stderr at the end.
"""
import argparse
import math
import random
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--objects", type=int, default=200_000)
ap.add_argument("--seed", type=int, default=20240601)
ap.add_argument("--deleted-refs", help="file to write `update-ref --stdin` deletions of merged topics to")
args = ap.parse_args()

N = max(args.objects, 2_000)
rng = random.Random(args.seed)
out = sys.stdout.buffer
wbuf = []
wlen = 0


def emit(b):
    global wlen
    wbuf.append(b)
    wlen += len(b)
    if wlen > (1 << 20):
        flush()


def flush():
    global wlen
    out.write(b"".join(wbuf))
    wbuf.clear()
    wlen = 0


# --------------------------------------------------------------------------
# vocabulary and line pools
SYL = ["ba", "co", "de", "fi", "gu", "ha", "ji", "ko", "lu", "ma", "ne", "po", "qui",
       "ra", "se", "ti", "vu", "wa", "xe", "yo", "zu", "str", "ptr", "buf", "len", "idx",
       "map", "set", "get", "run", "cfg", "ctx", "err", "req", "res", "obj", "pack", "ref"]
WORDS = sorted({"".join(rng.choice(SYL) for _ in range(rng.randint(1, 3))) for _ in range(4000)})
PROSE = ["the", "a", "of", "to", "and", "in", "is", "for", "that", "with", "when", "this",
         "object", "pack", "delta", "reference", "client", "server", "request", "window",
         "commit", "tree", "blob", "index", "offset", "stream", "buffer", "cache", "value"]


def w():
    return rng.choice(WORDS)


def code_line():
    ind = "    " * rng.choice((0, 1, 1, 1, 2, 2, 2, 3, 3, 4))
    k = rng.randrange(12)
    if k == 0:
        return ""
    if k == 1:
        return ind + "}"
    if k == 2:
        return f"{ind}if ({w()}_{w()} {rng.choice(('==', '!=', '<', '>=', '&&'))} {w()}) {{"
    if k == 3:
        return f"{ind}// {' '.join(w() for _ in range(rng.randint(3, 9)))}"
    if k == 4:
        return f"{ind}return {w()}({w()}, {rng.randint(0, 4096)});"
    if k == 5:
        return f"{ind}for (size_t {w()} = 0; {w()} < {w()}_{w()}; {w()}++) {{"
    if k == 6:
        return f"{ind}static int {w()}_{w()}(struct {w()} *{w()}, const char *{w()})"
    if k == 7:
        return f'{ind}{w()}_{w()}("{w()} {w()} %s", {w()}->{w()});'
    if k == 8:
        return f"{ind}{w()}->{w()} = {w()}_{w()} + {rng.randint(1, 512)};"
    if k == 9:
        return f"{ind}#define {w().upper()}_{w().upper()} {rng.randint(0, 1 << 16)}"
    return f"{ind}{w()} = {w()}({w()}_{w()}, {w()}, {w()});"


def prose_line():
    k = rng.randrange(10)
    if k == 0:
        return ""
    if k == 1:
        return "#" * rng.randint(1, 3) + " " + " ".join(w() for _ in range(rng.randint(2, 5)))
    return " ".join(rng.choice(PROSE) if rng.random() < 0.6 else w()
                    for _ in range(rng.randint(6, 14)))


POOL_N = 40_000
CODE_POOL = [(code_line() + "\n").encode() for _ in range(POOL_N)]
PROSE_POOL = [(prose_line() + "\n").encode() for _ in range(POOL_N // 4)]
uniq = 0


def new_line(prose):
    """Mostly pool lines; some unique lines so that content keeps evolving."""
    global uniq
    if rng.random() < 0.15:
        uniq += 1
        if prose:
            return f"{' '.join(w() for _ in range(5))} (rev {uniq})\n".encode()
        return f"    {w()}_{w()}({w()}, {uniq}); /* {w()} */\n".encode()
    return rng.choice(PROSE_POOL if prose else CODE_POOL)


# --------------------------------------------------------------------------
# directory tree and paths
F0 = max(60, N // 60)          # initial number of files
C = max(60, N // 40)           # ordinary (non-merge) commits
NDIRS = max(8, F0 // 11)

TOP = ["src", "lib", "include", "docs", "tests", "tools", "scripts", "contrib", "arch", "drivers",
       "net", "fs", "crypto", "sound", "kernel", "Documentation", "build", "third_party"]
CODE_EXT = [".c", ".c", ".c", ".h", ".h", ".rs", ".py", ".sh", ".go", ".cpp"]
PROSE_EXT = [".md", ".txt", ".rst"]

dirs = []            # list of (path, depth) ; root is "" depth 0 (not stored)
ntop = min(len(TOP), max(4, int(math.sqrt(NDIRS))))
for t in TOP[:ntop]:
    dirs.append((t, 1))
used = {d for d, _ in dirs}
while len(dirs) < NDIRS:
    # prefer attaching under shallower dirs so that depth 3-4 is common but bounded
    parent, depth = rng.choice(dirs)
    if depth >= 4:
        continue
    name = parent + "/" + w()
    if name in used:
        continue
    used.add(name)
    dirs.append((name, depth + 1))


def is_prose(path):
    return path.startswith(("docs", "Documentation")) or path.endswith(tuple(PROSE_EXT))


name_ctr = 0


def new_path():
    global name_ctr
    name_ctr += 1
    d, depth = rng.choice(dirs) if rng.random() < 0.8 else max(rng.sample(dirs, 3), key=lambda x: x[1])
    prose = d.startswith(("docs", "Documentation")) or rng.random() < 0.05
    ext = rng.choice(PROSE_EXT if prose else CODE_EXT)
    return f"{d}/{w()}_{name_ctr}{ext}"


def ancestors(path):
    """Directories whose tree objects change when `path` changes (root = "")."""
    parts = path.split("/")[:-1]
    res = [""]
    for i in range(1, len(parts) + 1):
        res.append("/".join(parts[:i]))
    return res


all_paths = []                 # every path ever created (for random choice)
subtree = {}                   # dir -> list of paths below it (at creation)
dir_files = {}                 # dir -> list of paths directly in it


def register(path):
    all_paths.append(path)
    anc = ancestors(path)
    for a in anc[1:]:
        subtree.setdefault(a, []).append(path)
    dir_files.setdefault(anc[-1], []).append(path)


# --------------------------------------------------------------------------
# object emission
mark = 0
objects = 0
t_now = 1420070400  # 2015-01-01
AUTHORS = [(f"{first} {last}", f"{first.lower()}.{last.lower()}@example.org")
           for first, last in zip(
    ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory",
     "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Uma", "Victor", "Walter", "Xena",
     "Yusuf", "Zoe", "Quentin"],
    ["Anders", "Baker", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ivanov", "Jones",
     "Kim", "Lopez", "Müller", "Novak", "Olsen", "Patel", "Quinn", "Rossi", "Silva", "Tanaka", "Ueda",
     "Varga", "Weber", "Young"])]
MAINTAINER = AUTHORS[0]


def next_mark():
    global mark
    mark += 1
    return mark


def emit_blob(lines):
    global objects
    m = next_mark()
    data = b"".join(lines)
    emit(b"blob\nmark :%d\ndata %d\n" % (m, len(data)))
    emit(data)
    emit(b"\n")
    objects += 1
    return m


def ident(who, ts):
    return f"{who[0]} <{who[1]}> {ts} +0000".encode()


def emit_commit(ref, parents, who, msg, changes, ntrees):
    """changes: list of (path, blobmark or None for delete)."""
    global objects, t_now
    t_now += rng.randint(300, 4 * 3600)
    m = next_mark()
    body = msg.encode()
    hdr = [b"commit %s\nmark :%d\n" % (ref.encode(), m),
           b"author " + ident(who, t_now) + b"\n",
           b"committer " + ident(MAINTAINER if len(parents) > 1 else who, t_now) + b"\n",
           b"data %d\n" % len(body), body, b"\n"]
    if parents:
        hdr.append(b"from :%d\n" % parents[0])
        for p in parents[1:]:
            hdr.append(b"merge :%d\n" % p)
    emit(b"".join(hdr))
    for path, bm in changes:
        if bm is None:
            emit(b"D %s\n" % path.encode())
        else:
            emit(b"M 100644 :%d %s\n" % (bm, path.encode()))
    emit(b"\n")
    objects += 1 + ntrees
    return m


VERBS = ["fix", "add", "remove", "refactor", "speed up", "document", "simplify", "rename",
         "handle", "avoid", "teach", "clean up", "support", "guard against", "reuse"]


def commit_message(paths):
    area = paths[0].split("/")[0] if "/" in paths[0] else "core"
    subj = f"{area}: {rng.choice(VERBS)} {w()} {w()} in {w()}"
    lines = [subj, ""]
    for _ in range(rng.choice((0, 1, 2, 3, 3, 5, 8))):
        lines.append(" ".join(rng.choice(PROSE) if rng.random() < 0.6 else w()
                              for _ in range(rng.randint(6, 12))))
    if len(lines) == 2:
        lines = lines[:1]
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# branches
class Branch:
    def __init__(self, ref, tip, files):
        self.ref = ref
        self.tip = tip
        self.files = dict(files)   # path -> (blobmark, lines, size)
        self.changed = set()       # paths changed (or deleted) since fork / last sync
        self.ncommits = 0


def edit_lines(lines, size, prose):
    lines = list(lines)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        pos = rng.randrange(len(lines) + 1)
        nd = rng.choice((0, 0, 1, 1, 2, 3))
        ni = rng.choice((0, 1, 1, 2, 3, 4, 6))
        if size > 20 * 1024:
            ni, nd = 0, max(nd, 3)
        elif size < 1024:
            nd = 0
        if nd == 0 and ni == 0:
            ni = 1
        nd = min(nd, len(lines) - pos)
        new = [new_line(prose) for _ in range(ni)]
        size += sum(map(len, new)) - sum(map(len, lines[pos:pos + nd]))
        lines[pos:pos + nd] = new
    if not lines:
        lines = [new_line(prose)]
        size = len(lines[0])
    return lines, size


def gen_file(prose):
    target = int(math.exp(rng.uniform(math.log(1024), math.log(20 * 1024))))
    lines, size = [], 0
    while size < target:
        ln = new_line(prose)
        lines.append(ln)
        size += len(ln)
    return lines, size


def ordinary_commit(br, budget):
    """Edit files on branch `br` until about `budget` new objects are reached."""
    changes = {}
    dirs_touched = set()
    cost = 1  # the commit itself
    live = br.files
    # a focus subtree for locality
    focus = None
    for _ in range(5):
        p = rng.choice(all_paths)
        if p in live:
            anc = ancestors(p)
            focus = anc[max(1, len(anc) - 2)] if len(anc) > 1 else None
            break
    want_add = rng.random() < 0.03
    want_del = rng.random() < 0.015
    limit = 250
    while (cost < budget or not changes) and len(changes) < limit:
        if want_add:
            want_add = False
            path = new_path()
            register(path)
            lines, size = gen_file(is_prose(path))
            bm = emit_blob(lines)
            live[path] = (bm, lines, size)
            changes[path] = bm
            cost += 1
        elif want_del:
            want_del = False
            path = rng.choice(all_paths)
            d = ancestors(path)[-1]
            if path not in live or path in changes or \
                    sum(1 for q in dir_files[d] if q in live) <= 3:
                continue
            del live[path]
            changes[path] = None
        else:
            pool = subtree.get(focus) if focus and rng.random() < 0.4 else None
            path = rng.choice(pool or all_paths)
            if path not in live or path in changes:
                # retry with the global pool; give up quickly if nothing fits
                path = rng.choice(all_paths)
                if path not in live or path in changes:
                    limit -= 1
                    continue
            bm0, lines, size = live[path]
            lines, size = edit_lines(lines, size, is_prose(path))
            bm = emit_blob(lines)
            live[path] = (bm, lines, size)
            changes[path] = bm
            cost += 1
        for a in ancestors(path):
            if a not in dirs_touched:
                dirs_touched.add(a)
                cost += 1
    br.changed.update(changes)
    br.ncommits += 1
    who = rng.choice(AUTHORS)
    br.tip = emit_commit(br.ref, [br.tip], who, commit_message(list(changes)),
                         sorted(changes.items()), len(dirs_touched))


def merge_into(dst, src, msg):
    """Merge `src` into `dst`: src's changed paths win."""
    changes = []
    dirs_touched = set()
    for path in sorted(src.changed):
        if path in src.files:
            ent = src.files[path]
            if dst.files.get(path, (None,))[0] == ent[0]:
                continue
            dst.files[path] = ent
            changes.append((path, ent[0]))
        elif path in dst.files:
            del dst.files[path]
            changes.append((path, None))
        else:
            continue
        dirs_touched.update(ancestors(path))
    dst.changed.update(p for p, _ in changes)
    dst.tip = emit_commit(dst.ref, [dst.tip, src.tip], MAINTAINER, msg, changes, len(dirs_touched))
    src.changed = set()


# --------------------------------------------------------------------------
# initial import
init_files = {}
for _ in range(F0):
    p = new_path()
    register(p)
    lines, size = gen_file(is_prose(p))
    init_files[p] = (emit_blob(lines), lines, size)
init_dirs = {a for p in init_files for a in ancestors(p)}
main = Branch("refs/heads/main", None, {})
main.files = init_files
root = emit_commit(main.ref, [], MAINTAINER, "Initial import\n",
                   sorted((p, e[0]) for p, e in init_files.items()), len(init_dirs))
main.tip = root

TOPIC_EVERY = max(25, C // 30)
RELEASE_EVERY = max(40, min(400, C // 14))
SNAP_EVERY = max(30, min(250, C // 20))
maint = None
topics = []          # active: (Branch, end_index)
to_delete = []       # merged topic refs, deleted after import
releases = 0
next_topic = TOPIC_EVERY // 2

for i in range(C):
    # start a topic
    if i >= next_topic:
        nt = Branch(f"refs/heads/topic/{w()}-{i}", main.tip, main.files)
        # topics started in the last stretch of history stay unmerged
        end = C + 1 if i > C * 0.9 else i + rng.randint(TOPIC_EVERY // 2, TOPIC_EVERY)
        topics.append((nt, end))
        next_topic = i + rng.randint(TOPIC_EVERY * 2 // 3, TOPIC_EVERY * 4 // 3)
    # merge topics whose time has come
    for tb, end in list(topics):
        if i >= end:
            topics.remove((tb, end))
            if tb.ncommits:
                merge_into(main, tb, f"Merge branch '{tb.ref[len('refs/heads/'):]}'\n")
                to_delete.append(tb.ref)
    # pick a branch
    r = rng.random()
    if topics and r < 0.10:
        br = rng.choice(topics)[0]
    elif maint is not None and r > 0.95:
        br = maint
    else:
        br = main
    remaining = C - i
    budget = max(2.0, (N - objects) / remaining)
    # commit sizes are heavy-tailed: mostly small commits, now and then a big one
    # (lognormal with mean ~budget; the adaptive budget corrects the clipping)
    ordinary_commit(br, min(budget * 25, rng.lognormvariate(math.log(budget) - 0.5, 1.0)))
    if br is not main:
        continue
    # tags on main
    n = i + 1
    if n % RELEASE_EVERY == 0:
        releases += 1
        if maint is not None and maint.ncommits:
            merge_into(main, maint, "Merge branch 'maint'\n")
        name = f"v1.{releases}.0"
        msg = f"Release {name}\n".encode()
        emit(b"tag %s\nfrom :%d\ntagger %s\ndata %d\n%s\n" %
             (name.encode(), main.tip, ident(MAINTAINER, t_now), len(msg), msg))
        objects += 1
        # maint fast-forwards to the release
        if maint is None:
            maint = Branch("refs/heads/maint", main.tip, main.files)
        else:
            maint.tip, maint.files, maint.changed, maint.ncommits = main.tip, dict(main.files), set(), 0
        emit(b"reset refs/heads/maint\nfrom :%d\n\n" % main.tip)
    elif n % SNAP_EVERY == 0:
        emit(b"reset refs/tags/snapshot-%05d\nfrom :%d\n\n" % (n, main.tip))

emit(b"done\n")
flush()
out.flush()
print(f"genstream: ~{objects} objects, {C} ordinary commits, {len(all_paths)} paths, "
      f"{len(dirs)} dirs, {releases} releases, unmerged topics {len(topics)}", file=sys.stderr)
# topic refs merged into main are deleted by the caller (fast-import cannot delete refs)
# (the last two merged topics keep their refs, as in real repositories)
if args.deleted_refs:
    with open(args.deleted_refs, "w") as f:
        f.write("".join(f"delete {r}\n" for r in to_delete[:-2]))
