"""The lingering launcher after its hand-over to the small waiter (glexec_py.launch.waiter).

Every test waits until the launcher process has re-executed itself (its command line names the
waiter) and then checks what must survive that execve: uid 0, the payload as its child, the
child subreaper flag, signal forwarding, pilot-death handling, leftover clean-up, the records
and the exit status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

import pytest
from fixtures.site import wait_for

pytestmark = [pytest.mark.root, pytest.mark.installed]


def popen_as(account, argv, env):
    return subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin", **env}, user=account.uid,
                            group=account.gid, extra_groups=account.groups, cwd="/",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def handed_over(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"glexec_py.launch.waiter" in f.read()
    except FileNotFoundError:
        return False


def status_field(pid: int, name: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return ""


def ppid_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_waiter_keeps_root_child_subreaper_and_forwards_term(site, accounts, proxy):
    pidfile = f"/tmp/glexec-waiter-{uuid.uuid4().hex}"
    # A double-forked daemon re-parents to the launcher (its subreaper), also after the exec.
    script = (f"sh -c 'setsid sleep 303 & echo $! > {pidfile}'; "
              f"trap 'exit 42' TERM; echo $$; while :; do sleep 0.1; done")
    before = len(site.log_text())
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", script],
                    {"GLEXEC_CLIENT_CERT": str(proxy)})
    payload = int(proc.stdout.readline())
    assert wait_for(lambda: handed_over(proc.pid), 10)
    assert status_field(proc.pid, "Uid").split() == ["0", "0", "0", "0"]
    assert ppid_of(payload) == proc.pid
    with open(pidfile) as f:
        daemon = int(f.read())
    os.unlink(pidfile)
    assert wait_for(lambda: ppid_of(daemon) == proc.pid, 5)  # subreaper survived the exec
    # Much smaller than the full launcher (~11 MiB): only the waiting code is loaded.
    assert int(status_field(proc.pid, "VmRSS").split()[0]) < 9500
    probe = subprocess.run(["/bin/kill", "-TERM", str(proc.pid)], user=accounts.pilot.uid,
                           group=accounts.pilot.gid, capture_output=True, text=True)
    assert probe.returncode != 0  # the pilot still cannot signal it
    os.kill(proc.pid, signal.SIGTERM)  # root / the batch system: forwarded
    assert proc.wait(timeout=20) == 42
    assert wait_for(lambda: not alive(daemon), 5)  # TERM reached the leftover at once
    log = site.log_text()[before:]
    assert f"payload pid {payload} " in log and "exited with status 42" in log
    assert f"glexec.mon[{proc.pid}#{payload}]: Terminated, CPU user" in log


def test_waiter_reports_a_signal_death_as_128_plus_n(site, accounts, proxy):
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", "echo $$; sleep 30"],
                    {"GLEXEC_CLIENT_CERT": str(proxy)})
    payload = int(proc.stdout.readline())
    assert wait_for(lambda: handed_over(proc.pid), 10)
    os.kill(payload, signal.SIGKILL)
    assert proc.wait(timeout=20) == 128 + signal.SIGKILL


def test_waiter_returns_the_payloads_status_and_records(site, accounts, proxy):
    before = len(site.log_text())
    result = site.run(accounts.pilot, ["/bin/sh", "-c", "sleep 0.6; exit 7"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 7, result
    log = site.log_text()[before:]
    assert "exited with status 7; glexec exit status 7" in log
    assert "Terminated, CPU user" in log


def test_waiter_maps_payload_status_201_to_204(site, accounts, proxy):
    result = site.run(accounts.pilot, ["/bin/sh", "-c", "sleep 0.6; exit 202"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 204, result


def test_waiter_stops_the_payload_when_the_pilot_dies(site, accounts, proxy):
    pidfile = f"/tmp/glexec-wpd-{uuid.uuid4().hex}"
    payload = f"trap '' TERM; echo $$ > {pidfile}; while :; do sleep 0.2; done"
    pilot = subprocess.Popen(
        ["/bin/sh", "-c", f"GLEXEC_CLIENT_CERT={proxy} {site.bin} /bin/sh -c \"{payload}\" & "
                          "echo $!; wait"],
        env={"PATH": "/usr/bin:/bin"}, user=accounts.pilot.uid, group=accounts.pilot.gid,
        extra_groups=accounts.pilot.groups, cwd="/", stdout=subprocess.PIPE)
    launcher = int(pilot.stdout.readline())
    assert wait_for(lambda: os.path.exists(pidfile) and os.path.getsize(pidfile) > 0, 20)
    with open(pidfile) as f:
        shell = int(f.read())
    os.unlink(pidfile)
    assert wait_for(lambda: handed_over(launcher), 10)
    pilot.kill()
    pilot.wait()
    assert wait_for(lambda: not alive(launcher) and not alive(shell), 15)
    assert "the calling pilot died" in site.log_text()
