"""rewrite_username: site rules that turn the mapped name into another account."""

from __future__ import annotations

import pytest
from fixtures.lcmaps import make_request, write_file
from glexec_py.plugins.rewrite_username import rewrite_name

from glexec_py.plugin_api import PolicyConfigError
from glexec_py.policy import evaluate


def test_rewrite_rules():
    assert rewrite_name("DOMAIN\\User", [("\\", ".")], True, "") == "domain.user"
    assert rewrite_name("ab", [("a", "x"), ("x", "y")], False, "p-") == "p-yb"


def test_rewrite_replaces_the_mapping(plugin_site):
    write_file(plugin_site / "gm", '"/CN=r" gxpLOCAL2\n"/CN=s" gxplocal1\n')
    write_file(plugin_site / "lcmaps.db",
               f'local = "lcmaps_localaccount.mod -gridmap {plugin_site}/gm"\n'
               'rw = "lcmaps_rewrite_username.mod -replace local1=local2"\n'
               'good = "lcmaps_dummy_good.mod"\np:\nlocal -> rw\nrw -> good\n')
    m = evaluate(make_request("/CN=s"), lcmaps_db_file=str(plugin_site / "lcmaps.db"))
    assert (m.username, m.pgid, m.sgids) == ("gxplocal2", 47200, (47200,))
    assert len(m.cred_final) == 1 and "uid:'47211'" in m.cred_final[0]


def test_rewrite_needs_a_rule():
    from glexec_py.plugins.rewrite_username import RewriteUsernamePlugin

    with pytest.raises(PolicyConfigError, match="no rule"):
        RewriteUsernamePlugin().configure([])
    with pytest.raises(PolicyConfigError, match="OLD=NEW"):
        RewriteUsernamePlugin().configure(["-replace", "x"])
