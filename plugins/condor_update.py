"""``condor_update``: tell the HTCondor job, over Chirp, which account its glexec payload runs as.

Runs as: root (the policy engine); the Chirp conversation runs in a forked grandchild dropped to
the pilot's uid/gid. Trusts: the kernel's /proc view of the process tree and the environment of
the root-owned ancestor it identifies as the starter. Hot path: yes (only when a policy names it).

Follows lcmaps-plugins-condor-update: no options; sets ``glexec_user`` (the mapped account, a
ClassAd string), ``glexec_x509userproxysubject`` (the DN, a ClassAd string) and ``glexec_time``
(Unix time, an integer) with ``set_job_attr``. The starter is the first ancestor of glexec, not
counting glexec itself, whose real uid is 0; the job's scratch directory is
``$_CONDOR_EXECUTE/dir_<starter pid>`` from that process's environment, holding ``chirp.config``
or ``.chirp.config``. If pid 1 is reached under another uid (a PID namespace) the file named by
pid 1's ``_CONDOR_CHIRP_CONFIG`` is used. The config belongs to the pilot (mode 0700), so the
update runs as the pilot, after checking that glexec's parent is still the pilot (if the pilot
died and its pid was reused, the uid read from /proc would be somebody else's). It is
fire-and-forget: the launcher waits only for an intermediate child that exits at once, never for
the starter (waiting could deadlock a single-threaded starter), and the plugin succeeds whatever
Chirp does. Only a missing DN or uid fails it, as in the original.
"""

from __future__ import annotations

import os
import pwd
import time

from glexec_py.plugin_api import Plugin, Result

TYPE_CHECKING = False  # "import typing" costs ~10 ms of start-up (it imports re)
if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request

CHIRP_TIMEOUT = 5.0


class CondorUpdatePlugin(Plugin):
    name = "condor_update"
    lcmaps_names = ("lcmaps_condor_update.mod",)
    summary = ("record glexec_user, glexec_x509userproxysubject and glexec_time in the "
               "HTCondor job ad over Chirp (never fails the launch)")
    reads = frozenset({"dn", "invoker_pid", "launcher_pid", "now"})
    sets = frozenset()

    def configure(self, args: Sequence[str]) -> None:
        # The original ignores its arguments; so does this one, so existing lcmaps.db files load.
        self.args = tuple(args)

    def run(self, request: Request, creds: CredentialView) -> Result:
        if not creds.uid:
            return Result.failure("condor_update: no uid has been mapped before this plugin")
        dn = request.dn or creds.dn
        if not dn:
            return Result.failure("condor_update: no user DN available")
        try:
            username = pwd.getpwuid(creds.uid[0]).pw_name
        except KeyError:
            username = str(creds.uid[0])
        now = request.now if isinstance(request.now, (int, float)) else time.time()
        from glexec_py.chirp import classad_string

        updates = (("glexec_user", classad_string(username)),
                   ("glexec_x509userproxysubject", classad_string(str(dn))),
                   ("glexec_time", str(int(now))))
        glexec_pid = request.launcher_pid if isinstance(request.launcher_pid, int) else os.getpid()
        start_update(glexec_pid, updates)
        return Result.success()


class StarterLocation:
    """Where the job's Chirp config is and whom glexec was called by."""

    __slots__ = ("chirp_path", "pilot_pid", "pilot_uid", "pilot_gid", "starter_pid")

    def __init__(self, chirp_path: str, pilot_pid: int, pilot_uid: int, pilot_gid: int,
                 starter_pid: int) -> None:
        self.chirp_path = chirp_path
        self.pilot_pid = pilot_pid
        self.pilot_uid = pilot_uid
        self.pilot_gid = pilot_gid
        self.starter_pid = starter_pid


class StarterNotFound(Exception):
    """No condor_starter above glexec: not an HTCondor job, or /proc was not readable."""


