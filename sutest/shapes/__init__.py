"""Payload shapes for the sutest matrix: how a payload may try to leave the batch system's hands.

Runs as: the payload account (inside a batch job, below the launcher under test). Trusts: nothing.
Hot path: no.

Each shape starts one *marker* process that the harness then watches: it writes its pid to
``<rundir>/<tag>.pid`` and either sleeps or burns a fixed amount of CPU (``burn:<seconds>``),
then writes ``<tag>.done``.  The shapes (batch-interop.md B.2 plus the launcher's own cases):

``plain``            the marker is the launcher's direct child: the launcher's contract
``setsid``           a child that calls setsid() (new session and process group), still a child
``daemon``           double fork + setsid: re-parented away from the tree, new session
``orphan``           ``cmd & exit``: re-parented, but same session and process group
``gid_dropped``      like plain, but the launcher drops the batch system's tracking gid
``launcher_killed``  like plain; the harness SIGKILLs the launcher before acting on the job

In every shape the payload's first process stays alive until the marker has ended: a payload
that had already ended would let a lingering launcher (glexec-py) terminate the escaped marker
before the batch system acts, and the cell would test the launcher's clean-up instead of the batch
system.  ``exit`` as the fifth argument makes it leave at once instead (the daemonize-and-exit
proof: the job ends while the daemon lives on).
"""

from __future__ import annotations

SHAPES = ("plain", "setsid", "daemon", "orphan", "gid_dropped", "launcher_killed")

# Shapes whose launcher is told to keep the inherited supplementary groups.
KEEPS_GIDS = {shape: shape != "gid_dropped" for shape in SHAPES}

DESCRIPTIONS = {
    "plain": "plain child of the launcher (the launcher's contract)",
    "setsid": "child that called setsid()",
    "daemon": "daemonized: double fork + setsid",
    "orphan": "orphan in the same process group",
    "gid_dropped": "plain child, tracking gid dropped",
    "launcher_killed": "plain child, launcher SIGKILLed first",
}

# The payload program (run with ``python3 -I payload.py <shape> <rundir> <tag> <mode>``).
PAYLOAD = r'''
import os, sys, time

shape, rundir, tag, mode = sys.argv[1:5]
leave = sys.argv[5:6] == ["exit"]

def marker():
    path = os.path.join(rundir, tag)
    with open(path + ".pid.tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.rename(path + ".pid.tmp", path + ".pid")
    if mode.startswith("burn:"):
        need = float(mode[5:])
        while sum(os.times()[:2]) < need:
            for _ in range(20000):
                pass
    else:
        time.sleep(float(mode[6:]) if mode.startswith("sleep:") else 600)
    open(path + ".done", "w").close()
    os._exit(0)

def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False

def stay_until_marker_ends():
    if leave:
        sys.exit(0)
    path = os.path.join(rundir, tag + ".pid")
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        pid = int(open(path).read())
    except (OSError, ValueError):
        sys.exit(1)
    while alive(pid):
        time.sleep(0.1)

if shape in ("plain", "gid_dropped", "launcher_killed"):
    marker()
elif shape == "setsid":
    pid = os.fork()
    if pid == 0:
        os.setsid()
        marker()
    os.waitpid(pid, 0)
elif shape in ("daemon", "orphan"):
    # daemon: fork, setsid, fork, exit; orphan: fork, fork, exit (same session and group).
    pid = os.fork()
    if pid == 0:
        if shape == "daemon":
            os.setsid()
        if os.fork() == 0:
            marker()
        os._exit(0)
    os.waitpid(pid, 0)
    stay_until_marker_ends()
else:
    sys.exit("unknown shape " + shape)
'''
