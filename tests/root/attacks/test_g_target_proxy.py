"""Attack catalogue group G (writing the target proxy), through the installed launcher.

The site maps to one account (the suite's own gxauser), so the hostile GLEXEC_TARGET_PROXY can be
aimed at its directories. Besides the catalogue: symlinks and hard links at the target name,
a directory there, device and /proc names, a directory component that is a pilot's symlink,
``..`` out of a sticky directory, a victim's private directory, and a dangling symlink in /tmp
that would make root (or the target) create a file elsewhere.
"""

from __future__ import annotations

import os
import uuid

import pytest
from fixtures.side_effects import assert_refused

pytestmark = [pytest.mark.root, pytest.mark.installed]


@pytest.fixture
def target_dir(attack_accounts, trusted_tmp):
    """A directory owned by the mapped (target) account, 0700."""
    path = trusted_tmp / "target-dir"
    path.mkdir(mode=0o700)
    os.chown(path, attack_accounts.user.uid, attack_accounts.user.gid)
    return path


def make_case(case: str, *, accounts, mapped, target_dir, trusted_tmp, victim_files) -> str:
    pilot, victim = accounts.pilot, accounts.victim
    private = next(p for p in victim_files if p.endswith("private.txt"))
    if case == "g78_file_of_another_user_in_target_dir":
        path = target_dir / "proxy"
        path.write_text("victim's\n")
        os.chown(path, victim.uid, victim.gid)
        return str(path)
    if case == "g79_etc_passwd":
        return "/etc/passwd"
    if case == "g79_etc_shadow":
        return "/etc/shadow"
    if case in ("g81_parent_owned_by_pilot", "g81_parent_group_writable",
                "g81_parent_world_writable"):
        path = trusted_tmp / f"dir-{case[-8:]}"
        path.mkdir()
        owner = pilot if case.endswith("pilot") else mapped
        os.chown(path, owner.uid, owner.gid)
        os.chmod(path, {"g81_parent_owned_by_pilot": 0o755, "g81_parent_group_writable": 0o770,
                        "g81_parent_world_writable": 0o777}[case])
        return str(path / "proxy")
    if case == "g82_precreated_by_pilot_in_tmp":
        path = f"/tmp/x509up_u{mapped.uid}"
        with open(path, "w") as handle:
            handle.write("pilot's trap\n")
        os.chown(path, pilot.uid, pilot.gid)
        os.chmod(path, 0o600)
        return ""  # the default name
    if case == "g86_callers_home_fakedir":
        path = os.path.join(pilot.home, "fakedir")
        os.makedirs(path, exist_ok=True)
        os.chown(path, pilot.uid, pilot.gid)
        return os.path.join(path, "x509up")
    if case == "symlink_at_target_name_to_victim_file":
        link = target_dir / "proxy"
        os.symlink(private, link)
        os.lchown(link, mapped.uid, mapped.gid)
        return str(link)
    if case == "hard_link_at_target_name_to_victim_file":
        link = target_dir / "proxy"
        os.link(private, link)
        return str(link)
    if case == "directory_at_target_name":
        path = target_dir / "proxy"
        path.mkdir()
        os.chown(path, mapped.uid, mapped.gid)
        return str(path)
    if case in ("dev_zero", "dev_stdout", "proc_self_fd_1", "proc_self_environ"):
        return {"dev_zero": "/dev/zero", "dev_stdout": "/dev/stdout",
                "proc_self_fd_1": "/proc/self/fd/1",
                "proc_self_environ": "/proc/self/environ"}[case]
    if case == "pilot_symlink_as_directory_component":
        link = f"/tmp/gxa-dirlink-{uuid.uuid4().hex[:8]}"
        os.symlink("/etc", link)
        os.lchown(link, pilot.uid, pilot.gid)
        return f"{link}/passwd"
    if case == "dotdot_out_of_tmp":
        return "/tmp/../etc/passwd"
    if case == "victims_private_directory":
        return os.path.join(victim.home, "x509up")
    if case == "dangling_symlink_in_tmp":
        link = f"/tmp/gxa-dangling-{uuid.uuid4().hex[:8]}"
        os.symlink(f"/etc/gxa-created-{uuid.uuid4().hex[:6]}", link)
        os.lchown(link, pilot.uid, pilot.gid)
        return link
    if case == "trailing_slash":
        return str(target_dir) + "/"
    if case == "relative":
        return "x509up"
    raise AssertionError(case)


CASES = ["g78_file_of_another_user_in_target_dir", "g79_etc_passwd", "g79_etc_shadow",
         "g81_parent_owned_by_pilot", "g81_parent_group_writable", "g81_parent_world_writable",
         "g82_precreated_by_pilot_in_tmp", "g86_callers_home_fakedir",
         "symlink_at_target_name_to_victim_file", "hard_link_at_target_name_to_victim_file",
         "directory_at_target_name", "dev_zero", "dev_stdout", "proc_self_fd_1",
         "proc_self_environ", "pilot_symlink_as_directory_component", "dotdot_out_of_tmp",
         "victims_private_directory", "dangling_symlink_in_tmp", "trailing_slash", "relative"]


