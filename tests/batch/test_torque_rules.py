"""The sutest matrix under pbs_mom's rules (Torque is not packaged for Debian).

``TorqueRulesDriver`` starts the job shell in its own session as the job owner and applies
kill_task (session + descendants of the top task; TERM, 2 s, KILL), resume_suspend (TSTP to the
top task, 5 s, STOP to every task; CONT) and injob accounting to the real processes. Both
launcher columns run side by side.
"""

from __future__ import annotations

import pytest
from glexec_py.sutest.drivers import run_matrix
from glexec_py.sutest.drivers.torque import TorqueRulesDriver, job_tasks, session_cpu
from glexec_py.sutest.matrix import sutest_launcher

from batch.conftest import save_cells

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_matrix_under_pbs_mom_rules(sutest_binary, glexec_column) -> None:
    driver = TorqueRulesDriver()
    cells = run_matrix(driver, "", [sutest_launcher(sutest_binary), glexec_column.launcher])
    save_cells(cells)
    assert len(cells) == 2 * 6 * 4
    unexpected = [(c.launcher, c.shape, c.action, c.detail) for c in cells
                  if c.verdict == "FAIL"]
    assert unexpected == []
    by_key = {(c.launcher, c.shape, c.action): c for c in cells}
    for launcher in ("sutest", "glexec-py"):
        assert by_key[(launcher, "plain", "kill")].observed is True
        assert by_key[(launcher, "plain", "suspend")].detail == "State T"
        assert by_key[(launcher, "plain", "resume")].observed is True
        assert by_key[(launcher, "plain", "account")].observed is True
    # The daemon leaves the session and the tree: pbs_mom's limit for sutest, caught by
    # glexec-py (its subreaper keeps the daemon below the job's top task).
    assert by_key[("sutest", "daemon", "kill")].verdict == "limit"
    assert by_key[("glexec-py", "daemon", "kill")].verdict == "pass"
    assert by_key[("glexec-py", "daemon", "suspend")].verdict == "pass"


def test_job_tasks_follow_session_and_tree() -> None:
    import os
    import subprocess

    proc = subprocess.Popen(["/bin/sh", "-c", "setsid sleep 30 & sleep 30 & wait"],
                            start_new_session=True)
    try:
        import time

        time.sleep(0.3)
        tasks = job_tasks(proc.pid, proc.pid)
        assert proc.pid in tasks
        assert len(tasks) == 3  # the shell, its sleep (session) and the setsid sleep (tree)
        assert os.getpid() not in tasks
        assert session_cpu(proc.pid) >= 0.0
    finally:
        subprocess.run(["pkill", "-KILL", "-s", str(proc.pid)])
        subprocess.run(["pkill", "-KILL", "-P", str(proc.pid)])
        proc.wait()
