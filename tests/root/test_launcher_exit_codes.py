"""Every documented exit code, produced through the installed launcher by an unprivileged pilot.

Each failure also proves it left nothing behind: no target proxy, no lease, no process of the
target account; exactly one line on stderr; the failure recorded once in the log.
"""

from __future__ import annotations

import os
import stat

import pytest
from fixtures.site import assert_no_side_effects, target_processes

pytestmark = [pytest.mark.root, pytest.mark.installed]


@pytest.fixture(scope="module")
def pool_site(site_factory):
    """A site whose grid-mapfile sends the DN to the pool: a success would create a lease."""
    from fixtures.credentials import USER_DN

    return site_factory(mapfile=f'"{USER_DN}" .gxlpool\n')


# ---- 201: the caller must fix something ---------------------------------------------------

def test_201_no_client_cert(pool_site, accounts):
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"], env={})
    assert_no_side_effects(pool_site, accounts, result, 201)
    assert "GLEXEC_CLIENT_CERT" in result.err


def test_201_empty_client_cert(pool_site, accounts):
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": ""})
    assert_no_side_effects(pool_site, accounts, result, 201)


def test_201_empty_source_proxy(pool_site, accounts, proxy):
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"],
                           env={"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_SOURCE_PROXY": ""})
    assert_no_side_effects(pool_site, accounts, result, 201)


def test_201_relative_path(pool_site, accounts, proxy):
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"],
                           env={"GLEXEC_CLIENT_CERT": proxy.name}, cwd=str(proxy.parent))
    assert_no_side_effects(pool_site, accounts, result, 201)
    assert "absolute" in result.err


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o666, 0o4600, 0o1600, 0o610])
def test_201_proxy_mode_beyond_owner(pool_site, accounts, make_proxy, mode):
    path = make_proxy("rfc", owner_uid=accounts.pilot.uid, mode=mode)
    os.chmod(path, mode)
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(path)})
    assert_no_side_effects(pool_site, accounts, result, 201)


def test_201_proxy_owned_by_someone_else(pool_site, accounts, make_proxy):
    path = make_proxy("rfc", owner_uid=accounts.victim.uid, mode=0o600)
    os.chmod(path, 0o644)  # even readable by the pilot
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(path)})
    assert_no_side_effects(pool_site, accounts, result, 201)
    assert "not by the caller" in result.err


def test_201_source_proxy_owned_by_someone_else(pool_site, accounts, make_proxy, proxy):
    other = make_proxy("rfc", owner_uid=accounts.victim.uid, mode=0o600)
    os.chmod(other, 0o644)
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"],
                           env={"GLEXEC_CLIENT_CERT": str(proxy),
                                "GLEXEC_SOURCE_PROXY": str(other)})
    assert_no_side_effects(pool_site, accounts, result, 201)


def test_201_symlink_to_own_proxy(pool_site, accounts, proxy):
    link = proxy.parent / "link"
    os.symlink(proxy, link)
    os.lchown(link, accounts.pilot.uid, accounts.pilot.gid)
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(link)})
    assert_no_side_effects(pool_site, accounts, result, 201)
    assert "symbolic link" in result.err


def test_201_shadow_is_not_readable_as_the_caller(pool_site, accounts):
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"],
                           env={"GLEXEC_CLIENT_CERT": "/etc/shadow"})
    assert_no_side_effects(pool_site, accounts, result, 201)
    assert "root:" not in result.err and not any("root:" in r for r in result.records)


@pytest.mark.parametrize("path", ["/tmp", "/dev/zero", "/nonexistent/proxy"])
def test_201_not_a_usable_file(pool_site, accounts, path):
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": path})
    assert_no_side_effects(pool_site, accounts, result, 201)


@pytest.mark.parametrize("kind", ["garbage", "empty", "der", "usercert-only", "expired",
                                  "wrong-key"])
def test_201_unusable_proxy_content(pool_site, accounts, make_proxy, kind):
    path = make_proxy(kind, owner_uid=accounts.pilot.uid)
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(path)})
    assert_no_side_effects(pool_site, accounts, result, 201)


