"""Wait for the payload; after a hand-over, do it in a fresh, small interpreter.

Runs as: root (all ids 0: the lingering launcher, and after ``hand_over`` the same process
re-executed, so the pilot can still not signal it). Trusts: the state record the launcher sealed
into a memfd before its exec. Hot path: yes (linger = yes); at module level only ``os``,
``_signal``, ``marshal`` and ``time``; ``select`` (built in) where a wait starts.

Why a hand-over: the lingering parent stays resident for the whole job, but the launcher that
verified the proxy and evaluated the policy carries every module it loaded (~11 MiB RSS). A
payload still running after ``HANDOVER_AFTER`` seconds gets a new parent image instead: the
launcher blocks the forwarded signals (pending ones stay pending across execve), keeps the
process descriptors, log and proc-connector descriptors open, writes its state as a marshal
record into a sealed memfd and execs its own interpreter on :func:`main`. The pid, the parent,
the child subreaper flag, the payload as a child and uid 0 all survive execve. The waiter only
imports what waiting and forwarding need; the end of the call (leftovers, records, epilogue)
imports its modules when the payload has ended. Short payloads never pay for the exec.

Even that interpreter is ~8 MiB resident for the whole job, so in the simple state (no
proc-events reader to feed, no KILL pending) the exec goes first to ``glexec-py-waiter``
(``glexec_waiter.c``, built next to this file at install, ~1.2 MiB): it only waits - signalfd
on the still-blocked forwarded signals, the payload's and the pilot's pidfds - and on the first
event execs the Python waiter with the argv given here, which then finds the signal still
pending or the pidfd readable. Missing or untrusted, it is skipped.
"""

from __future__ import annotations

import _signal
import marshal
import os
import time

FORWARDED = (1, 2, 3, 10, 12, 14, 15, 24)  # HUP INT QUIT USR1 USR2 ALRM TERM XCPU
HANDOVER_AFTER = 0.25  # seconds the full launcher waits before it replaces itself
_F_ADD_SEALS = 1033
_SEALS = 0x1 | 0x2 | 0x4 | 0x8  # SEAL_SEAL | SEAL_SHRINK | SEAL_GROW | SEAL_WRITE
_MAX_RECORD = 1 << 20
SMALL_WAITER = "glexec-py-waiter"  # built from glexec_waiter.c next to this module
# Run by ``python -I -S -B -c``: sys.path gets exactly the standard library and the launcher's
# own site-packages (already checked by bootstrap.py in this call), as bootstrap.py pins it.
_BOOT = ("import sys;sys.path[:]=[p for p in sys.path if p.startswith(sys.base_prefix)]"
         "+[sys.argv[1]];from glexec_py.launch.waiter import main;main()")


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _stop(pid: int) -> None:
    for signum in (15, 18):  # TERM, and CONT in case it is stopped
        _kill(pid, signum)


class Watch:
    """The payload's and the calling pilot's process descriptors, and the pending KILL.

    Both descriptors become readable when their process exits. A dead pilot leaves nobody to
    act on the payload, so it gets TERM, and KILL after the grace period: PR_SET_PDEATHSIG
    cannot tell us (the kernel checks the dying, unprivileged parent's permission to signal
    the root launcher and drops the signal). Our parent's pid cannot be recycled while we are
    still its child, which is checked after opening.
    """

    __slots__ = ("pid", "grace", "payload_fd", "pilot_fd", "kill_at", "extra_fd", "_poller")

    def __init__(self, pid: int, grace: float, payload_fd: int, pilot_fd: int,
                 kill_at: float, extra_fd: int = -1) -> None:
        self.pid = pid
        self.grace = grace
        self.payload_fd = payload_fd
        self.pilot_fd = pilot_fd
        self.kill_at = kill_at
        self.extra_fd = extra_fd
        import select

        self._poller = select.poll()
        for fd in (payload_fd, pilot_fd, extra_fd):
            if fd >= 0:
                self._poller.register(fd, select.POLLIN)

    @classmethod
    def open(cls, pid: int, pilot: int, grace: float) -> Watch:
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
        kill_at = 0.0
        if pilot > 1 and pilot_fd < 0:
            _stop(pid)  # the pilot was already gone before we could watch it
            kill_at = time.monotonic() + grace + 1
        return cls(pid, grace, payload_fd, pilot_fd, kill_at)

    @property
    def pilot_died(self) -> bool:
        return bool(self.kill_at)

    def wait(self, until: float = 0.0, on_extra: object = None) -> bool:
        """Block until the payload exits (True) or the monotonic time ``until`` passes."""
        while True:
            now = time.monotonic()
            ends = [t for t in (self.kill_at, until) if t]
            timeout = None if not ends else max(0, int((min(ends) - now) * 1000) + 1)
            ready = {fd for fd, _ in self._poller.poll(timeout)}
            if self.payload_fd in ready:
                return True
            if self.extra_fd >= 0 and self.extra_fd in ready and on_extra is not None:
                on_extra()
            if self.pilot_fd >= 0 and self.pilot_fd in ready:
                self._poller.unregister(self.pilot_fd)
                os.close(self.pilot_fd)
                self.pilot_fd = -1
                _stop(self.pid)
                self.kill_at = time.monotonic() + self.grace + 1
            now = time.monotonic()
            if self.kill_at and now >= self.kill_at:
                _kill(self.pid, 9)
                self.kill_at = now + 1  # again in a second if it is still there
            if until and now >= until:
                return False

    def close(self) -> None:
        for fd in (self.payload_fd, self.pilot_fd):
            if fd >= 0:
                os.close(fd)
        self.payload_fd = self.pilot_fd = -1


