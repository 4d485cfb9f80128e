"""prune_userprocs against real processes: test accounts, a fake batch daemon, real signals.

Processes run under throw-away accounts (gxtprune1/2, uids 47510/47511); the "batch daemon" is a
copy of ``sleep`` named ``slurmstepd`` started as root with the job's processes below it (the
shell forks the job, then execs into the daemon binary, so the job's parent really is a process
whose comm is ``slurmstepd``). Every real run names the test users explicitly, so nothing else on
the machine can be hit; ``-a`` is only exercised as a dry run.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from fixtures.prereq import require_program, require_root

from glexec_py.tools.prune_userprocs import (
    ProcInfo,
    open_verified,
    read_process,
    scan_processes,
    send_signal,
)

pytestmark = pytest.mark.root

USERS = {"gxtprune1": 47510, "gxtprune2": 47511}
PRUNE = [sys.executable, "-m", "glexec_py.tools.prune_userprocs"]
BASE = Path("/run/glexec-py-tests")


def kill_test_processes() -> None:
    """Remove processes of the test accounts (also leftovers of an interrupted run)."""
    uids = set(USERS.values())
    for info in scan_processes().values():
        if info.ruid in uids:
            fd = open_verified(info)
            if fd is not None:
                send_signal(fd, signal.SIGKILL)
                os.close(fd)


@pytest.fixture(scope="module")
def accounts() -> dict[str, int]:
    require_root()
    require_program("setpriv")
    for name, uid in USERS.items():
        try:
            if pwd.getpwnam(name).pw_uid == uid:
                continue
            subprocess.run(["userdel", name], check=True)
        except KeyError:
            pass
        subprocess.run(["useradd", "-u", str(uid), "-g", "65534", "-M", "-d", "/nonexistent",
                        "-s", "/usr/sbin/nologin", name], check=True, capture_output=True)
    kill_test_processes()
    yield dict(USERS)
    kill_test_processes()
    for name in USERS:
        subprocess.run(["userdel", name], capture_output=True)


@pytest.fixture(scope="module")
def bins() -> Path:
    """Copies of sleep under chosen names, in a directory every account can read."""
    require_root()
    BASE.mkdir(mode=0o755, exist_ok=True)
    path = BASE / f"prune-{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o755)
    for name in ("slurmstepd", "sshd", "gxtjobroot", "gxtkeepme", "a) b (c"):
        shutil.copy("/usr/bin/sleep", path / name)
        (path / name).chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Procs:
    """Starts the scenario's processes and remembers their identities for assertions."""

    def __init__(self, accounts: dict[str, int], bins: Path) -> None:
        self.accounts = accounts
        self.bins = bins
        self.started: list[subprocess.Popen[bytes]] = []
        self.known: list[ProcInfo] = []

    def as_user(self, user: str) -> str:
        return f"setpriv --reuid={self.accounts[user]} --regid=65534 --clear-groups"

    def shell(self, script: str, count: int) -> list[ProcInfo]:
        """Run ``script`` as root; it prints ``count`` pids (one per line) of what it started."""
        proc = subprocess.Popen(["/bin/sh", "-c", script], stdout=subprocess.PIPE,
                                start_new_session=True)
        self.started.append(proc)
        infos = []
        for _ in range(count):
            pid = int(proc.stdout.readline())
            infos.append(self.identify(pid))
        return infos

    def identify(self, pid: int, transient: tuple[str, ...] = ("setpriv", "sh")) -> ProcInfo:
        # setpriv execs into the final program; wait until it has (comm is not transient).
        for _ in range(200):
            info = read_process(pid)
            if info is not None and info.comm not in transient:
                self.known.append(info)
                return info
            time.sleep(0.01)
        raise AssertionError(f"process {pid} did not start")

    def under_daemon(self, user: str, daemon: str = "slurmstepd") -> tuple[ProcInfo, ProcInfo,
                                                                           ProcInfo]:
        """A root daemon with a job child and grandchild running as ``user``."""
        script = (f"{self.as_user(user)} /bin/sh -c 'sleep 300 & echo $!; exec sleep 301' & "
                  f"echo $!; exec '{self.bins}/{daemon}' 302")
        first, second = self.shell(script, 2)  # the two echos race: order by parentage
        daemon_info = self.identify(self.started[-1].pid)
        child, grandchild = (first, second) if first.ppid == daemon_info.pid else (second, first)
        assert child.ppid == daemon_info.pid and grandchild.ppid == child.pid
        return daemon_info, child, grandchild

    def orphan(self, user: str, program: str = "sleep") -> ProcInfo:
        script = (f"{self.as_user(user)} /bin/sh -c "
                  f"\"'{program}' 300 >/dev/null 2>&1 & echo \\$!\"")
        (info,) = self.shell(script, 1)
        self.started[-1].wait(timeout=10)
        for _ in range(200):  # the inner shell exits too; then the orphan is re-parented
            now = read_process(info.pid)
            parent = read_process(now.ppid) if now is not None else None
            if parent is not None and parent.comm not in ("sh", "setpriv"):
                self.known.append(now)
                return now
            time.sleep(0.01)
        raise AssertionError(f"process {info.pid} was not orphaned")

    def user_daemon(self, user: str) -> tuple[ProcInfo, ProcInfo]:
        """A process the *user* named slurmstepd, with a child."""
        script = (f"exec {self.as_user(user)} /bin/sh -c "
                  f"'sleep 300 & echo $!; exec \"{self.bins}/slurmstepd\" 301'")
        (child,) = self.shell(script, 1)
        return self.identify(self.started[-1].pid), child

    def cleanup(self) -> None:
        for info in self.known:
            fd = open_verified(info)
            if fd is not None:
                send_signal(fd, signal.SIGKILL)
                os.close(fd)
        kill_test_processes()
        for proc in self.started:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def procs(accounts: dict[str, int], bins: Path) -> Procs:
    p = Procs(accounts, bins)
    yield p
    p.cleanup()


