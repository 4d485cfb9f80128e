"""Caches never change a decision: through the installed launcher, each change is seen at once.

The repeated-call fast path keeps verified chains in /run/glexec-py/verified (and the policy
engine reads its site files on each call). Each test first makes the launcher cache a verdict
(the entry's presence is asserted, so the test cannot pass with caching silently off), changes
one thing the verdict depended on, and shows the very next call decides on the new state: a CRL
revoking the user (rewritten in place, or renamed over), a chain that expired, a changed
grid-mapfile, a changed policy, a proxy file replaced by another identity's, a corrupted entry.

The module has its own CA (scripts/make-test-ca.sh), so revoking certificates never touches the
session CA other tests use.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from fixtures.credentials import USER_DN, TestCA, _load, _pem_cert, _pem_key, _rsa, build_cert
from fixtures.prereq import require

from glexec_py.credentials.cache import CACHE_DIR, entry_name

pytestmark = [pytest.mark.root, pytest.mark.installed]

REPO = Path(__file__).resolve().parents[2]
BASE = Path("/run/glexec-py-tests")
DN_PREFIX = "/DC=org/DC=example/O=glexec-py demo/CN="
EXTRA_USERS = ("Cache Second", "Cache Revokee rename", "Cache Revokee inplace")


def _openssl(*argv: str) -> None:
    subprocess.run(["openssl", *argv], check=True, capture_output=True)


class OwnCA(TestCA):
    __test__ = False

    def issue(self, cn: str) -> tuple[Path, Path]:
        """A further end-entity certificate of this CA (DN_PREFIX + cn)."""
        d = self.root / "extra" / cn.replace(" ", "_")
        d.mkdir(parents=True, mode=0o755)
        key, req, cert = d / "userkey.pem", d / "req.pem", d / "usercert.pem"
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                 str(req), "-subj", DN_PREFIX.replace("/CN=", "") + f"/CN={cn}")
        _openssl("ca", "-batch", "-config", str(self.root / "ca/openssl.cnf"), "-extensions",
                 "usr", "-days", "30", "-in", str(req), "-out", str(cert))
        os.chmod(key, 0o600)
        return cert, key

    def revoke(self, cert: Path) -> bytes:
        """Revoke ``cert`` and return the new CRL (PEM)."""
        conf = str(self.root / "ca/openssl.cnf")
        out = self.root / "ca" / f"crl-{uuid.uuid4().hex[:6]}.pem"
        _openssl("ca", "-config", conf, "-revoke", str(cert))
        _openssl("ca", "-config", conf, "-gencrl", "-out", str(out))
        return out.read_bytes()

    def crl_path(self) -> Path:
        return next(self.certdir.glob("*.r0"))


@pytest.fixture(scope="module")
def own_ca() -> OwnCA:
    require(os.geteuid() == 0, "needs root (root-owned CA directory)")
    BASE.mkdir(mode=0o755, exist_ok=True)
    root = BASE / f"gxh-cache-ca-{uuid.uuid4().hex[:8]}"
    subprocess.run([str(REPO / "scripts/make-test-ca.sh"), str(root)], check=True,
                   capture_output=True)
    ca = OwnCA(root)
    ca.extra = {cn: ca.issue(cn) for cn in EXTRA_USERS}
    yield ca
    subprocess.run(["rm", "-rf", str(root)], check=False)


@pytest.fixture
def cache_site(site_factory, own_ca, accounts):
    mapfile = (f'"{USER_DN}" {accounts.mapped.name}\n'
               f'"{DN_PREFIX}Cache Second" {accounts.pool[0].name}\n'
               + "".join(f'"{DN_PREFIX}{cn}" {accounts.mapped.name}\n'
                         for cn in EXTRA_USERS[1:]))
    return site_factory(conf={"x509_cert_dir": str(own_ca.certdir),
                              "x509_voms_dir": str(own_ca.vomsdir), "linger": "no"},
                        mapfile=mapfile)


@pytest.fixture
def pilot_dir(accounts):
    d = BASE / f"gxh-cache-pilot-{uuid.uuid4().hex[:8]}"
    d.mkdir(mode=0o700)
    os.chown(d, accounts.pilot.uid, accounts.pilot.gid)
    yield d
    subprocess.run(["rm", "-rf", str(d)], check=False)


def grid_proxy(ca: OwnCA, cert: Path, key: Path) -> bytes:
    out = ca.root / f"gpi-{uuid.uuid4().hex[:6]}.pem"
    subprocess.run(["grid-proxy-init", "-q", "-rfc", "-cert", str(cert), "-key", str(key),
                    "-out", str(out), "-valid", "2:00"], check=True, capture_output=True,
                   env={"PATH": "/usr/bin:/bin", "X509_CERT_DIR": str(ca.certdir)})
    data = out.read_bytes()
    out.unlink()
    return data


def place(path: Path, data: bytes, owner) -> Path:
    """Put a proxy where the pilot keeps it: its own file, 0600, replaced atomically."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.chown(tmp, owner.uid, owner.gid)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def call(site, accounts, proxy: Path):
    return site.run(accounts.pilot, ["/usr/bin/id", "-u"],
                    env={"GLEXEC_CLIENT_CERT": str(proxy)})


