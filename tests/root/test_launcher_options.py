"""glexec.conf options that change what the launcher does, each through the installed launcher."""

from __future__ import annotations

import os
import stat
import uuid

import pytest
from fixtures.credentials import USER_DN
from fixtures.site import assert_no_side_effects

pytestmark = [pytest.mark.root, pytest.mark.installed]


def test_pool_prefix_in_user_white_list(site_factory, accounts, make_proxy):
    site = site_factory(conf={"user_white_list": ".gxlpilot"})
    # gxlpilot2 matches ".gxlpilot" (prefix + digits); gxlpilot itself does not
    path2 = make_proxy("rfc", owner_uid=accounts.pilot2.uid)
    assert site.run(accounts.pilot2, ["/usr/bin/id", "-u"],
                    env={"GLEXEC_CLIENT_CERT": str(path2),
                         "GLEXEC_TARGET_PROXY": "/dev/null"}).code == 0
    path = make_proxy("rfc", owner_uid=accounts.pilot.uid)
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(path)})
    assert_no_side_effects(site, accounts, result, 203)


def test_group_white_list_primary_and_supplementary(site_factory, accounts, make_proxy):
    site = site_factory(conf={"user_white_list": "", "group_white_list": "gxlextra"})
    path = make_proxy("rfc", owner_uid=accounts.pilot.uid)
    env = {"GLEXEC_CLIENT_CERT": str(path), "GLEXEC_TARGET_PROXY": "/dev/null"}
    assert site.run(accounts.pilot, ["/usr/bin/id"], env=env).code == 203
    assert site.run(accounts.pilot, ["/usr/bin/id"], env=env, extra_groups=[47040]).code == 0
    site2 = site_factory(conf={"user_white_list": "", "group_white_list": "gxlpilot"})
    assert site2.run(accounts.pilot, ["/usr/bin/id"], env=env).code == 0


def test_omission_private_key_white_list(site_factory, accounts, make_proxy):
    path = make_proxy("no-key", owner_uid=accounts.pilot.uid)
    env = {"GLEXEC_CLIENT_CERT": str(path), "GLEXEC_TARGET_PROXY": "/dev/null"}
    strict = site_factory()
    assert strict.run(accounts.pilot, ["/usr/bin/id"], env=env).code == 201
    lenient = site_factory(conf={"omission_private_key_white_list": accounts.pilot.name})
    result = lenient.run(accounts.pilot, ["/usr/bin/id", "-u"], env=env)
    assert result.code == 0, result
    assert result.out.strip() == str(accounts.mapped.uid)


