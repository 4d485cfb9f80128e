"""The sutest matrix on a real single-node Grid Engine (Debian's gridengine 8.1.9).

Grid Engine tracks a job by the additional group id it hands out (``gid_range``, here the
project's tracking range) with ``ENABLE_ADDGRP_KILL``: qdel, ``qmod -sj`` and online usage
follow every process that kept that gid. Jobs run as the pilot (root jobs are refused); the
sutest column uses a setuid-root copy of the probe. Both launcher columns keep the gid except
in the ``gid_dropped`` shape (sutest without ``-k``; a glexec-py site without
``tracking_gid_ranges``).
"""

from __future__ import annotations

import pytest
from glexec_py.sutest.drivers import run_matrix
from glexec_py.sutest.drivers.sge import SgeDriver, parse_qacct_cpu
from glexec_py.sutest.matrix import sutest_launcher

from batch.conftest import save_cells

pytestmark = [pytest.mark.sge, pytest.mark.root, pytest.mark.slow]


def test_matrix_matches_the_reference(sge_cell, setuid_sutest, glexec_column,
                                      gxf_accounts) -> None:
    driver = SgeDriver()
    pilot = gxf_accounts["gxfpilot"].pw_name
    cells = run_matrix(driver, "", [sutest_launcher(setuid_sutest, pilot),
                                    glexec_column.launcher])
    save_cells(cells)
    assert len(cells) == 2 * 6 * 4
    unexpected = [(c.launcher, c.shape, c.action, c.detail) for c in cells
                  if c.verdict == "FAIL"]
    assert unexpected == []
    for launcher in ("sutest", "glexec-py"):
        contract = {c.action: c for c in cells if c.shape == "plain" and c.launcher == launcher}
        assert contract["kill"].observed is True
        assert contract["suspend"].detail == "State T"
        assert contract["resume"].observed is True
        assert contract["account"].observed is True


def test_qacct_cpu_parser() -> None:
    assert parse_qacct_cpu("qname        all.q\ncpu          3.012s\nmem 0\n") == 3.012
    assert parse_qacct_cpu("cpu          12.5\n") == 12.5
    assert parse_qacct_cpu("error: job id 7 not found\n") is None


def test_payload_keeps_the_jobs_tracking_gid_only_where_configured(sge_cell, glexec_column
                                                                    ) -> None:
    """Grid Engine gives the job an additional gid from gid_range; the keeping site passes it
    to the payload (so qdel/qmod/online usage find it), the other site drops it."""
    from fixtures.daemons import TRACKING_GID_RANGE
    from glexec_py.sutest.drivers import make_rundir
    from glexec_py.sutest.matrix import shell_quote

    driver = SgeDriver()
    rundir = make_rundir("sge-gid")
    lines = ["#!/bin/sh", "echo job $(id -G)"]
    for tag, site in (("kept", glexec_column.keeping), ("dropped", glexec_column.dropping)):
        lines.append(f"echo {tag} $(env GLEXEC_CLIENT_CERT={shell_quote(glexec_column.proxy)} "
                     f"{shell_quote(str(site.bin))} /usr/bin/id -G)")
    job = driver.submit("\n".join(lines) + "\n", rundir, glexec_column.pilot.pw_name)
    assert driver.wait_finished(job, 60.0)
    with open(f"{rundir}/job.out") as fh:
        rows = [line.split() for line in fh if line.strip()]
    groups = {row[0]: {int(g) for g in row[1:]} for row in rows}
    low, high = TRACKING_GID_RANGE
    tracking = {g for g in groups["job"] if low <= g <= high}
    assert len(tracking) == 1, groups
    assert tracking <= groups["kept"]
    assert not tracking & groups["dropped"]
    assert glexec_column.target.pw_gid in groups["kept"] and glexec_column.target.pw_gid in \
        groups["dropped"]
