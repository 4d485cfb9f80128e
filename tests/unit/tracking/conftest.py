"""Fixtures for the process-tracker tests: a test account and a real forked 'launcher'.

The launcher runs in its own forked process (never in pytest itself: the tracker makes its
process a child subreaper and reaps whatever it adopts), forks the payload exactly as the real
launcher does (tracker hooks around ``os.fork``, the identity switch in the child) and reports
back through a pipe what the tracker did.
"""

from __future__ import annotations

import marshal
import os
import pwd
import subprocess
import time

import pytest
from fixtures.prereq import require_root

ACCOUNT = "gxftrack"
UID = 47801
GID = 47801
TRACKING_GID = 47850


def _remove_account() -> None:
    subprocess.run(["userdel", "-f", ACCOUNT], capture_output=True)
    subprocess.run(["groupdel", ACCOUNT], capture_output=True)


@pytest.fixture(scope="session")
def payload_account() -> pwd.struct_passwd:
    require_root()
    _remove_account()  # tolerate a leftover from an interrupted run
    subprocess.run(["groupadd", "-g", str(GID), ACCOUNT], check=True)
    subprocess.run(["useradd", "-M", "-N", "-u", str(UID), "-g", str(GID), "-d", "/nonexistent",
                    "-s", "/usr/sbin/nologin", ACCOUNT], check=True)
    yield pwd.getpwnam(ACCOUNT)
    kill_uid(UID)
    _remove_account()


def uid_pids(uid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{name}")
        except OSError:
            continue
        if st.st_uid == uid:
            with open(f"/proc/{name}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                found.append(int(name))
    return found


def kill_uid(uid: int) -> None:
    for pid in uid_pids(uid):
        try:
            os.kill(pid, 9)
        except OSError:
            pass


# The payload: Python, so it can report its children's pids on fd 3 precisely.
# argv: shapes separated by commas; each leftover writes "<shape> <pid>" and sleeps.
PAYLOAD = r"""
import os, sys, signal, time
out = 3
def report(tag):
    os.write(out, f"{tag} {os.getpid()}\n".encode())
def linger(tag, ignore_term=False):
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    report(tag)
    time.sleep(300)
    os._exit(0)
shapes = sys.argv[1].split(",") if sys.argv[1] else []
for shape in shapes:
    if shape == "child":
        if os.fork() == 0: linger(shape)
    elif shape == "setsid":
        if os.fork() == 0:
            os.setsid(); linger(shape)
    elif shape == "daemon":          # classic double fork + setsid: re-parented away
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0: linger(shape)
            os._exit(0)
        os.wait()
    elif shape == "stubborn":        # ignores SIGTERM: needs the SIGKILL stage
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0: linger(shape, ignore_term=True)
            os._exit(0)
        os.wait()
    elif shape == "forker":          # keeps forking new short-lived children while it lives
        if os.fork() == 0:
            os.setsid()
            report(shape)
            while True:
                if os.fork() == 0:
                    time.sleep(0.05); os._exit(0)
                time.sleep(0.01)
                try: os.waitpid(-1, os.WNOHANG)
                except ChildProcessError: pass
os.write(out, b"done\n")
mode = sys.argv[2]
if mode == "wait":
    time.sleep(300)
"""


class LauncherRun:
    """What the forked launcher reported."""

    def __init__(self, info: dict, leftovers: dict[str, int]) -> None:
        self.method_used = info["method_used"]
        self.signalled = info["signalled"]
        self.failures = info["failures"]
        self.cpu = info["cpu"]
        self.cgroups = info["cgroups"]
        self.payload_cgroups = info["payload_cgroups"]
        self.leftovers = leftovers


def run_launcher(method: str, shapes: list[str], *, tracking_gid: int | None = None,
                 payload_mode: str = "exit", grace: float = 0.5,
                 keep_gids: tuple[int, ...] = ()) -> LauncherRun:
    """Fork a launcher that runs the payload under the test account and cleans up after it."""
    from glexec_py.launch.tracking import ProcessTracker

    report_r, report_w = os.pipe()
    pids_r, pids_w = os.pipe()
    launcher = os.fork()
    if launcher == 0:
        try:
            os.close(report_r)
            tracker = ProcessTracker(method=method, tracking_gid=tracking_gid)
            tracker.before_fork()
            with open("/proc/self/cgroup") as fh:
                own_cgroups = fh.read()
            child = os.fork()
            if child == 0:
                tracker.in_child()
                os.dup2(pids_w, 3)
                groups = list(keep_gids) + ([tracking_gid] if tracking_gid else [])
                os.setgroups(groups)
                os.setresgid(GID, GID, GID)
                os.setresuid(UID, UID, UID)
                os.execv("/usr/bin/python3", ["python3", "-I", "-c", PAYLOAD, ",".join(shapes),
                                          payload_mode])
            os.close(pids_w)
            tracker.after_fork(child)
            # Wait until the payload says its leftovers are set up.
            seen = b""
            while b"done\n" not in seen or seen.count(b"\n") < len(shapes) + 1:
                chunk = os.read(pids_r, 4096)
                if not chunk:
                    break
                seen += chunk
            with open(f"/proc/{child}/cgroup") as fh:
                payload_cgroups = fh.read()
            if payload_mode == "exit":
                os.waitpid(child, 0)
            cpu = tracker.cpu_times()
            signalled = tracker.terminate_leftovers(grace=grace)
            if payload_mode != "exit":
                os.waitpid(child, 0)
            info = {"method_used": tracker.method_used, "signalled": signalled,
                    "failures": tracker.failures, "cpu": cpu, "cgroups": own_cgroups,
                    "payload_cgroups": payload_cgroups, "pids": seen.decode()}
            tracker.close()
            os.write(report_w, marshal.dumps(info))
            os._exit(0)
        except BaseException as exc:  # report instead of running pytest's code in the fork
            os.write(report_w, marshal.dumps({"error": repr(exc)}))
            os._exit(1)
    os.close(report_w)
    os.close(pids_w)
    os.close(pids_r)
    data = b""
    while chunk := os.read(report_r, 65536):
        data += chunk
    os.close(report_r)
    os.waitpid(launcher, 0)
    info = marshal.loads(data)
    if "error" in info:
        raise AssertionError(f"launcher failed: {info['error']}")
    leftovers = {}
    for line in info["pids"].splitlines():
        tag, _, pid = line.partition(" ")
        if pid:
            leftovers[tag] = int(pid)
    return LauncherRun(info, leftovers)


def wait_gone(pids: list[int], timeout: float = 3.0) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.02)
    return alive


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
