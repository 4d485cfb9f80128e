"""Attack catalogue group J (signals and resource limits the pilot controls), end to end.

All rlimits are inherited from the caller. The pilot may starve the root launcher of descriptors,
memory, file size or CPU, or signal it; each must end in the same result as without the attack
or a clean one-line failure that left nothing behind, and never let the pilot suppress the
records of a payload that ran (EGI-SVG-2011-1641 class).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
import uuid

import pytest
from fixtures.side_effects import assert_refused

pytestmark = [pytest.mark.root, pytest.mark.installed]


def run_limited(site, account, argv, env, limits, timeout=60):
    """Run the launcher as ``account`` with rlimits set in the child just before exec."""
    from fixtures.site import RunResult

    def apply() -> None:
        for which, value in limits.items():
            resource.setrlimit(which, value)

    before = len(site.log_text())
    proc = subprocess.run([str(site.bin), *argv], env={"PATH": "/usr/bin:/bin", **env},
                          user=account.uid, group=account.gid, extra_groups=account.groups,
                          capture_output=True, preexec_fn=apply, cwd="/", timeout=timeout)
    return RunResult(proc.returncode, proc.stdout.decode(errors="replace"),
                     proc.stderr.decode(errors="replace"),
                     site.log_text()[before:].splitlines())


def marker_path() -> str:
    return f"/tmp/gxa-ran-{uuid.uuid4().hex[:8]}"


LIMIT_CASES = [
    ("j117_nofile_3", {resource.RLIMIT_NOFILE: (3, 3)}),
    ("j117_nofile_0", {resource.RLIMIT_NOFILE: (0, 0)}),
    ("j117_nofile_4", {resource.RLIMIT_NOFILE: (4, 4)}),
    ("j117_nofile_6", {resource.RLIMIT_NOFILE: (6, 6)}),
    ("j117_nofile_10", {resource.RLIMIT_NOFILE: (10, 10)}),
    ("j118_fsize_1", {resource.RLIMIT_FSIZE: (1, 1)}),
    ("j119_as_32m", {resource.RLIMIT_AS: (32 << 20, 32 << 20)}),
    ("j119_as_100m", {resource.RLIMIT_AS: (100 << 20, 100 << 20)}),
    ("j119_data_8m", {resource.RLIMIT_DATA: (8 << 20, 8 << 20)}),
    ("stack_64k", {resource.RLIMIT_STACK: (64 << 10, 64 << 10)}),
    ("nproc_0", {resource.RLIMIT_NPROC: (0, 0)}),
]


@pytest.mark.parametrize(("case", "limits"), LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
def test_starved_launcher_fails_closed_or_runs_normally(pool_site, accounts, proxy, snapshot,
                                                        case, limits):
    marker = marker_path()
    snap = snapshot(pool_site, marker)
    result = run_limited(pool_site, accounts.pilot, ["/usr/bin/touch", marker],
                         {"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY": "/dev/null"},
                         limits)
    assert "Traceback" not in result.err and "Fatal Python error" not in result.err, result
    if result.code == 127:
        # RLIMIT_NOFILE 0-4 where root cannot raise a hard limit (no CAP_SYS_RESOURCE in the
        # bounding set): ld.so cannot load the front end's or the interpreter's libraries, so
        # nothing of ours runs and nothing happens; documented in SECURITY.md
        assert case.startswith("j117_nofile_"), result
        assert "error while loading shared libraries" in result.err, result
        assert not os.path.exists(marker)
        snap.assert_unchanged()
        return
    if result.code == 0:
        assert os.path.exists(marker)
        os.unlink(marker)
        completion = [r for r in result.records if "payload pid" in r]
        assert len(completion) == 1, result.records
        return
    assert result.code in (201, 202), result
    assert not os.path.exists(marker), result
    assert len(result.err.splitlines()) == 1, result
    snap.assert_unchanged()


def test_j118_log_file_limit_cannot_suppress_the_completion_record(pool_site, accounts, proxy):
    """RLIMIT_FSIZE just above the log's size: the decision record fits; the record that the
    payload ended must still be written (the pilot must not be able to hide a run)."""
    marker = marker_path()
    # room for the decision records, not for the completion record
    size = os.path.getsize(pool_site.log_path) + 1500
    result = run_limited(pool_site, accounts.pilot, ["/usr/bin/touch", marker],
                         {"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY": "/dev/null"},
                         {resource.RLIMIT_FSIZE: (size, size)})
    ran = os.path.exists(marker)
    if ran:
        os.unlink(marker)
        assert any("payload pid" in r for r in result.records), result
    else:
        assert result.code == 202, result


def test_rlimits_reach_the_payload_unchanged(pool_site, accounts, proxy):
    """The batch system's limits are the payload's, whatever the launcher does for itself."""
    limits = {resource.RLIMIT_FSIZE: (1 << 30, 1 << 30), resource.RLIMIT_CPU: (3000, 3600),
              resource.RLIMIT_NOFILE: (200, 300), resource.RLIMIT_AS: (8 << 30, 8 << 30)}
    result = run_limited(pool_site, accounts.pilot, ["/bin/cat", "/proc/self/limits"],
                         {"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY": "/dev/null"},
                         limits)
    assert result.code == 0, result
    rows = {line[:26].strip(): line[26:].split()[:2] for line in result.out.splitlines()[1:]}
    assert rows["Max file size"] == [str(1 << 30), str(1 << 30)]
    assert rows["Max cpu time"] == ["3000", "3600"]
    assert rows["Max open files"] == ["200", "300"]
    assert rows["Max address space"] == [str(8 << 30), str(8 << 30)]


def test_j121_cpu_limit_of_the_caller_does_not_kill_the_lingering_launcher(pool_site, accounts,
                                                                          proxy):
    """RLIMIT_CPU 1 s: a payload burning CPU dies of SIGXCPU/SIGKILL; the launcher records it."""
    burn = "while :; do :; done"
    result = run_limited(pool_site, accounts.pilot, ["/bin/sh", "-c", burn],
                         {"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY": "/dev/null"},
                         {resource.RLIMIT_CPU: (1, 2)}, timeout=60)
    assert result.code in (128 + signal.SIGXCPU, 128 + signal.SIGKILL), result
    assert any("payload pid" in r for r in result.records), result.records


def test_j113_stop_cont_storm_from_the_pilot(pool_site, accounts, proxy):
    """The pilot SIGSTOPs/SIGCONTs everything it may signal during a run: same result."""
    script = "sleep 0.5; echo done"
    launcher = subprocess.Popen([str(pool_site.bin), "/bin/sh", "-c", script],
                                env={"GLEXEC_CLIENT_CERT": str(proxy), "PATH": "/usr/bin:/bin",
                                     "GLEXEC_TARGET_PROXY": "/dev/null"},
                                user=accounts.pilot.uid, group=accounts.pilot.gid,
                                extra_groups=accounts.pilot.groups, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd="/")
    storm = subprocess.Popen(
        ["/bin/sh", "-c", f"for i in $(seq 200); do kill -STOP {launcher.pid} 2>/dev/null; "
                          f"pkill -STOP -u {accounts.pilot.uid} -x python3 2>/dev/null; "
                          f"kill -CONT {launcher.pid} 2>/dev/null; "
                          f"pkill -CONT -u {accounts.pilot.uid} 2>/dev/null; done"],
        user=accounts.pilot.uid, group=accounts.pilot.gid, extra_groups=[])
    out, err = launcher.communicate(timeout=60)
    storm.wait(timeout=60)
    assert launcher.returncode == 0, err
    assert out == b"done\n"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                                    signal.SIGKILL])
def test_j114_pilot_signals_before_the_switch(pool_site, accounts, attack_accounts, proxy,
                                              signum):
    """Signals from the pilot while the launcher starts: a clean result, nothing half-done."""
    marker = marker_path()
    for delay in (0.0, 0.005, 0.02, 0.05):
        launcher = subprocess.Popen([str(pool_site.bin), "/usr/bin/touch", marker],
                                    env={"GLEXEC_CLIENT_CERT": str(proxy), "PATH": "/usr/bin",
                                         "GLEXEC_TARGET_PROXY": "/dev/null"},
                                    user=accounts.pilot.uid, group=accounts.pilot.gid,
                                    extra_groups=accounts.pilot.groups, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, cwd="/")
        time.sleep(delay)
        subprocess.run(["/bin/kill", f"-{int(signum)}", str(launcher.pid)],
                       user=accounts.pilot.uid, group=accounts.pilot.gid, capture_output=True)
        out, err = launcher.communicate(timeout=60)
        code = launcher.returncode
        assert b"Traceback" not in err, err
        if code == 0:
            assert os.path.exists(marker)
            os.unlink(marker)
        else:
            assert code in (-signum, 202), (code, err)
            assert not os.path.exists(marker)
        assert err.count(b"\n") <= 1, err
    for account in attack_accounts.targets:
        assert subprocess.run(["pgrep", "-u", str(account.uid)],
                              capture_output=True).stdout == b""


def test_j122_completion_record_despite_pilot_kill_attempts(pool_site, accounts, proxy,
                                                            snapshot):
    launcher = subprocess.Popen([str(pool_site.bin), "/bin/sh", "-c", "echo up; sleep 1"],
                                env={"GLEXEC_CLIENT_CERT": str(proxy), "PATH": "/usr/bin:/bin",
                                     "GLEXEC_TARGET_PROXY": "/dev/null"},
                                user=accounts.pilot.uid, group=accounts.pilot.gid,
                                extra_groups=accounts.pilot.groups, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd="/")
    before = len(pool_site.log_text())
    assert launcher.stdout.readline() == b"up\n"
    for signum in ("KILL", "STOP", "TERM", "SEGV"):
        probe = subprocess.run(["/bin/kill", f"-{signum}", str(launcher.pid)],
                               user=accounts.pilot.uid, group=accounts.pilot.gid,
                               capture_output=True, text=True)
        assert probe.returncode != 0
    assert launcher.wait(timeout=30) == 0
    assert "payload pid" in pool_site.log_text()[before:]
    assert_no_refusal = snapshot  # the fixture is only here to load the victim files
    del assert_no_refusal


def test_refused_call_under_tiny_nofile_still_logs(pool_site, accounts, make_proxy, snapshot):
    """A refusal (here: proxy mode 0644) with RLIMIT_NOFILE 40: refused and recorded once."""
    path = make_proxy("rfc", owner_uid=accounts.pilot.uid, mode=0o644)
    snap = snapshot(pool_site)
    result = run_limited(pool_site, accounts.pilot, ["/usr/bin/id"],
                         {"GLEXEC_CLIENT_CERT": str(path)},
                         {resource.RLIMIT_NOFILE: (40, 40)})
    assert_refused(pool_site, result, 201, snap)
