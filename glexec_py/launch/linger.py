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
from glexec_py.launch.waiter import FORWARDED

TYPE_CHECKING = False  # "import typing" costs ~10 ms of start-up (it imports re)
if TYPE_CHECKING:
    from collections.abc import Callable

    from glexec_py.launch.plan import LaunchPlan
    from glexec_py.launch.tracking import ProcessTracker
    from glexec_py.launch.waiter import Watch
    from glexec_py.log import Logger


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


def finish_record(plan: LaunchPlan, target_name: str, target_uid: int) -> dict:
    """What the end of the call needs, as plain values (it may run in the small waiter)."""
    return {"name": target_name, "uid": target_uid, "monitor": os.getpid(),
            "epilogue": plan.epilogue or "", "epilogue_user": plan.epilogue_user or "",
            "epilogue_group": plan.epilogue_group or "",
            "epilogue_timeout": plan.epilogue_timeout or 0,
            "epilog_env": {k: v for k, v in (plan.env or {}).items()
                           if k.startswith("GLEXEC_EPILOG_")}}


def run_lingering(plan: LaunchPlan, *, on_started: Callable[[int], None],
                  start_child: Callable[[int], None], logger: Logger | None = None,
                  finish: dict | None = None) -> Completion:
    """Fork the payload child, wait for it, then clean up; return how it ended.

    With ``logger`` and ``finish`` given, a payload still running after ``HANDOVER_AFTER``
    seconds is waited for by the small waiter instead (``waiter.hand_over``), which also ends
    the call; then this function does not return.
    """
    from glexec_py.launch.tracking import ProcessTracker
    from glexec_py.launch.waiter import HANDOVER_AFTER, Watch, install_forwarding

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
    grace = float(plan.grace or 0)
    install_forwarding(pid, tracker.members)
    watch = Watch.open(pid, plan.invoker_pid or 0, grace)
    until = time.monotonic() + HANDOVER_AFTER if logger is not None and finish else 0.0
    if not watch.wait(until):
        _hand_over(pid, watch, tracker, started, grace, logger, finish)
        watch.wait()  # the exec failed: go on waiting here
    return collect_payload(pid, watch, tracker, started, grace)


def _hand_over(pid: int, watch: Watch, tracker: ProcessTracker, started: float, grace: float,
               logger: Logger, finish: dict) -> None:
    from glexec_py.launch.waiter import hand_over

    try:
        tracker_state = tracker.export_state()
    except OSError:
        return  # the proc connector reader did not stop: stay the full launcher
    log_state = logger.export_state()
    record = {"pid": pid, "started": started, "grace": grace, "payload_fd": watch.payload_fd,
              "pilot_fd": watch.pilot_fd, "kill_at": watch.kill_at, "tracker": tracker_state,
              "logger": log_state, "finish": finish}
    keep = [watch.payload_fd, watch.pilot_fd, logger.fd, log_state["sock_fd"],
            tracker_state["events_fd"]]
    hand_over(record, keep)
    # Still here: the exec failed. Take the tracker back as it was handed over.
    from glexec_py.launch.tracking import ProcessTracker

    restored = ProcessTracker.from_state(tracker_state)
    tracker._events = restored._events


def collect_payload(pid: int, watch: Watch, tracker: ProcessTracker, started: float,
                    grace: float) -> Completion:
    """Reap the payload (it has exited), then end whatever it left running."""
    while True:
        wpid, status, usage = os.wait4(pid, 0)
        if wpid == pid:
            break
    _signal.pthread_sigmask(_signal.SIG_BLOCK, FORWARDED)
    watch.close()
    done = Completion(pid, status, usage.ru_utime, usage.ru_stime, started, time.time())
    done.pilot_died = watch.pilot_died
    done.leftovers = tracker.terminate_leftovers(grace)
    done.tracking = tracker.method_used
    tracker.close()
    return done


class _Target:
    __slots__ = ("name", "uid")

    def __init__(self, name: str, uid: int) -> None:
        self.name = name
        self.uid = uid


def finish_call(done: Completion, finish: dict, logger: Logger) -> int:
    """The glexec.mon end line, the epilogue and the completion record; return the status."""
    from glexec_py.errors import EXIT_SYSTEM, GlexecError, status_for_payload
    from glexec_py.launch.tracking import format_glexec_mon
    from glexec_py.main import completion_record

    status = status_for_payload(done.status)
    for line in format_glexec_mon(finish["monitor"], done.pid, cpu_user=done.utime,
                                  cpu_system=done.stime):
        logger.notice_line(line)  # a log that fails here fails the call (202), as before
    epilogue_status = 0
    if finish["epilogue"]:
        from glexec_py.launch.plan import LaunchPlan

        plan = LaunchPlan(epilogue=finish["epilogue"], epilogue_user=finish["epilogue_user"],
                          epilogue_group=finish["epilogue_group"],
                          epilogue_timeout=finish["epilogue_timeout"])
        env = dict(finish["epilog_env"])
        env.update({"GLEXEC_EPILOG_USER": finish["name"],
                    "GLEXEC_EPILOG_UID": str(finish["uid"]),
                    "GLEXEC_EPILOG_PAYLOAD_PID": str(done.pid),
                    "GLEXEC_EPILOG_PAYLOAD_STATUS": str(status)})
        try:
            epilogue_status = run_epilogue(plan, env)
        except GlexecError as exc:
            try:
                logger.error(f"epilogue failed: {exc.message}")
            except GlexecError:
                pass
            epilogue_status = EXIT_SYSTEM
    if epilogue_status:
        status = epilogue_status
    try:
        logger.notice(completion_record(done, _Target(finish["name"], finish["uid"]), status))
    except GlexecError as exc:
        from glexec_py.log import escape

        try:
            os.write(2, f"glexec: {escape(exc.message, 2000)}\n".encode("utf-8", "replace"))
        except OSError:
            pass
    return status


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
