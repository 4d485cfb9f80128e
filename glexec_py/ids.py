"""The only code that changes process credentials: drop to an account, permanently, verified.

Runs as: root, in a freshly forked single-threaded child (or, with linger = no, the launcher
itself just before exec). Trusts: its arguments, already validated by ``identity.py``.
Hot path: yes.

Order matters: supplementary groups first (only root may set them), then gid, then uid. Each id
set is then read back from the kernel (all of real, effective and saved; the group list exactly),
getting root back must fail, and the capability sets must be empty in /proc/self/status. Anything
unexpected raises SiteError: a half-done drop must never exec a payload.
"""

from __future__ import annotations

import os

from glexec_py.errors import SiteError

_CAP_FIELDS = (b"CapInh:", b"CapPrm:", b"CapEff:", b"CapAmb:")


def _clear_inheritable_caps() -> None:
    """Inheritable and ambient sets survive setuid; empty them while we still may."""
    import _prctl  # python-prctl's C core (its wrapper: ~1.2 ms of imports per call)

    # prctl.cap_inheritable.limit(): clear every capability from the inheritable set
    _prctl.set_caps([], [], [], [], [], list(range(_prctl.CAP_LAST_CAP + 1)))
    if not read_capabilities().get("CapAmb", 1):
        return  # the usual case (a setuid exec empties it): no ctypes import (~1.5 ms)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
    except OSError:
        pass


def read_capabilities() -> dict[str, int]:
    """The capability sets of this process, as the kernel reports them."""
    with open("/proc/self/status", "rb") as status:
        caps = {}
        for line in status:
            for field in _CAP_FIELDS:
                if line.startswith(field):
                    caps[field[:-1].decode()] = int(line[len(field):].strip(), 16)
    return caps


def drop_to(uid: int, gid: int, groups: tuple[int, ...]) -> None:
    """Become uid/gid with exactly ``groups`` as supplementary groups, for good."""
    if uid <= 0 or gid < 0 or uid >= 4294967295 or gid >= 4294967295:
        raise SiteError(f"refusing to switch to uid {uid} gid {gid}")
    wanted_groups = sorted(set(groups))
    try:
        if os.geteuid() == 0:
            _clear_inheritable_caps()
        os.setgroups(wanted_groups)
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as exc:
        raise SiteError(f"identity switch to uid {uid} failed: {exc.strerror}") from None
    verify_dropped(uid, gid, wanted_groups)


def verify_dropped(uid: int, gid: int, groups: list[int]) -> None:
    """Prove the switch from the kernel's view; never trust that the calls did what they say."""
    if os.getresuid() != (uid, uid, uid):
        raise SiteError(f"identity switch incomplete: uids {os.getresuid()}")
    if os.getresgid() != (gid, gid, gid):
        raise SiteError(f"identity switch incomplete: gids {os.getresgid()}")
    if sorted(set(os.getgroups())) != groups:
        raise SiteError(f"identity switch incomplete: groups {os.getgroups()}")
    for regain in (os.setuid, os.seteuid):
        try:
            regain(0)
        except PermissionError:
            continue
        raise SiteError("identity switch incomplete: root could be regained")
    try:
        os.setgid(0)
    except PermissionError:
        pass
    else:
        raise SiteError("identity switch incomplete: gid 0 could be regained")
    caps = read_capabilities()
    if any(caps.get(name, 1) for name in ("CapInh", "CapPrm", "CapEff", "CapAmb")):
        raise SiteError(f"identity switch incomplete: capabilities left {caps}")
