"""The lingering launcher after its hand-over: the C waiter, then the Python waiter.

A payload still running after 0.25 s makes the launcher exec itself into ``glexec-py-waiter``
(glexec_py/launch/glexec_waiter.c), which waits and on the first event execs the Python waiter
(glexec_py.launch.waiter); with proc-events tracking, or if the binary is missing or untrusted,
the launcher execs the Python waiter directly. Every test waits for the hand-over, checks the
kernel's view of the process that must survive the execs (exe, uid 0, the payload as its child,
the child subreaper flag, capabilities, memory) and then that each event still ends the call as
before: exit status, signal forwarding, pilot death, leftovers, records, epilogue.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from fixtures.site import PRODUCT, SITE_BASE, launch_behind_pilot, wait_for

pytestmark = [pytest.mark.root, pytest.mark.installed]

PYTHON = os.path.realpath("/usr/bin/python3")


def small_waiter_of(prefix: Path) -> str:
    sites = sorted(prefix.glob("lib/python3*/site-packages"))
    return str(sites[0] / "glexec_py" / "launch" / "glexec-py-waiter") if sites else ""


def popen_as(account, argv, env, stdin=None):
    return subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin", **env}, user=account.uid,
                            group=account.gid, extra_groups=account.groups, cwd="/",
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def handed_over(pid: int) -> bool:
    """Either waiter: both carry the Python waiter's command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"glexec_py.launch.waiter" in f.read()
    except FileNotFoundError:
        return False


def exe_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def status_field(pid: int, name: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return ""


def ppid_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def state_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return ""


def alive(pid: int) -> bool:
    return state_of(pid) not in ("", "Z")


@pytest.fixture(scope="module")
def small_waiter() -> str:
    path = small_waiter_of(PRODUCT)
    assert path and os.path.isfile(path), "glexec-install did not build glexec-py-waiter"
    return path


def in_small_waiter(pid: int, binary: str, timeout: float = 10) -> bool:
    return wait_for(lambda: exe_of(pid) == binary, timeout)


def assert_root_waiter_facts(pid: int, payload: int) -> None:
    assert status_field(pid, "Uid").split() == ["0", "0", "0", "0"]
    assert status_field(pid, "Gid").split() == ["0", "0", "0", "0"]
    assert ppid_of(payload) == pid
    # What root's execve gives, as for the full launcher and the Python waiter: nothing dropped,
    # nothing ambient.
    assert status_field(pid, "CapEff") == status_field(pid, "CapPrm") == \
        status_field(pid, "CapBnd")
    assert int(status_field(pid, "CapAmb"), 16) == 0


def release(proc: subprocess.Popen) -> None:
    proc.stdin.write(b"go\n")
    proc.stdin.close()


def test_small_waiter_keeps_root_child_subreaper_and_forwards_term(site, accounts, proxy,
                                                                   small_waiter):
    pidfile = f"/tmp/glexec-waiter-{uuid.uuid4().hex}"
    # A double-forked daemon re-parents to the launcher (its subreaper), also after two execs.
    script = (f"sh -c 'setsid sleep 303 & echo $! > {pidfile}'; "
              f"trap 'exit 42' TERM; echo $$; while :; do sleep 0.1; done")
    before = len(site.log_text())
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", script],
                    {"GLEXEC_CLIENT_CERT": str(proxy)})
    payload = int(proc.stdout.readline())
    assert in_small_waiter(proc.pid, small_waiter)
    assert_root_waiter_facts(proc.pid, payload)
    with open(pidfile) as f:
        daemon = int(f.read())
    os.unlink(pidfile)
    assert wait_for(lambda: ppid_of(daemon) == proc.pid, 5)  # subreaper survived the exec
    # The full launcher is ~11 MiB, a bare `python3 -I -S` ~7.6: this one only waits.
    assert int(status_field(proc.pid, "VmRSS").split()[0]) < 2048
    probe = subprocess.run(["/bin/kill", "-TERM", str(proc.pid)], user=accounts.pilot.uid,
                           group=accounts.pilot.gid, capture_output=True, text=True)
    assert probe.returncode != 0  # the pilot still cannot signal it
    assert exe_of(proc.pid) == small_waiter
    os.kill(proc.pid, signal.SIGTERM)  # root / the batch system: forwarded
    assert proc.wait(timeout=20) == 42
    assert wait_for(lambda: not alive(daemon), 5)  # TERM reached the leftover at once
    log = site.log_text()[before:]
    assert f"payload pid {payload} " in log and "exited with status 42" in log
    assert f"glexec.mon[{proc.pid}#{payload}]: Terminated, CPU user" in log


