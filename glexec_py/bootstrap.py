"""First Python code of every glexec call: harden the process, fix sys.path, hand over to main.

Runs as: root in all ids (setuid mode) or the caller (declare-only), started by the C front end
as ``python -I -S -B bootstrap.py <uid> <gid> <invoker> <umask> <config> <mode> <python>
<site-packages> -- <caller's arguments>``. Trusts: its compiled-in arguments. Hot path: yes.

Protect first, then read: no core dumps or ptrace of a root process holding a private key,
umask 077 for anything root creates, the asynchronous signals blocked (a terminal's Ctrl-C
reaches the whole process group, whatever the uid), cwd moved to /. ``-I -S`` keeps PYTHON*
variables, user site and .pth files out; sys.path gets exactly the launcher's own root-owned
site-packages, checked here component by component before anything is imported from it.
"""

import _signal
import gc
import os
import stat
import sys

BLOCKED = (1, 2, 3, 10, 12, 13, 14, 15, 20, 21, 22, 24, 25)  # incl. TSTP/TTIN/TTOU, PIPE, XFSZ
EXIT_SYSTEM = 202
INTERNAL_ERROR = b"glexec: internal error (out of memory?); nothing was started\n"


def _fail(message: str) -> None:
    os.write(2, f"glexec: {message}\n".encode("utf-8", "backslashreplace"))
    os._exit(EXIT_SYSTEM)


def _check_root_owned(path: str) -> None:
    """Every directory from / to ``path`` root-owned and not writable by group or others."""
    if not path.startswith("/"):
        _fail(f"site-packages path {path!r} is not absolute")
    current = ""
    for part in path.strip("/").split("/"):
        current += "/" + part
        try:
            st = os.lstat(current)
            if stat.S_ISLNK(st.st_mode):
                st = os.stat(current)
        except OSError:
            _fail(f"launcher installation {current} is missing")
        if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            _fail(f"launcher installation {current} is not root-owned and protected")


def main() -> None:
    _signal.pthread_sigmask(_signal.SIG_BLOCK, BLOCKED)
    # A call lives for milliseconds and makes almost no reference cycles, but importing ~50
    # modules allocates enough objects to run the cyclic collector several times (about 1 ms
    # of a warm call). The lingering parent, which lives as long as the job, turns it back on.
    gc.disable()
    args = sys.argv[1:]
    if len(args) < 9 or args[8] != "--":
        _fail("must be started by the glexec front end")
    uid, gid, mode, site = args[0], args[1], args[5], args[7]
    if mode == "setuid":
        if os.getresuid() != (0, 0, 0) or os.getresgid() != (0, 0, 0):
            _fail("not running privileged (is glexec installed setuid root, and is "
                  "no_new_privs set?)")
    elif mode == "declare-only":
        if str(os.getuid()) != uid or str(os.getgid()) != gid:
            _fail("declare-only launcher started with another caller's ids")
    else:
        _fail(f"unknown launcher mode {mode!r}")
    os.umask(0o077)
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    os.chdir("/")
    _check_root_owned(site)
    _check_root_owned(os.path.join(site, "glexec_py"))
    sys.path[:] = [p for p in sys.path if p.startswith(sys.base_prefix)] + [site]
    import _prctl  # python-prctl's C core; its Python wrapper costs ~1.2 ms of start-up

    _prctl.prctl(_prctl.PR_SET_DUMPABLE, 0)
    try:
        from glexec_py.codebundle import install_finder

        install_finder(site)  # without a (trusted, current) bundle: the normal finders
        from glexec_py.main import main_from_frontend

        code = main_from_frontend(args, cwd=cwd)
    except BaseException:  # noqa: BLE001
        # The last line of defence: main catches everything it can, but a MemoryError raised
        # while it reports a failure (a caller's tiny RLIMIT_AS) would otherwise end in a
        # traceback with exit status 1. Nothing is allocated here.
        try:
            os.write(2, INTERNAL_ERROR)
        finally:
            os._exit(EXIT_SYSTEM)
    # No interpreter finalization (module teardown, a last collection: ~3 ms): every record
    # went out through os.write, so only Python's own stdout/stderr buffers need flushing.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stdout must not change the exit status
    os._exit(code if isinstance(code, int) and 0 <= code <= 255 else EXIT_SYSTEM)


if __name__ == "__main__":
    main()