def assert_cached(data: bytes, ca: OwnCA) -> None:
    name = entry_name(data, str(ca.certdir), str(ca.vomsdir))
    assert os.path.exists(os.path.join(CACHE_DIR, name)), "the verdict was not cached"


def cached_call(site, accounts, proxy: Path, ca: OwnCA, uid: int) -> None:
    """Two successful calls (the second served from the cache), mapped to ``uid``."""
    for _ in range(2):
        result = call(site, accounts, proxy)
        assert result.code == 0, result
        assert result.out == f"{uid}\n"
    assert_cached(proxy.read_bytes(), ca)


@pytest.mark.parametrize("how", ["rename", "inplace"])
def test_new_crl_revoking_the_user_is_seen_on_the_next_call(cache_site, own_ca, accounts,
                                                           pilot_dir, how):
    cert, key = own_ca.extra[f"Cache Revokee {how}"]
    proxy = place(pilot_dir / "proxy.pem", grid_proxy(own_ca, cert, key), accounts.pilot)
    cached_call(cache_site, accounts, proxy, own_ca, accounts.mapped.uid)
    crl = own_ca.revoke(cert)
    target = own_ca.crl_path()
    if how == "rename":  # fetch-crl's way: a new file renamed over the old one
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(crl)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    else:  # an administrator's cp: same inode, new content
        with open(target, "r+b") as f:
            f.truncate(0)
            f.write(crl)
    result = call(cache_site, accounts, proxy)
    assert result.code == 203, result
    assert "revoked" in result.err


def test_expired_chain_is_seen_on_the_next_call(cache_site, own_ca, accounts, pilot_dir):
    user, user_key = _load(own_ca.user_cert), _load(own_ca.user_key)
    key = _rsa()
    lifetime = 4.0
    leaf = build_cert(user, user_key, key.public_key(), hours=(-0.1, lifetime / 3600))
    expires = leaf.not_valid_after_utc.timestamp()
    proxy = place(pilot_dir / "short.pem", _pem_cert(leaf) + _pem_key(key) + _pem_cert(user),
                  accounts.pilot)
    cached_call(cache_site, accounts, proxy, own_ca, accounts.mapped.uid)
    time.sleep(max(0.0, expires - time.time()) + 1.2)
    result = call(cache_site, accounts, proxy)
    assert result.code == 201, result  # an expired proxy is the client's problem (201)
    assert "expired" in result.err, result


def test_changed_grid_mapfile_is_seen_on_the_next_call(cache_site, own_ca, accounts,
                                                      pilot_dir):
    proxy = place(pilot_dir / "proxy.pem", grid_proxy(own_ca, own_ca.user_cert,
                                                      own_ca.user_key), accounts.pilot)
    cached_call(cache_site, accounts, proxy, own_ca, accounts.mapped.uid)
    text = cache_site.mapfile.read_text().replace(
        f'"{USER_DN}" {accounts.mapped.name}', f'"{USER_DN}" {accounts.pool[1].name}')
    cache_site.mapfile.write_text(text)
    result = call(cache_site, accounts, proxy)
    assert result.code == 0, result
    assert result.out == f"{accounts.pool[1].uid}\n"


def test_changed_policy_is_seen_on_the_next_call(cache_site, own_ca, accounts, pilot_dir):
    proxy = place(pilot_dir / "proxy.pem", grid_proxy(own_ca, own_ca.user_cert,
                                                      own_ca.user_key), accounts.pilot)
    cached_call(cache_site, accounts, proxy, own_ca, accounts.mapped.uid)
    cache_site.lcmaps_db.write_text('bad = "lcmaps_dummy_bad.mod"\n'
                                    'good = "lcmaps_dummy_good.mod"\n\n'
                                    'glexec_get_account:\nbad -> good\n')
    result = call(cache_site, accounts, proxy)
    assert result.code == 203, result
    assert cache_site.leases() == set()


def test_replaced_proxy_is_seen_on_the_next_call(cache_site, own_ca, accounts, pilot_dir):
    proxy = place(pilot_dir / "proxy.pem", grid_proxy(own_ca, own_ca.user_cert,
                                                      own_ca.user_key), accounts.pilot)
    cached_call(cache_site, accounts, proxy, own_ca, accounts.mapped.uid)
    cert, key = own_ca.extra["Cache Second"]
    place(proxy, grid_proxy(own_ca, cert, key), accounts.pilot)
    result = call(cache_site, accounts, proxy)
    assert result.code == 0, result
    assert result.out == f"{accounts.pool[0].uid}\n"
    place(proxy, b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
          accounts.pilot)
    result = call(cache_site, accounts, proxy)
    assert result.code in (201, 203), result


