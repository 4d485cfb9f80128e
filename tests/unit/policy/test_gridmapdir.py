"""gridmapdir primitives: lease names, pool membership, lookups without creation."""

from __future__ import annotations

import os

import pytest
from fixtures.lcmaps import make_gridmapdir

from glexec_py.gridmapdir import (
    PoolRequest,
    acquire_lease,
    check_lease_name,
    decode_lease_name,
    encode_lease_name,
    is_pool_member,
    list_leases,
    open_gridmapdir,
)


def test_lease_name_encoding_matches_lcmaps():
    assert encode_lease_name("/DC=org/CN=Oscar Koeroo") == "%2fdc%3dorg%2fcn%3doscar%20koeroo"
    assert encode_lease_name("/CN=a", ["pool", "group004"]) == "%2fcn%3da:pool:group004"
    assert encode_lease_name("/CN=\u00e9") == "%2fcn%3d%c3%a9"
    assert decode_lease_name("%2fcn%3doscar%20koeroo:g") == "/cn=oscar koeroo:g"


@pytest.mark.parametrize(("name", "prefix", "strict", "ok"), [
    ("atlas001", "atlas", True, True), ("atlasprd001", "atlas", True, False),
    ("atlasprd001", "atlas", False, True), ("atlas", "atlas", True, False),
    ("root", "r", False, False), (".atlas1", ".atlas", False, False),
    ("%2fx", "%", False, False), ("atlas~1", "atlas", False, False),
    ("atlas\u0661", "atlas", True, False),  # a non-ASCII digit
])
def test_pool_membership(name, prefix, strict, ok):
    assert is_pool_member(name, prefix, strict=strict) is ok


def test_check_lease_name():
    assert check_lease_name("a" * 255) is None
    assert "longer" in check_lease_name("a" * 256)
    assert check_lease_name("a/b") and check_lease_name("..")


def test_lookup_without_create_leaves_no_trace(trusted_tmp):
    gm = make_gridmapdir(trusted_tmp / "gm", ["p001", "p002"])
    fd = open_gridmapdir(str(gm))
    try:
        req = PoolRequest("%2fcn%3dx", "p", create=False)
        assert acquire_lease(fd, req) is None
        assert sorted(os.listdir(gm)) == ["p001", "p002"]
        req.create = True
        account = acquire_lease(fd, req)
        assert account in ("p001", "p002")
        req.create = False
        assert acquire_lease(fd, req) == account
        [lease] = list_leases(fd)
        assert (lease.account, lease.name) == (account, "%2fcn%3dx")
        req2 = PoolRequest("%2fcn%3dy", "p", requested=account)
        assert acquire_lease(fd, req2) is None  # requested account is taken
    finally:
        os.close(fd)
