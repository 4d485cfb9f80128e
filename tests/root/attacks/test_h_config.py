"""Attack catalogue group H (the site's files), plus gridmapdir trust (F68), end to end.

Every damaged or untrusted site file is 202 with nothing changed. A refused glexec.conf cannot
name the site's log, so its record goes to syslog (checked with a real rsyslogd); refusals of
files read after the log is open (policies, mapfiles, CA directories, gridmapdir) are in the
site's log. Besides the catalogue: a FIFO as glexec.conf (no hang), files owned by the pilot or
linked to a pilot's file, the vomsdir, the gridmapdir and its parent writable by others.
"""

from __future__ import annotations

import os
import uuid

import pytest
from fixtures.prereq import require
from fixtures.side_effects import assert_refused

pytestmark = [pytest.mark.root, pytest.mark.installed]


def damage_config(case: str, site, accounts, trusted_tmp) -> None:
    conf = str(site.conf_path)
    if case == "h89_world_writable":
        os.chmod(conf, 0o666)
    elif case == "h90_owned_by_pilot":
        os.chown(conf, accounts.pilot.uid, -1)
    elif case == "h90_group_writable":
        os.chmod(conf, 0o664)
    elif case == "h91_symlink_into_pilot_dir":
        evil = trusted_tmp / "pilot-dir"
        evil.mkdir()
        os.replace(conf, evil / "glexec.conf")
        os.chown(evil, accounts.pilot.uid, accounts.pilot.gid)
        os.symlink(evil / "glexec.conf", conf)
    elif case == "h91_parent_writable_by_others":
        os.chmod(site.root, 0o777)
    elif case == "h92_missing":
        os.unlink(conf)
    elif case == "h99_large_sparse":
        os.truncate(conf, 100 << 20)
    elif case == "h99_binary_junk":
        with open(conf, "wb") as handle:
            handle.write(os.urandom(4096))
    elif case == "h99_not_utf8":
        with open(conf, "ab") as handle:
            handle.write(b"# caf\xe9\n")
    elif case == "h99_nul_byte":
        with open(conf, "ab") as handle:
            handle.write(b"linger = yes\x00\n")
    elif case == "fifo_instead_of_file":
        os.unlink(conf)
        os.mkfifo(conf, 0o644)
    elif case == "directory_instead_of_file":
        os.unlink(conf)
        os.mkdir(conf)
    else:
        raise AssertionError(case)


CONFIG_CASES = ["h89_world_writable", "h90_owned_by_pilot", "h90_group_writable",
                "h91_symlink_into_pilot_dir", "h91_parent_writable_by_others", "h92_missing",
                "h99_large_sparse", "h99_binary_junk", "h99_not_utf8", "h99_nul_byte",
                "fifo_instead_of_file", "directory_instead_of_file"]


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_untrusted_or_damaged_glexec_conf(attack_site, accounts, proxy, trusted_tmp, snapshot,
                                          case):
    site = attack_site()
    damage_config(case, site, accounts, trusted_tmp)
    snap = snapshot(site)
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(proxy)},
                      timeout=30)
    assert_refused(site, result, 202, snap, site_log=False)


def test_refused_config_is_recorded_once_in_syslog(attack_site, accounts, proxy, syslog_daemon):
    require(syslog_daemon.owns_dev_log, "another syslog daemon serves /dev/log: the launcher's "
            "record of a refused configuration goes there")
    site = attack_site()
    os.chmod(site.conf_path, 0o666)
    tag = uuid.uuid4().hex
    result = site.run(accounts.pilot, ["/usr/bin/id", tag],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 202, result
    text = syslog_daemon.wait_for_text(str(site.conf_path))
    records = [line for line in text.splitlines()
               if str(site.conf_path) in line and "error 202" in line]
    assert len(records) == 1, records


@pytest.mark.parametrize("variable", ["GLEXEC_CONFIG_FILE", "GLEXEC_CONF", "GLEXEC_CONFIG"])
def test_h94_alternative_config_through_environment_is_ignored(attack_site, accounts, proxy,
                                                               attack_accounts, variable):
    real = attack_site(to="user")
    other = attack_site(conf={"user_white_list": "nobody"})
    result = real.run(accounts.pilot, ["/usr/bin/id", "-u"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy), variable: str(other.conf_path),
                           "GLEXEC_TARGET_PROXY": "/dev/null"})
    assert result.code == 0, result
    assert result.out.strip() == str(attack_accounts.user.uid)


