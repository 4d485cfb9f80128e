"""The sutest matrix on the project's real single-node Slurm, for each proctrack plugin.

Two launcher columns run side by side: the stand-alone ``sutest`` probe (root in the job, fork,
switch, exec, wait) and the installed glexec-py launcher called by the pilot account with a
proxy. Every cell must be as ``matrix.expected_for`` says: the launcher's contract (plain child,
tracking gid kept, launcher stays parent) caught by scancel, suspended (State T or D), resumed
and accounted by sacct; shapes that leave the plugin's tracking key reported as the batch
system's limit. ``GLEXEC_SUTEST_RESULT=<file.json>`` saves the cells for ``glexec-sutest report``
(that is how docs/batch-report.md is made).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from glexec_py.sutest.drivers import make_rundir, run_matrix
from glexec_py.sutest.drivers.slurm import SlurmDriver, parse_slurm_duration
from glexec_py.sutest.matrix import (
    job_script,
    kill_quietly,
    proc_state,
    read_pid,
    sutest_launcher,
)

from batch.conftest import save_cells

pytestmark = [pytest.mark.slurm, pytest.mark.root, pytest.mark.slow]


def uid_processes(uid: int) -> list[int]:
    """Live (non-zombie) processes whose real uid is ``uid``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        if int(fields["Uid"].split()[0]) == uid and fields["State"].split()[0] not in "ZX":
            found.append(int(name))
    return found


def test_daemonized_payload_does_not_outlive_the_job_on_linuxproc(
        slurm_cluster, sutest_binary, glexec_column, gxf_accounts) -> None:
    """proctrack/linuxproc alone lets a daemon escape; through glexec-py nothing of it remains.

    The payload double-forks a sleeping daemon and exits at once, so the job ends while the
    daemon would live on. Through ``sutest`` it survives the job (the plugin's documented
    limit); through glexec-py the launcher, its subreaper, terminates it when the payload ends,
    and no process of the target uid is left once the job has finished.
    """
    driver = SlurmDriver(slurm_cluster)
    driver.start("linuxproc")
    target_uid = glexec_column.target.pw_uid
    assert uid_processes(target_uid) == []

    rundir = make_rundir("proof-glexec")
    job = driver.submit(job_script(glexec_column.launcher, rundir, ["daemon"], "sleep:600", False,
                                   leave=True), rundir, glexec_column.launcher.user)
    daemon = read_pid(rundir, "daemon.pid", 30.0)
    assert daemon is not None, Path(rundir, "job.out").read_text()
    assert driver.wait_finished(job, 30.0)
    assert proc_state(daemon) is None
    assert uid_processes(target_uid) == []
    record = glexec_column.keeping.log_text()
    assert "glexec.mon[" in record and "Terminated, CPU user" in record

    rundir = make_rundir("proof-sutest")
    probe = sutest_launcher(sutest_binary)
    job = driver.submit(job_script(probe, rundir, ["daemon"], "sleep:600", False, leave=True),
                        rundir)
    escaped = read_pid(rundir, "daemon.pid", 30.0)
    assert escaped is not None
    try:
        assert driver.wait_finished(job, 30.0)
        time.sleep(1.0)
        assert proc_state(escaped) in ("S", "R")
        assert escaped in uid_processes(gxf_accounts["gxfpay"].pw_uid)
    finally:
        kill_quietly(escaped)


@pytest.mark.parametrize("proctrack", ["linuxproc", "pgid", "cgroup"])
def test_matrix_matches_the_reference(slurm_cluster, sutest_binary, glexec_column,
                                      proctrack) -> None:
    driver = SlurmDriver(slurm_cluster)
    driver.start(proctrack)
    cells = run_matrix(driver, proctrack,
                       [sutest_launcher(sutest_binary), glexec_column.launcher])
    save_cells(cells)
    assert len(cells) == 2 * 6 * 4
    unexpected = [(c.launcher, c.shape, c.action, c.detail) for c in cells
                  if c.verdict == "FAIL"]
    assert unexpected == []
    for launcher in ("sutest", "glexec-py"):
        contract = {c.action: c for c in cells if c.shape == "plain" and c.launcher == launcher}
        assert contract["kill"].observed is True
        assert contract["suspend"].observed is True
        assert contract["suspend"].detail in ("State T", "State D")
        assert contract["resume"].observed is True
        assert contract["account"].observed is True
    # Every judged kill cell: the not-judged ones (expected None, see expected_for) are races
    # of the batch system's own tracking, not of the launcher.
    glexec_kills = [c for c in cells if c.launcher == "glexec-py" and c.action == "kill"
                    and c.shape != "launcher_killed" and c.expected is not None]
    assert glexec_kills
    assert all(c.observed is True for c in glexec_kills)
    if proctrack == "cgroup":
        # Nothing escapes the step cgroup ("n/a": a payload that died with its SIGKILLed
        # glexec-py launcher has nothing left to suspend or account).
        assert all(c.verdict in ("pass", "n/a") for c in cells)
    else:
        assert any(c.verdict == "limit" for c in cells if c.launcher == "sutest")
    assert uid_processes(glexec_column.target.pw_uid) == []


def test_sacct_duration_parser() -> None:
    assert parse_slurm_duration("00:03.120") == pytest.approx(3.12)
    assert parse_slurm_duration("01:02:03") == 3723
    assert parse_slurm_duration("1-00:00:01") == 86401
    assert parse_slurm_duration("") is None