def alive(info: ProcInfo) -> bool:
    now = read_process(info.pid)
    return now is not None and now.state != "Z" and now.starttime == info.starttime


def prune(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PRUNE, *args], capture_output=True, text=True, timeout=60)


def listed(output: str) -> set[int]:
    return {int(line.split()[3]) for line in output.splitlines()
            if line.startswith("would kill pid")}


def test_kills_orphans_and_spares_job_processes(procs: Procs) -> None:
    daemon, child, grandchild = procs.under_daemon("gxtprune1")
    stray = procs.orphan("gxtprune1")
    other_user = procs.orphan("gxtprune2")
    assert stray.ppid != 0
    result = prune("-k", "9", "-v", "--kill-ssh-sessions", "gxtprune1")
    assert result.returncode == 0, result.stderr
    assert f"killed pid {stray.pid} uid 47510 (gxtprune1)" in result.stdout
    assert "with SIGKILL" in result.stdout
    time.sleep(0.1)
    assert not alive(stray)
    assert alive(child) and alive(grandchild) and alive(daemon)
    assert alive(other_user), "users not named are not touched"


def test_dry_run_lists_exactly_the_strays_and_kills_nothing(procs: Procs) -> None:
    _, child, grandchild = procs.under_daemon("gxtprune1")
    strays = [procs.orphan("gxtprune1"), procs.orphan("gxtprune2")]
    result = prune("-n", "--kill-ssh-sessions", "gxtprune1", "gxtprune2")
    assert result.returncode == 0, result.stderr
    assert listed(result.stdout) == {s.pid for s in strays}
    assert all(alive(p) for p in [*strays, child, grandchild])


def test_all_users_dry_run(procs: Procs) -> None:
    _, child, grandchild = procs.under_daemon("gxtprune2")
    strays = [procs.orphan("gxtprune1"), procs.orphan("gxtprune2")]
    pids = listed(prune("-a", "-n", "--kill-ssh-sessions").stdout)
    assert {s.pid for s in strays} <= pids
    assert not {child.pid, grandchild.pid} & pids
    assert all(p.ruid > 99 for p in map(read_process, pids) if p is not None)


def test_user_named_daemon_protects_nothing(procs: Procs) -> None:
    fake_daemon, child = procs.user_daemon("gxtprune1")
    assert fake_daemon.comm == "slurmstepd" and child.ppid == fake_daemon.pid
    result = prune("-k", "KILL", "--kill-ssh-sessions", "gxtprune1")
    assert result.returncode == 0, result.stderr
    time.sleep(0.1)
    assert not alive(child) and not alive(fake_daemon)


def test_daemon_pid_option_and_extra_daemon_name(procs: Procs) -> None:
    root, child, grandchild = procs.under_daemon("gxtprune1", daemon="gxtjobroot")
    assert listed(prune("-n", "--kill-ssh-sessions", "gxtprune1").stdout) == {
        child.pid, grandchild.pid}
    assert listed(prune("-n", "--kill-ssh-sessions", "--daemon-pid", str(root.pid),
                        "gxtprune1").stdout) == set()
    assert listed(prune("-n", "--kill-ssh-sessions", "--daemon", "gxtjobroot",
                        "gxtprune1").stdout) == set()


def test_ssh_sessions_spared_unless_asked(procs: Procs) -> None:
    _, child, grandchild = procs.under_daemon("gxtprune1", daemon="sshd")
    assert listed(prune("-n", "gxtprune1").stdout) == set()
    assert listed(prune("-n", "--kill-ssh-sessions", "gxtprune1").stdout) == {
        child.pid, grandchild.pid}


def test_min_uid_and_exemptions(procs: Procs) -> None:
    one, two = procs.orphan("gxtprune1"), procs.orphan("gxtprune2")
    keep = procs.orphan("gxtprune2", program=f"{procs.bins}/gxtkeepme")
    assert keep.comm == "gxtkeepme"
    base = ["-n", "--kill-ssh-sessions", "gxtprune1", "gxtprune2"]
    assert listed(prune(*base).stdout) == {one.pid, two.pid, keep.pid}
    assert listed(prune(*base, "--min-uid", "47510").stdout) == {two.pid, keep.pid}
    assert listed(prune(*base, "--exempt-user", "gxtprune2").stdout) == {one.pid}
    assert listed(prune(*base, "--exempt-command", "gxtkeepme").stdout) == {one.pid, two.pid}


