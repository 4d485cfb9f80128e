"""Tracking gids: a fresh per-invocation gid from a range, or the batch system's own kept.

Runs as: root (the policy engine). Trusts: its own lock directory (root-owned, checked through
``trust.py``) and the kernel's /proc. Hot path: yes (when a policy names it).

``tracking`` (``lcmaps_glexec_tracking.mod``, OSG's glexec-tracking): allocate one gid from
``-min-gid``..``-max-gid`` (default 65000-65049, as OSG; its docs advise at least 4 per batch
slot) that no running process carries and no other glexec holds, and add it as a secondary gid
of the payload. The gid is held by an exclusive ``flock`` on ``<lockdir>/<gid>``; the descriptor
is close-on-exec and stays open in the lingering launcher, so the lease ends with the launcher,
i.e. after the payload and its leftovers are gone. The launcher learns the gid through
:func:`allocated_tracking_gid` and hands it to ``ProcessTracker(tracking_gid=...)``; batch
systems that track by gid (HTCondor's ``USE_GID_PROCESS_TRACKING``) see it too. OSG's options
for its procd-based monitor (``-exec``, ``-procddir``, ``-logdir``, ``-log-level``,
``-log-facility``, ``-datetime-local``, ``-dont-kill-leftovers``) are accepted and ignored:
glexec-py's launcher does that job itself.

``tracking_groupid`` (``lcmaps_tracking_groupid.mod``, Nikhef): add the caller's supplementary
gids that fall in ``-min-gid``..``-max-gid`` (the batch system's tracking range: Grid Engine's
``gid_range``, HTCondor's ``MIN/MAX_TRACKING_GID``), so the switch keeps them.
"""

from __future__ import annotations

import errno
import fcntl
import os

from glexec_py.plugin_api import Option, Plugin, PolicyConfigError, Result, parse_options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request

DEFAULT_LOCKDIR = "/run/glexec-py/tracking-gids"
DEFAULT_MIN_GID = 65000
DEFAULT_MAX_GID = 65049

# gid -> open lock fd, for this process (the launcher); released when the process ends.
_HELD: dict[int, int] = {}

_OSG_IGNORED = ("-exec", "-procddir", "-logdir", "-log-level", "-log-facility")


def allocated_tracking_gid() -> int | None:
    """The per-invocation tracking gid this process holds, if the plugin allocated one."""
    return next(iter(_HELD), None)


def release_tracking_gids() -> None:
    """Drop every lease this process holds (the launcher calls it after the tracker is done)."""
    for gid, fd in list(_HELD.items()):
        try:
            os.close(fd)
        except OSError:
            pass
        del _HELD[gid]


def _gid_range(values: dict[str, object], plugin: str) -> tuple[int, int]:
    low, high = values["-min-gid"], values["-max-gid"]
    if not isinstance(low, int) or not isinstance(high, int) or not 0 < low <= high < 2**32 - 1:
        raise PolicyConfigError(f"{plugin}: need 0 < -min-gid <= -max-gid, got {low}..{high}")
    return low, high


def gids_in_use() -> set[int]:
    """Every gid (primary or supplementary) some running process carries right now."""
    used: set[int] = set()
    try:
        names = os.listdir("/proc")
    except OSError:
        return used
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as fh:
                text = fh.read().decode("ascii", "replace")
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith(("Gid:", "Groups:")):
                used.update(int(w) for w in line.split()[1:] if w.isdigit())
    return used


def allocate_gid(lockdir: str, low: int, high: int) -> int | None:
    """Lock and return a free gid from low..high, or None if every one is taken."""
    from glexec_py.trust import open_trusted_dir

    dir_fd = open_trusted_dir(lockdir, what="tracking gid lock directory")
    try:
        busy = gids_in_use()
        for gid in range(low, high + 1):
            if gid in busy or gid in _HELD:
                continue
            fd = os.open(str(gid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600,
                         dir_fd=dir_fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    continue
                raise
            _HELD[gid] = fd
            return gid
    finally:
        os.close(dir_fd)
    return None


class TrackingPlugin(Plugin):
    name = "tracking"
    lcmaps_names = ("lcmaps_glexec_tracking.mod", "lcmaps_process_tracking.mod")
    summary = "add a per-invocation tracking gid from a range (OSG glexec-tracking)"
    options = (
        Option("-min-gid", "int", DEFAULT_MIN_GID, "lowest tracking gid"),
        Option("-max-gid", "int", DEFAULT_MAX_GID, "highest tracking gid"),
        Option("-lockdir", "path", DEFAULT_LOCKDIR,
               "root-owned directory holding one lock file per gid in use"),
        *(Option(name, "str", None, "accepted for OSG compatibility; ignored")
          for name in _OSG_IGNORED),
        Option("-datetime-local", "flag", False, "accepted for OSG compatibility; ignored"),
        Option("-dont-kill-leftovers", "flag", False, "accepted for OSG compatibility; ignored"),
    )
    sets = frozenset({"sgid"})

    def configure(self, args: Sequence[str]) -> None:
        values = parse_options(self.options, args, self.name)
        self.low, self.high = _gid_range(values, self.name)
        self.lockdir = str(values["-lockdir"])
        if self.lockdir == DEFAULT_LOCKDIR:
            # The default lives on tmpfs: create it (root, 0700) on first use after a boot.
            os.makedirs(DEFAULT_LOCKDIR, mode=0o700, exist_ok=True)
        from glexec_py.trust import open_trusted_dir

        os.close(open_trusted_dir(self.lockdir, what="tracking gid lock directory"))

    def run(self, request: Request, creds: CredentialView) -> Result:
        held = allocated_tracking_gid()
        if held is not None:  # one per invocation, even if the policy names the plugin twice
            return Result.success(sgid=[held])
        gid = allocate_gid(self.lockdir, self.low, self.high)
        if gid is None:
            return Result.failure(f"tracking: no free tracking gid in {self.low}-{self.high}")
        return Result.success(sgid=[gid])


class TrackingGroupIdPlugin(Plugin):
    name = "tracking_groupid"
    lcmaps_names = ("lcmaps_tracking_groupid.mod",)
    summary = "keep the caller's batch-system tracking gids (a range) across the switch"
    options = (
        Option("-min-gid", "int", None, "lowest gid of the batch system's tracking range"),
        Option("-max-gid", "int", None, "highest gid of the batch system's tracking range"),
    )
    reads = frozenset({"caller_groups"})
    sets = frozenset({"sgid"})

    def configure(self, args: Sequence[str]) -> None:
        values = parse_options(self.options, args, self.name)
        self.low, self.high = _gid_range(values, self.name)

    def run(self, request: Request, creds: CredentialView) -> Result:
        groups = request.caller_groups or ()
        kept = sorted({g for g in groups if isinstance(g, int) and self.low <= g <= self.high})
        return Result.success(sgid=kept)
