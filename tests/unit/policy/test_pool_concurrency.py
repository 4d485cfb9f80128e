"""Leases under contention: 50 processes with 50 DNs on 10 accounts; 20 with one DN.

Real processes (fork), a real gridmapdir and real accounts; all children start together on a
shared pipe so the ``link(2)`` allocations really race.
"""

from __future__ import annotations

import json
import os

import pytest
from fixtures.lcmaps import gridmapdir_state, make_gridmapdir, make_request, write_file

from glexec_py.errors import GlexecError
from glexec_py.policy import evaluate

ACCOUNTS = [f"gxpcc{i:03d}" for i in range(1, 11)]


@pytest.fixture
def pool_site(trusted_tmp, gxp_accounts):
    make_gridmapdir(trusted_tmp / "gridmapdir", ACCOUNTS)
    write_file(trusted_tmp / "grid-mapfile", '"/DC=org/DC=cc/*" .gxpcc\n')
    write_file(trusted_tmp / "lcmaps.db",
               f'pool = "lcmaps_poolaccount.mod -gridmap {trusted_tmp}/grid-mapfile '
               f'-gridmapdir {trusted_tmp}/gridmapdir"\n'
               'good = "lcmaps_dummy_good.mod"\nglexec:\npool -> good\n')
    return trusted_tmp


def _race(site, dns: list[str]) -> list[str]:
    """Run evaluate for each DN in its own process, all released at once; their answers."""
    go_r, go_w = os.pipe()
    children = []
    for dn in dns:
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: wait for the start signal, map, report, exit without cleanup
            try:
                os.close(go_w)
                os.read(go_r, 1)
                try:
                    m = evaluate(make_request(dn), lcmaps_db_file=str(site / "lcmaps.db"))
                    answer = m.username
                except GlexecError as e:
                    answer = str(e.exit_code)
                os.write(out_w, json.dumps(answer).encode())
            finally:
                os._exit(0)
        os.close(out_w)
        children.append((pid, out_r))
    os.close(go_r)
    os.write(go_w, b"x" * len(dns))
    os.close(go_w)
    answers = []
    for pid, out_r in children:
        data = b""
        while chunk := os.read(out_r, 4096):
            data += chunk
        os.close(out_r)
        os.waitpid(pid, 0)
        answers.append(json.loads(data or b'"crash"'))
    return answers


def test_fifty_dns_ten_accounts(pool_site):
    answers = _race(pool_site, [f"/DC=org/DC=cc/CN=user{i:02d}" for i in range(50)])
    mapped = [a for a in answers if a != "203"]
    assert sorted(mapped) == ACCOUNTS  # exactly ten, all distinct
    assert answers.count("203") == 40
    leases = gridmapdir_state(pool_site / "gridmapdir")
    assert sorted(leases.values()) == ACCOUNTS
    for name in ACCOUNTS:
        assert os.lstat(pool_site / "gridmapdir" / name).st_nlink == 2


def test_twenty_calls_one_dn_share_one_account(pool_site):
    answers = _race(pool_site, ["/DC=org/DC=cc/CN=same"] * 20)
    assert len(set(answers)) == 1 and answers[0] in ACCOUNTS
    assert len(gridmapdir_state(pool_site / "gridmapdir")) == 1