def read_status(pid: int) -> tuple[int, int, int]:
    """(PPid, real uid, real gid) of ``pid`` from /proc; raises StarterNotFound if unreadable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except OSError as exc:
        raise StarterNotFound(f"cannot read /proc/{pid}/status: {exc.strerror}") from None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    try:
        return (int(fields["PPid"].split()[0]), int(fields["Uid"].split()[0]),
                int(fields["Gid"].split()[0]))
    except (KeyError, IndexError, ValueError):
        raise StarterNotFound(f"/proc/{pid}/status lacks PPid/Uid/Gid") from None


def read_environ_value(pid: int, name: str) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            data = fh.read(1 << 20)
    except OSError:
        return None
    prefix = name.encode() + b"="
    for entry in data.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix):].decode("utf-8", "surrogateescape")
    return None


def find_starter(glexec_pid: int) -> StarterLocation:
    """Walk glexec's ancestors to the starter (first root ancestor) or to pid 1."""
    pilot_pid, _uid, _gid = read_status(glexec_pid)
    _ppid, pilot_uid, pilot_gid = read_status(pilot_pid)
    pid = pilot_pid
    seen = {glexec_pid}
    while True:
        if pid in seen or pid <= 0:
            raise StarterNotFound("process ancestry loops or breaks")
        seen.add(pid)
        ppid, uid, _gid = read_status(pid)
        if uid == 0:
            execute = read_environ_value(pid, "_CONDOR_EXECUTE")
            if not execute:
                raise StarterNotFound(f"_CONDOR_EXECUTE missing from ancestor {pid}")
            return StarterLocation(os.path.join(execute, f"dir_{pid}"), pilot_pid, pilot_uid,
                                   pilot_gid, pid)
        if pid == 1:
            config = read_environ_value(1, "_CONDOR_CHIRP_CONFIG")
            if not config:
                raise StarterNotFound("_CONDOR_EXECUTE missing from ancestors")
            return StarterLocation(config, pilot_pid, pilot_uid, pilot_gid, 1)
        pid = ppid


def locate_chirp_config(path: str) -> str | None:
    """The config file itself if ``path`` is a file, else ``chirp.config``/``.chirp.config``."""
    import stat

    try:
        if stat.S_ISREG(os.stat(path).st_mode):
            return path if os.access(path, os.R_OK) else None
    except OSError:
        return None
    for name in ("chirp.config", ".chirp.config"):
        candidate = os.path.join(path, name)
        if os.access(candidate, os.R_OK):
            return candidate
    return None


def start_update(glexec_pid: int, updates: Sequence[tuple[str, str]]) -> bool:
    """Fork the dropped Chirp updater and return once it is detached; True if it was started.

    Never raises: the launch must not depend on Chirp.
    """
    try:
        location = find_starter(glexec_pid)
    except StarterNotFound:
        return False
    try:
        pid = os.fork()
    except OSError:
        return False
    if pid == 0:
        code = 1
        try:
            code = _updater_child(glexec_pid, location, updates)
        except BaseException:  # noqa: BLE001 - a forked child must never return into the caller
            code = 1
        finally:
            os._exit(code)
    try:
        _, status = os.waitpid(pid, 0)
    except OSError:
        return False
    return status == 0


def _updater_child(glexec_pid: int, location: StarterLocation,
                   updates: Sequence[tuple[str, str]]) -> int:
    """Intermediate child: drop to the pilot, detach the grandchild, exit 0 at once."""
    os.closerange(3, _max_fd())
    # The pilot could have died since the walk and its pid been reused by someone else.
    if read_status(glexec_pid)[0] != location.pilot_pid:
        return 2
    if location.pilot_uid != 0:
        os.setgroups([])
        os.setresgid(location.pilot_gid, location.pilot_gid, location.pilot_gid)
        os.setresuid(location.pilot_uid, location.pilot_uid, location.pilot_uid)
        if os.getresuid() != (location.pilot_uid,) * 3:
            return 3
    config_path = locate_chirp_config(location.chirp_path)
    if config_path is None:
        return 4
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if os.fork() != 0:
        return 0
    # Grandchild: re-parented once the intermediate exits; nobody waits for it.
    _send_updates(config_path, updates)
    return 0


def _send_updates(config_path: str, updates: Sequence[tuple[str, str]]) -> None:
    from glexec_py.chirp import ChirpClient, ChirpError, read_chirp_config

    try:
        config = read_chirp_config(config_path)
        with ChirpClient.connect(config, timeout=CHIRP_TIMEOUT) as client:
            for name, value in updates:
                try:
                    client.set_job_attr(name, value)
                except ChirpError as exc:
                    if exc.code == 0:  # transport gone: the rest cannot succeed either
                        return
    except ChirpError:
        return


def _max_fd() -> int:
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if 0 < soft < 1 << 20 else 1 << 16
