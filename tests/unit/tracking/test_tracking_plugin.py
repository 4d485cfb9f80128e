"""Tracking-gid plugins: per-invocation allocation with real locks and real processes."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from fixtures.prereq import require_root
from glexec_py.plugins import tracking
from glexec_py.plugins.tracking import TrackingGroupIdPlugin, TrackingPlugin

from glexec_py.plugin_api import CredentialView, PolicyConfigError, Request

LOW, HIGH = 47880, 47883


@pytest.fixture
def plugin(trusted_tmp):
    require_root()
    lockdir = trusted_tmp / "locks"
    lockdir.mkdir(mode=0o700)
    p = TrackingPlugin()
    p.configure(["-min-gid", str(LOW), "-max-gid", str(HIGH), "-lockdir", str(lockdir),
                 "-exec", "/usr/sbin/glexec_monitor", "-dont-kill-leftovers"])
    yield p
    tracking.release_tracking_gids()


def _run(p) -> object:
    return p.run(Request(), CredentialView())


def test_allocates_the_first_free_gid_once_per_invocation(plugin) -> None:
    result = _run(plugin)
    assert result.ok and result.updates == {"sgid": [LOW]}
    assert tracking.allocated_tracking_gid() == LOW
    assert _run(plugin).updates == {"sgid": [LOW]}  # named twice: still one gid


def test_a_gid_held_by_another_launcher_or_carried_by_a_process_is_skipped(plugin) -> None:
    # Another 'launcher' (a forked process) holds LOW; a running process carries LOW+1.
    r, w = os.pipe()
    holder = os.fork()
    if holder == 0:  # never return into pytest: a forked pytest would run fixture teardowns
        try:
            os.close(r)
            tracking._HELD.clear()
            gid = tracking.allocate_gid(plugin.lockdir, LOW, LOW)
            os.write(w, str(gid).encode())
            os.close(w)
            while True:  # hold the gid until the test kills us
                time.sleep(3600)
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 32) == str(LOW).encode()
    os.close(r)
    carrier = subprocess.Popen(["setpriv", f"--groups={LOW + 1}", "sleep", "30"])
    try:
        for _ in range(50):
            if LOW + 1 in tracking.gids_in_use():
                break
            os.sched_yield()
        assert _run(plugin).updates == {"sgid": [LOW + 2]}
    finally:
        carrier.kill()
        carrier.wait()
        os.kill(holder, 9)
        os.waitpid(holder, 0)
    # The holder's lease ended with it: after release, LOW is free again.
    tracking.release_tracking_gids()
    assert _run(plugin).updates == {"sgid": [LOW]}


def test_exhausted_range_is_a_failure_not_an_error(plugin, trusted_tmp) -> None:
    held = []
    for _ in range(HIGH - LOW + 1):
        held.append(tracking.allocate_gid(plugin.lockdir, LOW, HIGH))
    assert sorted(held) == list(range(LOW, HIGH + 1))
    # A new invocation while these leases stay held (flock conflicts per open file, so this
    # process's own open locks count as another launcher's).
    fds = list(tracking._HELD.values())
    tracking._HELD.clear()
    try:
        result = _run(plugin)
        assert not result.ok
        assert "no free tracking gid" in result.reason
    finally:
        for fd in fds:
            os.close(fd)


@pytest.mark.parametrize("args", [["-min-gid", "10", "-max-gid", "5"], ["-min-gid", "0"],
                                  ["-bogus"]])
def test_bad_options(args, trusted_tmp) -> None:
    with pytest.raises(PolicyConfigError):
        TrackingPlugin().configure([*args, "-lockdir", str(trusted_tmp)])


def test_untrusted_lockdir_is_refused(tmp_path) -> None:
    require_root()
    with pytest.raises(PolicyConfigError.__mro__[1]):  # SiteError from trust.py
        TrackingPlugin().configure(["-lockdir", str(tmp_path)])


def test_tracking_groupid_keeps_the_callers_range() -> None:
    p = TrackingGroupIdPlugin()
    p.configure(["-min-gid", "65400", "-max-gid", "65500"])
    result = p.run(Request(caller_groups=(100, 65400, 65501, 65450)), CredentialView())
    assert result.updates == {"sgid": [65400, 65450]}
    with pytest.raises(PolicyConfigError):
        TrackingGroupIdPlugin().configure([])
