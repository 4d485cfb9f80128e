"""Find and end every process a payload left behind, however it tried to leave the tree.

Runs as: root (the lingering launcher parent; ``in_child`` in the payload child before the identity
switch). Trusts: the kernel's view of cgroups and processes; nothing the payload writes.
Hot path: yes (only os/errno/time at import; socket, struct and _thread are
imported inside the proc-events method, _prctl inside ``before_fork``).

Why several methods: the batch system must keep the payload in its hands, so the tracker never
moves a payload *out of* the launcher's cgroup, and never into a hierarchy a batch system uses to
find, freeze or account jobs.  It picks, in ``auto`` mode, the first that works here:

``cgroup-v2``     a child cgroup below the launcher's own in the unified hierarchy, only where that
                  cgroup has no controllers (a hybrid mount or a cgroup nobody delegated
                  controllers to): membership there changes no limit and no accounting, and
                  children inherit it across setsid and double forks.  Kill is ``cgroup.kill``,
                  fork races are stopped with ``cgroup.freeze``, CPU comes from ``cpu.stat``.
``cgroup-v1``     the same in the v1 ``pids`` hierarchy (no batch system tracks jobs with it; its
                  limits are hierarchical, so TasksMax and friends still apply); ``pids.max = 0``
                  stops fork races while the leftovers are killed.
``proc-events``   the kernel's process events (netlink proc connector, root only): a thread
                  follows every fork from the payload, whoever the parent becomes later.
``tracking-gid``  processes carrying the per-invocation tracking gid (the payload cannot drop a
                  supplementary gid without root).  Never use a gid shared with the pilot.
``descendants``   the launcher's descendants; unescapable only thanks to the subreaper below.

In every method the launcher becomes a *child subreaper* (``PR_SET_CHILD_SUBREAPER``): a payload
that double-forks re-parents to the launcher, not to init, so it stays a descendant of the batch
system's daemon (Slurm's ``proctrack/linuxproc``, Torque's ``ProcIsChild``, prune_userprocs).
Consequence for the caller: wait for the payload with ``waitpid(pid)``, not ``waitpid(-1)``;
``terminate_leftovers`` reaps the re-parented rest.
"""

from __future__ import annotations

import errno
import os
import time

TYPE_CHECKING = False  # typing itself costs ~12 ms on the hot path
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

SIGTERM = 15
SIGKILL = 9
SIGCONT = 18

METHODS = ("auto", "cgroup-v2", "cgroup-v1", "proc-events", "tracking-gid", "descendants")

_CGROUP_ROOT = "/sys/fs/cgroup"
# Netlink proc connector constants (linux/connector.h, linux/cn_proc.h).
_NETLINK_CONNECTOR = 11
_CN_IDX_PROC = 1
_CN_VAL_PROC = 1
_PROC_CN_MCAST_LISTEN = 1
_PROC_CN_MCAST_IGNORE = 2
_PROC_EVENT_FORK = 0x00000001
_PROC_EVENT_EXIT = 0x80000000
_PR_SET_CHILD_SUBREAPER = 36


def format_glexec_mon(monitor_pid: int, payload_pid: int, *, target_uid: int | None = None,
                      dn: str | None = None, vo: str | None = None, issuer: str | None = None,
                      fqans: Sequence[str] = (), cpu_user: float | None = None,
                      cpu_system: float | None = None, unclean: bool = False) -> list[str]:
    """Return the ``glexec.mon`` accounting lines OSG's Gratia glexec probe parses.

    The prefix is ``glexec.mon[<monitor pid>#<payload pid>]:``; the launcher logs the start lines
    (``target_uid`` given) when the payload starts and the end line (``cpu_user`` given) when it
    ends, each as its own syslog record (facility daemon, LOG_NOTICE in the originals).  CPU
    seconds are whole numbers (the originals print ``ru_utime.tv_sec``).  Quotes and newlines in
    the DN/FQAN are escaped so one value can never forge a second line.
    """
    prefix = f"glexec.mon[{int(monitor_pid)}#{int(payload_pid)}]: "
    lines: list[str] = []
    if target_uid is not None:
        lines.append(f"{prefix}Started, target uid {int(target_uid)}")
    if dn is not None:
        lines.append(f'{prefix}Used DN: "{_escape_mon(dn)}"')
    if vo is not None:
        lines.append(f'{prefix}Used VO: "{_escape_mon(vo)}" Issuer: "{_escape_mon(issuer or "")}"')
    for fqan in fqans:
        lines.append(f'{prefix}Used FQAN: "{_escape_mon(fqan)}"')
    if unclean:
        lines.append(f"{prefix}Unclean termination of parent process; CPU usage not available.")
    elif cpu_user is not None:
        lines.append(f"{prefix}Terminated, CPU user {int(cpu_user)} system {int(cpu_system or 0)}")
    return lines