def test_h94_alternative_config_on_the_command_line_is_root_only(pool_site, attack_site,
                                                                 accounts, proxy, snapshot):
    other = attack_site(conf={"user_white_list": accounts.pilot.name})
    snap = snapshot(pool_site)
    result = pool_site.run(accounts.pilot, [f"--config={other.conf_path}", "/usr/bin/id"],
                           env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert_refused(pool_site, result, 201, snap, site_log=False)


def damage_site_file(case: str, site, accounts, test_ca) -> object:
    """Returns an undo function (the CA is shared by the session)."""
    if case == "h95_lcmaps_db_world_writable":
        os.chmod(site.lcmaps_db, 0o666)
    elif case == "h95_lcmaps_db_missing":
        os.unlink(site.lcmaps_db)
    elif case == "h95_lcmaps_db_syntax":
        with open(site.lcmaps_db, "a") as handle:
            handle.write('x = "unbalanced\n')
    elif case == "h95_lcmaps_db_owned_by_pilot":
        os.chown(site.lcmaps_db, accounts.pilot.uid, -1)
    elif case == "mapfile_world_writable":
        os.chmod(site.mapfile, 0o666)
    elif case == "mapfile_symlink_to_pilot_file":
        pilot_file = os.path.join(accounts.pilot.home, f"gxa-mapfile-{uuid.uuid4().hex[:6]}")
        with open(pilot_file, "w") as handle:
            handle.write('"/DC=org/DC=example/O=glexec-py demo/CN=Demo User" root\n')
        os.chown(pilot_file, accounts.pilot.uid, accounts.pilot.gid)
        os.unlink(site.mapfile)
        os.symlink(pilot_file, site.mapfile)
    elif case == "f68_gridmapdir_world_writable":
        os.chmod(site.gridmapdir, 0o777)
    elif case == "f68_gridmapdir_owned_by_pilot":
        os.chown(site.gridmapdir, accounts.pilot.uid, -1)
    elif case == "h97_vomsdir_world_writable":
        os.chmod(test_ca.vomsdir, 0o777)
        return lambda: os.chmod(test_ca.vomsdir, 0o755)
    elif case == "h97_certdir_group_writable":
        os.chmod(test_ca.certdir, 0o775)
        return lambda: os.chmod(test_ca.certdir, 0o755)
    else:
        raise AssertionError(case)
    return lambda: None


SITE_FILE_CASES = ["h95_lcmaps_db_world_writable", "h95_lcmaps_db_missing",
                   "h95_lcmaps_db_syntax", "h95_lcmaps_db_owned_by_pilot",
                   "mapfile_world_writable", "mapfile_symlink_to_pilot_file",
                   "f68_gridmapdir_world_writable", "f68_gridmapdir_owned_by_pilot",
                   "h97_vomsdir_world_writable", "h97_certdir_group_writable"]


@pytest.mark.parametrize("case", SITE_FILE_CASES)
def test_untrusted_or_damaged_site_file(attack_site, accounts, make_proxy, test_ca, snapshot,
                                        case):
    site = attack_site()
    path = make_proxy("voms" if "vomsdir" in case else "rfc", owner_uid=accounts.pilot.uid)
    snap = snapshot(site)
    undo = damage_site_file(case, site, accounts, test_ca)
    try:
        result = site.run(accounts.pilot, ["/usr/bin/id"],
                          env={"GLEXEC_CLIENT_CERT": str(path)})
    finally:
        undo()
    # the damage itself is the one intended change
    snap.before["files"] = {p: v for p, v in snap.before["files"].items()
                            if p not in (str(site.mapfile), str(site.lcmaps_db))}
    snap.paths = list(snap.before["files"])
    if "gridmapdir" in case:
        snap.before["gridmapdir"] = snap.capture()["gridmapdir"] if not site.leases() else None
    assert_refused(site, result, 202, snap)
