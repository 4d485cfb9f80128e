"""Attack catalogue group A (who may call glexec), through the installed setuid launcher.

Besides the catalogue: look-alike whitelist entries (case variants, a numeric uid, a pool prefix
with a non-digit suffix), a caller with no passwd entry against ``*``, and the front end's own
refusals (argc 0, no_new_privs), which happen before any configuration is read and so are not
in the site's log (documented in SECURITY.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from fixtures.credentials import USER_DN
from fixtures.prereq import require
from fixtures.side_effects import assert_refused

pytestmark = [pytest.mark.root, pytest.mark.installed]

NO_PASSWD_UID = 48050  # gxa range: never given a passwd entry


class Nobody:
    """A caller that exists only as numbers (no passwd, no group entry)."""

    uid = NO_PASSWD_UID
    gid = NO_PASSWD_UID
    groups = [NO_PASSWD_UID]
    home = "/"
    name = "(none)"


@pytest.mark.parametrize(("case", "conf", "caller", "extra_groups"), [
    ("a01_not_in_user_white_list", {"user_white_list": "gxlpilot"}, "pilot2", None),
    ("a01_group_list_not_member", {"user_white_list": "", "group_white_list": "gxlextra"},
     "pilot", None),
    ("a04_group_list_primary_of_someone_else",
     {"user_white_list": "", "group_white_list": "gxluser1"}, "pilot", None),
    ("case_variant_of_name", {"user_white_list": "GXLPILOT, GxlPilot"}, "pilot", None),
    ("numeric_uid_is_not_a_name", {"user_white_list": "47001"}, "pilot", None),
    ("pool_prefix_needs_digits", {"user_white_list": ".gxlpilo"}, "pilot", None),
    ("pool_prefix_no_substring", {"user_white_list": ".xlpilot"}, "pilot2", None),
    ("whitelisted_tracking_gid_is_not_a_group_member",
     {"user_white_list": "", "group_white_list": "gxlvictim"}, "pilot", [47090]),
], ids=lambda v: v if isinstance(v, str) else None)
def test_caller_not_admitted(attack_site, accounts, make_proxy, snapshot, case, conf, caller,
                             extra_groups):
    account = getattr(accounts, caller)
    site = attack_site(conf=conf)
    path = make_proxy("rfc", owner_uid=account.uid)
    snap = snapshot(site)
    result = site.run(account, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(path)},
                      extra_groups=extra_groups)
    assert_refused(site, result, 203, snap)


@pytest.mark.parametrize(("group_list", "extra", "code"), [
    ("gxlextra", [], 203), ("gxlextra", [47040], 0), ("gxlpilot", [], 0),
    ("gxlpilot, gxlextra", [47040], 0)],
    ids=["a04_supplementary_missing", "a04_supplementary_only", "a04_primary_only", "a04_both"])
def test_a04_group_white_list_primary_and_supplementary(attack_site, accounts, attack_accounts,
                                                        make_proxy, snapshot, group_list, extra,
                                                        code):
    site = attack_site(conf={"user_white_list": "", "group_white_list": group_list})
    path = make_proxy("rfc", owner_uid=accounts.pilot.uid)
    snap = snapshot(site)
    result = site.run(accounts.pilot, ["/usr/bin/id", "-u"],
                      env={"GLEXEC_CLIENT_CERT": str(path), "GLEXEC_TARGET_PROXY": "/dev/null"},
                      extra_groups=extra)
    if code:
        assert_refused(site, result, code, snap)
    else:
        assert result.code == 0, result
        assert int(result.out) in {a.uid for a in attack_accounts.pool}


@pytest.mark.parametrize("white_list", ["*", ".", "(none)", ""])
def test_a03_caller_without_passwd_entry_never_matches(attack_site, make_proxy, snapshot,
                                                       white_list):
    site = attack_site(conf={"user_white_list": white_list, "group_white_list": "*"})
    path = make_proxy("rfc", owner_uid=NO_PASSWD_UID)
    os.chmod(path.parent, 0o755)
    snap = snapshot(site)
    result = site.run(Nobody, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(path),
                                                    "HOME": "/"}, cwd="/")
    assert_refused(site, result, 203, snap)
    assert "no account entry" in result.err


def test_a05_no_new_privs_is_a_clear_site_error(pool_site, accounts, proxy, snapshot):
    setpriv = shutil.which("setpriv")
    require(setpriv is not None, "needs setpriv (util-linux)")
    marker = f"/tmp/gxa-nnp-{os.getpid()}"
    snap = snapshot(pool_site, marker)
    proc = subprocess.run([setpriv, "--no-new-privs", str(pool_site.bin), "/usr/bin/touch",
                           marker], env={"GLEXEC_CLIENT_CERT": str(proxy), "PATH": "/usr/bin"},
                          user=accounts.pilot.uid, group=accounts.pilot.gid,
                          extra_groups=accounts.pilot.groups, capture_output=True, text=True,
                          cwd="/")
    assert proc.returncode == 202, proc
    assert proc.stderr.count("\n") == 1 and "no_new_privs" in proc.stderr, proc.stderr
    assert proc.stdout == ""
    snap.assert_unchanged()


def test_a07_root_caller_not_whitelisted(pool_site, make_proxy, snapshot):
    path = make_proxy("rfc", owner_uid=0)
    snap = snapshot(pool_site)
    result = pool_site.run(None, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(path)})
    assert_refused(pool_site, result, 203, snap)


@pytest.mark.parametrize("argv", [None, [b""]], ids=["argc0", "empty-argv0"])
def test_a08_empty_argv_is_refused_before_anything(pool_site, accounts, proxy, snapshot,
                                                   raw_run, argv):
    snap = snapshot(pool_site)
    result = raw_run(pool_site, accounts.pilot, argv,
                     [f"GLEXEC_CLIENT_CERT={proxy}".encode(), b"GCONV_PATH=/tmp",
                      b"PATH=/usr/bin"])
    assert_refused(pool_site, result, 201, snap, site_log=False)


def test_a09_mapping_to_the_callers_own_account_refused_by_policy(site_factory, accounts,
                                                                   proxy, snapshot):
    site = site_factory(conf={"allow_self_mapping": "no"},
                        mapfile=f'"{USER_DN}" {accounts.pilot.name}\n')
    snap = snapshot(site)
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert_refused(site, result, 203, snap)