def test_create_target_proxy_no(site_factory, accounts, proxy):
    site = site_factory(conf={"create_target_proxy": "no"})
    result = site.run(accounts.pilot, ["/bin/sh", "-c", 'echo "[$X509_USER_PROXY]"'],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 0, result
    assert result.out == "[]\n"
    assert not os.path.exists(f"/tmp/x509up_u{accounts.mapped.uid}")


def test_target_proxy_in_a_target_owned_directory_is_replaced_atomically(
        site, accounts, proxy, trusted_tmp):
    directory = trusted_tmp / "sandbox"
    directory.mkdir(mode=0o700)
    os.chown(directory, accounts.mapped.uid, accounts.mapped.gid)
    target = directory / "user_proxy"
    target.write_text("old proxy\n")
    os.chown(target, accounts.mapped.uid, accounts.mapped.gid)
    os.chmod(target, 0o600)
    result = site.run(accounts.pilot, ["/bin/true"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY": str(target)})
    assert result.code == 0, result
    assert target.read_bytes() == proxy.read_bytes()
    st = os.lstat(target)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (accounts.mapped.uid, 0o600)
    assert sorted(os.listdir(directory)) == ["user_proxy"]  # no temporary file left


def test_source_proxy_of_another_identity_is_refused(site_factory, accounts, proxy,
                                                     make_proxy):
    other = make_proxy("voms", owner_uid=accounts.pilot.uid)  # same DN: accepted
    site = site_factory()
    ok = site.run(accounts.pilot, ["/bin/true"],
                  env={"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_SOURCE_PROXY": str(other),
                       "GLEXEC_TARGET_PROXY": "/dev/null"})
    assert ok.code == 0, ok
    foreign = make_proxy("revoked-rfc", owner_uid=accounts.pilot.uid)
    bad = site.run(accounts.pilot, ["/bin/true"],
                   env={"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_SOURCE_PROXY": str(foreign)})
    assert bad.code in (201, 203), bad
    assert not os.path.exists(f"/tmp/x509up_u{accounts.mapped.uid}")


def test_preserve_env_variables(site_factory, accounts, proxy):
    site = site_factory(conf={"preserve_env_variables": "CONDOR_INHERIT, SLURM_*"})
    env = {"GLEXEC_CLIENT_CERT": str(proxy), "CONDOR_INHERIT": "x", "SLURM_JOB_ID": "7",
           "SLURM_STEP_ID": "0", "OTHER": "no"}
    result = site.run(accounts.pilot, ["/usr/bin/env"], env=env)
    assert result.code == 0, result
    names = {line.partition("=")[0] for line in result.out.splitlines()}
    assert {"CONDOR_INHERIT", "SLURM_JOB_ID", "SLURM_STEP_ID"} <= names
    assert "OTHER" not in names


def test_prohibit_exec_via_symlink(site_factory, accounts, proxy, trusted_tmp):
    link = trusted_tmp / "id-link"
    os.symlink("/usr/bin/id", link)
    relaxed = site_factory()
    assert relaxed.run(accounts.pilot, [str(link)], env={"GLEXEC_CLIENT_CERT": str(proxy),
                                                         "GLEXEC_TARGET_PROXY": "/dev/null"}
                       ).code == 0
    strict = site_factory(conf={"prohibit_exec_via_symlink": "yes"})
    result = strict.run(accounts.pilot, [str(link)], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 201 and "symbolic link" in result.err, result


def test_relative_command_uses_the_fixed_payload_path(site, accounts, proxy, trusted_tmp):
    fake = trusted_tmp / "bin"
    fake.mkdir()
    (fake / "id").write_text("#!/bin/sh\necho fake-id\n")
    os.chmod(fake / "id", 0o755)
    result = site.run(accounts.pilot, ["id", "-u"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy), "PATH": f"{fake}:.:/usr/bin"})
    assert result.code == 0, result
    assert result.out.strip() == str(accounts.mapped.uid)


def write_epilogue(trusted_tmp, body: str) -> str:
    path = trusted_tmp / f"epilogue-{uuid.uuid4().hex[:6]}"
    path.write_text("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return str(path)


def test_epilogue_runs_after_the_payload_with_its_variables(site_factory, accounts, proxy,
                                                            trusted_tmp):
    out = trusted_tmp / "epilogue.out"
    script = write_epilogue(trusted_tmp, f'env | grep "^GLEXEC_EPILOG_" | sort > {out}\n'
                                         f'id -u >> {out}\n')
    site = site_factory(conf={"epilogue": script})
    result = site.run(accounts.pilot, ["/bin/sh", "-c", "exit 3"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_EPILOG_FORGED": "x"})
    assert result.code == 3, result
    text = out.read_text()
    assert f"GLEXEC_EPILOG_UID={accounts.mapped.uid}" in text
    assert "GLEXEC_EPILOG_PAYLOAD_STATUS=3" in text
    assert "FORGED" not in text
    assert text.splitlines()[-1] == "0"  # epilogue_user defaults to root


@pytest.mark.parametrize(("body", "code"), [("exit 1\n", 202), ("exit 203\n", 204)])
def test_epilogue_failure_sets_the_status(site_factory, accounts, proxy, trusted_tmp, body,
                                          code):
    site = site_factory(conf={"epilogue": write_epilogue(trusted_tmp, body)})
    result = site.run(accounts.pilot, ["/bin/true"], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == code, result


def test_epilogue_timeout(site_factory, accounts, proxy, trusted_tmp):
    site = site_factory(conf={"epilogue": write_epilogue(trusted_tmp, "sleep 60\n"),
                              "epilogue_timeout": "1"})
    result = site.run(accounts.pilot, ["/bin/true"], env={"GLEXEC_CLIENT_CERT": str(proxy)},
                      timeout=30)
    assert result.code == 202, result


def test_untrusted_epilogue_is_refused(site_factory, accounts, proxy, trusted_tmp):
    script = write_epilogue(trusted_tmp, "exit 0\n")
    os.chmod(script, 0o777)
    site = site_factory(conf={"epilogue": script})
    result = site.run(accounts.pilot, ["/bin/true"], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 202, result


def test_deprecated_verify_account_form(site_factory, accounts, proxy):
    site = site_factory(conf={"lcmaps_verify_account_policy": "glexec_get_account"})
    env = {"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY": "/dev/null"}
    good = site.run(accounts.pilot, [str(accounts.mapped.uid), str(accounts.mapped.gid),
                                     "/usr/bin/id", "-u"], env=env)
    assert good.code == 0, good
    assert good.out.strip() == str(accounts.mapped.uid)
    bad = site.run(accounts.pilot, [str(accounts.victim.uid), str(accounts.victim.gid),
                                    "/usr/bin/id", "-u"], env=env)
    assert bad.code == 203, bad


def test_mapfile_to_pool_records_lcmaps_cred_final(site_factory, accounts, proxy):
    site = site_factory(mapfile=f'"{USER_DN}" .gxlpool\n')
    result = site.run(accounts.pilot, ["/usr/bin/id", "-un"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY": "/dev/null"})
    assert result.code == 0, result
    final = [r for r in result.records if "LCMAPS CRED FINAL" in r]
    assert final and f'DN:"{USER_DN}"' in final[0], result.records