def install_forwarding(pid: int, members: object) -> None:
    """Forward the batch system's and root's signals to the payload, then unblock them.

    On TERM (scancel, qdel, the batch system's stop) what the payload left running in other
    process groups or sessions is told too, at once, before the batch system's KILL may end
    this launcher and its clean-up with it. ``members()`` returns the tracked pids.
    """

    def forward(signum: int, frame: object) -> None:
        _kill(pid, signum)
        if signum == 15:
            for other in members() - {pid}:
                _kill(other, 15)

    for signum in FORWARDED:
        _signal.signal(signum, forward)
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, FORWARDED)


def hand_over(record: dict, keep: list[int]) -> None:
    """Replace this process's image by the small waiter; returns only if that fails.

    Called with the forwarded signals unblocked; blocks them first, so a TERM arriving
    during the exec stays pending and reaches the waiter's handler (never the default
    action, which would kill the payload's parent). On failure they are unblocked again.
    """
    import sys

    _signal.pthread_sigmask(_signal.SIG_BLOCK, FORWARDED)
    memfd = -1
    try:
        memfd = os.memfd_create("glexec-waiter-state", os.MFD_ALLOW_SEALING)
        data = marshal.dumps(record)
        if os.write(memfd, data) != len(data):
            raise OSError("short write of the waiter state")
        import fcntl

        fcntl.fcntl(memfd, _F_ADD_SEALS, _SEALS)
        for fd in [memfd, *keep]:
            if fd >= 0:
                os.set_inheritable(fd, True)
        here = os.path.dirname(os.path.abspath(__file__))
        site = os.path.dirname(os.path.dirname(here))
        argv = [sys.executable, "-I", "-S", "-B", "-c", _BOOT, site, str(memfd)]
        env = dict(os.environ)
        if record["tracker"]["events_fd"] < 0 and not record["kill_at"]:
            exec_small_waiter(here, [SMALL_WAITER, str(record["pid"]), str(record["payload_fd"]),
                                     str(record["pilot_fd"]), "--", *argv], env)
        os.execve(sys.executable, argv, env)
    except (OSError, ValueError):
        for fd in keep:
            if fd >= 0:
                os.set_inheritable(fd, False)
        if memfd >= 0:
            os.close(memfd)
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, FORWARDED)


def open_small_waiter(directory: str) -> int:
    """A descriptor of the trusted ``glexec-py-waiter`` in ``directory``, or -1.

    Executed through this descriptor (fexecve), so what was checked is what runs: a regular
    file owned by root and writable by nobody else, in a directory of the same kind (the
    directory this module itself was loaded from). Anything else means the Python waiter.
    """
    try:
        fd = os.open(f"{directory}/{SMALL_WAITER}", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return -1
    try:
        st = os.fstat(fd)
        parent = os.stat(directory, follow_symlinks=False)
    except OSError:
        os.close(fd)
        return -1
    if (st.st_mode & 0o170000) != 0o100000 or st.st_uid != 0 or st.st_mode & 0o022 or \
            parent.st_uid != 0 or parent.st_mode & 0o022 or (parent.st_mode & 0o170000) != 0o040000:
        os.close(fd)
        return -1
    return fd


def exec_small_waiter(directory: str, argv: list[str], env: dict[str, str]) -> None:
    """Become the C waiter; returns only if it is missing, untrusted or cannot be executed."""
    fd = open_small_waiter(directory)
    if fd < 0:
        return
    try:
        os.execve(fd, argv, env)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_record(fd: int) -> dict:
    chunks = []
    size = 0
    os.lseek(fd, 0, os.SEEK_SET)
    while size <= _MAX_RECORD:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    os.close(fd)
    return marshal.loads(b"".join(chunks))  # noqa: S302 - our own sealed record, root-only


def main() -> None:
    """Entry of the re-executed launcher: go on waiting, then end the call as the launcher would."""
    import sys

    import _prctl  # execve made us dumpable again; a root process of this call must not be

    _prctl.prctl(_prctl.PR_SET_DUMPABLE, 0)
    status = 202
    try:
        state = _read_record(int(sys.argv[2]))
        status = run_waiter(state)
    except BaseException as exc:  # noqa: BLE001 - no traceback, no Python exit path: one status
        message = getattr(exc, "message", "") or "the lingering launcher failed after the hand-over"
        status = getattr(exc, "exit_code", 202)
        try:
            os.write(2, f"glexec: {message}\n".encode("utf-8", "backslashreplace")[:4000])
        except OSError:
            pass
    os._exit(status)


def run_waiter(state: dict) -> int:
    pid = state["pid"]
    tracker = None

    def restore_tracker() -> object:
        nonlocal tracker
        if tracker is None:
            from glexec_py.launch.tracking import ProcessTracker

            tracker = ProcessTracker.from_state(state["tracker"])
        return tracker

    def members() -> set[int]:
        return restore_tracker().members()

    on_extra = None
    extra_fd = state["tracker"]["events_fd"]
    if extra_fd >= 0:  # proc events: keep reading them, or the socket overflows and loses some
        on_extra = restore_tracker()._events.drain
    watch = Watch(pid, state["grace"], state["payload_fd"], state["pilot_fd"],
                  state["kill_at"], extra_fd)
    install_forwarding(pid, members)
    watch.wait(on_extra=on_extra)
    from glexec_py.launch.linger import collect_payload, finish_call
    from glexec_py.log import Logger

    done = collect_payload(pid, watch, restore_tracker(), state["started"], state["grace"])
    logger = Logger.from_state(state["logger"])
    return finish_call(done, state["finish"], logger)
