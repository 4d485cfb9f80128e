"""Attack catalogue group L (races), end to end; L131/L132 are in test_launcher_concurrency.py.

L133/L139: parallel calls writing the same GLEXEC_TARGET_PROXY -- every payload sees a complete
proxy at start, the file ends as exactly one of the inputs, no temporary file is left. L135:
glexec.conf renamed over while calls read it -- each call sees the old or the new file, never a
mix (a mix would be a 202 parse error or a whitelist from neither).
"""

from __future__ import annotations

import os
import subprocess
import threading

import pytest

pytestmark = [pytest.mark.root, pytest.mark.installed]


def start(site, account, argv, env):
    return subprocess.Popen([str(site.bin), *argv], env={"PATH": "/usr/bin:/bin", **env},
                            user=account.uid, group=account.gid, extra_groups=account.groups,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")


def test_l133_l139_parallel_writers_of_one_target_proxy(target_site, accounts, attack_accounts,
                                                        make_proxy, trusted_tmp):
    directory = trusted_tmp / "shared-target"
    directory.mkdir(mode=0o700)
    os.chown(directory, attack_accounts.user.uid, attack_accounts.user.gid)
    target = directory / "x509up"
    sources = [make_proxy(kind, owner_uid=accounts.pilot.uid)
               for kind in ("rfc", "voms", "legacy", "draft", "rfc", "voms", "legacy", "draft")]
    copies = public_copies(sources, trusted_tmp)
    # each payload checks that what it got at start is one complete input (a later writer's
    # copy is fine: same DN), never a torn mix
    check = ('for f in "$@"; do cmp -s "$X509_USER_PROXY" "$f" && { echo complete; exit 0; }; '
             'done; echo TORN')
    procs = [start(target_site, accounts.pilot, ["/bin/sh", "-c", check, "sh", *copies],
                   {"GLEXEC_CLIENT_CERT": str(src), "GLEXEC_TARGET_PROXY": str(target)})
             for src in sources]
    results = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0] * len(sources), results
    assert [out for out, _ in results] == [b"complete\n"] * len(sources), results
    final = target.read_bytes()
    assert final in {src.read_bytes() for src in sources}
    assert os.listdir(directory) == ["x509up"]
    st = os.stat(target)
    assert (st.st_uid, st.st_mode & 0o777) == (attack_accounts.user.uid, 0o600)


def public_copies(sources, trusted_tmp) -> list[str]:
    """Root-owned 0644 copies the target may read (the pilot's own files are 0600)."""
    directory = trusted_tmp / "public"
    directory.mkdir(exist_ok=True)
    out = []
    for index, src in enumerate(sources):
        copy = directory / f"{index}.pem"
        copy.write_bytes(src.read_bytes())
        os.chmod(copy, 0o644)
        out.append(str(copy))
    return out


def test_l139_payload_never_starts_with_a_partial_proxy(target_site, accounts, make_proxy,
                                                        trusted_tmp, attack_accounts):
    directory = trusted_tmp / "own-target"
    directory.mkdir(mode=0o700)
    os.chown(directory, attack_accounts.user.uid, attack_accounts.user.gid)
    src = make_proxy("voms", owner_uid=accounts.pilot.uid)
    (copy,) = public_copies([src], trusted_tmp)
    for _ in range(5):
        target = directory / "x509up"
        result = target_site.run(accounts.pilot, ["/usr/bin/cmp", copy, str(target)],
                                 env={"GLEXEC_CLIENT_CERT": str(src),
                                      "GLEXEC_TARGET_PROXY": str(target)})
        assert result.code == 0, result


def test_l135_config_renamed_over_while_read(attack_site, accounts, proxy):
    site = attack_site(to="user")
    conf = site.conf_path
    good = conf.read_text()
    refusing = good.replace(f"user_white_list = {accounts.pilot.name}",
                            "user_white_list = nobody")
    assert refusing != good
    staged = [conf.with_name("a.conf"), conf.with_name("b.conf")]
    stop = threading.Event()

    def swap() -> None:
        i = 0
        while not stop.is_set():
            path = staged[i % 2]
            path.write_text(good if i % 2 else refusing)
            os.chmod(path, 0o644)
            os.rename(path, conf)
            i += 1

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        codes = []
        for _ in range(12):
            result = site.run(accounts.pilot, ["/bin/true"],
                              env={"GLEXEC_CLIENT_CERT": str(proxy),
                                   "GLEXEC_TARGET_PROXY": "/dev/null"})
            codes.append(result.code)
            assert result.code in (0, 203), result
    finally:
        stop.set()
        swapper.join()
    assert codes


def test_l136_lease_expiry_during_lease_creation(attack_site, accounts, attack_accounts,
                                                 test_ca, trusted_tmp):
    """A site's lease-expiry job running while payloads start never frees or re-leases an
    account that a running payload holds: ten DNs compete for the five pool accounts while
    ``glexec-gridmapdir expire --older-than 0`` runs in a loop; the payloads that ran at the
    same time all ran as different accounts, and the gridmapdir ends consistent."""
    from fixtures.credentials import _rsa, make_dn_proxy

    site = attack_site()
    with open(site.mapfile, "w") as f:
        f.write('"/DC=org/DC=example/O=glexec-py demo/*" .gxapool\n')
    keys = _rsa(), _rsa()
    proxies = [make_dn_proxy(test_ca, trusted_tmp / f"l136-{i}", cn=f"Race User {i}",
                             owner=accounts.pilot, eec_key=keys[0], proxy_key=keys[1])
               for i in range(10)]
    stop = threading.Event()
    tool = "/opt/glexec-py/bin/glexec-gridmapdir"

    def expire_loop() -> None:
        while not stop.is_set():
            subprocess.run([tool, "expire", "--older-than", "0", str(site.gridmapdir)],
                           capture_output=True)

    expirer = threading.Thread(target=expire_loop)
    expirer.start()
    try:
        procs = [start(site, accounts.pilot, ["/bin/sh", "-c", "id -un; sleep 2"],
                       {"GLEXEC_CLIENT_CERT": str(p), "GLEXEC_TARGET_PROXY": "/dev/null"})
                 for p in proxies]
        results = [(p.wait(timeout=120), p.stdout.read().decode().strip()) for p in procs]
    finally:
        stop.set()
        expirer.join()
    ran = [name for code, name in results if code == 0]
    assert all(code in (0, 203) for code, _ in results), results
    assert ran and len(ran) == len(set(ran)), results  # concurrent payloads: distinct accounts
    for account in attack_accounts.pool:
        assert os.stat(site.gridmapdir / account.name).st_nlink <= 2