def test_corrupt_or_exposed_entry_is_ignored(cache_site, own_ca, accounts, pilot_dir):
    data = grid_proxy(own_ca, own_ca.user_cert, own_ca.user_key)
    proxy = place(pilot_dir / "proxy.pem", data, accounts.pilot)
    cached_call(cache_site, accounts, proxy, own_ca, accounts.mapped.uid)
    entry = Path(CACHE_DIR) / entry_name(data, str(own_ca.certdir), str(own_ca.vomsdir))
    entry.write_bytes(b"\xff" * 64)  # unreadable: a miss, then a fresh entry
    result = call(cache_site, accounts, proxy)
    assert result.code == 0, result
    assert entry.read_bytes() != b"\xff" * 64
    os.chmod(entry, 0o644)  # readable by others: never used (and replaced by the next miss)
    before = entry.stat().st_ino
    result = call(cache_site, accounts, proxy)
    assert result.code == 0, result
    assert entry.stat().st_ino != before and entry.stat().st_mode & 0o077 == 0


# -- the gridmapdir lease index (glexec_py.leaseindex): hints only, never a wrong lease --------

def _pool_dir(base: Path, n: int) -> Path:
    gmd = base / "gridmapdir"
    gmd.mkdir(mode=0o755)
    for i in range(n):
        (gmd / f"gxhidx{i:03d}").touch(mode=0o644)
    return gmd


def _lease(gmd: Path, dn: str) -> str | None:
    from glexec_py.gridmapdir import (
        PoolRequest,
        acquire_lease,
        encode_lease_name,
        lock_gridmapdir,
        open_gridmapdir,
    )

    fd = open_gridmapdir(str(gmd))
    try:
        lock_gridmapdir(fd)
        return acquire_lease(fd, PoolRequest(encode_lease_name(dn), "gxhidx"))
    finally:
        os.close(fd)


def _account_of(gmd: Path, dn: str) -> str:
    from glexec_py.gridmapdir import encode_lease_name

    ino = os.lstat(gmd / encode_lease_name(dn)).st_ino
    return next(n for n in os.listdir(gmd) if not n.startswith("%")
                and os.lstat(gmd / n).st_ino == ino)


def test_lease_index_wrong_hint_is_never_believed(trusted_tmp):
    from glexec_py import leaseindex
    from glexec_py.gridmapdir import encode_lease_name, open_gridmapdir

    gmd = _pool_dir(trusted_tmp, 5)
    first = _lease(gmd, "/CN=a")
    assert _lease(gmd, "/CN=a") == first  # found through the hint
    fd = open_gridmapdir(str(gmd))
    ino = os.lstat(gmd / encode_lease_name("/CN=a")).st_ino
    other = next(n for n in sorted(os.listdir(gmd)) if n.startswith("gxh") and n != first)
    leaseindex.note_account(fd, ino, other)  # a lying hint
    os.close(fd)
    assert _lease(gmd, "/CN=a") == first == _account_of(gmd, "/CN=a")


def test_lease_index_sees_out_of_band_release_and_never_reports_a_free_pool_full(trusted_tmp):
    from glexec_py.gridmapdir import encode_lease_name

    gmd = _pool_dir(trusted_tmp, 3)
    owners = {dn: _lease(gmd, dn) for dn in ("/CN=a", "/CN=b", "/CN=c")}
    assert sorted(owners.values()) == ["gxhidx000", "gxhidx001", "gxhidx002"]
    assert _lease(gmd, "/CN=d") is None  # exhausted
    os.unlink(gmd / encode_lease_name("/CN=b"))  # released behind the index's back
    assert _lease(gmd, "/CN=d") == owners["/CN=b"]
    # an account leased from outside (a hard link the index never saw) is not handed out twice
    os.unlink(gmd / encode_lease_name("/CN=a"))
    os.link(gmd / owners["/CN=a"], trusted_tmp / "outside-link")
    assert _lease(gmd, "/CN=e") is None
    assert os.lstat(gmd / owners["/CN=a"]).st_nlink == 2


def test_lease_index_after_a_release_by_the_tools_hands_out_the_freed_account(trusted_tmp):
    from glexec_py.gridmapdir import (
        encode_lease_name,
        lock_gridmapdir,
        open_gridmapdir,
        release_lease,
    )

    gmd = _pool_dir(trusted_tmp, 4)
    owners = {dn: _lease(gmd, dn) for dn in ("/CN=a", "/CN=b", "/CN=c", "/CN=d")}
    for dn in ("/CN=c", "/CN=a"):  # one release into a full pool, then one more
        fd = open_gridmapdir(str(gmd))
        lock_gridmapdir(fd)
        assert release_lease(fd, encode_lease_name(dn)) == owners[dn]
        os.close(fd)
    # both free again: LCMAPS' choice, the first free account in readdir order, comes first
    order = [n for n in os.listdir(gmd) if n in (owners["/CN=a"], owners["/CN=c"])]
    assert _lease(gmd, "/CN=e") == order[0]
    assert _lease(gmd, "/CN=f") == order[1]
    assert _lease(gmd, "/CN=g") is None
