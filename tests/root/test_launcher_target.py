"""The target account is validated before the switch, and tracking gids survive it.

Whatever the policy maps to, the payload never runs as root, below the site's minimum ids, with
a forbidden group or too many groups (203, nothing started). Supplementary gids of the caller in
``tracking_gid_ranges`` (Grid Engine's gid_range, HTCondor's tracking gids) are kept.
"""

from __future__ import annotations

import pytest
from fixtures.credentials import USER_DN
from fixtures.site import assert_no_side_effects

pytestmark = [pytest.mark.root, pytest.mark.installed]


def groups_of_payload(result) -> list[int]:
    for line in result.out.splitlines():
        if line.startswith("Groups:"):
            return sorted(int(g) for g in line.split()[1:])
    raise AssertionError(result)


@pytest.mark.parametrize(("mapfile_account", "conf"), [
    ("root", {}),
    ("daemon", {}),
    ("MAPPED", {"min_target_uid": "50000"}),
    ("MAPPED", {"min_target_gid": "50000"}),
    ("MAPPED", {"forbidden_target_groups": "gxlextra"}),
    ("MAPPED", {"max_target_groups": "1"}),
    ("PILOT", {"allow_self_mapping": "no"}),
], ids=["root", "system-account", "uid-floor", "gid-floor", "forbidden-group", "too-many-groups",
        "self-mapping-refused"])
def test_refused_targets(site_factory, accounts, proxy, mapfile_account, conf):
    name = {"MAPPED": accounts.mapped.name, "PILOT": accounts.pilot.name}.get(
        mapfile_account, mapfile_account)
    site = site_factory(mapfile=f'"{USER_DN}" {name}\n', conf=conf)
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert_no_side_effects(site, accounts, result, 203)


def test_self_mapping_allowed_by_default(site_factory, accounts, proxy):
    site = site_factory(mapfile=f'"{USER_DN}" {accounts.pilot.name}\n')
    result = site.run(accounts.pilot, ["/usr/bin/id", "-u"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY": "/dev/null"})
    assert result.code == 0, result
    assert result.out.strip() == str(accounts.pilot.uid)


def test_tracking_gids_in_range_are_kept(site_factory, accounts, proxy):
    site = site_factory(conf={"tracking_gid_ranges": "47090-47099"})
    result = site.run(accounts.pilot, ["/bin/grep", "^Groups:", "/proc/self/status"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)}, extra_groups=[47090, 47040])
    assert result.code == 0, result
    # the tracking gid is kept; the pilot's other extra group (47040) is not carried over
    assert groups_of_payload(result) == sorted({*accounts.mapped.groups, 47090})


def test_tracking_gids_dropped_without_a_range(site_factory, accounts, proxy):
    site = site_factory()
    result = site.run(accounts.pilot, ["/bin/grep", "^Groups:", "/proc/self/status"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)}, extra_groups=[47090])
    assert result.code == 0, result
    assert groups_of_payload(result) == accounts.mapped.groups
