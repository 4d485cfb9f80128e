"""Attack catalogue group C (the proxy file's path and I/O), through the installed launcher.

Each hostile GLEXEC_CLIENT_CERT / GLEXEC_SOURCE_PROXY is presented by the unprivileged pilot on a
pool-account site; every refusal is checked with ``assert_refused`` (code, one stderr line,
victim files, default target proxies, gridmapdir and target processes unchanged, one escaped
error record). Besides the catalogue's cases: FIFOs, sockets, devices, /proc files, ``..``
traversal, over-long paths, files behind a directory the pilot cannot enter, hard links to a
victim's file, and the same attacks on GLEXEC_SOURCE_PROXY.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest
from fixtures.side_effects import assert_refused

pytestmark = [pytest.mark.root, pytest.mark.installed]


@pytest.fixture
def pilot_dir(accounts):
    """A fresh directory of the pilot's, on the disk file system (sparse files work there)."""
    path = os.path.join(accounts.pilot.home, f"attack-{uuid.uuid4().hex[:8]}")
    os.mkdir(path, 0o700)
    os.chown(path, accounts.pilot.uid, accounts.pilot.gid)
    os.chmod(accounts.pilot.home, 0o755)
    yield path
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def own(path: str, account, mode: int = 0o600) -> str:
    os.lchown(path, account.uid, account.gid)
    if not os.path.islink(path):
        os.chmod(path, mode)
    return path


def write(path: str, data: bytes, account, mode: int = 0o600) -> str:
    with open(path, "wb") as handle:
        handle.write(data)
    return own(path, account, mode)


