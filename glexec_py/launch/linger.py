"""The lingering parent: wait for the payload, forward signals, record, clean up, epilogue.

Runs as: root (uid 0 in all three ids, so the caller cannot signal or stop it: the fix for
EGI-SVG-2011-1641). Trusts: the launch plan. Hot path: yes.

The parent stays the payload's parent and reaps it with wait4, so the batch system's rusage
chain and process-tree tracking see the payload's CPU. ``tracking.ProcessTracker`` follows every
process the payload creates (and makes the launcher a child subreaper, so orphans re-parent to it
rather than to init); when the payload ends, the leftovers are terminated, TERM then KILL -
reparenting or setsid cannot escape it (EGI-SVG-2011-1474). Signals a batch system or root sends
to the launcher are forwarded; STOP/TSTP/CONT are left alone so suspend acts on both directly.
"""

from __future__ import annotations

import _signal
import os
import time

from glexec_py.errors import EXIT_PAYLOAD_20X, ClientError, ExecError, SiteError

TYPE_CHECKING = False  # "import typing" costs ~10 ms of start-up (it imports re)
if TYPE_CHECKING:
    from collections.abc import Callable

    from glexec_py.launch.plan import LaunchPlan

FORWARDED = (1, 2, 3, 10, 12, 14, 15, 24)  # HUP INT QUIT USR1 USR2 ALRM TERM XCPU

_ERROR_CLASSES = {201: ClientError, 202: SiteError, 126: ExecError}


class Completion:
    """How the payload ended: raw wait status, CPU times, wall time, leftovers terminated."""

    __slots__ = ("pid", "status", "utime", "stime", "started", "ended", "leftovers",
                 "tracking", "pilot_died")

    def __init__(self, pid: int, status: int, utime: float, stime: float, started: float,
                 ended: float) -> None:
        self.pid = pid
        self.status = status
        self.utime = utime
        self.stime = stime
        self.started = started
        self.ended = ended
        self.leftovers: list[int] = []
        self.tracking = ""
        self.pilot_died = False


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _wait_for_payload_or_pilot(pid: int, pilot: int, grace: float) -> bool:
    """Block until the payload exits; if the calling pilot dies first, stop the payload.

    A dead pilot leaves nobody to act on the payload, so it gets TERM, and KILL after the grace
    period. PR_SET_PDEATHSIG cannot tell us: the kernel checks the dying (unprivileged) parent's
    permission to signal the root launcher and drops the signal. Process descriptors can: both
    become readable when their process exits, and our parent's pid cannot be recycled while
    we are still its child (checked after opening). Returns whether the pilot died first.
    """
    import select

    payload_fd = os.pidfd_open(pid)
    pilot_fd = -1
    if pilot > 1:
        try:
            pilot_fd = os.pidfd_open(pilot)
        except OSError:
            pilot_fd = -1
        if os.getppid() != pilot and pilot_fd >= 0:  # already gone (and maybe recycled)
            os.close(pilot_fd)
            pilot_fd = -1
    poller = select.poll()
    poller.register(payload_fd, select.POLLIN)
    if pilot_fd >= 0:
        poller.register(pilot_fd, select.POLLIN)
    elif pilot > 1:
        _stop(pid)  # the pilot was already gone before we could watch it
        pilot_fd = -2
    kill_at = time.monotonic() + grace + 1 if pilot_fd == -2 else 0.0
    try:
        while True:
            timeout = None if not kill_at else max(0, int((kill_at - time.monotonic()) * 1000))
            ready = {fd for fd, _ in poller.poll(timeout)}
            if payload_fd in ready:
                return bool(kill_at)
            if pilot_fd >= 0 and pilot_fd in ready:
                poller.unregister(pilot_fd)
                _stop(pid)
                kill_at = time.monotonic() + grace + 1
            if kill_at and time.monotonic() >= kill_at:
                _kill(pid, 9)
                kill_at = time.monotonic() + 1  # again in a second if it is still there
    finally:
        os.close(payload_fd)
        if pilot_fd >= 0:
            os.close(pilot_fd)


def _stop(pid: int) -> None:
    for signum in (15, 18):  # TERM, and CONT in case it is stopped
        _kill(pid, signum)