def _escape_mon(value: str) -> str:
    """The one escaping of caller-influenced values in log records (``glexec_py.log``)."""
    from glexec_py.log import escape

    return escape(value)


class ProcessTracker:
    """Tracks one payload's processes from before the fork until they are all gone.

    Call order (launcher): ``before_fork`` (parent, root) -> ``os.fork()`` -> ``in_child`` (child,
    root, before the switch) / ``after_fork(pid)`` (parent) -> wait for the payload ->
    ``terminate_leftovers()`` -> ``close()``.  Every method may be called again; none raises for
    a failure of the tracking itself: if the chosen method cannot be set up ``before_fork`` falls
    back to the next one and ``method_used`` says what is in force.
    """

    __slots__ = ("method", "tracking_gid", "method_used", "payload_pid", "launcher_pid",
                 "cgroup_dir", "_events", "_subreaper", "failures")

    def __init__(self, *, method: str = "auto", tracking_gid: int | None = None) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown process tracking method {method!r}")
        if method == "tracking-gid" and tracking_gid is None:
            raise ValueError("process tracking method 'tracking-gid' needs a tracking gid")
        self.method = method
        self.tracking_gid = tracking_gid
        self.method_used = ""
        self.payload_pid = 0
        self.launcher_pid = os.getpid()
        self.cgroup_dir = ""
        self._events: _ProcEvents | None = None
        self._subreaper = False
        # Why a method was skipped, for the launcher's debug log.
        self.failures: list[str] = []

    # -- set-up -------------------------------------------------------------------------------

    def before_fork(self) -> None:
        if self.method_used:
            return
        self.launcher_pid = os.getpid()
        self._subreaper = _set_child_subreaper()
        candidates = (METHODS[1:] if self.method == "auto" else (self.method,))
        for name in candidates:
            if name == "tracking-gid" and self.tracking_gid is None:
                continue
            reason = self._set_up(name, explicit=self.method != "auto")
            if not reason:
                self.method_used = name
                return
            self.failures.append(f"{name}: {reason}")
        # An explicit method that cannot work still leaves the subreaper-backed fallback.
        self.method_used = "descendants"

    def _set_up(self, name: str, *, explicit: bool) -> str:
        if name == "cgroup-v2":
            path, reason = _make_child_cgroup("", explicit=explicit)
        elif name == "cgroup-v1":
            path, reason = _make_child_cgroup("pids", explicit=explicit)
        elif name == "proc-events":
            try:
                self._events = _ProcEvents(self.launcher_pid)
            except OSError as exc:
                return f"proc connector unavailable: {exc.strerror or exc}"
            return ""
        else:
            return ""
        if path:
            self.cgroup_dir = path
        return reason

    def in_child(self) -> None:
        """Join the payload's cgroup before the switch, so every descendant is born inside."""
        if self.cgroup_dir:
            _write_text(os.path.join(self.cgroup_dir, "cgroup.procs"), str(os.getpid()))

    def after_fork(self, pid: int) -> None:
        self.payload_pid = pid
        if self.cgroup_dir:
            # Also from the parent: the child may not have reached in_child yet, and a second
            # write of the same pid is harmless.
            _write_text(os.path.join(self.cgroup_dir, "cgroup.procs"), str(pid))
        if self._events is not None:
            self._events.set_root(pid)

    def export_state(self) -> dict:
        """Everything a fresh process needs to go on tracking (for the small waiter's exec).

        Plain values only (a marshal record); the proc connector's socket is handed over as a
        descriptor number, which the caller must keep open across the exec.
        """
        state = {"method": self.method, "method_used": self.method_used,
                 "tracking_gid": self.tracking_gid, "payload_pid": self.payload_pid,
                 "launcher_pid": self.launcher_pid, "cgroup_dir": self.cgroup_dir,
                 "subreaper": self._subreaper, "events_fd": -1, "events_root": 0,
                 "events_roots": {}}
        if self._events is not None:
            fd, roots = self._events.detach()
            state.update(events_fd=fd, events_root=self._events.root, events_roots=roots)
            self._events = None
        return state

    @classmethod
    def from_state(cls, state: dict) -> ProcessTracker:
        tracker = cls(method=state["method"], tracking_gid=state["tracking_gid"])
        tracker.method_used = state["method_used"]
        tracker.payload_pid = state["payload_pid"]
        tracker.launcher_pid = state["launcher_pid"]
        tracker.cgroup_dir = state["cgroup_dir"]
        tracker._subreaper = state["subreaper"]
        if state["events_fd"] >= 0:
            events = _ProcEvents(tracker.launcher_pid, fileno=state["events_fd"])
            events.roots.update(state["events_roots"])
            events.root = state["events_root"]
            tracker._events = events
        return tracker

    def events_fd(self) -> int:
        """The proc connector socket the waiter must read when it is readable, or -1."""
        return self._events.sock.fileno() if self._events is not None else -1

    # -- queries ------------------------------------------------------------------------------

    def members(self) -> set[int]:
        """Pids tracked right now (never the launcher, never pid 1)."""
        found: set[int] = set()
        if self.cgroup_dir:
            found |= _cgroup_pids(self.cgroup_dir)
        if self._events is not None:
            found |= self._events.members()
        if self.tracking_gid is not None:
            found |= _pids_with_gid(self.tracking_gid)
        if self.method_used == "descendants" or (self._subreaper and not self.cgroup_dir):
            # With a cgroup in force the scan adds nothing: every process the payload creates
            # is born inside it and an unprivileged process cannot leave it. Elsewhere the
            # subreaper keeps every leftover a descendant, so the (whole-/proc) scan backs up
            # lost proc events and the gid method.
            found |= _descendants(self.launcher_pid)
        found.discard(self.launcher_pid)
        found.discard(1)
        found.discard(0)
        return found

    def cpu_times(self) -> tuple[float, float] | None:
        """User and system CPU seconds of everything that ran in the cgroup (cgroup-v2 only).

        Unlike ``wait4``'s rusage this includes daemonized processes that were never reaped by
        the payload; read it before ``close``.
        """
        if self.method_used != "cgroup-v2" or not self.cgroup_dir:
            return None
        try:
            text = _read_text(os.path.join(self.cgroup_dir, "cpu.stat"))
        except OSError:
            return None
        values = {}
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if value.isdigit():
                values[key] = int(value)
        if "user_usec" not in values:
            return None
        return values["user_usec"] / 1e6, values.get("system_usec", 0) / 1e6

    # -- the end ------------------------------------------------------------------------------

    def terminate_leftovers(self, grace: float = 2.0) -> list[int]:
        """SIGTERM (+SIGCONT) every leftover, wait up to ``grace`` s, then SIGKILL the rest.

        Returns the pids signalled, in the order first signalled.  Forks during the clean-up are
        blocked (freeze / pids.max) or followed (events, descendants) and killed in later rounds.
        """
        signalled: list[int] = []
        seen: set[int] = set()
        self._block_forks()
        pids = self.members()
        if not pids:
            self._reap()
            return signalled
        self._signal_all(pids, (SIGTERM, SIGCONT), signalled, seen)
        self._thaw()
        deadline = time.monotonic() + max(grace, 0.0)
        while time.monotonic() < deadline:
            self._reap()
            if not self.members():
                return signalled
            time.sleep(0.02)
        # KILL rounds: a process that forked between rounds is caught by the next one.
        for _ in range(50):
            self._block_forks()
            if self.cgroup_dir:
                _write_text(os.path.join(self.cgroup_dir, "cgroup.kill"), "1", quiet=True)
            pids = self.members()
            if not pids:
                break
            self._signal_all(pids, (SIGKILL,), signalled, seen)
            self._thaw()
            time.sleep(0.02)
            self._reap()
        self._reap()
        return signalled

    def _signal_all(self, pids: Iterable[int], signals: Sequence[int], signalled: list[int],
                    seen: set[int]) -> None:
        for pid in sorted(pids):
            for signo in signals:
                try:
                    os.kill(pid, signo)
                except OSError:
                    break
            else:
                if pid not in seen:
                    seen.add(pid)
                    signalled.append(pid)

    def _block_forks(self) -> None:
        if not self.cgroup_dir:
            return
        if self.method_used == "cgroup-v2":
            _write_text(os.path.join(self.cgroup_dir, "cgroup.freeze"), "1", quiet=True)
        else:
            _write_text(os.path.join(self.cgroup_dir, "pids.max"), "0", quiet=True)

    def _thaw(self) -> None:
        # Frozen tasks only act on TERM once thawed; SIGKILL works either way.
        if self.cgroup_dir and self.method_used == "cgroup-v2":
            _write_text(os.path.join(self.cgroup_dir, "cgroup.freeze"), "0", quiet=True)

    def _reap(self) -> None:
        """Collect re-parented leftovers (we are their subreaper), never the payload itself.

        The payload's status belongs to the launcher's own ``waitpid(payload)``, which may still
        be pending when the launcher is told to stop; so a zombie is first looked at without
        reaping it (WNOWAIT), and only a scan of /proc finds the others behind an unreaped
        payload.
        """
        for _ in range(4096):
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except OSError:
                return  # no children at all
            if info is None:
                return  # children, but none has exited
            if info.si_pid == self.payload_pid:
                break
            try:
                os.waitpid(info.si_pid, os.WNOHANG)
            except OSError:
                return
        for pid, ppid in _parent_map().items():
            if ppid != self.launcher_pid or pid == self.payload_pid:
                continue
            try:
                os.waitpid(pid, os.WNOHANG)
            except OSError:
                pass

    def close(self) -> None:
        if self._events is not None:
            self._events.stop()
            self._events = None
        if self.cgroup_dir:
            path, self.cgroup_dir = self.cgroup_dir, ""
            for _ in range(100):
                try:
                    os.rmdir(path)
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        break
                    time.sleep(0.01)


