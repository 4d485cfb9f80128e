"""The sutest matrix on the project's real single-node Slurm, for each proctrack plugin.

Every cell must be as the reference table says: the launcher's contract (plain child, tracking
gid kept, launcher stays parent) caught by scancel, suspended (T or D) and resumed, and its CPU
in sacct; shapes that leave the plugin's tracking key reported as the batch system's limit.
"""

from __future__ import annotations

import pytest
from glexec_py.sutest.drivers import run_matrix
from glexec_py.sutest.drivers.slurm import SlurmDriver, parse_slurm_duration
from glexec_py.sutest.matrix import sutest_launcher

pytestmark = [pytest.mark.slurm, pytest.mark.root, pytest.mark.slow]


@pytest.mark.parametrize("proctrack", ["cgroup", "linuxproc", "pgid"])
def test_matrix_matches_the_reference(slurm_cluster, sutest_binary, proctrack) -> None:
    driver = SlurmDriver(slurm_cluster)
    driver.start(proctrack)
    cells = run_matrix(driver, proctrack, sutest_launcher(sutest_binary))
    assert len(cells) == 6 * 4
    unexpected = [(c.shape, c.action, c.detail) for c in cells if c.verdict == "FAIL"]
    assert unexpected == []
    contract = {c.action: c for c in cells if c.shape == "plain"}
    assert contract["kill"].observed is True
    assert contract["suspend"].observed is True
    assert contract["suspend"].detail in ("State T", "State D")
    assert contract["resume"].observed is True
    assert contract["account"].observed is True
    if proctrack == "cgroup":
        assert all(c.verdict == "pass" for c in cells)
    else:
        assert any(c.verdict == "limit" for c in cells)


def test_sacct_duration_parser() -> None:
    assert parse_slurm_duration("00:03.120") == pytest.approx(3.12)
    assert parse_slurm_duration("01:02:03") == 3723
    assert parse_slurm_duration("1-00:00:01") == 86401
    assert parse_slurm_duration("") is None
