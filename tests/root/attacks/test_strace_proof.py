"""Item 3 of the adversarial suite: strace proof that root never touches a caller-named path.

strace runs as root and starts the installed setuid launcher as the pilot (``strace -u``), so the
setuid bit takes effect and the launcher's Python really runs as root (asserted from the trace).
Every syscall is attributed to its process's effective uid, followed through execve of the
setuid binary, set*uid calls and fork/clone. No syscall of a process whose effective uid is 0
may name -- as a path argument or as the path strace prints for a descriptor (``-y``) -- the
proxy file, its directory, the target proxy, its directory, the command or the cwd the caller
supplied. The caller's strings still travel as data (execve's argv, log records), which is not
looked at. The payload itself reports that it starts with fds 0-2 only and default signal state.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid

import pytest
from fixtures.prereq import require

pytestmark = [pytest.mark.root, pytest.mark.installed]

LINE = re.compile(r"^(\d+)\s+(.*)$")
CALL = re.compile(r"^([a-z0-9_]+)\((.*)\)\s+=\s+(-?\d+|\?)")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
FD_PATH = re.compile(r"<([^<>]*)>")
SET_UID = {"setuid", "setresuid", "setreuid", "setfsuid"}
PAYLOAD = ("#!/bin/sh\n"
           "exec /bin/sh -c 'grep -E \"^Sig(Ign|Blk):\" /proc/$$/status; "
           "ls /proc/$$/fd | tr \"\\n\" \" \"; echo'\n")


def join_unfinished(lines: list[str]) -> list[tuple[int, str]]:
    """strace -f splits calls interrupted by another process: put the halves back together."""
    pending: dict[int, str] = {}
    calls = []
    for raw in lines:
        match = LINE.match(raw)
        if not match:
            continue
        pid, text = int(match.group(1)), match.group(2)
        if text.endswith("<unfinished ...>"):
            pending[pid] = text[: -len("<unfinished ...>")]
            continue
        resumed = re.match(r"^<\.\.\. [a-z0-9_]+ resumed>(.*)$", text)
        if resumed:
            text = pending.pop(pid, "") + resumed.group(1)
        calls.append((pid, text))
    return calls


def root_path_uses(trace: str, pilot_uid: int, setuid_binary: str
                   ) -> tuple[list[tuple[int, str, list[str]]], set[int], list[str]]:
    """(calls made with euid 0 and the paths they name, pids that were root, execs as root)."""
    euid: dict[int, int] = {}
    root_pids: set[int] = set()
    root_execs: list[str] = []
    uses = []
    for pid, text in join_unfinished(trace.splitlines()):
        euid.setdefault(pid, pilot_uid)
        match = CALL.match(text)
        if not match:
            continue
        name, args, ret = match.groups()
        if name in ("clone", "clone3", "fork", "vfork") and ret.isdigit():
            euid[int(ret)] = euid[pid]
            continue
        if name == "execve" and ret == "0":
            target = QUOTED.search(args).group(1)
            if target == setuid_binary:
                euid[pid] = 0
            if euid[pid] == 0:
                root_execs.append(target)
            paths = [target]  # argv and envp are data
        elif name in SET_UID and ret == "0":
            numbers = [int(n) for n in re.findall(r"-?\d+", args)]
            effective = {"setuid": 0, "setfsuid": None, "setreuid": 1, "setresuid": 1}[name]
            if effective is not None and numbers[effective] != -1:
                euid[pid] = numbers[effective]
            continue
        else:
            # AT_FDCWD<cwd> only matters for a relative path (resolved in the caller's cwd,
            # which the launcher inherits until bootstrap moves to /)
            quoted = QUOTED.findall(args)
            cwd = re.match(r"AT_FDCWD<([^<>]*)>", args)
            paths = quoted + FD_PATH.findall(re.sub(r"AT_FDCWD<[^<>]*>", "AT_FDCWD", args))
            if cwd and quoted and not quoted[0].startswith("/"):
                paths.append(cwd.group(1))
        if euid[pid] == 0 and name != "getcwd":  # getcwd reports the cwd, resolves nothing
            root_pids.add(pid)
            uses.append((pid, name, paths))
    return uses, root_pids, root_execs


@pytest.fixture
def caller_paths(accounts, attack_accounts, trusted_tmp, proxy):
    """A pilot directory (cwd) with the proxy and the command, and a target-owned directory."""
    token = uuid.uuid4().hex[:10]
    pilot_dir = os.path.join(accounts.pilot.home, f"gxa-strace-{token}")
    os.mkdir(pilot_dir, 0o755)
    os.chmod(accounts.pilot.home, 0o755)
    proxy_copy = os.path.join(pilot_dir, "proxy")
    shutil.copyfile(proxy, proxy_copy)
    command = os.path.join(pilot_dir, "payload.sh")
    with open(command, "w") as handle:
        handle.write(PAYLOAD)
    for path, mode in ((pilot_dir, 0o755), (proxy_copy, 0o600), (command, 0o755)):
        os.chown(path, accounts.pilot.uid, accounts.pilot.gid)
        os.chmod(path, mode)
    target_dir = trusted_tmp / f"gxa-target-{token}"
    target_dir.mkdir(mode=0o700)
    os.chown(target_dir, attack_accounts.user.uid, attack_accounts.user.gid)
    yield {"token": token, "dir": pilot_dir, "proxy": proxy_copy, "command": command,
           "target_dir": str(target_dir), "target": str(target_dir / "x509up")}
    shutil.rmtree(pilot_dir, ignore_errors=True)


def traced_run(site, accounts, paths, trusted_tmp):
    strace = shutil.which("strace")
    require(strace is not None, "needs strace")
    out = trusted_tmp / "trace.txt"
    env = {"PATH": "/usr/bin:/bin", "GLEXEC_CLIENT_CERT": paths["proxy"],
           "GLEXEC_TARGET_PROXY": paths["target"]}
    proc = subprocess.run(
        [strace, "-f", "-qq", "-y", "-s", "256", "-o", str(out), "-u", accounts.pilot.name,
         "-e", "trace=%file,%process,%fstat,fchdir,fchown,fchmod,flock,setuid,setreuid,"
               "setresuid,setfsuid,setgroups",
         str(site.bin), paths["command"]],
        env=env, cwd=paths["dir"], capture_output=True, text=True, timeout=120)
    return proc, out.read_text()


def check_trace(trace: str, site, accounts, paths) -> set[int]:
    uses, root_pids, root_execs = root_path_uses(trace, accounts.pilot.uid, str(site.bin))
    assert any("python" in target for target in root_execs), root_execs  # really root
    assert root_pids, root_pids
    # the proxy is read with the pilot's effective ids, and root comes back after (privsep.py)
    assert re.search(rf"^\d+\s+setresuid\(-1, {accounts.pilot.uid}, -1\)\s+= 0", trace, re.M)
    assert re.search(r"^\d+\s+setresuid\(-1, 0, -1\)\s+= 0", trace, re.M)
    offending = [(pid, name, p) for pid, name, found in uses for p in found
                 if paths["token"] in p]
    assert not offending, offending[:10]
    # and the caller's side really did use them (the trace is not blind)
    assert paths["token"] in trace
    return root_pids


def test_successful_run_root_never_names_a_caller_path(target_site, accounts, attack_accounts,
                                                       caller_paths, trusted_tmp):
    proc, trace = traced_run(target_site, accounts, caller_paths, trusted_tmp)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    status = dict(line.split(":\t") for line in lines[:2])
    assert int(status["SigIgn"], 16) == 0 and int(status["SigBlk"], 16) == 0, lines
    assert lines[2].split() == ["0", "1", "2"], lines
    check_trace(trace, target_site, accounts, caller_paths)
    # the proxy was opened by a process that was the pilot, the target written as the target
    assert re.search(r"openat\(AT_FDCWD(<[^<>]*>)?, \"" + re.escape(caller_paths["proxy"]),
                     trace)
    with open(caller_paths["target"], "rb") as copy, open(caller_paths["proxy"], "rb") as src:
        assert copy.read() == src.read()
    assert os.stat(caller_paths["target"]).st_uid == attack_accounts.user.uid


def test_refused_run_root_never_names_a_caller_path(target_site, accounts, caller_paths,
                                                    trusted_tmp):
    os.chmod(caller_paths["proxy"], 0o640)
    proc, trace = traced_run(target_site, accounts, caller_paths, trusted_tmp)
    assert proc.returncode == 201, proc.stderr
    assert proc.stdout == ""
    check_trace(trace, target_site, accounts, caller_paths)
    assert not os.path.exists(caller_paths["target"])


def test_the_trace_checker_sees_a_root_open_and_follows_the_drop():
    """The checker itself: a root open of a caller path is reported, the same open after
    setresuid to the pilot (or in a fork of such a process, or while only the effective uid is
    the pilot's) is not, and one after the effective uid went back to 0 is again."""
    trace = "\n".join([
        '10 execve("/bin/glexec", ["glexec", "/home/p/tok/cmd"], 0x1 /* 2 vars */) = 0',
        '10 execve("/usr/bin/python3", ["python3", "--", "/home/p/tok/cmd"], 0x1) = 0',
        '10 openat(AT_FDCWD</home/p/tok>, "/etc/glexec.conf", O_RDONLY) = 3',
        '10 openat(AT_FDCWD</home/p/tok>, "relative", O_RDONLY) = -1 ENOENT (No such file)',
        '10 clone(child_stack=NULL, flags=SIGCHLD) = 11',
        '11 setresuid(1001, 1001, 1001) = 0',
        '11 openat(AT_FDCWD, "/home/p/tok/proxy", O_RDONLY) = 3</home/p/tok/proxy>',
        '10 fstat(4</home/p/tok/proxy>, {st_mode=S_IFREG|0600, ...}) = 0',
        '10 openat(AT_FDCWD, "/home/p/tok/x", O_RDONLY <unfinished ...>',
        '10 <... openat resumed>) = 5',
        '10 setresuid(-1, 1001, -1) = 0',
        '10 openat(AT_FDCWD, "/home/p/tok/as-pilot", O_RDONLY) = 6',
        '10 setresuid(-1, 0, -1) = 0',
        '10 openat(AT_FDCWD, "/home/p/tok/root-again", O_RDONLY) = 7',
    ])
    uses, root_pids, execs = root_path_uses(trace, 1001, "/bin/glexec")
    flagged = [(name, p) for _, name, found in uses for p in found if "tok" in p]
    assert execs == ["/bin/glexec", "/usr/bin/python3"]
    assert root_pids == {10}
    assert flagged == [("openat", "/home/p/tok"), ("fstat", "/home/p/tok/proxy"),
                       ("openat", "/home/p/tok/x"), ("openat", "/home/p/tok/root-again")]