@pytest.mark.parametrize("how", ["kill-payload", "term-launcher"])
def test_small_waiter_reports_a_signal_death_as_128_plus_n(site, accounts, proxy, small_waiter,
                                                           how):
    before = len(site.log_text())
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", "echo $$; sleep 30"],
                    {"GLEXEC_CLIENT_CERT": str(proxy)})
    payload = int(proc.stdout.readline())
    assert in_small_waiter(proc.pid, small_waiter)
    if how == "kill-payload":
        os.kill(payload, signal.SIGKILL)
        assert proc.wait(timeout=20) == 128 + signal.SIGKILL
    else:  # the pending TERM waits for the Python waiter's handler, which forwards it
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 128 + signal.SIGTERM
        assert f"payload pid {payload} " in site.log_text()[before:]
        assert "killed by signal 15; glexec exit status 143" in site.log_text()[before:]


@pytest.mark.parametrize(("code", "status"), [(0, 0), (42, 42), (202, 204)])
def test_small_waiter_returns_the_payloads_status_and_records(site, accounts, proxy,
                                                              small_waiter, code, status):
    before = len(site.log_text())
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", f"echo $$; read x; "
                                     f"exit {code}"], {"GLEXEC_CLIENT_CERT": str(proxy)},
                    stdin=subprocess.PIPE)
    payload = int(proc.stdout.readline())
    assert in_small_waiter(proc.pid, small_waiter)
    release(proc)
    assert proc.wait(timeout=20) == status
    log = site.log_text()[before:]
    assert f"payload pid {payload} " in log
    assert f"exited with status {code}; glexec exit status {status}" in log
    assert f"glexec.mon[{proc.pid}#{payload}]: Terminated, CPU user" in log


def test_small_waiter_stops_the_payload_when_the_pilot_dies(site, accounts, proxy,
                                                            small_waiter):
    pidfile = f"/tmp/glexec-wpd-{uuid.uuid4().hex}"
    payload = f'trap "" TERM; echo $$ > {pidfile}; while :; do sleep 0.2; done'
    pilot, launcher = launch_behind_pilot(site, accounts.pilot, proxy, payload)
    assert wait_for(lambda: os.path.exists(pidfile) and os.path.getsize(pidfile) > 0, 20)
    with open(pidfile) as f:
        shell = int(f.read())
    os.unlink(pidfile)
    assert in_small_waiter(launcher, small_waiter)
    pilot.kill()
    pilot.wait()
    assert wait_for(lambda: not alive(launcher) and not alive(shell), 15)
    assert "the calling pilot died" in site.log_text()


def test_small_waiter_reaps_dead_orphans_but_never_the_payload(site, accounts, proxy,
                                                               small_waiter):
    # An orphan (its parent shell exits at once) re-parents to the launcher and dies 1.5 s
    # later; the Python waiter would leave its zombie until the payload ends.
    script = "o=$(sh -c 'sleep 1.5 >/dev/null 2>&1 & echo $!'); echo $$ $o; read x; exit 3"
    before = len(site.log_text())
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", script],
                    {"GLEXEC_CLIENT_CERT": str(proxy)}, stdin=subprocess.PIPE)
    payload, orphan = map(int, proc.stdout.readline().split())
    assert in_small_waiter(proc.pid, small_waiter)
    assert alive(orphan) and ppid_of(orphan) == proc.pid  # still running, under the C waiter
    assert wait_for(lambda: state_of(orphan) == "", 10)  # reaped: no zombie left
    assert exe_of(proc.pid) == small_waiter  # handled without waking the Python waiter
    assert ppid_of(payload) == proc.pid and alive(payload)
    release(proc)
    assert proc.wait(timeout=20) == 3
    assert "exited with status 3; glexec exit status 3" in site.log_text()[before:]


