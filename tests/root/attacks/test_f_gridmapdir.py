"""Catalogue group F (gridmapdir and pool state), end to end through the installed launcher.

The engine-level tests (tests/unit/policy/test_attacks_ef.py) cover every F case on the policy
code; here the pilot calls the setuid launcher against a pool site whose gridmapdir was put in
the hostile state first. Refusals must leave the gridmapdir exactly as it was (the snapshot
compares names, inodes and link counts), and successes must never hand out a second account.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from fixtures.credentials import USER_DN, make_dn_proxy
from fixtures.prereq import require
from fixtures.side_effects import assert_refused

from glexec_py.gridmapdir import encode_lease_name

pytestmark = [pytest.mark.root, pytest.mark.installed]

LEASE = encode_lease_name(USER_DN)


def proxy_for(test_ca, owner, directory, cn: str, units: tuple[str, ...] = ()):
    return make_dn_proxy(test_ca, directory / f"proxy-{abs(hash((cn, units)))}", cn=cn,
                         units=units, owner=owner)


@pytest.fixture
def site(attack_site):
    """A fresh pool site per test: every test starts from its own gridmapdir state."""
    return attack_site()


@pytest.mark.parametrize("shape", ["symlink", "directory", "fifo"])
def test_f70_lease_name_that_is_not_a_regular_file(site, accounts, pilot_env, snapshot, shape):
    path = site.gridmapdir / LEASE
    if shape == "symlink":
        os.symlink(site.gridmapdir / "gxapool001", path)
    elif shape == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)
    snap = snapshot(site)
    result = site.run(accounts.pilot, ["/usr/bin/id"], env=pilot_env)
    assert_refused(site, result, 203, snap)


def test_f70_orphan_lease_is_replaced_never_followed(site, accounts, pilot_env):
    """A regular file with link count 1 under the lease name is an orphan (LCMAPS' rule: it is
    dropped and a fresh account leased); it is never written through or kept."""
    orphan = site.gridmapdir / LEASE
    orphan.write_text("not a lease\n")
    before = os.stat(orphan).st_ino
    result = site.run(accounts.pilot, ["/usr/bin/id", "-un"],
                      env={**pilot_env, "GLEXEC_TARGET_PROXY": "/dev/null"})
    assert result.code == 0, result
    st = os.stat(site.gridmapdir / LEASE)
    assert st.st_ino != before and st.st_nlink == 2
    assert os.stat(site.gridmapdir / result.out.strip()).st_ino == st.st_ino


def test_f72_encoded_dn_longer_than_a_file_name(attack_site, accounts, test_ca, trusted_tmp):
    site = attack_site()
    with open(site.mapfile, "w") as f:
        f.write('"/DC=org/DC=example/O=glexec-py demo/*" .gxapool\n')
    units = ("a b " * 15, "c d " * 15)  # spaces encode as %20: three bytes each
    path = proxy_for(test_ca, accounts.pilot, trusted_tmp, "Long User", units)
    dn = "/DC=org/DC=example/O=glexec-py demo" + "".join(f"/OU={u}" for u in units)
    assert len(encode_lease_name(dn + "/CN=Long User")) > 255
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(path)})
    assert result.code == 203, result
    assert site.leases() == set()


def test_f73_case_variant_shares_the_lease(attack_site, accounts, test_ca, trusted_tmp,
                                           pilot_env):
    """Documented decision: lease names are LCMAPS' (lower-cased), so DNs differing only in case
    are one identity for the pool, as dn_key treats them for mapfiles and ban lists."""
    site = attack_site()
    first = site.run(accounts.pilot, ["/usr/bin/id", "-un"],
                     env={**pilot_env, "GLEXEC_TARGET_PROXY": "/dev/null"})
    assert first.code == 0, first
    variant = proxy_for(test_ca, accounts.pilot, trusted_tmp, "DEMO USER")
    second = site.run(accounts.pilot, ["/usr/bin/id", "-un"],
                      env={"GLEXEC_CLIENT_CERT": str(variant),
                           "GLEXEC_TARGET_PROXY": "/dev/null"})
    assert second.code == 0, second
    assert second.out == first.out
    assert site.leases() == {LEASE}


def test_f76_two_identities_on_one_account(site, accounts, pilot_env, snapshot):
    os.link(site.gridmapdir / "gxapool001", site.gridmapdir / LEASE)
    os.link(site.gridmapdir / "gxapool001", site.gridmapdir / encode_lease_name("/CN=other"))
    snap = snapshot(site)
    result = site.run(accounts.pilot, ["/usr/bin/id"], env=pilot_env)
    assert_refused(site, result, 203, snap)


def test_f77_read_only_gridmapdir(site, accounts, pilot_env, snapshot):
    mounted = subprocess.run(["mount", "--bind", str(site.gridmapdir), str(site.gridmapdir)],
                             capture_output=True)
    require(mounted.returncode == 0, "needs bind mounts (F77: read-only gridmapdir)")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(site.gridmapdir)], check=True)
        snap = snapshot(site)
        result = site.run(accounts.pilot, ["/usr/bin/id"], env=pilot_env)
        assert_refused(site, result, 202, snap)
    finally:
        subprocess.run(["umount", str(site.gridmapdir)], check=False)
