"""forbidden_target_groups: matched by number or by the group database's name of a mapped gid."""

from __future__ import annotations

import grp

from glexec_py.identity import forbidden_groups_of


def test_gid_zero_is_always_forbidden():
    assert forbidden_groups_of({0, 12345}, ()) == [0]


def test_numbers_and_names_match_the_mapped_gids_only():
    adm = grp.getgrnam("adm").gr_gid  # base-passwd: present on every Debian system
    assert forbidden_groups_of({adm, 54321}, ("adm",)) == [adm]
    assert forbidden_groups_of({adm, 54321}, ("54321",)) == [54321]
    assert forbidden_groups_of({54321}, ("adm", "no-such-group-anywhere")) == []


def test_a_gid_without_a_group_entry_is_matched_by_number_only():
    free = next(g for g in range(61000, 62000) if g not in {e.gr_gid for e in grp.getgrall()})
    assert forbidden_groups_of({free}, ("adm", str(free))) == [free]
    assert forbidden_groups_of({free}, ("adm",)) == []
