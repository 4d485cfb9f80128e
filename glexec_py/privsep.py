"""Run one short function with the caller's effective ids; prove root is back afterwards.

Runs as: root (setuid mode) or the caller (declare-only). Trusts: nothing the function returns
more than the account it ran as. Hot path: yes.

This is how the root launcher touches anything a caller names (the proxy files): the open, the
fstat and the read happen with the caller's effective uid, gid and supplementary groups, so the
kernel checks every path component with the caller's rights, exactly as for the caller's own
``cat``. A forked child that drops for good would cost ~1.5 ms of a ~20 ms call for the same
checks; the function run here parses nothing (open, fstat, flock, read of at most 256 KiB), so
the saved uid 0 it keeps meanwhile guards no interpreter of hostile input (security.md §3.5).
While the effective ids are the caller's, the real and saved uid stay 0: the caller still cannot
signal or ptrace the process (and it is non-dumpable since bootstrap).

Restoring is verified from the kernel (all three uids and gids, the group list, the effective
capability set); a failure there ends the process at once with 202, because nothing after it may
run with half of the caller's ids.
"""

from __future__ import annotations

import os

from glexec_py.errors import SiteError

TYPE_CHECKING = False  # "import typing" costs ~10 ms of start-up (it imports re)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

EXIT_SYSTEM = 202


def run_with_caller_rights(uid: int, gid: int, groups: tuple[int, ...],
                           work: Callable[[], T]) -> T:
    """Run ``work`` with effective uid/gid/groups of the caller, then become root again.

    A whitelisted root caller's files are read as root (its own rights); in declare-only mode
    the process already is the caller and nothing changes.
    """
    if os.geteuid() != 0 or uid == 0:
        if os.getuid() != uid:
            raise SiteError(f"cannot act as uid {uid} without privileges")
        return work()
    if uid < 0 or gid < 0 or uid >= 4294967295 or gid >= 4294967295:
        raise SiteError(f"refusing to act as uid {uid} gid {gid}")
    from glexec_py.ids import read_capabilities

    before_groups = os.getgroups()
    before_caps = read_capabilities().get("CapEff")
    wanted = sorted(set(groups))
    try:
        try:
            os.setgroups(wanted)
            os.setresgid(-1, gid, -1)
            os.setresuid(-1, uid, -1)
        except OSError as exc:
            raise SiteError(f"cannot take the caller's rights: {exc.strerror}") from None
        if (os.geteuid(), os.getegid()) != (uid, gid) or sorted(set(os.getgroups())) != wanted:
            raise SiteError("cannot take the caller's rights: the kernel did not switch the ids")
        return work()
    finally:
        _restore_root(before_groups, before_caps)


def _restore_root(groups: list[int], caps: int | None) -> None:
    try:
        os.setresuid(-1, 0, -1)
        os.setresgid(-1, 0, -1)
        os.setgroups(groups)
        from glexec_py.ids import read_capabilities

        ok = (os.getresuid() == (0, 0, 0) and os.getresgid() == (0, 0, 0)
              and os.getgroups() == groups and read_capabilities().get("CapEff") == caps)
    except BaseException:  # noqa: BLE001 - any failure here is the same fatal one
        ok = False
    if not ok:
        os.write(2, b"glexec: could not return to root after reading the proxy as the "
                    b"caller; nothing was started\n")
        os._exit(EXIT_SYSTEM)