@pytest.mark.parametrize("case", CASES)
def test_hostile_target_proxy_is_refused(target_site, accounts, attack_accounts, proxy,
                                         target_dir, trusted_tmp, victim_files, snapshot, case):
    site = target_site
    value = make_case(case, accounts=accounts, mapped=attack_accounts.user,
                      target_dir=target_dir, trusted_tmp=trusted_tmp,
                      victim_files=victim_files)
    env = {"GLEXEC_CLIENT_CERT": str(proxy)}
    if value:
        env["GLEXEC_TARGET_PROXY"] = value
    watched = [str(target_dir), *(os.listdir(target_dir) and
                                  [str(target_dir / n) for n in os.listdir(target_dir)])]
    if value.startswith("/") and not value.endswith("/"):
        watched += [value, os.path.dirname(value)]
        if os.path.islink(value):
            watched.append(os.readlink(value))
    marker = f"/tmp/gxa-ran-{uuid.uuid4().hex[:8]}"
    snap = snapshot(site, *watched, marker)
    try:
        result = site.run(accounts.pilot, ["/usr/bin/touch", marker], env=env)
        # only the shape of the name is checked before the decision; the rest as the target
        assert_refused(site, result, 201, snap,
                       after_decision=case not in ("trailing_slash", "relative"))
    finally:
        if case == "g82_precreated_by_pilot_in_tmp":
            os.unlink(f"/tmp/x509up_u{attack_accounts.user.uid}")
        if value.startswith("/tmp/gxa-"):
            os.unlink(value.split("/passwd")[0])


def test_g85_file_size_limit_never_leaves_a_truncated_proxy(target_site, accounts, proxy,
                                                           target_dir, snapshot):
    """RLIMIT_FSIZE below the proxy's size: refused, no partial file, payload not started."""
    site = target_site
    import resource
    import subprocess

    target = target_dir / "proxy"
    marker = f"/tmp/gxa-ran-{uuid.uuid4().hex[:8]}"
    snap = snapshot(site, target_dir, target, marker)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

    proc = subprocess.run([str(site.bin), "/usr/bin/touch", marker],
                          env={"GLEXEC_CLIENT_CERT": str(proxy),
                               "GLEXEC_TARGET_PROXY": str(target), "PATH": "/usr/bin"},
                          user=accounts.pilot.uid, group=accounts.pilot.gid,
                          extra_groups=accounts.pilot.groups, capture_output=True, text=True,
                          preexec_fn=limit, cwd="/")
    assert proc.returncode in (201, 202), proc
    assert proc.stderr.count("\n") == 1, proc.stderr
    snap.assert_unchanged()
    assert os.listdir(target_dir) == []


def test_g88_default_target_proxy_is_the_targets_own(target_site, accounts, attack_accounts,
                                                      proxy):
    site, mapped = target_site, attack_accounts.user
    target = f"/tmp/x509up_u{mapped.uid}"
    result = site.run(accounts.pilot, ["/bin/sh", "-c", 'echo "$X509_USER_PROXY:$HOME"; '
                                       'stat -c %u:%a "$X509_USER_PROXY"'],
                      env={"GLEXEC_CLIENT_CERT": str(proxy), "HOME": "/tmp"})
    assert result.code == 0, result
    assert result.out.splitlines() == [f"{target}:{mapped.home}", f"{mapped.uid}:600"]
    os.unlink(target)


def test_lock_held_on_the_target_directory_by_the_pilot_cannot_stall_glexec(
        target_site, accounts, attack_accounts, proxy):
    """Anyone may open sticky /tmp and flock it; the default target proxy lives there. A pilot
    holding that lock must not be able to hang every later glexec call (its own, or another
    pilot's) -- and since the proxy is written to a private name and renamed, it need not."""
    import subprocess
    import time

    hold = ("import fcntl, os, sys, time\n"
            "fd = os.open('/tmp', os.O_RDONLY)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n")
    # one process holds the lock (flock(1) would leave it with its sleep child after a kill)
    holder = subprocess.Popen(["/usr/bin/python3", "-c", hold], stdout=subprocess.PIPE,
                              user=accounts.pilot.uid, group=accounts.pilot.gid,
                              extra_groups=[])
    try:
        assert holder.stdout.readline() == b"held\n"
        started = time.monotonic()
        result = target_site.run(accounts.pilot, ["/usr/bin/id", "-u"],
                                 env={"GLEXEC_CLIENT_CERT": str(proxy)}, timeout=40)
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.code == 0, result
    assert result.out.strip() == str(attack_accounts.user.uid)
    assert took < 15, took
    os.unlink(f"/tmp/x509up_u{attack_accounts.user.uid}")
