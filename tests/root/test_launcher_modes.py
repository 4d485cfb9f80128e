"""Linger, exec-in-place and declare-only modes, syslog records, and the command line.

All through the installed launcher; syslog tests use a real rsyslogd started by the fixture.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import time
import uuid

import pytest
from fixtures.site import launch_behind_pilot, wait_for

pytestmark = [pytest.mark.root, pytest.mark.installed]


def popen_as(account, argv, env):
    return subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin", **env}, user=account.uid,
                            group=account.gid, extra_groups=account.groups, cwd="/",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# ---- linger -----------------------------------------------------------------------------------

def test_term_to_the_launcher_reaches_the_payload(site, accounts, proxy):
    marker = f"/tmp/glexec-term-{uuid.uuid4().hex}"
    script = (f'trap "echo got-term > {marker}; exit 42" TERM; echo ready; '
              f'while :; do sleep 0.1; done')
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", script],
                    {"GLEXEC_CLIENT_CERT": str(proxy)})
    assert proc.stdout.readline() == b"ready\n"
    os.kill(proc.pid, signal.SIGTERM)  # as root, like a batch system
    assert proc.wait(timeout=20) == 42
    with open(marker) as f:
        assert f.read() == "got-term\n"
    assert os.stat(marker).st_uid == accounts.mapped.uid
    os.unlink(marker)


def test_pilot_cannot_signal_the_lingering_launcher(site, accounts, proxy):
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", "echo ready; sleep 3"],
                    {"GLEXEC_CLIENT_CERT": str(proxy)})
    assert proc.stdout.readline() == b"ready\n"
    probe = subprocess.run(["/bin/kill", "-STOP", str(proc.pid)], user=accounts.pilot.uid,
                           group=accounts.pilot.gid, capture_output=True, text=True)
    assert probe.returncode != 0
    assert "not permitted" in probe.stderr
    assert proc.wait(timeout=20) == 0


def test_leftovers_in_the_process_group_and_daemons_are_terminated(site, accounts, proxy):
    pids = f"/tmp/glexec-pids-{uuid.uuid4().hex}"
    script = (f"sleep 300 & echo $! > {pids}; "
              f"setsid sleep 301 & echo $! >> {pids}; "
              f"sh -c 'sleep 302 & echo $! >> {pids}' ; "
              f"sleep 0.2; exit 5")
    result = site.run(accounts.pilot, ["/bin/sh", "-c", script],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 5, result
    with open(pids) as f:
        left = [int(p) for p in f.read().split()]
    os.unlink(pids)
    assert len(left) == 3
    assert wait_for(lambda: not any(alive(p) for p in left), 5), left
    out = subprocess.run(["pgrep", "-u", str(accounts.mapped.uid)], capture_output=True,
                         text=True).stdout
    assert out == ""
    completion = [r for r in result.records if "payload pid" in r]
    assert completion and "leftovers terminated: 3" in completion[0], result.records


def test_completion_record_carries_cpu_time(site, accounts, proxy):
    burn = "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done"
    result = site.run(accounts.pilot, ["/bin/sh", "-c", burn],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 0, result
    completion = [r for r in result.records if "payload pid" in r]
    assert len(completion) == 1
    match = re.search(r"CPU user ([0-9.]+) s system ([0-9.]+) s", completion[0])
    assert match and float(match.group(1)) + float(match.group(2)) > 0.1, completion
    mon = [r for r in result.records if "glexec.mon[" in r]
    assert any("Started, target uid" in r for r in mon)
    assert any("Terminated, CPU user" in r for r in mon)


def test_linger_no_execs_in_place(site_factory, accounts, proxy):
    site = site_factory(conf={"linger": "no"})
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", "echo $$"],
                    {"GLEXEC_CLIENT_CERT": str(proxy)})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert int(out) == proc.pid


# ---- declare-only and syslog -------------------------------------------------------------------

def test_records_reach_a_real_rsyslog(site_factory, accounts, proxy, syslog_daemon):
    site = site_factory(conf=syslog_daemon.site_conf(syslog_facility="LOG_LOCAL3"))
    tag = uuid.uuid4().hex
    result = site.run(accounts.pilot, ["/bin/echo", tag], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 0, result
    text = syslog_daemon.wait_for_text("payload pid")
    lines = [line for line in text.splitlines() if tag in line]
    assert lines and lines[0].startswith("local3.notice glexec[")
    assert f"mapped_user({accounts.mapped.name})" in lines[0]
    assert any("payload pid" in line and "local3" in line for line in text.splitlines())


def test_log_injection_through_arguments_is_escaped(site_factory, accounts, proxy,
                                                    syslog_daemon):
    site = site_factory(conf=syslog_daemon.site_conf())
    evil = "x\nglexec[1]: real_user(root)->mapped_user(root) forged\x1b[2J"
    result = site.run(accounts.pilot, ["/bin/true", evil], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 0, result
    text = syslog_daemon.wait_for_text("forged")
    forged = [line for line in text.splitlines() if "forged" in line]
    assert len(forged) == 1 and "x\\x0aglexec[1]" in forged[0], forged
    assert not any(line.startswith("glexec[1]") for line in text.splitlines())
    assert "\x1b" not in text


def test_newline_in_glexec_id_is_refused_and_logged_escaped(site_factory, accounts, proxy,
                                                             syslog_daemon):
    site = site_factory(conf=syslog_daemon.site_conf())
    evil = "id\nglexec[1]: forged-by-glexec-id"
    result = site.run(accounts.pilot, ["/bin/true"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_ID": evil})
    assert result.code == 201, result
    assert len(result.err.splitlines()) == 1
    text = syslog_daemon.wait_for_text("forged-by-glexec-id")
    records = [line for line in text.splitlines() if "forged-by-glexec-id" in line]
    assert len(records) == 1 and "error 201" in records[0]
    assert not any(line.startswith("glexec[1]") for line in text.splitlines())


def test_no_syslog_fails_closed_before_the_payload(site_factory, accounts, proxy,
                                                   syslog_daemon):
    site = site_factory(conf=syslog_daemon.site_conf())
    marker = f"/tmp/glexec-ran-{uuid.uuid4().hex}"
    syslog_daemon.stop()
    try:
        result = site.run(accounts.pilot, ["/bin/touch", marker],
                          env={"GLEXEC_CLIENT_CERT": str(proxy)})
    finally:
        syslog_daemon.start()
    assert result.code == 202, result
    assert "syslog" in result.err
    assert not os.path.exists(marker)


def test_declare_only_runs_as_the_caller_and_logs_the_decision(site_factory, accounts, proxy,
                                                               syslog_daemon):
    site = site_factory(declare_only=True, conf=syslog_daemon.site_conf())
    stale = f"/tmp/x509up_u{accounts.mapped.uid}"
    if os.path.exists(stale):
        os.unlink(stale)
    st = os.stat(site.bin)
    assert st.st_mode & 0o6000 == 0
    tag = uuid.uuid4().hex
    result = site.run(accounts.pilot, ["/bin/sh", "-c", f"id -u; echo {tag}; "
                                       'echo "$X509_USER_PROXY"'],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[0] == str(accounts.pilot.uid)
    assert lines[2] == str(proxy)
    assert not os.path.exists(f"/tmp/x509up_u{accounts.mapped.uid}")
    text = syslog_daemon.wait_for_text(tag)
    decision = [line for line in text.splitlines() if tag in line]
    assert decision and "declare-only" in decision[0]
    assert f"would map to mapped_user({accounts.mapped.name})" in decision[0]


def test_declare_only_denial_still_denies(site_factory, accounts, make_proxy, syslog_daemon):
    site = site_factory(declare_only=True, conf=syslog_daemon.site_conf(
        user_white_list=accounts.pilot.name))
    path = make_proxy("rfc", owner_uid=accounts.pilot2.uid)
    result = site.run(accounts.pilot2, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(path)})
    assert result.code == 203, result
    assert result.out == ""


# ---- command line -------------------------------------------------------------------------------

def test_capital_v_is_root_only_and_names_the_config(site, accounts):
    result = site.run(None, ["-V"])
    assert result.code == 0, result
    line = [x for x in result.out.splitlines() if x.startswith("GLEXEC_CONFIG_FILE=")]
    assert line == [f'GLEXEC_CONFIG_FILE="{site.conf_path}"']
    path = line[0].split("=", 1)[1].strip('"')  # the gLite test's cut/sed
    assert os.path.samefile(path, site.conf_path)
    assert site.run(accounts.pilot, ["-V"]).code == 201


def test_version_and_help(site, accounts):
    version = site.run(accounts.pilot, ["-v"])
    assert version.code == 0 and "glexec-py" in version.out
    usage = site.run(accounts.pilot, ["-h"])
    assert usage.code == 0 and usage.out.startswith("usage: glexec")


def test_config_option_is_root_only(site, site_factory, accounts, proxy):
    other = site_factory()
    result = site.run(accounts.pilot, [f"--config={other.conf_path}", "/usr/bin/id"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 201 and "root" in result.err


def test_root_caller_like_osg_test(site_factory, accounts, make_proxy):
    site = site_factory(conf={"user_white_list": "root"})
    path = make_proxy("rfc", owner_uid=0)
    result = site.run(None, ["/usr/bin/id", "-u"], env={"GLEXEC_CLIENT_CERT": str(path)})
    assert result.code == 0, result
    assert result.out.rstrip() == str(accounts.mapped.uid)


def test_root_caller_not_whitelisted_is_refused(site, make_proxy):
    path = make_proxy("rfc", owner_uid=0)
    result = site.run(None, ["/usr/bin/id", "-u"], env={"GLEXEC_CLIENT_CERT": str(path)})
    assert result.code == 203, result


def test_no_command_refreshes_the_target_proxy(site, accounts, proxy):
    target = f"/tmp/x509up_u{accounts.mapped.uid}"
    if os.path.exists(target):
        os.unlink(target)
    result = site.run(accounts.pilot, [], env={"GLEXEC_CLIENT_CERT": str(proxy)})
    assert result.code == 0, result
    assert result.out == ""
    st = os.stat(target)
    assert (st.st_uid, st.st_mode & 0o777) == (accounts.mapped.uid, 0o600)
    os.unlink(target)


def _execve_as_pilot(account, path: str, argv: list[bytes] | None, envp: list[bytes]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups(account.groups)
            os.setresgid(account.gid, account.gid, account.gid)
            os.setresuid(account.uid, account.uid, account.uid)
            devnull = os.open("/dev/null", os.O_RDWR)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            libc = ctypes.CDLL(None, use_errno=True)
            arr_t = ctypes.c_char_p * ((len(argv) if argv else 0) + 1)
            args = arr_t(*(argv or []), None)
            env_t = ctypes.c_char_p * (len(envp) + 1)
            libc.execve(path.encode(), args, env_t(*envp, None))
        finally:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_duplicate_environment_variable_is_refused(site, accounts, proxy, make_proxy):
    other = make_proxy("rfc", owner_uid=accounts.pilot.uid)
    code = _execve_as_pilot(accounts.pilot, str(site.bin), [b"glexec", b"/usr/bin/id"],
                            [f"GLEXEC_CLIENT_CERT={proxy}".encode(),
                             f"GLEXEC_CLIENT_CERT={other}".encode()])
    assert code == 201


def test_empty_argv_is_refused(site, accounts, proxy):
    code = _execve_as_pilot(accounts.pilot, str(site.bin), None,
                            [f"GLEXEC_CLIENT_CERT={proxy}".encode()])
    assert code == 201


def test_interpreter_variables_never_reach_the_root_side(site, accounts, proxy, trusted_tmp):
    evil = trusted_tmp / "evil"
    evil.mkdir()
    marker = trusted_tmp / "imported"
    (evil / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (evil / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    os.chmod(trusted_tmp, 0o777)
    env = {"GLEXEC_CLIENT_CERT": str(proxy), "PYTHONPATH": str(evil),
           "PYTHONWARNINGS": "ignore::evilmod.X", "PYTHONSTARTUP": str(evil / "evilmod.py"),
           "PYTHONINSPECT": "1", "PYTHONHOME": str(evil), "LD_PRELOAD": "/nonexistent.so",
           "PYTHONUSERBASE": str(evil)}
    result = site.run(accounts.pilot, ["/bin/true"], env=env)
    assert result.code == 0, result
    time.sleep(0.1)
    assert not marker.exists()


def test_pilot_death_stops_the_payload_and_its_leftovers(site, accounts, proxy):
    pidfile = f"/tmp/glexec-pd-{uuid.uuid4().hex}"
    payload = (f'trap "" TERM; sleep 300 & echo $$ $! > {pidfile}; '
               f"while :; do sleep 0.2; done")
    pilot, launcher = launch_behind_pilot(site, accounts.pilot, proxy, payload)
    assert wait_for(lambda: os.path.exists(pidfile) and os.path.getsize(pidfile) > 0, 20)
    with open(pidfile) as f:
        shell, child = (int(p) for p in f.read().split())
    os.unlink(pidfile)
    pilot.kill()  # SIGKILL the pilot: its glexec must not leave the payload running
    pilot.wait()
    assert wait_for(lambda: not alive(launcher) and not alive(shell) and not alive(child), 15)
    assert "the calling pilot died" in site.log_text()


def test_term_to_the_launcher_also_stops_what_the_payload_left(site, accounts, proxy):
    """Told to stop, the launcher passes TERM on to daemons the payload left at once, not only
    after the payload ended: a batch system's KILL may follow before any clean-up could run."""
    pidfile = f"/tmp/glexec-daemon-{uuid.uuid4().hex}"
    script = (f"setsid sleep 301 & echo $! > {pidfile}; trap '' TERM; echo $$; "
              f"while :; do sleep 0.1; done")
    proc = popen_as(accounts.pilot, [str(site.bin), "/bin/sh", "-c", script],
                    {"GLEXEC_CLIENT_CERT": str(proxy)})
    payload = int(proc.stdout.readline())
    with open(pidfile) as f:
        daemon = int(f.read())
    os.unlink(pidfile)
    os.kill(proc.pid, signal.SIGTERM)
    assert wait_for(lambda: not alive(daemon), 1.5)  # well before cleanup_grace
    assert alive(proc.pid)  # the payload itself ignores TERM: the launcher keeps waiting
    os.kill(payload, signal.SIGKILL)  # the launcher reaps it and cleans up (no orphans left)
    assert proc.wait(timeout=20) == 128 + signal.SIGKILL
