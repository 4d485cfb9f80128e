"""Many launcher calls at once: pool leases stay exclusive, one DN always gets one account.

The policy issue's acceptance through the installed launcher: 50 pilot calls in parallel with 50
different DNs and 10 free pool accounts give exactly 10 distinct accounts and 40 refusals (203);
20 calls in parallel with one DN all get the same account. The 50 EECs are issued by the session's
test CA (with cryptography), each wrapped in an RFC 3820 proxy owned by the pilot.
"""

from __future__ import annotations

import collections
import os
import subprocess

import pytest
from fixtures.credentials import _rsa, make_dn_proxy

pytestmark = [pytest.mark.root, pytest.mark.installed, pytest.mark.slow]

BASE_DN = "/DC=org/DC=example/O=glexec-py demo"


@pytest.fixture(scope="module")
def many_proxies(test_ca, accounts, trusted_tmp_module):
    """50 proxy files, one per distinct DN ``.../CN=Load User NN``, owned by the pilot."""
    eec_key, proxy_key = _rsa(), _rsa()
    paths = [make_dn_proxy(test_ca, trusted_tmp_module / f"proxy{i:02d}", cn=f"Load User {i:02d}",
                           owner=accounts.pilot, eec_key=eec_key, proxy_key=proxy_key)
             for i in range(50)]
    return paths


@pytest.fixture(scope="module")
def trusted_tmp_module():
    import shutil
    import uuid
    from pathlib import Path

    path = Path("/run/glexec-py-tests") / f"load-{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o755, parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_all(site, account, proxies):
    procs = []
    for path in proxies:
        env = {"PATH": "/usr/bin:/bin", "GLEXEC_CLIENT_CERT": str(path),
               "GLEXEC_TARGET_PROXY": "/dev/null"}
        procs.append(subprocess.Popen([str(site.bin), "/usr/bin/id", "-un"], env=env,
                                      user=account.uid, group=account.gid,
                                      extra_groups=account.groups, cwd="/",
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append((proc.returncode, out.decode().strip(), err.decode().strip()))
    return results


def test_fifty_dns_ten_accounts(site_factory, accounts, many_proxies):
    site = site_factory(mapfile=f'"{BASE_DN}/*" .gxlpool\n')
    results = run_all(site, accounts.pilot, many_proxies)
    codes = collections.Counter(code for code, _, _ in results)
    assert codes == {0: 10, 203: 40}, results
    names = [out for code, out, _ in results if code == 0]
    assert len(set(names)) == 10
    assert set(names) == {a.name for a in accounts.pool}
    leases = site.leases()
    assert len(leases) == 10
    inodes = collections.Counter(os.stat(site.gridmapdir / n).st_ino for n in leases)
    assert all(count == 1 for count in inodes.values())  # no account leased twice
    assert all(os.stat(site.gridmapdir / a.name).st_nlink == 2 for a in accounts.pool)


def test_twenty_calls_one_dn_share_one_account(site_factory, accounts, many_proxies):
    site = site_factory(mapfile=f'"{BASE_DN}/*" .gxlpool\n')
    results = run_all(site, accounts.pilot, [many_proxies[7]] * 20)
    assert all(code == 0 for code, _, _ in results), results
    assert len({out for _, out, _ in results}) == 1
    assert len(site.leases()) == 1
