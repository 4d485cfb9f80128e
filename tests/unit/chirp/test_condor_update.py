"""condor_update in a real process tree: root 'starter' -> pilot (test account) -> root 'glexec'.

The starter's environment names the execute directory; the scratch dir and its .chirp.config
belong to the pilot, mode 0700, as a real starter leaves them; the plugin must find the starter,
drop to the pilot, and set the three attributes on the protocol-exact server, without ever
failing the launch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from glexec_py.plugins.condor_update import CondorUpdatePlugin, locate_chirp_config

from glexec_py.plugin_api import CredentialView, Request

pytestmark = pytest.mark.root

DN = '/DC=org/DC=test/CN=Alice "Q" Tester'

# Run by the venv interpreter as root. argv: pilot uid, target uid, dn. Prints its pid, waits for
# a line on stdin, then forks the pilot (real uid = pilot, saved uid 0), which forks 'glexec'
# (all ids 0 again), which runs the plugin and prints the result and the time it took.
TREE = r"""
import os, sys, time
from glexec_py.plugin_api import CredentialView, Request
from glexec_py.plugins.condor_update import CondorUpdatePlugin
pilot, target, dn = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
print(os.getpid(), flush=True)
sys.stdin.readline()
pid = os.fork()
if pid == 0:
    os.setgroups([])
    os.setresgid(pilot, pilot, 0)
    os.setresuid(pilot, pilot, 0)
    glexec = os.fork()
    if glexec == 0:
        os.setresuid(0, 0, 0)
        os.setresgid(0, 0, 0)
        plugin = CondorUpdatePlugin()
        plugin.configure([])
        request = Request(dn=dn, invoker_pid=os.getppid(), launcher_pid=os.getpid(),
                          now=1700000000)
        start = time.monotonic()
        result = plugin.run(request, CredentialView(uid=(target,)))
        print(repr(result), round(time.monotonic() - start, 3), flush=True)
        os._exit(0)
    os.waitpid(glexec, 0)
    os._exit(0)
os.waitpid(pid, 0)
"""


def _start_tree(execute: str, pilot_uid: int, target_uid: int, dn: str = DN,
                extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {"PATH": "/usr/bin:/bin", "_CONDOR_EXECUTE": execute, **(extra_env or {})}
    # -I and cwd /: the checkout's unmapped glexec_py/ must not shadow the installed package
    return subprocess.Popen([sys.executable, "-I", "-c", TREE, str(pilot_uid), str(target_uid),
                             dn], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=env, cwd="/")


def _scratch(execute: str, starter_pid: int, pilot) -> str:
    scratch = os.path.join(execute, f"dir_{starter_pid}")
    os.mkdir(scratch, 0o700)
    os.chown(scratch, pilot.pw_uid, pilot.pw_gid)
    return scratch


@pytest.fixture
def execute_dir(trusted_tmp) -> str:
    path = trusted_tmp / "execute"
    path.mkdir(mode=0o755)
    return str(path)


def test_job_ad_gets_the_three_attributes(gxf_accounts, chirp_server, execute_dir) -> None:
    pilot, target = gxf_accounts["gxfpilot"], gxf_accounts["gxfpay"]
    tree = _start_tree(execute_dir, pilot.pw_uid, target.pw_uid)
    starter_pid = int(tree.stdout.readline())
    scratch = _scratch(execute_dir, starter_pid, pilot)
    chirp_server.write_config(scratch, pilot.pw_uid, pilot.pw_gid)
    tree.stdin.write("go\n")
    tree.stdin.flush()
    result_line = tree.stdout.readline()
    tree.wait(timeout=10)
    assert result_line.startswith("Result.success({})")
    assert chirp_server.wait_for(lambda: len(chirp_server.transcript) == 4)
    assert chirp_server.job_ad == {
        "glexec_user": '"gxfpay"',
        "glexec_x509userproxysubject": '"/DC=org/DC=test/CN=Alice \\"Q\\" Tester"',
        "glexec_time": "1700000000",
    }
    requests = [line for line, _ in chirp_server.transcript]
    assert requests[1:] == [
        'set_job_attr glexec_user "gxfpay"',
        r'set_job_attr glexec_x509userproxysubject "/DC=org/DC=test/CN=Alice\ \\"Q\\"\ Tester"',
        "set_job_attr glexec_time 1700000000",
    ]


def test_chirp_config_is_read_as_the_pilot_not_root(gxf_accounts, chirp_server,
                                                    execute_dir) -> None:
    # A config owned by root 0700 is unreadable by the pilot: nothing may be sent, and the
    # launch still succeeds.
    pilot, target = gxf_accounts["gxfpilot"], gxf_accounts["gxfpay"]
    tree = _start_tree(execute_dir, pilot.pw_uid, target.pw_uid)
    starter_pid = int(tree.stdout.readline())
    scratch = _scratch(execute_dir, starter_pid, pilot)
    chirp_server.write_config(scratch, 0, 0)
    os.chmod(scratch, 0o755)
    tree.stdin.write("go\n")
    tree.stdin.flush()
    assert tree.stdout.readline().startswith("Result.success({})")
    tree.wait(timeout=10)
    time.sleep(0.3)
    assert chirp_server.connections == 0


def test_dead_chirp_server_never_blocks_the_launch(gxf_accounts, chirp_server_factory,
                                                   execute_dir) -> None:
    pilot, target = gxf_accounts["gxfpilot"], gxf_accounts["gxfpay"]
    server = chirp_server_factory()
    tree = _start_tree(execute_dir, pilot.pw_uid, target.pw_uid)
    starter_pid = int(tree.stdout.readline())
    scratch = _scratch(execute_dir, starter_pid, pilot)
    server.write_config(scratch, pilot.pw_uid, pilot.pw_gid)
    server.stop()  # nobody listens any more
    tree.stdin.write("go\n")
    tree.stdin.flush()
    line = tree.stdout.readline()
    tree.wait(timeout=10)
    result, seconds = line.rsplit(" ", 1)
    assert result == "Result.success({})"
    assert float(seconds) < 0.5


def test_not_in_a_condor_job_is_still_success(gxf_accounts) -> None:
    # pytest runs as root without _CONDOR_EXECUTE: the first root ancestor has no execute dir.
    plugin = CondorUpdatePlugin()
    plugin.configure(["-ignored"])
    request = Request(dn="/CN=x", launcher_pid=os.getpid(), now=1)
    assert plugin.run(request, CredentialView(uid=(gxf_accounts["gxfpay"].pw_uid,))).ok


def test_missing_dn_or_uid_fails_like_the_original() -> None:
    plugin = CondorUpdatePlugin()
    assert not plugin.run(Request(launcher_pid=os.getpid()), CredentialView(uid=(1,))).ok
    assert not plugin.run(Request(dn="/CN=x", launcher_pid=os.getpid()), CredentialView()).ok


def test_pid_namespace_case_uses_pid1_config(tmp_path) -> None:
    # Only the file-vs-directory rule can be checked without a PID namespace here.
    config = tmp_path / "chirp.file"
    config.write_text("127.0.0.1 1 c\n")
    assert locate_chirp_config(str(config)) == str(config)
    (tmp_path / ".chirp.config").write_text("127.0.0.1 1 c\n")
    assert locate_chirp_config(str(tmp_path)) == str(tmp_path / ".chirp.config")
    (tmp_path / "chirp.config").write_text("127.0.0.1 1 c\n")
    assert locate_chirp_config(str(tmp_path)) == str(tmp_path / "chirp.config")
