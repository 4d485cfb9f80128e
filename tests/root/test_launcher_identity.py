"""Through the installed setuid launcher, as an unprivileged pilot: the identity switch itself.

These are the issue's core acceptance checks: the payload runs as exactly the mapped account
(all of real/effective/saved ids, exact group list, no capabilities), stays in the pilot's
session and process group, starts with default signal state and only fds 0-2, and gets stdin.
"""

from __future__ import annotations

import os
import stat

import pytest

pytestmark = [pytest.mark.root, pytest.mark.installed]


def env_for(proxy) -> dict[str, str]:
    return {"GLEXEC_CLIENT_CERT": str(proxy)}


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        sep = ":" if ":" in line else "="
        name, found, value = line.partition(sep)
        if found:
            fields[name.strip()] = value.strip()
    return fields


def test_id_u_prints_exactly_the_mapped_uid(site, accounts, proxy):
    result = site.run(accounts.pilot, ["/usr/bin/id", "-u"], env=env_for(proxy))
    assert result.code == 0, result
    assert result.out == f"{accounts.mapped.uid}\n"


def test_glideinwms_shell_check(site, accounts, proxy):
    sh = os.path.realpath("/bin/sh")
    result = site.run(accounts.pilot, [sh, "-c", 'id && echo "Hello World"'],
                      env=env_for(proxy))
    assert result.code == 0, result
    assert result.out.splitlines()[-1] == "Hello World"
    assert f"uid={accounts.mapped.uid}(" in result.out


def test_glideinwms_script_in_pilot_cwd(site, accounts, proxy, tmp_path):
    workdir = os.path.join(accounts.pilot.home, "work")
    os.makedirs(workdir, exist_ok=True)
    os.chmod(accounts.pilot.home, 0o755)
    os.chmod(workdir, 0o755)
    os.chown(workdir, accounts.pilot.uid, accounts.pilot.gid)
    script = os.path.join(workdir, "glexec_test2.sh")
    with open(script, "w") as f:
        f.write('#!/bin/sh\nid && echo "Hello World"\n')
    os.chmod(script, 0o755)
    result = site.run(accounts.pilot, [script], env=env_for(proxy), cwd=workdir)
    assert result.code == 0, result
    assert result.out.splitlines()[-1] == "Hello World"


@pytest.mark.parametrize("status", [0, 3, 77, 200])
def test_bash_lc_exits_with_the_script_status(site, accounts, proxy, status):
    result = site.run(accounts.pilot, ["/bin/bash", "-lc", f"echo running; exit {status}"],
                      env=env_for(proxy))
    assert result.code == status, result
    assert "running" in result.out


def test_payload_credentials_groups_caps_session_signals_fds(site, accounts, proxy):
    probe = ("cat /proc/self/status; echo SID=$(cut -d' ' -f6 /proc/$$/stat); "
             "echo PGID=$(cut -d' ' -f5 /proc/$$/stat); echo FDS-FOLLOW; ls -1 /proc/$$/fd")
    result = site.run(accounts.pilot, ["/bin/sh", "-c", probe], env=env_for(proxy))
    assert result.code == 0, result
    fields = status_fields(result.out)
    uid, gid = accounts.mapped.uid, accounts.mapped.gid
    assert fields["Uid"].split() == [str(uid)] * 4
    assert fields["Gid"].split() == [str(gid)] * 4
    assert sorted(map(int, fields["Groups"].split())) == accounts.mapped.groups
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(fields[cap], 16) == 0, cap
    assert int(fields["SigIgn"], 16) == 0
    assert int(fields["SigBlk"], 16) == 0
    assert int(fields["SID"]) == os.getsid(0)
    assert int(fields["PGID"]) == os.getpgid(0)
    # the shell's own descriptors while ls runs (no command substitution pipe open)
    assert result.out.split("FDS-FOLLOW\n")[1].split() == ["0", "1", "2"]


def test_stdin_reaches_the_payload(site, accounts, proxy):
    result = site.run(accounts.pilot, ["/bin/cat"], env=env_for(proxy), stdin=b"tar stream\n")
    assert result.code == 0, result
    assert result.out == "tar stream\n"


def test_nothing_but_the_payload_writes_stdout(site, accounts, proxy):
    result = site.run(accounts.pilot, ["/bin/true"], env=env_for(proxy))
    assert result.code == 0, result
    assert result.out == ""


def test_options_after_the_command_are_untouched(site, accounts, proxy):
    result = site.run(accounts.pilot, ["/bin/echo", "-V", "--config=/etc/passwd", "-h", "--"],
                      env=env_for(proxy))
    assert result.code == 0, result
    assert result.out == "-V --config=/etc/passwd -h --\n"


def test_target_proxy_written_as_target_0600(site, accounts, proxy):
    target = f"/tmp/x509up_u{accounts.mapped.uid}"
    if os.path.exists(target):
        os.unlink(target)
    result = site.run(accounts.pilot, ["/bin/sh", "-c", 'echo "$X509_USER_PROXY"'],
                      env=env_for(proxy))
    assert result.code == 0, result
    assert result.out.strip() == target
    st = os.lstat(target)
    assert stat.S_ISREG(st.st_mode)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (accounts.mapped.uid, 0o600)
    with open(target, "rb") as f, open(proxy, "rb") as g:
        assert f.read() == g.read()
    os.unlink(target)


def test_payload_environment_is_an_allowlist(site, accounts, proxy):
    env = env_for(proxy) | {"LD_PRELOAD": "/tmp/evil.so", "PYTHONPATH": "/tmp",
                            "GLEXEC_ENV": "abc", "BASH_ENV": "/tmp/x", "SECRET": "s",
                            "MALLOC_CHECK_": "3", "GLEXEC_EPILOG_X": "1"}
    result = site.run(accounts.pilot, ["/usr/bin/env"], env=env)
    assert result.code == 0, result
    names = {line.partition("=")[0] for line in result.out.splitlines()}
    assert names == {"GLEXEC_CLIENT_CERT", "GLEXEC_ENV", "HOME", "USER", "LOGNAME", "PATH",
                     "SHELL", "X509_USER_PROXY"}
    values = dict(line.partition("=")[::2] for line in result.out.splitlines())
    assert values["USER"] == accounts.mapped.name
    assert values["HOME"] == accounts.mapped.home
