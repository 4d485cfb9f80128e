"""Where one launcher call spends its time: the pipeline in-process, as the front end runs it.

Usage (root; the interpreter and flags of the installed launcher)::

    /opt/glexec-py/bin/python -I -S -B [-X importtime] bench/profile_call.py \\
        [--profile] [--modules FILE] CONFIG CALLER_UID PROXY -- COMMAND [ARGS...]

Seals the caller environment into a memfd on fd 3 (what the C front end passes), pins sys.path
to the product's site-packages, turns the cyclic collector off and serves imports from the
module bundle (as bootstrap.py does) and calls ``glexec_py.main.run`` with the given caller. Just
before the payload's ``execve`` it prints the elapsed time, and ``--modules FILE`` writes the
sorted names of every loaded module there (the hot-path allowlist test does the same).
``--profile`` prints the top of a cProfile of the call instead of exec'ing.
"""

from __future__ import annotations

import os
import sys
import time

START = time.perf_counter()
SITE = "/opt/glexec-py/lib/python3.11/site-packages"
F_ADD_SEALS, SEALS = 1033, 0x1 | 0x2 | 0x4 | 0x8
PROFILER = None


def sealed_env(entries: dict[str, str]) -> int:
    import fcntl

    fd = os.memfd_create("glexec-caller-env", os.MFD_ALLOW_SEALING)
    os.write(fd, b"".join(f"{k}={v}".encode() + b"\0" for k, v in entries.items()))
    fcntl.fcntl(fd, F_ADD_SEALS, SEALS)
    if fd != 3:
        os.dup2(fd, 3)
        os.close(fd)
    return 3


PHASES = (("glexec_py.config", "load_config"), ("glexec_py.caller", "identify_caller"),
          ("glexec_py.environment", "read_caller_env"),
          ("glexec_py.proxy_input", "read_proxy_files"),
          ("glexec_py.main", "_verify_credentials"), ("glexec_py.policy", "evaluate"),
          ("glexec_py.identity", "resolve_target"), ("glexec_py.launch.child", "exec_payload"),
          ("glexec_py.launch.child", "become_target"))


def time_phases() -> None:
    """Wrap the pipeline's steps to print their wall time (imports of the step included)."""
    import importlib

    for modname, fname in PHASES:
        module = importlib.import_module(modname)
        inner = getattr(module, fname)

        def timed(*a, _inner=inner, _name=fname, **kw):  # noqa: ANN002, ANN003, ANN202
            t = time.perf_counter()
            try:
                return _inner(*a, **kw)
            finally:
                os.write(2, f"  {_name}: {(time.perf_counter() - t) * 1000:.2f} ms\n".encode())

        setattr(module, fname, timed)


def main() -> None:
    args = sys.argv[1:]
    profile = "--profile" in args
    if profile:
        args.remove("--profile")
    phases = "--phases" in args
    if phases:
        args.remove("--phases")
    modules_file = None
    if "--modules" in args:
        i = args.index("--modules")
        modules_file = args[i + 1]
        del args[i:i + 2]
    if profile:
        import cProfile
        import pstats  # noqa: F401 - loaded before the measured call, not inside it

        global PROFILER
        PROFILER = cProfile.Profile()
    sep = args.index("--")
    config, uid, proxy = args[:sep]
    command = args[sep + 1:]
    sys.path[:] = [p for p in sys.path if p.startswith(sys.base_prefix)] + [SITE]
    import pwd

    pw = pwd.getpwnam(uid) if not uid.isdigit() else pwd.getpwuid(int(uid))
    sealed_env({"PATH": "/usr/bin:/bin", "GLEXEC_CLIENT_CERT": proxy})
    real_execve = os.execve

    def report_execve(path, argv, env):  # noqa: ANN001, ANN202 - same signature as os.execve
        ms = (time.perf_counter() - START) * 1000
        os.write(2, f"profile_call: {ms:.1f} ms in Python up to execve\n".encode())
        if modules_file:
            with open(modules_file, "w") as f:
                f.write("\n".join(sorted(sys.modules)) + "\n")
        if profile:
            import pstats

            PROFILER.disable()
            pstats.Stats(PROFILER).sort_stats("cumulative").print_stats(45)
            sys.stdout.flush()
            os._exit(0)
        real_execve(path, argv, env)

    os.execve = report_execve
    import gc

    gc.disable()  # as bootstrap.py does
    from glexec_py.codebundle import install_finder

    install_finder(SITE)  # as bootstrap.py does: the launcher's modules from its bundle
    if phases:
        time_phases()
    from glexec_py.main import Installed, run

    installed = Installed(config, "setuid", sys.executable, "", SITE)
    os.chdir("/")

    def call() -> int:
        return run(command, caller_uid=pw.pw_uid, caller_gid=pw.pw_gid,
                   invoker_pid=os.getppid(), installed=installed, cwd="/")

    if profile:
        PROFILER.enable()
        call()
        return
    sys.exit(call())


if __name__ == "__main__":
    main()