# -- helpers of the methods (module-private) -------------------------------------------------

def _set_child_subreaper() -> bool:
    try:
        import _prctl  # python-prctl's C core (its Python wrapper costs ~1.2 ms of imports)
    except ImportError:
        return False
    try:
        _prctl.prctl(_prctl.PR_SET_CHILD_SUBREAPER, 1)
    except OSError:
        return False
    return True


def _read_text(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", "replace")


def _write_text(path: str, text: str, *, quiet: bool = False) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        if quiet:
            return False
        raise
    try:
        os.write(fd, text.encode())
    except OSError:
        if quiet:
            return False
        raise
    finally:
        os.close(fd)
    return True


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup in the v2 hierarchy ("") or the v1 one holding ``controller``."""
    try:
        text = _read_text("/proc/self/cgroup")
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hier, controllers, path = parts
        if controller == "" and hier == "0" and controllers == "":
            return path
        if controller and controller in controllers.split(","):
            return path
    return None


def _mount_of(controller: str) -> str | None:
    """Mount point of the v2 hierarchy ("") or the v1 hierarchy of ``controller``."""
    try:
        text = _read_text("/proc/self/mountinfo")
    except OSError:
        return None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        fstype, _source, *rest = right.split()
        options = rest[0].split(",") if rest else []
        mountpoint = fields[4].replace("\\040", " ")
        if controller == "" and fstype == "cgroup2":
            return mountpoint
        if controller and fstype == "cgroup" and controller in options:
            return mountpoint
    return None


def _make_child_cgroup(controller: str, *, explicit: bool) -> tuple[str, str]:
    """Create ``glexec-py.<pid>`` below the launcher's own cgroup; return (path, why-not)."""
    mount = _mount_of(controller)
    own = _own_cgroup(controller)
    label = "cgroup v2" if controller == "" else f"cgroup v1 {controller}"
    if mount is None or own is None:
        return "", f"no {label} hierarchy mounted"
    parent = os.path.normpath(mount + "/" + own.lstrip("/"))
    if not parent.startswith(_CGROUP_ROOT + "/") and parent != _CGROUP_ROOT:
        return "", f"{label} is mounted outside {_CGROUP_ROOT}"
    if controller == "" and not explicit:
        try:
            controllers = _read_text(os.path.join(parent, "cgroup.controllers")).split()
        except OSError as exc:
            return "", f"cannot read {parent}/cgroup.controllers: {exc.strerror}"
        if controllers and own != "/":
            # Controllers reach our cgroup, so a batch system may own it (Slurm or HTCondor on
            # cgroup v2); a sub-cgroup could change what it sees. The root cgroup is nobody's job.
            return "", f"{parent} has controllers ({' '.join(controllers)}); not touching it"
    path = os.path.join(parent, f"glexec-py.{os.getpid()}")
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        # A launcher with this pid died without clean-up: the directory is ours to reuse only
        # if nothing lives in it.
        if _cgroup_pids(path):
            return "", f"{path} exists and is populated"
    except OSError as exc:
        return "", f"cannot create {path}: {exc.strerror}"
    if not os.path.exists(os.path.join(path, "cgroup.procs")):
        return "", f"{path} has no cgroup.procs"
    return path, ""


def _cgroup_pids(path: str) -> set[int]:
    pids: set[int] = set()
    try:
        entries = list(os.scandir(path))
    except OSError:
        return pids
    try:
        pids.update(int(x) for x in _read_text(os.path.join(path, "cgroup.procs")).split())
    except (OSError, ValueError):
        pass
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            pids |= _cgroup_pids(entry.path)
    return pids


def _proc_status_fields(pid: int, names: tuple[str, ...]) -> dict[str, str]:
    try:
        text = _read_text(f"/proc/{pid}/status")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in names:
            out[key] = value.strip()
    return out


def _all_pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _pids_with_gid(gid: int) -> set[int]:
    found = set()
    for pid in _all_pids():
        fields = _proc_status_fields(pid, ("Gid", "Groups"))
        gids = fields.get("Gid", "").split() + fields.get("Groups", "").split()
        if str(gid) in gids:
            found.add(pid)
    return found


def _parent_map() -> dict[int, int]:
    parents = {}
    for pid in _all_pids():
        try:
            text = _read_text(f"/proc/{pid}/stat")
        except OSError:
            continue
        # comm may contain spaces and parentheses: the state follows the last ')'.
        fields = text[text.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1].isdigit():
            parents[pid] = int(fields[1])
    return parents


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in _parent_map().items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        todo.extend(children.get(pid, ()))
    return found


class _ProcEvents:
    """Fork/exit events of the payload's process tree (netlink proc connector).

    Every process forked by the launcher or by a tracked process is recorded with its *root*,
    the launcher's child it descends from; exits remove entries, so a pid that is re-used later
    is never signalled.  Only the subtree whose root is the payload counts as a member.  In the
    full launcher a thread reads the events; after the hand-over to the small waiter
    (``detach`` / ``attach``) the waiter reads them itself whenever the socket is readable,
    so no thread (and no ``socket``/``struct`` module) is needed there.
    """

    __slots__ = ("sock", "launcher", "roots", "root", "running", "lost", "lock", "stopped",
                 "detached")

    def __init__(self, launcher_pid: int, *, fileno: int = -1) -> None:
        import _socket
        import _thread

        self.launcher = launcher_pid
        self.roots: dict[int, int] = {}
        self.root = 0
        self.lost = False
        self.detached = False
        self.lock = _thread.allocate_lock()
        self.stopped = _thread.allocate_lock()
        if fileno >= 0:  # attach: the socket subscribed by the launcher before its exec
            self.sock = _socket.socket(fileno=fileno)
            self.sock.setblocking(False)
            self.running = False
            return
        sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC,
                              _NETLINK_CONNECTOR)
        try:
            try:
                sock.setsockopt(_socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
            except OSError:
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, 8 << 20)
            sock.bind((0, _CN_IDX_PROC))
            sock.send(_control(_PROC_CN_MCAST_LISTEN))
            sock.settimeout(1.0)
            # The first message acknowledges the subscription (what == 0): proof events flow.
            data = sock.recv(4096)
            if len(data) < 40:
                raise OSError(errno.EPROTO, "short answer from the proc connector")
        except TimeoutError:
            sock.close()
            raise OSError(errno.ETIMEDOUT, "no answer from the proc connector") from None
        except OSError:
            sock.close()
            raise
        sock.settimeout(0.05)
        self.sock = sock
        self.running = True
        self.stopped.acquire()
        _thread.start_new_thread(self._pump, ())

    def set_root(self, pid: int) -> None:
        with self.lock:
            self.root = pid
            self.roots.setdefault(pid, pid)

    def members(self) -> set[int]:
        if not self.running:
            self.drain()
        with self.lock:
            if not self.root:
                return set()
            return {pid for pid, root in self.roots.items() if root == self.root}

    def _pump(self) -> None:
        try:
            while self.running:
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError as exc:
                    if exc.errno == errno.ENOBUFS:
                        self.lost = True  # events dropped: the descendants scan backs us up
                        continue
                    break
                self._handle_datagram(data)
        finally:
            if not self.detached:
                self.sock.close()  # only the reader may: it could still be using the fd
            self.stopped.release()

    def drain(self) -> None:
        """Apply every event already queued (thread-less mode; the socket is non-blocking)."""
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.lost = True
                    continue
                return
            self._handle_datagram(data)

    def _handle_datagram(self, data: bytes) -> None:
        import _struct

        unpack = _struct.unpack_from
        offset = 0
        while offset + 16 <= len(data):
            length = unpack("=I", data, offset)[0]
            if length < 16:
                break
            if length >= 52 + 16:
                self._handle(data, offset + 36, unpack)
            offset += (length + 3) & ~3

    def _handle(self, data: bytes, at: int, unpack) -> None:
        what = unpack("=I", data, at)[0]
        if what == _PROC_EVENT_FORK:
            _ppid, ptgid, cpid, ctgid = unpack("=IIII", data, at + 16)
            if cpid != ctgid:
                return  # a new thread, not a new process
            with self.lock:
                if ptgid == self.launcher:
                    self.roots[ctgid] = ctgid
                elif ptgid in self.roots:
                    self.roots[ctgid] = self.roots[ptgid]
        elif what == _PROC_EVENT_EXIT:
            pid, tgid = unpack("=II", data, at + 16)
            if pid == tgid:
                with self.lock:
                    self.roots.pop(tgid, None)

    def detach(self) -> tuple[int, dict[int, int]]:
        """Stop the reader thread without losing an event; return (socket fd, roots).

        The thread handles each datagram completely before it looks at ``running`` again, and
        what it has not read stays queued in the socket for the waiter.
        """
        self.detached = True  # the reader leaves the socket open
        self.running = False
        if not self.stopped.acquire(timeout=2.0):
            raise OSError(errno.ETIMEDOUT, "proc connector reader did not stop")
        with self.lock:
            return self.sock.detach(), dict(self.roots)

    def stop(self) -> None:
        threaded, self.running = self.running, False
        try:
            self.sock.send(_control(_PROC_CN_MCAST_IGNORE))
        except OSError:
            pass
        if not threaded:
            self.sock.close()
        # Otherwise the reader closes the socket itself when it notices (within one receive
        # timeout): closing it here could hand its fd number to another file while it reads.


def _control(op: int) -> bytes:
    import _struct

    header = _struct.pack("=IIIIHH", _CN_IDX_PROC, _CN_VAL_PROC, 0, 0, 4, 0)
    body = header + _struct.pack("=I", op)
    return _struct.pack("=IHHII", 16 + len(body), 3, 0, 0, 0) + body  # NLMSG_DONE


__all__ = ["METHODS", "ProcessTracker", "format_glexec_mon"]