def run_lingering(plan: LaunchPlan, *, on_started: Callable[[int], None],
                  start_child: Callable[[int], None]) -> Completion:
    """Fork the payload child, wait for it, then clean up; return how it ended."""
    from glexec_py.launch.tracking import ProcessTracker

    tracker = ProcessTracker(method=plan.tracking or "auto")
    tracker.before_fork()
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    parent = os.getpid()
    started = time.time()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        code, message = 202, "internal error"
        try:
            tracker.in_child()
            start_child(parent)
        except (ClientError, SiteError, ExecError) as exc:
            code, message = exc.exit_code, exc.message
        except BaseException as exc:  # noqa: BLE001 - a child must never return into main
            message = f"internal error before exec: {type(exc).__name__}"
        try:
            os.write(wfd, f"{code} {message}".encode("utf-8", "replace")[:4000])
        finally:
            os._exit(127)
    os.close(wfd)
    tracker.after_fork(pid)
    report = b""
    while True:
        chunk = os.read(rfd, 4096)
        if not chunk:
            break
        report += chunk
    os.close(rfd)
    if report:
        os.waitpid(pid, 0)
        tracker.close()
        code, _, message = report.decode("utf-8", "replace").partition(" ")
        raise _ERROR_CLASSES.get(int(code) if code.isdigit() else 202, SiteError)(message)
    on_started(pid)

    def forward(signum: int, frame: object) -> None:
        _kill(pid, signum)
        if signum == 15:
            # Told to stop (scancel, qdel, the batch system's TERM): what the payload left
            # running (daemons in other process groups or sessions) is told too, now, before
            # the batch system's KILL may end this launcher and its clean-up with it.
            for other in tracker.members() - {pid}:
                _kill(other, 15)

    for signum in FORWARDED:
        _signal.signal(signum, forward)
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, FORWARDED)
    pilot_died = _wait_for_payload_or_pilot(pid, plan.invoker_pid, float(plan.grace or 0))
    while True:
        wpid, status, usage = os.wait4(pid, 0)
        if wpid == pid:
            break
    _signal.pthread_sigmask(_signal.SIG_BLOCK, FORWARDED)
    done = Completion(pid, status, usage.ru_utime, usage.ru_stime, started, time.time())
    done.pilot_died = pilot_died
    done.leftovers = tracker.terminate_leftovers(float(plan.grace or 0))
    done.tracking = tracker.method_used
    tracker.close()
    return done


def run_epilogue(plan: LaunchPlan, env: dict[str, str]) -> int:
    """Run the site's trusted epilogue; return glexec's status contribution (0, 202 or 204)."""
    import pwd

    from glexec_py.trust import open_trusted_file

    fd, _ = open_trusted_file(plan.epilogue, what="epilogue")
    os.close(fd)
    try:
        account = pwd.getpwnam(plan.epilogue_user or "root")
    except KeyError:
        raise SiteError(f"epilogue_user {plan.epilogue_user!r} does not exist") from None
    gid = account.pw_gid
    if plan.epilogue_group:
        import grp

        try:
            gid = grp.getgrnam(plan.epilogue_group).gr_gid
        except KeyError:
            raise SiteError(f"epilogue_group {plan.epilogue_group!r} does not exist") from None
    # Built from scratch: the epilogue usually runs as root, so nothing the caller or the
    # payload's account chose may reach it -- not preserve_env_variables (LD_*, BASH_ENV), not
    # the caller's GLEXEC_* values, not the target's HOME (its dotfiles, ~/.local site
    # packages). Only the documented GLEXEC_EPILOG_* interface is passed on.
    epilogue_env = {name: value for name, value in env.items()
                    if name.startswith("GLEXEC_EPILOG_")}
    epilogue_env.update({"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": account.pw_dir or "/",
                         "USER": account.pw_name, "LOGNAME": account.pw_name,
                         "SHELL": "/bin/sh"})
    pid = os.fork()
    if pid == 0:
        try:
            null = os.open("/dev/null", os.O_RDWR)
            for target in (0, 1, 2):
                os.dup2(null, target)
            if account.pw_uid != 0:
                from glexec_py import ids

                ids.drop_to(account.pw_uid, gid, (gid,))
            from glexec_py.launch.child import close_inherited_fds, reset_signals

            close_inherited_fds()
            reset_signals()
            os.chdir("/")
            os.execve(plan.epilogue, [plan.epilogue], epilogue_env)
        finally:
            os._exit(127)
    deadline = time.monotonic() + (plan.epilogue_timeout or 300)
    killed_at = 0.0
    while True:
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            break
        now = time.monotonic()
        if now >= deadline and not killed_at:
            os.kill(pid, 15)
            killed_at = now
        elif killed_at and now >= killed_at + 5:
            os.kill(pid, 9)
        time.sleep(0.02)
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        if code == 0:
            return 0
        return EXIT_PAYLOAD_20X if 201 <= code <= 204 else 202
    return 202
