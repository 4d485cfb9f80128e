"""LCAS: lcas.db format, every plugin must allow; userallow, userban, timeslots."""

from __future__ import annotations

import time

import pytest
from fixtures.lcmaps import make_request, write_file
from glexec_py.plugins.timeslots import in_slot, parse_slots

from glexec_py.errors import AuthorizationError
from glexec_py.plugin_api import PolicyConfigError
from glexec_py.policy import evaluate
from glexec_py.policy.lcas import parse_lcas_db

DN = "/DC=org/CN=Lucy"


def site(d, lcas: str, ban: str = "", slots: str = "* * * * * *\n"):
    write_file(d / "gm", f'"{DN}" gxplocal1\n"/DC=org/CN=Other" gxplocal2\n')
    write_file(d / "ban_users.db", ban)
    write_file(d / "timeslots.db", slots)
    write_file(d / "lcas.db", lcas)
    write_file(d / "lcmaps.db", f'local = "lcmaps_localaccount.mod -gridmap {d}/gm"\n'
               'good = "lcmaps_dummy_good.mod"\np:\nlocal -> good\n')
    return {"lcmaps_db_file": str(d / "lcmaps.db"), "use_lcas": True,
            "lcas_db_file": str(d / "lcas.db")}


def test_all_plugins_must_allow(plugin_site):
    lcas = ('pluginname=lcas_userban.mod,pluginargs=ban_users.db\n'
            f'pluginname="lcas_userallow.mod",pluginargs="{plugin_site}/gm"\n'
            "pluginname=lcas_timeslots.mod,pluginargs=timeslots.db # always\n")
    kw = site(plugin_site, lcas, ban='"/DC=org/CN=OTHER"\n')
    assert evaluate(make_request(DN), **kw).username == "gxplocal1"
    with pytest.raises(AuthorizationError, match="userban"):
        evaluate(make_request("/DC=org/CN=Other"), **kw)
    with pytest.raises(AuthorizationError, match="userallow"):
        evaluate(make_request("/DC=org/CN=Stranger"), **kw)


def test_no_plugins_denies(plugin_site):
    with pytest.raises(AuthorizationError, match="no authorization modules"):
        evaluate(make_request(DN), **site(plugin_site, "# empty\n"))


def test_closed_timeslot_denies(plugin_site):
    kw = site(plugin_site, "pluginname=lcas_timeslots.mod,pluginargs=timeslots.db\n",
              slots="0-0 0-0 1-1 1-1 1971-1971 *\n")
    with pytest.raises(AuthorizationError, match="timeslots"):
        evaluate(make_request(DN, now=time.time()), **kw)


def test_timeslot_semantics():
    t = time.struct_time((2026, 11, 21, 14, 30, 0, 5, 325, 0))  # Saturday
    assert in_slot(parse_slots(b"* * * * * *", "t")[0], t)
    assert in_slot(parse_slots(b"0-0 9-17 * * * 1-5", "t")[0], t) is False  # weekdays only
    assert in_slot(parse_slots(b"0-0 9-17 * * * 6-", "t")[0], t)
    assert in_slot(parse_slots(b"0-0 9-14 * * * *", "t")[0], t) is False  # 14:30 > 14:00
    assert in_slot(parse_slots(b"0-0 22-6 * * * *", "t")[0], t) is False  # wraps midnight
    assert in_slot(parse_slots(b"* * * 11-2 * *", "t")[0], t)  # wraps the year end
    with pytest.raises(PolicyConfigError, match="t:1"):
        parse_slots(b"* * *", "t")
    with pytest.raises(PolicyConfigError, match="outside"):
        parse_slots(b"61 * * * * *", "t")


@pytest.mark.parametrize("line", ["pluginname", "pluginname=a,bogus=1",
                                  'pluginname="a', "pluginargs=x",
                                  "pluginname=a,pluginname=b"])
def test_lcas_db_errors(line):
    with pytest.raises(PolicyConfigError, match="/l:1:"):
        parse_lcas_db(line.encode(), "/l")


def test_unknown_lcas_module_is_a_site_error(plugin_site):
    with pytest.raises(PolicyConfigError, match="unknown module"):
        evaluate(make_request(DN), **site(plugin_site, "pluginname=lcas_nosuch.mod\n"))
