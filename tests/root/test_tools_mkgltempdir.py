"""mkgltempdir end to end: an unprivileged pilot, the real installed setuid launcher, real uids.

The unit tests (tests/unit/tools/test_mkgltempdir_fake_glexec.py) use a stand-in glexec that
does not switch identity; here the directory really is created by the mapped account, so the
kernel's permission checks are the ones that count.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.installed]

BASE = Path("/run/glexec-py-tests")


@pytest.fixture(scope="module")
def site(site_factory):
    return site_factory()


@pytest.fixture
def proxy(make_proxy, accounts):
    return make_proxy("rfc", owner_uid=accounts.pilot.uid)


@pytest.fixture
def pilot_dir(accounts) -> Path:
    """A work directory owned by the pilot, reachable by everyone (like a batch job's cwd)."""
    BASE.mkdir(mode=0o755, exist_ok=True)
    path = BASE / f"mkgl-{uuid.uuid4().hex[:10]}"
    path.mkdir(mode=0o755)
    os.chown(path, accounts.pilot.uid, accounts.pilot.gid)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def as_pilot(accounts, argv: list[str], env: dict[str, str], cwd: Path
             ) -> subprocess.CompletedProcess[str]:
    pilot = accounts.pilot
    return subprocess.run(argv, env={"PATH": "/usr/bin:/bin", **env}, cwd=cwd,
                          user=pilot.uid, group=pilot.gid, extra_groups=pilot.groups,
                          capture_output=True, text=True, timeout=60)


def mkgltempdir(site, accounts, proxy, cwd: Path, *args: str
                ) -> subprocess.CompletedProcess[str]:
    return as_pilot(accounts, [sys.executable, "-m", "glexec_py.tools.mkgltempdir",
                               "--glexec", str(site.bin), *args],
                    {"GLEXEC_CLIENT_CERT": str(proxy)}, cwd)


def test_directory_is_owned_by_the_mapped_account(site, accounts, proxy, pilot_dir):
    result = mkgltempdir(site, accounts, proxy, pilot_dir, str(pilot_dir))
    assert result.returncode == 0, result.stderr
    target = Path(result.stdout.strip())
    st = os.lstat(target)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    assert st.st_uid == accounts.mapped.uid != accounts.pilot.uid
    parent = os.lstat(target.parent)
    assert (parent.st_uid, stat.S_IMODE(parent.st_mode)) == (accounts.pilot.uid, 0o755)
    # The pilot cannot write into it; the mapped account can (through glexec).
    denied = as_pilot(accounts, ["/usr/bin/touch", str(target / "by-pilot")], {}, pilot_dir)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    sh = os.path.realpath("/bin/sh")
    wrote = site.run(accounts.pilot, [sh, "-c", f"echo hi > '{target}/by-target' && id -u"],
                     env={"GLEXEC_CLIENT_CERT": str(proxy)}, cwd=str(pilot_dir))
    assert wrote.code == 0, wrote
    assert os.lstat(target / "by-target").st_uid == accounts.mapped.uid
    # Removal needs -f now that it is not empty, and runs as the mapped account.
    refused = mkgltempdir(site, accounts, proxy, pilot_dir, "-r", str(target))
    assert refused.returncode != 0 and target.is_dir()
    removed = mkgltempdir(site, accounts, proxy, pilot_dir, "-r", str(target), "-f")
    assert removed.returncode == 0, removed.stderr
    assert not target.parent.exists()


def test_panda_world_writable_target_dir(site, accounts, proxy, pilot_dir):
    result = mkgltempdir(site, accounts, proxy, pilot_dir, "-t", "777", str(pilot_dir))
    assert result.returncode == 0, result.stderr
    target = Path(result.stdout.strip())
    st = os.lstat(target)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (accounts.mapped.uid, 0o777)
    assert mkgltempdir(site, accounts, proxy, pilot_dir, "-r", str(target), "-f"
                       ).returncode == 0


def test_launcher_refusal_is_passed_on(site, accounts, pilot_dir, make_proxy):
    bad = make_proxy("expired", owner_uid=accounts.pilot.uid)
    result = mkgltempdir(site, accounts, bad, pilot_dir, str(pilot_dir))
    assert result.returncode in (201, 203), result.stderr
    assert result.stdout == ""
    assert not [p for p in pilot_dir.iterdir() if p.name.startswith("mkgltempdir.")]
