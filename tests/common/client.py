#!/usr/bin/env python3
"""Drives the non-git clients for the transport tests: libgit2 (pygit2) and dulwich.

    client.py pygit2|dulwich clone URL DEST [--depth N]
    client.py pygit2|dulwich fetch REPO_DIR
    client.py pygit2|dulwich ls-remote URL         (prints "<oid>\t<ref>" lines)
    client.py pygit2|dulwich push REPO_DIR URL REF (expected to fail)

ssh: pygit2 takes the key from PACKSERVE_SSH_KEY (user from the URL); dulwich runs the ssh
command in GIT_SSH_COMMAND. Exit status 0 on success, 1 with the error on stderr otherwise.
"""
import os
import sys


def pygit2_callbacks():
    import pygit2

    class Callbacks(pygit2.RemoteCallbacks):
        def credentials(self, url, username_from_url, allowed_types):
            key = os.environ["PACKSERVE_SSH_KEY"]
            return pygit2.Keypair(username_from_url or "root", key + ".pub", key, "")

        def certificate_check(self, certificate, valid, host):
            return True

    return Callbacks()


def run_pygit2(action, args):
    import pygit2

    if action == "clone":
        url, dest = args[0], args[1]
        kw = {}
        if "--depth" in args:
            kw["depth"] = int(args[args.index("--depth") + 1])
        pygit2.clone_repository(url, dest, callbacks=pygit2_callbacks(), **kw)
    elif action == "fetch":
        repo = pygit2.Repository(args[0])
        repo.remotes["origin"].fetch(callbacks=pygit2_callbacks())
    elif action == "ls-remote":
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            repo = pygit2.init_repository(d, bare=True)
            remote = repo.remotes.create_anonymous(args[0])
            heads = getattr(remote, "list_heads", None) or remote.ls_remotes
            for h in heads(callbacks=pygit2_callbacks()):
                if isinstance(h, dict):
                    name, oid = h["name"], h["oid"]
                else:
                    name, oid = h.name, h.oid
                if oid is None or str(oid) == "0" * 40:
                    continue
                print(f"{oid}\t{name}")
    elif action == "push":
        repo = pygit2.Repository(args[0])
        remote = repo.remotes.create_anonymous(args[1])
        remote.push([args[2]], callbacks=pygit2_callbacks())
    else:
        raise SystemExit(f"unknown action {action}")


def run_dulwich(action, args):
    from dulwich import porcelain

    if action == "clone":
        url, dest = args[0], args[1]
        kw = {}
        if "--depth" in args:
            kw["depth"] = int(args[args.index("--depth") + 1])
        porcelain.clone(url, dest, checkout=True, errstream=sys.stderr.buffer, **kw).close()
    elif action == "fetch":
        with porcelain.open_repo_closing(args[0]) as repo:
            porcelain.fetch(repo, "origin", errstream=sys.stderr.buffer)
    elif action == "ls-remote":
        result = porcelain.ls_remote(args[0])
        refs = getattr(result, "refs", result)
        for name, oid in sorted(refs.items()):
            if oid is None:
                continue
            name = name.decode() if isinstance(name, bytes) else name
            oid = oid.decode() if isinstance(oid, bytes) else oid
            print(f"{oid}\t{name}")
    elif action == "push":
        porcelain.push(args[0], args[1], args[2].encode(), errstream=sys.stderr.buffer)
    else:
        raise SystemExit(f"unknown action {action}")


def main():
    client, action, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    try:
        {"pygit2": run_pygit2, "dulwich": run_dulwich}[client](action, args)
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - report every failure the same way
        print(f"{client} {action} failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
