"""ProcessTracker with real processes: a payload under a test account leaves setsid children,
double-forked daemons, TERM-ignoring daemons and fork loops; after ``terminate_leftovers`` none of
them and no process of the account may remain, and nothing outside the payload may be touched."""

from __future__ import annotations

import os
import subprocess

import pytest
from fixtures.prereq import require

from glexec_py.launch.tracking import ProcessTracker

from .conftest import TRACKING_GID, UID, run_launcher, uid_pids, wait_gone

pytestmark = pytest.mark.root

SHAPES = ["child", "setsid", "daemon", "stubborn", "forker"]


def _method_available(method: str) -> bool:
    if method == "cgroup-v2":
        return os.path.exists("/sys/fs/cgroup/unified/cgroup.procs") or os.path.exists(
            "/sys/fs/cgroup/cgroup.procs")
    if method == "cgroup-v1":
        return os.path.isdir("/sys/fs/cgroup/pids")
    return True


@pytest.mark.parametrize("method", ["cgroup-v2", "cgroup-v1", "proc-events", "tracking-gid",
                                    "descendants", "auto"])
def test_every_leftover_is_terminated(payload_account, method: str) -> None:
    require(_method_available(method), f"{method} is not available on this kernel/mount")
    run = run_launcher(method, SHAPES, tracking_gid=TRACKING_GID)
    if method != "auto":
        assert run.method_used == method, run.failures
    assert set(run.leftovers) == set(SHAPES)
    assert set(run.leftovers.values()) <= set(run.signalled)
    assert wait_gone(list(run.leftovers.values())) == []
    assert uid_pids(UID) == []


def test_launcher_told_to_stop_kills_running_payload(payload_account) -> None:
    run = run_launcher("auto", ["daemon"], payload_mode="wait")
    assert wait_gone(list(run.leftovers.values())) == []
    assert uid_pids(UID) == []


def test_auto_prefers_a_cgroup_and_never_leaves_the_launchers_cgroups(payload_account) -> None:
    require(_method_available("cgroup-v2"), "needs a cgroup v2 mount")
    run = run_launcher("auto", ["child"])
    assert run.method_used.startswith("cgroup-"), run.failures
    launcher = dict(line.split(":", 2)[::2] for line in run.cgroups.splitlines())
    payload = dict(line.split(":", 2)[::2] for line in run.payload_cgroups.splitlines())
    # The memory hierarchy is left out: the development sandbox moves processes there itself.
    changed = {h for h in launcher if launcher[h] != payload[h]
               and "memory" not in _controllers(run.cgroups, h)}
    # Exactly one hierarchy differs, and there the payload sits *below* the launcher's cgroup.
    assert len(changed) == 1
    (hier,) = changed
    assert payload[hier].startswith(launcher[hier].rstrip("/") + "/glexec-py.")
    # The batch systems' hierarchies (freezer, cpuacct, memory, cpuset, devices) are untouched.
    for line in run.payload_cgroups.splitlines():
        _, controllers, _ = line.split(":", 2)
        if {"freezer", "cpuacct", "cpuset", "devices"} & set(controllers.split(",")):
            assert line in run.cgroups.splitlines()


def _controllers(table: str, hierarchy: str) -> set[str]:
    for line in table.splitlines():
        hier, controllers, _ = line.split(":", 2)
        if hier == hierarchy:
            return set(controllers.split(","))
    return set()


def test_unrelated_processes_of_the_same_uid_survive(payload_account) -> None:
    bystander = subprocess.Popen(["setpriv", f"--reuid={UID}", f"--regid={UID}",
                                  "--clear-groups", "sleep", "60"])
    try:
        run = run_launcher("auto", ["daemon", "setsid"])
        assert wait_gone(list(run.leftovers.values())) == []
        assert bystander.poll() is None
        assert bystander.pid not in run.signalled
    finally:
        bystander.kill()
        bystander.wait()


def test_proc_events_follow_a_daemon_without_the_subreaper(payload_account) -> None:
    # The subreaper keeps daemons as descendants; the event method must not rely on it.
    run = run_launcher("proc-events", ["daemon", "stubborn"])
    assert run.method_used == "proc-events"
    assert wait_gone(list(run.leftovers.values())) == []


def test_cgroup_v2_counts_cpu_of_daemonized_processes(payload_account) -> None:
    require(_method_available("cgroup-v2"), "needs a cgroup v2 mount")
    run = run_launcher("cgroup-v2", ["child"])
    assert run.cpu is not None
    user, system = run.cpu
    assert user >= 0.0 and system >= 0.0 and user + system > 0.0


def test_unknown_method_and_missing_gid_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown process tracking method"):
        ProcessTracker(method="magic")
    with pytest.raises(ValueError, match="needs a tracking gid"):
        ProcessTracker(method="tracking-gid")