def test_201_command_not_found(site, accounts, proxy):
    result = site.run(accounts.pilot, ["/usr/bin/idontexist"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 201, result
    assert "command not found" in result.err
    assert not os.path.exists(f"/tmp/x509up_u{accounts.mapped.uid}")
    assert target_processes(accounts.mapped.uid) == []


@pytest.mark.parametrize("target", ["/root/x509up", "HOME/fakedir/x509up", "relative/x509up"])
def test_201_target_proxy_location_not_usable(site, accounts, proxy, target):
    target = target.replace("HOME", accounts.pilot.home)
    result = site.run(accounts.pilot, ["/usr/bin/id"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY": target})
    assert result.code == 201, result
    assert target_processes(accounts.mapped.uid) == []


def test_201_foreign_target_proxy_not_overwritten(site, accounts, proxy):
    victim_file = f"/tmp/x509up_u{accounts.mapped.uid}"
    with open(victim_file, "w") as f:
        f.write("victim's data\n")
    os.chown(victim_file, accounts.pilot.uid, accounts.pilot.gid)
    os.chmod(victim_file, 0o600)
    before = os.lstat(victim_file)
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 201, result
    after = os.lstat(victim_file)
    assert (after.st_ino, after.st_uid, after.st_mtime_ns) == (
        before.st_ino, before.st_uid, before.st_mtime_ns)
    with open(victim_file) as f:
        assert f.read() == "victim's data\n"
    assert target_processes(accounts.mapped.uid) == []


def test_dev_null_target_proxy_is_accepted(site, accounts, proxy):
    result = site.run(accounts.pilot, ["/bin/sh", "-c", 'echo "$X509_USER_PROXY"'],
                      env={"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY": "/dev/null"})
    assert result.code == 0, result
    assert result.out == "/dev/null\n"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# ---- 202: the site must fix something -----------------------------------------------------

def test_202_config_world_writable(site_factory, accounts, proxy):
    site = site_factory()
    os.chmod(site.conf_path, 0o666)
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 202, result
    assert "writable" in result.err


def test_202_config_missing(site_factory, accounts, proxy):
    site = site_factory()
    os.unlink(site.conf_path)
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 202, result


@pytest.mark.parametrize("extra", ["[dummy]", "no_such_key = 1", "linger = maybe",
                                   "preserve_env_variables = MALLOC_CHECK_",
                                   "linger = yes"])
def test_202_config_malformed(site_factory, accounts, proxy, extra):
    site = site_factory()
    with open(site.conf_path, "a") as f:
        f.write(extra + "\n")
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 202, result
    assert len(result.err.splitlines()) == 1


def test_202_config_dir_writable_by_others(site_factory, accounts, proxy):
    site = site_factory()
    os.chmod(site.root, 0o777)
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 202, result


@pytest.mark.parametrize("damage", ["missing", "world-writable", "syntax"])
def test_202_policy_file(site_factory, accounts, proxy, damage):
    site = site_factory()
    if damage == "missing":
        os.unlink(site.lcmaps_db)
    elif damage == "world-writable":
        os.chmod(site.lcmaps_db, 0o666)
    else:
        with open(site.lcmaps_db, "a") as f:
            f.write('broken -> -> "unbalanced\n')
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 202, result
    assert site.leases() == set()


def test_202_certdir_world_writable(site_factory, accounts, proxy, test_ca):
    site = site_factory()
    os.chmod(test_ca.certdir, 0o777)
    try:
        result = site.run(accounts.pilot, ["/usr/bin/id"],
                          env={"GLEXEC_CLIENT_CERT": str(proxy)})
    finally:
        os.chmod(test_ca.certdir, 0o755)
    assert result.code == 202, result


# ---- 203: authorization --------------------------------------------------------------------

def test_203_caller_not_whitelisted(site_factory, accounts, make_proxy):
    site = site_factory(conf={"user_white_list": accounts.pilot.name})
    path = make_proxy("rfc", owner_uid=accounts.pilot2.uid)
    result = site.run(accounts.pilot2, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(path)})
    assert_no_side_effects(site, accounts, result, 203)
    assert "user_white_list" in result.err


def test_203_dn_not_mapped(site_factory, accounts, proxy):
    site = site_factory(mapfile="# nobody\n")
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert_no_side_effects(site, accounts, result, 203)


@pytest.mark.parametrize("kind", ["untrusted-ca", "self-signed-ca", "forged-subject"])
def test_203_chain_not_trusted(pool_site, accounts, make_proxy, kind):
    path = make_proxy(kind, owner_uid=accounts.pilot.uid)
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(path)})
    assert_no_side_effects(pool_site, accounts, result, 203)


def test_203_pool_exhausted(site_factory, accounts, proxy):
    from fixtures.credentials import USER_DN

    site = site_factory(mapfile=f'"{USER_DN}" .gxlpool\n', pool=[])
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert_no_side_effects(site, accounts, result, 203)


# ---- the payload's own status ---------------------------------------------------------------

@pytest.mark.parametrize("status", [201, 202, 203, 204])
def test_204_payload_exited_20x(site, accounts, proxy, status):
    result = site.run(accounts.pilot, ["/bin/sh", "-c", f"exit {status}"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 204, result


@pytest.mark.parametrize("status", [1, 126, 127, 200, 205, 255])
def test_other_payload_status_passes_through(site, accounts, proxy, status):
    result = site.run(accounts.pilot, ["/bin/sh", "-c", f"exit {status}"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == status, result


def test_126_command_not_executable_by_target(site, accounts, proxy, trusted_tmp):
    script = trusted_tmp / "not-executable.sh"
    script.write_text("#!/bin/sh\necho should not run\n")
    os.chmod(script, 0o644)
    result = site.run(accounts.pilot, [str(script)], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 126, result
    assert "should not run" not in result.out
    assert not os.path.exists(f"/tmp/x509up_u{accounts.mapped.uid}")


@pytest.mark.parametrize("signum", [15, 9, 2, 1])
def test_128_plus_signal(site, accounts, proxy, signum):
    result = site.run(accounts.pilot, ["/bin/sh", "-c", f"kill -{signum} $$"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 128 + signum, result