def test_daemon_left_behind_is_killed_after_two_execs(site, accounts, proxy, small_waiter):
    script = "d=$(sh -c 'setsid sleep 304 >/dev/null 2>&1 & echo $!'); echo $$ $d; read x"
    before = len(site.log_text())
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", script],
                    {"GLEXEC_CLIENT_CERT": str(proxy)}, stdin=subprocess.PIPE)
    payload, daemon = map(int, proc.stdout.readline().split())
    assert in_small_waiter(proc.pid, small_waiter)
    assert ppid_of(daemon) == proc.pid
    release(proc)
    assert proc.wait(timeout=20) == 0
    assert not alive(daemon)
    log = site.log_text()[before:]
    assert f"payload pid {payload} " in log and "leftovers terminated: 1" in log


def test_epilogue_runs_after_the_small_waiter(site_factory, accounts, proxy, small_waiter,
                                              trusted_tmp):
    out = trusted_tmp / "epilogue.out"
    script = trusted_tmp / "epilogue"
    script.write_text(f'#!/bin/sh\nenv | grep "^GLEXEC_EPILOG_PAYLOAD" | sort > {out}\n')
    os.chmod(script, 0o755)
    site = site_factory(conf={"epilogue": str(script)})
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", "echo $$; read x; exit 5"],
                    {"GLEXEC_CLIENT_CERT": str(proxy)}, stdin=subprocess.PIPE)
    payload = int(proc.stdout.readline())
    assert in_small_waiter(proc.pid, small_waiter)
    release(proc)
    assert proc.wait(timeout=20) == 5
    assert out.read_text().splitlines() == [f"GLEXEC_EPILOG_PAYLOAD_PID={payload}",
                                            "GLEXEC_EPILOG_PAYLOAD_STATUS=5"]


def test_proc_events_tracking_goes_on_after_the_hand_over(site_factory, accounts, proxy):
    """The proc connector needs reading: that launcher hands over to the Python waiter."""
    site = site_factory(conf={"process_tracking": "proc-events"})
    # The daemon is forked only after the hand-over: only the events read then can find it
    # (it leaves the payload's session and its parent).
    script = "echo $$; read x; sh -c 'setsid sleep 305 >/dev/null 2>&1 &'; sleep 0.3; exit 0"
    before = len(site.log_text())
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", script],
                    {"GLEXEC_CLIENT_CERT": str(proxy)}, stdin=subprocess.PIPE)
    payload = int(proc.stdout.readline())
    assert wait_for(lambda: handed_over(proc.pid), 10)
    assert exe_of(proc.pid) == PYTHON
    assert ppid_of(payload) == proc.pid
    release(proc)
    assert proc.wait(timeout=30) == 0
    log = site.log_text()[before:]
    assert "leftovers terminated: 1 (tracking: proc-events)" in log
    assert not [line for line in subprocess.run(["ps", "-eo", "uid=,args="], text=True,
                                                capture_output=True).stdout.splitlines()
                if "sleep 305" in line and line.split()[0] == str(accounts.mapped.uid)]


def test_declare_only_uses_the_small_waiter_as_the_caller(site_factory, accounts, proxy,
                                                          small_waiter, syslog_daemon):
    # Unprivileged, "auto" tracking ends at the proc connector (a reader to feed: the Python
    # waiter); with the subreaper-backed method the C waiter runs, as the caller.
    site = site_factory(declare_only=True,
                        conf=syslog_daemon.site_conf(process_tracking="descendants"))
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", "echo $$; read x; exit 9"],
                    {"GLEXEC_CLIENT_CERT": str(proxy)}, stdin=subprocess.PIPE)
    payload = int(proc.stdout.readline())
    assert in_small_waiter(proc.pid, small_waiter)
    assert status_field(proc.pid, "Uid").split() == [str(accounts.pilot.uid)] * 4
    # Not dumpable (the caller cannot ptrace it): the kernel then gives its /proc files to root.
    # The exe link changes at execve, before the dynamic loader has even run the waiter's main
    # (whose first call is the prctl), so wait for it rather than look once.
    assert wait_for(lambda: os.stat(f"/proc/{proc.pid}/status").st_uid == 0, 5)
    assert os.stat(f"/proc/{payload}/status").st_uid == accounts.pilot.uid
    assert ppid_of(payload) == proc.pid
    assert int(status_field(proc.pid, "CapEff"), 16) == 0
    release(proc)
    assert proc.wait(timeout=20) == 9
    assert "(tracking: descendants)" in syslog_daemon.wait_for_text("glexec exit status 9")


