"""Attack catalogue A3: the name service fails while glexec runs.

A broken NSS cannot be installed on the machine without breaking every other process, so each
call runs in a private mount namespace (``unshare --mount``) in which a site-made nsswitch.conf
is bind-mounted over /etc/nsswitch.conf; the pilot's ids are then taken numerically with
``setpriv`` (no name lookup), and the real setuid launcher runs there. Nothing outside that
namespace sees the broken file.

- every database unavailable: the caller has no account entry, which is never a match for
  ``*`` or a pool prefix: 203, one line, nothing started, one record;
- only the group database unavailable: the mapping still comes from the passwd entry, and the
  payload gets no group beyond what the working case gives it (a failing group lookup may lose
  supplementary groups, never add one).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from fixtures.prereq import require
from fixtures.side_effects import assert_refused
from fixtures.site import RunResult

pytestmark = [pytest.mark.root, pytest.mark.installed]

ALL_BROKEN = "".join(f"{db}: glexecpytestbroken\n" for db in (
    "passwd", "group", "shadow", "gshadow", "initgroups", "hosts", "services"))
GROUP_BROKEN = ("passwd: files\ngroup: glexecpytestbroken\ninitgroups: glexecpytestbroken\n"
                "shadow: files\nhosts: files\n")

# $0 nsswitch file, $1 uid, $2 gid, $3 launcher, then the launcher's arguments
IN_NAMESPACE = ('mount --bind "$0" /etc/nsswitch.conf && '
                'exec setpriv --reuid="$1" --regid="$2" --groups="$2" -- "$3" /usr/bin/id')


def run_with_nsswitch(site, account, nsswitch: str, proxy: str, trusted_tmp) -> RunResult:
    for tool in ("unshare", "setpriv", "mount"):
        require(shutil.which(tool) is not None, f"needs {tool} (util-linux)")
    conf = trusted_tmp / "nsswitch.conf"
    conf.write_text(nsswitch)
    before = len(site.log_text())
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", IN_NAMESPACE,
         str(conf), str(account.uid), str(account.gid), str(site.bin)],
        env={"PATH": "/usr/bin:/bin", "GLEXEC_CLIENT_CERT": proxy,
             "GLEXEC_TARGET_PROXY": "/dev/null"},
        cwd="/", capture_output=True, timeout=60)
    records = site.log_text()[before:].splitlines()
    return RunResult(proc.returncode, proc.stdout.decode(errors="replace"),
                     proc.stderr.decode(errors="replace"), records)


def test_a3_every_database_failing_refuses_the_caller(pool_site, accounts, make_proxy,
                                                      snapshot, trusted_tmp):
    proxy = make_proxy("rfc", owner_uid=accounts.pilot.uid)
    snap = snapshot(pool_site)
    result = run_with_nsswitch(pool_site, accounts.pilot, ALL_BROKEN, str(proxy), trusted_tmp)
    assert_refused(pool_site, result, 203, snap)
    assert "no account entry" in result.err, result
    # the machine's own name service is untouched outside the namespace
    assert os.getuid() == 0 and subprocess.run(["id", accounts.pilot.name],
                                               capture_output=True).returncode == 0


def test_a3_failing_group_database_never_adds_a_group(target_site, accounts, attack_accounts,
                                                      make_proxy, trusted_tmp):
    proxy = str(make_proxy("rfc", owner_uid=accounts.pilot.uid))
    working = run_with_nsswitch(target_site, accounts.pilot, "passwd: files\ngroup: files\n"
                                "initgroups: files\nshadow: files\nhosts: files\n", proxy,
                                trusted_tmp)
    assert working.code == 0, working
    broken = run_with_nsswitch(target_site, accounts.pilot, GROUP_BROKEN, proxy, trusted_tmp)
    user = attack_accounts.user
    if broken.code != 0:  # a refusal is acceptable, if it is a clean one
        assert broken.code in (202, 203) and broken.out == "", broken
        assert len(broken.err.splitlines()) == 1 and broken.err.startswith("glexec: "), broken
        return
    assert f"uid={user.uid}(" in broken.out or f"uid={user.uid} " in broken.out, broken

    def gids(out: str) -> set[str]:
        field = next(f for f in out.split() if f.startswith("groups="))
        return {g.split("(")[0] for g in field[len("groups="):].split(",")}

    assert gids(broken.out) <= gids(working.out), (broken.out, working.out)
    assert str(user.gid) in gids(broken.out)
