#!/usr/bin/env python3
"""Run a server command and append its resource usage to a file.

Usage: rusage.py OUTFILE 'SERVER COMMAND' ARGS...

The server command string is split with shlex, ARGS are appended. stdin/stdout/stderr
are inherited (this process never touches them), so it can stand in for
`--upload-pack=<wrapper>`. After the server exits one line is appended to OUTFILE:

    wall_seconds user_seconds sys_seconds maxrss_kib exit_status

The figures come from wait4() on the server process: they include its waited-for
descendants (git-upload-pack's pack-objects child); maxrss is the largest single
process of that tree, not a sum.
"""
import os
import shlex
import sys
import time

out, server = sys.argv[1], sys.argv[2]
argv = shlex.split(server) + sys.argv[3:]
env = dict(os.environ)
for k in list(env):
    # tracing is meant for the client only
    if k.startswith("GIT_TRACE") or k == "BENCH_OUT":
        del env[k]

t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        os.write(2, f"rusage.py: cannot run {argv[0]}: {e}\n".encode())
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.monotonic() - t0
code = os.waitstatus_to_exitcode(status)
with open(out, "a") as f:
    f.write(f"{wall:.6f} {ru.ru_utime:.6f} {ru.ru_stime:.6f} {ru.ru_maxrss} {code}\n")
sys.exit(code if code >= 0 else 128 - code)