def test_command_name_with_spaces_and_parentheses(procs: Procs) -> None:
    odd = procs.orphan("gxtprune1", program=f"{procs.bins}/a) b (c")
    assert odd.comm == "a) b (c" and odd.ruid == 47510
    result = prune("-n", "--kill-ssh-sessions", "gxtprune1")
    assert f"would kill pid {odd.pid} uid 47510 (gxtprune1) ppid {odd.ppid} comm 'a) b (c'" \
        in result.stdout
    prune("--kill-ssh-sessions", "gxtprune1")
    time.sleep(0.1)
    assert not alive(odd)


@pytest.mark.parametrize("given, signum", [("TERM", 15), ("15", 15), ("9", 9), ("SIGHUP", 1)])
def test_signal_option(procs: Procs, given: str, signum: int) -> None:
    proc = subprocess.Popen(procs.as_user("gxtprune1").split() + ["sleep", "300"])
    procs.started.append(proc)
    procs.identify(proc.pid)
    result = prune("-k", given, "--kill-ssh-sessions", "gxtprune1")
    assert result.returncode == 0, result.stderr
    assert proc.wait(timeout=10) == -signum


def test_forking_process_is_caught_over_rounds(procs: Procs) -> None:
    script = (f"{procs.as_user('gxtprune1')} /bin/sh -c "
              f"'while :; do sleep 300 & sleep 0.01; done' >/dev/null 2>&1 & echo $!")
    proc = subprocess.Popen(["/bin/sh", "-c", script], stdout=subprocess.PIPE)
    procs.started.append(proc)
    spawner = procs.identify(int(proc.stdout.readline()), transient=("setpriv",))
    time.sleep(0.3)
    before = [p for p in scan_processes().values() if p.ruid == 47510]
    assert len(before) > 5
    result = prune("--kill-ssh-sessions", "gxtprune1")
    assert result.returncode == 0, result.stderr
    time.sleep(0.1)
    left = [p for p in scan_processes().values() if p.ruid == 47510 and p.state != "Z"]
    assert left == [], [(p.pid, p.comm) for p in left]
    assert not alive(spawner)


def test_recycled_pid_is_not_signalled(procs: Procs) -> None:
    target = procs.orphan("gxtprune1")
    stale = ProcInfo(target.pid, target.comm, target.state, target.ppid, target.flags,
                     target.starttime - 1, target.ruid, target.euid)
    assert open_verified(stale) is None
    other_uid = ProcInfo(target.pid, target.comm, target.state, target.ppid, target.flags,
                         target.starttime, 47511, target.euid)
    assert open_verified(other_uid) is None
    assert alive(target)
    fd = open_verified(target)
    assert fd is not None
    try:
        assert send_signal(fd, signal.SIGKILL) == ""
        time.sleep(0.1)
        assert not alive(target)
        assert send_signal(fd, signal.SIGKILL) in ("gone", "")
    finally:
        os.close(fd)


def test_configuration_file(procs: Procs, trusted_tmp: Path, tmp_path: Path) -> None:
    root, child, _ = procs.under_daemon("gxtprune1", daemon="gxtjobroot")
    two = procs.orphan("gxtprune2")
    conf = trusted_tmp / "prune_userprocs.conf"
    conf.write_text("# site settings\ndaemons = gxtjobroot, pbs_mom\n"
                    "exempt_users = gxtprune2\nkill_ssh_sessions = yes\n")
    conf.chmod(0o644)
    result = prune("-n", "-c", str(conf), "gxtprune1", "gxtprune2")
    assert result.returncode == 0, result.stderr
    assert listed(result.stdout) == set()
    assert alive(child) and alive(two) and alive(root)
    conf.write_text("daemon = typo\n")
    result = prune("-n", "-c", str(conf), "gxtprune1")
    assert result.returncode == 2 and "line 1: expected one of" in result.stderr
    untrusted = tmp_path / "prune.conf"
    untrusted.write_text("min_uid = 99\n")
    result = prune("-n", "-c", str(untrusted), "gxtprune1")
    assert result.returncode == 2
    assert "prune_userprocs configuration" in result.stderr


@pytest.mark.parametrize("args, message", [
    ([], "give either -a or a list of users"),
    (["-a", "gxtprune1"], "give either -a or a list of users"),
    (["-k", "NOPE", "-a"], "unknown signal NOPE"),
    (["gxt-no-such-user"], "no such user: gxt-no-such-user"),
])
def test_usage_errors(accounts: dict[str, int], args: list[str], message: str) -> None:
    result = prune("-n", *args)
    assert result.returncode == 2
    assert result.stderr.strip() == f"prune_userprocs: {message}"
