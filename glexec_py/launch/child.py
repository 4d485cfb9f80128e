"""The payload's side of the fork: become the target, hand over the proxy, reset, exec.

Runs as: root until ``ids.drop_to``, then the target account. Trusts: the launch plan.
Hot path: yes.

Nothing here may leave the batch system's view: no setsid, no new process group, no cgroup move,
rlimits untouched (the batch system set them). What must *not* be inherited is reset: signal
dispositions (CPython itself ignores SIGPIPE and SIGXFSZ) and the signal mask go back to default,
only fds 0-2 stay open, the caller's umask comes back. A failure before exec is reported to the
lingering parent over a close-on-exec pipe; success is the pipe closing at exec.
"""

from __future__ import annotations

import _signal
import os

from glexec_py.errors import ClientError, ExecError, GlexecError, SiteError

TYPE_CHECKING = False  # "import typing" costs ~10 ms of start-up (it imports re)
if TYPE_CHECKING:
    from glexec_py.launch.plan import LaunchPlan

_NSIG = 65


def reset_signals() -> None:
    """Every disposition to default, nothing blocked: the payload starts like a fresh process."""
    for signum in range(1, _NSIG):
        if signum in (9, 19, 32, 33):  # SIGKILL, SIGSTOP, glibc-internal RT signals
            continue
        try:
            _signal.signal(signum, _signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def close_inherited_fds(keep: tuple[int, ...] = ()) -> None:
    """Close every descriptor >= 3 that would survive exec (close-on-exec ones vanish anyway)."""
    import fcntl

    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd < 3 or fd in keep:
            continue
        try:
            if not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC:
                os.close(fd)
        except OSError:
            pass


def become_target(plan: LaunchPlan, *, parent_pid: int = 0) -> None:
    """Switch identity (unless declare-only), then write the target proxy as the target.

    The parent-death signal is set after the switch because the kernel clears it when the
    effective uid changes; a payload whose lingering launcher was killed dies with it.
    """
    from glexec_py.launch.target_proxy import write_target_proxy

    if plan.switch:
        from glexec_py import ids

        ids.drop_to(plan.uid, plan.gid, plan.groups)
    if parent_pid:
        import _prctl

        _prctl.prctl(_prctl.PR_SET_PDEATHSIG, 9)
        if os.getppid() != parent_pid:
            raise SiteError("launcher went away before the payload started")
    if plan.proxy_data is not None:
        write_target_proxy(plan.proxy_path, plan.proxy_data, target_uid=plan.uid,
                           lock=plan.lock)


def exec_payload(plan: LaunchPlan, *, parent_pid: int = 0) -> None:
    """Become the target and exec the command; only returns by raising GlexecError."""
    become_target(plan, parent_pid=parent_pid)
    try:
        command = plan.command
        try:
            os.chdir(plan.cwd or "/")
        except OSError as exc:
            raise ClientError(f"the target account cannot enter the current directory "
                              f"{plan.cwd}: {exc.strerror}") from None
        if plan.no_symlink and "/" in command[0]:
            import stat

            try:
                if stat.S_ISLNK(os.lstat(command[0]).st_mode):
                    raise ClientError(f"command {command[0]} is a symbolic link "
                                      f"(prohibit_exec_via_symlink)")
            except FileNotFoundError:
                pass
        os.umask(plan.umask)
        from glexec_py.launch.rlimits import restore_caller_limits

        close_inherited_fds()
        restore_caller_limits()  # last: a restored RLIMIT_NOFILE of 3 allows no more opens
        reset_signals()
        try:
            if "/" in command[0]:
                os.execve(command[0], list(command), plan.env)
            else:
                os.execvpe(command[0], list(command), plan.env)
        except OSError as exc:
            # valid_signals(): range(1, 65) names glibc's reserved 32/33, and the
            # RuntimeWarning about them went to the caller's stderr as two extra lines
            _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
            if exc.errno == 2:
                raise ClientError(f"command not found: {command[0]}") from None
            raise ExecError(f"cannot execute {command[0]}: {exc.strerror}") from None
    except GlexecError:
        if plan.proxy_data is not None:
            from glexec_py.launch.target_proxy import remove_target_proxy

            remove_target_proxy(plan.proxy_path)
        raise