def hostile_path(case: str, *, accounts, pilot_dir: str, proxy, victim_files) -> str | None:
    """Build the hostile value of GLEXEC_CLIENT_CERT for ``case`` (None = unset)."""
    pilot = accounts.pilot
    if case == "c23_unset":
        return None
    if case == "c23_empty":
        return ""
    if case == "c24_relative":
        return "x509up_u47001"
    if case == "c25_shadow":
        return "/etc/shadow"
    if case == "c26_symlink_to_shadow":
        link = os.path.join(pilot_dir, "proxy")
        os.symlink("/etc/shadow", link)
        return own(link, pilot)
    if case == "c26_symlink_to_own_proxy":
        link = os.path.join(pilot_dir, "proxy")
        os.symlink(str(proxy), link)
        return own(link, pilot)
    if case == "c26_symlink_in_directory_component":
        os.symlink("/etc", os.path.join(pilot_dir, "etc"))
        own(os.path.join(pilot_dir, "etc"), pilot)
        return os.path.join(pilot_dir, "etc", "shadow")
    if case == "c29_directory":
        return pilot_dir
    if case == "c30_one_mib":
        return write(os.path.join(pilot_dir, "big"), proxy.read_bytes() * 200, pilot)
    if case == "c30_sparse_100g":
        path = write(os.path.join(pilot_dir, "sparse"), proxy.read_bytes(), pilot)
        os.truncate(path, 100 << 30)
        return path
    if case == "c31_victim_owned_readable":
        return write(os.path.join(pilot_dir, "theirs"), proxy.read_bytes(), accounts.victim,
                     0o644)
    if case.startswith("c32_mode_"):
        mode = int(case.rsplit("_", 1)[1], 8)
        path = write(os.path.join(pilot_dir, "proxy"), proxy.read_bytes(), pilot, mode)
        os.chmod(path, mode)
        return path
    if case == "c36_newline_and_escape_in_missing_path":
        return "/nonexistent/x\nglexec[1]: forged record\x1b[2J"
    if case == "fifo_without_writer":
        path = os.path.join(pilot_dir, "fifo")
        os.mkfifo(path, 0o600)
        return own(path, pilot)
    if case == "unix_socket":
        path = os.path.join(pilot_dir, "sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.close()
        return own(path, pilot)
    if case in ("dev_urandom", "dev_zero", "proc_self_environ", "proc_self_status",
                "proc_self_fd_0"):
        return {"dev_urandom": "/dev/urandom", "dev_zero": "/dev/zero",
                "proc_self_environ": "/proc/self/environ",
                "proc_self_status": "/proc/self/status",
                "proc_self_fd_0": "/proc/self/fd/0"}[case]
    if case == "dotdot_to_shadow":
        return f"{pilot_dir}/../../../etc/shadow"
    if case == "over_long_path":
        return "/" + "a/" * 3000 + "proxy"
    if case == "behind_victims_home":
        return next(p for p, kind in victim_files.items()
                    if kind == "victim" and p.endswith("private.txt"))
    if case == "victim_proxy_in_tmp":
        return f"/tmp/x509up_u{accounts.victim.uid}"
    if case == "hard_link_to_victim_file":
        # protected_hardlinks stops the pilot from making this link; a site without it must
        # still refuse, so root makes it here.
        private = next(p for p, kind in victim_files.items() if p.endswith("private.txt"))
        path = os.path.join(pilot_dir, "linked")
        os.link(private, path)
        return path
    raise AssertionError(case)


CASES = [
    ("c23_unset", 201), ("c23_empty", 201), ("c24_relative", 201), ("c25_shadow", 201),
    ("c26_symlink_to_shadow", 201), ("c26_symlink_to_own_proxy", 201),
    ("c26_symlink_in_directory_component", 201),
    ("c29_directory", 201), ("c30_one_mib", 201), ("c30_sparse_100g", 201),
    ("c31_victim_owned_readable", 201),
    ("c32_mode_0640", 201), ("c32_mode_0604", 201), ("c32_mode_0666", 201),
    ("c32_mode_4600", 201), ("c32_mode_2600", 201), ("c32_mode_1600", 201),
    ("c32_mode_0620", 201), ("c32_mode_0602", 201),
    ("c36_newline_and_escape_in_missing_path", 201),
    ("fifo_without_writer", 201), ("unix_socket", 201), ("dev_urandom", 201), ("dev_zero", 201),
    ("proc_self_environ", 201), ("proc_self_status", 201), ("proc_self_fd_0", 201),
    ("dotdot_to_shadow", 201), ("over_long_path", 201), ("behind_victims_home", 201),
    ("victim_proxy_in_tmp", 201), ("hard_link_to_victim_file", 201),
]


# An unset GLEXEC_SOURCE_PROXY means "the client certificate" (documented), so not a case.
MATRIX = [(case, code, variable) for variable in ("GLEXEC_CLIENT_CERT", "GLEXEC_SOURCE_PROXY")
          for case, code in CASES if (case, variable) != ("c23_unset", "GLEXEC_SOURCE_PROXY")]


@pytest.mark.parametrize(("case", "code", "variable"), MATRIX,
                         ids=[f"{c[0]}-{c[2].split('_')[1].lower()}" for c in MATRIX])
def test_hostile_proxy_path_is_refused(pool_site, accounts, proxy, pilot_dir, victim_files,
                                       snapshot, case, code, variable):
    value = hostile_path(case, accounts=accounts, pilot_dir=pilot_dir, proxy=proxy,
                         victim_files=victim_files)
    env = {} if variable == "GLEXEC_CLIENT_CERT" else {"GLEXEC_CLIENT_CERT": str(proxy)}
    if value is not None:
        env[variable] = value
    snap = snapshot(pool_site, pilot_dir)
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"], env=env, timeout=30)
    assert_refused(pool_site, result, code, snap)
    with open("/etc/shadow") as handle:
        shadow = handle.read()
    root_line = next(line for line in shadow.splitlines() if line.startswith("root:"))
    assert root_line not in result.err and root_line not in "\n".join(result.records)


def test_c36_newline_in_a_real_proxy_path_is_refused_before_any_lease(
        pool_site, accounts, proxy, pilot_dir, snapshot):
    """A GLEXEC_* value with a control character is 201 (README), decided before mapping."""
    odd = os.path.join(pilot_dir, "line\nbreak\x1b[1m")
    os.mkdir(odd, 0o700)
    own(odd, accounts.pilot, 0o700)
    path = write(os.path.join(odd, "proxy"), proxy.read_bytes(), accounts.pilot)
    snap = snapshot(pool_site, pilot_dir)
    result = pool_site.run(accounts.pilot, ["/bin/echo", "ok"],
                           env={"GLEXEC_CLIENT_CERT": path, "GLEXEC_TARGET_PROXY": "/dev/null"})
    assert_refused(pool_site, result, 201, snap)
    assert "x0abreak" in result.records[0] and "x1b[1m" in result.records[0]


def test_c34_proxy_growing_while_read_is_never_taken_half_written(pool_site, accounts, proxy,
                                                                  pilot_dir):
    """A writer appending as fast as it can: every call either refuses or maps the real DN."""
    import subprocess

    path = write(os.path.join(pilot_dir, "proxy"), proxy.read_bytes(), accounts.pilot)
    writer = subprocess.Popen(
        ["/bin/sh", "-c", f"while :; do printf '#' >> {path}; done"],
        user=accounts.pilot.uid, group=accounts.pilot.gid, extra_groups=[])
    try:
        codes = set()
        for _ in range(5):
            result = pool_site.run(accounts.pilot, ["/bin/true"],
                                   env={"GLEXEC_CLIENT_CERT": path,
                                        "GLEXEC_TARGET_PROXY": "/dev/null"})
            codes.add(result.code)
            assert result.code in (0, 201), result
            if result.code == 201:
                assert len(result.err.splitlines()) == 1, result
    finally:
        writer.kill()
        writer.wait()
    assert codes