# ---- fallback to the Python waiter: a private copy of the product environment ---------------

@pytest.fixture(scope="module")
def copied_product():
    """/opt/glexec-py copied (root-owned, trusted path), so its waiter can be broken safely."""
    SITE_BASE.mkdir(mode=0o755, exist_ok=True)
    copy = SITE_BASE / f"gxw-env-{uuid.uuid4().hex[:8]}"
    subprocess.run(["cp", "-a", str(PRODUCT), str(copy)], check=True)
    yield copy
    shutil.rmtree(copy, ignore_errors=True)


def install_from(copy: Path, launcher: Path, conf: Path) -> None:
    subprocess.run([str(copy / "bin" / "python"), "-I", "-m", "glexec_py.tools.install",
                    "--quiet", "--bin", str(launcher), "--config", str(conf)], check=True)


@pytest.fixture
def copy_launcher(copied_product, site_factory):
    """(site, launcher built from the copy for that site's config, the copy's waiter)."""
    site = site_factory()
    launcher = site.bin.with_name(site.bin.name + "-copy")
    waiter = small_waiter_of(copied_product)
    if os.path.exists(waiter):  # an earlier test that failed half-way may have left it damaged
        st = os.lstat(waiter)
        if st.st_uid != 0 or st.st_mode & 0o022:
            os.unlink(waiter)
    install_from(copied_product, launcher, site.conf_path)
    yield site, launcher, waiter
    launcher.unlink(missing_ok=True)


def run_to_the_end(site, launcher, accounts, proxy) -> str:
    """Start a payload, wait for the hand-over, let it exit 5; return the waiter's exe."""
    before = len(site.log_text())
    proc = popen_as(accounts.pilot, [str(launcher), "/bin/sh", "-c", "echo $$; read x; exit 5"],
                    {"GLEXEC_CLIENT_CERT": str(proxy)}, stdin=subprocess.PIPE)
    payload = int(proc.stdout.readline())
    assert wait_for(lambda: handed_over(proc.pid), 10)
    exe = exe_of(proc.pid)
    assert_root_waiter_facts(proc.pid, payload)
    release(proc)
    assert proc.wait(timeout=20) == 5
    assert "exited with status 5; glexec exit status 5" in site.log_text()[before:]
    return exe


def test_copied_environment_uses_its_own_small_waiter(copy_launcher, accounts, proxy):
    site, launcher, waiter = copy_launcher
    assert run_to_the_end(site, launcher, accounts, proxy) == waiter


@pytest.mark.parametrize("damage", ["missing", "group-writable", "not-root-owned"])
def test_untrusted_or_missing_small_waiter_falls_back_to_python(copy_launcher, copied_product,
                                                                accounts, proxy, damage):
    site, launcher, waiter = copy_launcher
    if damage == "missing":
        os.unlink(waiter)
    elif damage == "group-writable":
        os.chmod(waiter, 0o775)
    else:
        os.chown(waiter, accounts.pilot.uid, 0)
    assert run_to_the_end(site, launcher, accounts, proxy) == PYTHON
    if damage != "missing":  # as for any file of the environment: glexec-install refuses
        refused = subprocess.run([str(copied_product / "bin" / "python"), "-I", "-m",
                                  "glexec_py.tools.install", "--quiet", "--bin", str(launcher),
                                  "--config", str(site.conf_path)], capture_output=True,
                                 text=True)
        assert refused.returncode == 1 and "glexec-py-waiter must be owned by root" in \
            refused.stderr
        os.unlink(waiter)
    # glexec-install builds a missing waiter, and the next call uses it again.
    install_from(copied_product, launcher, site.conf_path)
    st = os.lstat(waiter)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o755)
    assert run_to_the_end(site, launcher, accounts, proxy) == waiter
