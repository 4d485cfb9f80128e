"""Attack catalogue groups I (payload path, arguments, cwd) and K (logging), end to end.

Already covered elsewhere: I100-I106 and I110-I112 in tests/root/test_launcher_{identity,modes,
options,exit_codes}.py, K124 through syslog in test_launcher_modes.py. Here: what is refused
only after the switch (cwd and command checked as the target), hostile command names and
arguments, forged and oversized log input with the file log, and a log file that is a symlink
or sits in a directory others can write.
"""

from __future__ import annotations

import os
import uuid

import pytest
from fixtures.side_effects import assert_refused

pytestmark = [pytest.mark.root, pytest.mark.installed]


@pytest.fixture
def pilot_private_dir(accounts):
    path = os.path.join(accounts.pilot.home, f"gxa-private-{uuid.uuid4().hex[:8]}")
    os.mkdir(path, 0o700)
    os.chown(path, accounts.pilot.uid, accounts.pilot.gid)
    os.chmod(accounts.pilot.home, 0o755)
    yield path
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def test_i108_cwd_the_target_cannot_enter(target_site, accounts, proxy, pilot_private_dir,
                                          snapshot):
    marker = f"/tmp/gxa-ran-{uuid.uuid4().hex[:8]}"
    snap = snapshot(target_site, marker)
    result = target_site.run(accounts.pilot, ["/usr/bin/touch", marker],
                             env={"GLEXEC_CLIENT_CERT": str(proxy),
                                  "GLEXEC_TARGET_PROXY": "/dev/null"},
                             cwd=pilot_private_dir)
    assert_refused(target_site, result, 201, snap, after_decision=True)
    assert "current directory" in result.err


@pytest.mark.parametrize(("case", "code"), [
    ("newline_and_escape_in_missing_command", 201),
    ("command_is_a_directory", 126),
    ("command_in_victims_private_dir", 126),
    ("command_in_pilots_private_dir", 126),
])
def test_hostile_command_refused_as_the_target(target_site, accounts, proxy, pilot_private_dir,
                                               victim_files, snapshot, case, code):
    home = next(p for p, kind in victim_files.items() if kind == "victim home")
    command = {
        "newline_and_escape_in_missing_command": "/nonexistent/x\nglexec: forged\x1b[2J",
        "command_is_a_directory": "/usr/bin",
        "command_in_victims_private_dir": os.path.join(home, "private.txt"),
        "command_in_pilots_private_dir": os.path.join(pilot_private_dir, "tool"),
    }[case]
    if case == "command_in_pilots_private_dir":
        with open(command, "w") as handle:
            handle.write("#!/bin/sh\necho ran\n")
        os.chown(command, accounts.pilot.uid, accounts.pilot.gid)
        os.chmod(command, 0o755)
    snap = snapshot(target_site)
    result = target_site.run(accounts.pilot, [command],
                             env={"GLEXEC_CLIENT_CERT": str(proxy),
                                  "GLEXEC_TARGET_PROXY": "/dev/null"}, cwd="/")
    assert_refused(target_site, result, code, snap, after_decision=True)


@pytest.mark.parametrize("command", [[""], ["-"]], ids=["empty-name", "dash"])
def test_unusable_command_names(target_site, accounts, proxy, snapshot, command):
    snap = snapshot(target_site)
    result = target_site.run(accounts.pilot, command, env={"GLEXEC_CLIENT_CERT": str(proxy)},
                             cwd="/")
    if command == [""]:  # refused by the command-line parser, before the config is read
        assert_refused(target_site, result, 201, snap, site_log=False)
    else:
        assert_refused(target_site, result, 201, snap, after_decision=True)


def test_k124_forged_records_in_arguments_and_cwd(target_site, accounts, proxy,
                                                  pilot_private_dir):
    forged = "x\n2026-01-01 00:00:00 glexec[1]: real_user(root)->mapped_user(root) \x1b[2J\r"
    odd_cwd = os.path.join(pilot_private_dir, "cwd\nglexec[2]: forged-cwd")
    os.mkdir(odd_cwd)
    os.chmod(pilot_private_dir, 0o755)
    os.chmod(odd_cwd, 0o755)
    result = target_site.run(accounts.pilot, ["/bin/echo", forged, "\u202eevil\u2028"],
                             env={"GLEXEC_CLIENT_CERT": str(proxy),
                                  "GLEXEC_TARGET_PROXY": "/dev/null"}, cwd=odd_cwd)
    assert result.code == 0, result
    for record in result.records:
        assert record.startswith("20") and "glexec" in record.split(": ")[0]
        assert all(ch == "\t" or 0x20 <= ord(ch) != 0x7F for ch in record), record
        assert "\u202e" not in record and "\u2028" not in record
    assert not any(r.startswith("2026-01-01") for r in result.records)
    decision = [r for r in result.records if "->mapped_user(" in r]
    assert len(decision) == 1 and "\\x0a2026-01-01" in decision[0]
    assert "cwd\\x0aglexec[2]" in decision[0]


def test_k126_huge_arguments_give_a_bounded_record(target_site, accounts, proxy):
    big = ["a" * (120 << 10)] * 8 + ["\n" * (100 << 10)]
    result = target_site.run(accounts.pilot, ["/bin/true", *big],
                             env={"GLEXEC_CLIENT_CERT": str(proxy),
                                  "GLEXEC_TARGET_PROXY": "/dev/null"}, cwd="/")
    assert result.code == 0, result
    assert max(len(r) for r in result.records) < 8200
    decision = [r for r in result.records if "->mapped_user(" in r]
    assert decision and "more]" in decision[0]


@pytest.mark.parametrize("case", ["symlink_to_victim_file", "symlink_to_missing",
                                  "hard_link_to_victim_file", "dir_writable_by_others",
                                  "log_owned_by_pilot"])
def test_k127_untrusted_log_file(attack_site, accounts, proxy, victim_files, snapshot, case):
    site = attack_site()
    private = next(p for p in victim_files if p.endswith("private.txt"))
    log = str(site.log_path)
    if os.path.exists(log):
        os.unlink(log)
    if case == "symlink_to_victim_file":
        os.symlink(private, log)
    elif case == "symlink_to_missing":
        os.symlink(f"/etc/gxa-log-{uuid.uuid4().hex[:6]}", log)
    elif case == "hard_link_to_victim_file":
        os.link(private, log)
    elif case == "dir_writable_by_others":
        os.chmod(os.path.dirname(log), 0o777)
    elif case == "log_owned_by_pilot":
        with open(log, "w"):
            pass
        os.chown(log, accounts.pilot.uid, -1)
    watched = [log, os.path.dirname(log)]
    if os.path.islink(log):
        watched.append(os.readlink(log))
    snap = snapshot(site, *watched)
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert_refused(site, result, 202, snap, site_log=False)
