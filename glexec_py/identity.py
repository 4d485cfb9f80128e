"""The payload's target identity: the mapped account checked against the site's limits.

Runs as: root. Trusts: the policy's mapping only as far as the checks below allow. Hot path: yes.

Whatever the policy (or a buggy plugin, a broken NSS, a numeric entry) produced, the payload
never runs as uid/gid 0, as -1/4294967295 (a setresuid(-1) is a silent no-op that would leave
root), below the site's minimum ids, with a forbidden group, or with more groups than allowed.
The batch system's tracking gids that the caller carries (Grid Engine gid_range, HTCondor
tracking gids) are kept so the batch system still finds, suspends and accounts the payload.
"""

from __future__ import annotations

import grp

from glexec_py.caller import lookup_account
from glexec_py.errors import AuthorizationError

TYPE_CHECKING = False  # "import typing" costs ~10 ms of start-up (it imports re)
if TYPE_CHECKING:
    from glexec_py.config import SiteConfig

INVALID_ID = 4294967295


class TargetIdentity:
    """Who the payload runs as: validated ids, exact group list, and account details."""

    __slots__ = ("uid", "gid", "groups", "name", "group", "home", "kept_gids")

    def __init__(self, uid: int, gid: int, groups: tuple[int, ...], name: str, group: str,
                 home: str, kept_gids: tuple[int, ...]) -> None:
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.name = name
        self.group = group
        self.home = home
        self.kept_gids = kept_gids


def forbidden_groups_of(gids: set[int], forbidden: tuple[str, ...]) -> list[int]:
    """The gids among ``gids`` that the site forbids (by number or by group name), or gid 0.

    Names are compared through the group database's name for each mapped gid, not by resolving
    every forbidden name: a mapping has one or two groups while the default list has ten names,
    most of them absent on a worker node, and a name that is not found falls through every
    source of nsswitch.conf (files, sss/ldap, systemd: 0.2-0.5 ms each, on every call).
    """
    numbers = {int(name) for name in forbidden if name.isdigit()}
    names = {name for name in forbidden if not name.isdigit()}
    bad = []
    for gid in sorted(gids):
        if gid == 0 or gid in numbers:
            bad.append(gid)
            continue
        try:
            if grp.getgrgid(gid).gr_name in names:
                bad.append(gid)
        except KeyError:
            pass
    return bad


def kept_tracking_gids(caller_groups: tuple[int, ...],
                       ranges: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """The caller's supplementary gids that fall in a configured tracking range."""
    return tuple(sorted(g for g in caller_groups if any(lo <= g <= hi for lo, hi in ranges)))


def resolve_target(*, uid: int, gid: int, sgids: tuple[int, ...], site: SiteConfig,
                   caller_uid: int, caller_groups: tuple[int, ...]) -> TargetIdentity:
    """Validate a mapping (uid, primary gid, secondary gids) and return the target identity."""
    for value, what in ((uid, "uid"), (gid, "gid")):
        if not isinstance(value, int) or value < 0 or value >= INVALID_ID:
            raise AuthorizationError(f"mapping yields an invalid {what} {value!r}")
    if uid == 0 or gid == 0:
        raise AuthorizationError(f"mapping yields root (uid {uid}, gid {gid}); refused")
    if uid == caller_uid and not site.allow_self_mapping:
        raise AuthorizationError("mapping yields the caller's own account; refused by "
                                 "allow_self_mapping = no")
    if uid < site.min_target_uid:
        raise AuthorizationError(f"mapped uid {uid} is below min_target_uid "
                                 f"{site.min_target_uid}")
    if gid < site.min_target_gid:
        raise AuthorizationError(f"mapped gid {gid} is below min_target_gid "
                                 f"{site.min_target_gid}")
    pw, group = lookup_account(uid, gid, "mapped")
    mapped_groups = set(sgids) | {gid}
    for g in mapped_groups:
        if not isinstance(g, int) or g < 0 or g >= INVALID_ID:
            raise AuthorizationError(f"mapping yields an invalid group {g!r}")
    bad = forbidden_groups_of(mapped_groups, site.forbidden_target_groups)
    if bad:
        raise AuthorizationError(f"mapping yields forbidden group(s) "
                                 f"{', '.join(map(str, bad))}")
    kept = kept_tracking_gids(caller_groups, site.tracking_gid_ranges)
    groups = tuple(sorted(mapped_groups | set(kept)))
    if len(mapped_groups) > site.max_target_groups:
        raise AuthorizationError(f"mapping yields {len(mapped_groups)} groups, more than "
                                 f"max_target_groups {site.max_target_groups}")
    return TargetIdentity(uid, gid, groups, pw.pw_name, group, pw.pw_dir or "/", kept)
