"""Building the lingering launcher's C waiter, and the launcher's trust check before it execs it.

Real gcc, real files in a trusted directory laid out like an installation's site-packages; as
root, because the binary must be root-owned to be trusted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.prereq import require

from glexec_py.launch import waiter
from glexec_py.tools import install

pytestmark = pytest.mark.root

SOURCE = Path(install.__file__).resolve().parent.parent / "launch" / "glexec_waiter.c"


@pytest.fixture
def site(trusted_tmp: Path) -> str:
    require(os.geteuid() == 0, "needs root: the waiter must be root-owned to be trusted")
    require(shutil.which("gcc") is not None, "needs gcc")
    launch = trusted_tmp / "glexec_py" / "launch"
    launch.mkdir(parents=True, mode=0o755)
    shutil.copy(SOURCE, launch / "glexec_waiter.c")
    return str(trusted_tmp)


def test_built_when_missing_stale_or_untrusted_and_only_then(site):
    _source, binary = install.waiter_paths(site)
    assert not install.waiter_is_current(site)
    assert install.install_waiter(site) is True
    st = binary.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o755)
    assert install.waiter_is_current(site)
    assert install.install_waiter(site) is False  # current: left alone
    inode = binary.stat().st_ino
    future = st.st_mtime_ns + 10**9
    os.utime(install.waiter_paths(site)[0], ns=(future, future))  # a newer source
    assert not install.waiter_is_current(site)
    assert install.install_waiter(site) is True
    assert binary.stat().st_ino != inode  # renamed over, never rewritten in place
    os.chmod(binary, 0o775)
    assert not install.waiter_is_current(site)
    assert [p.name for p in binary.parent.iterdir() if p.name.startswith(".")] == []


def test_launcher_trusts_only_a_root_owned_unwritable_regular_file(site, trusted_tmp):
    install.install_waiter(site)
    directory = str(install.waiter_paths(site)[1].parent)
    binary = install.waiter_paths(site)[1]
    fd = waiter.open_small_waiter(directory)
    assert fd >= 0
    assert os.path.samestat(os.fstat(fd), binary.stat())
    assert os.get_inheritable(fd) is False
    os.close(fd)
    for damage in ("group-writable", "other-owned", "symlink", "directory-writable",
                   "missing"):
        if damage == "group-writable":
            os.chmod(binary, 0o775)
        elif damage == "other-owned":
            os.chown(binary, 65534, 0)
        elif damage == "symlink":
            real = binary.with_name("real-waiter")
            os.rename(binary, real)
            os.symlink(real, binary)
        elif damage == "directory-writable":
            os.chmod(directory, 0o775)
        else:
            os.unlink(binary)
        assert waiter.open_small_waiter(directory) == -1, damage
        if binary.is_symlink():
            os.unlink(binary)
        os.chmod(directory, 0o755)
        install.install_waiter(site)


def test_waiter_passes_a_blocked_signal_on_still_pending(site):
    """The C waiter alone: TERM arrives blocked, it execs the next program, which finds it."""
    install.install_waiter(site)
    binary = str(install.waiter_paths(site)[1])
    probe = ("import signal,sys;print(signal.SIGTERM in signal.sigpending(), "
             "signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, []))")
    child = subprocess.Popen(["/bin/sleep", "30"])
    pidfd = os.pidfd_open(child.pid)
    try:
        proc = subprocess.Popen(
            [binary, str(child.pid), str(pidfd), "-1", "--", sys.executable, "-I", "-c", probe],
            pass_fds=(pidfd,), stdout=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, waiter.FORWARDED))
        # Not a child of the waiter, but its pidfd is watched all the same: until TERM comes,
        # it only waits.
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
        assert os.readlink(f"/proc/{proc.pid}/exe") == binary
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert out.split() == ["True", "True"]
    finally:
        os.close(pidfd)
        child.kill()
        child.wait()


def test_waiter_goes_on_when_the_watched_process_exits(site):
    install.install_waiter(site)
    binary = str(install.waiter_paths(site)[1])
    child = subprocess.Popen(["/bin/sleep", "0.5"])
    pidfd = os.pidfd_open(child.pid)
    try:
        proc = subprocess.run([binary, str(child.pid), str(pidfd), "-1", "--", "/bin/echo",
                               "next"], pass_fds=(pidfd,), capture_output=True, text=True,
                              timeout=10)
        assert proc.stdout == "next\n"
    finally:
        os.close(pidfd)
        child.wait()
