"""Turn an account or group name into LCMAPS credential data (uid, primary gid, group list).

Runs as: root. Trusts: NSS (passwd/group) answers. Hot path: yes.

LCMAPS' account plugins add UID = pw_uid, PRI_GID = pw_gid and SEC_GID = every gid of
``getgrouplist(name, pw_gid)`` (which includes the primary gid). Where LCMAPS would happily map to
root, glexec-py refuses here already (attack catalogue E62/E63): uid or gid 0 and the
``(uid_t)-1`` value are never mapped; the launcher's identity checks repeat this.
"""

from __future__ import annotations

import grp
import os
import pwd

MAX_ID = 0xFFFFFFFE


class AccountError(Exception):
    """The name cannot be used as a mapping target (the plugin then fails)."""


def lookup_account(name: str) -> pwd.struct_passwd:
    if not name or "\0" in name or "/" in name:
        raise AccountError(f"invalid account name {name!r}")
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise AccountError(f"no such account {name!r}")
    if pw.pw_uid == 0 or pw.pw_gid == 0:
        raise AccountError(f"account {name!r} has uid or gid 0; refusing to map to root")
    if not 0 < pw.pw_uid <= MAX_ID or not 0 < pw.pw_gid <= MAX_ID:
        raise AccountError(f"account {name!r} has an invalid uid or gid")
    return pw


def account_updates(name: str, *, add_uid: bool = True, add_pgid: bool = True,
                    add_sgid: bool = True) -> dict[str, object]:
    """Result updates for account ``name`` as the LCMAPS account plugins add them."""
    pw = lookup_account(name)
    updates: dict[str, object] = {}
    if add_uid:
        updates["uid"] = [pw.pw_uid]
    if add_pgid:
        updates["pgid"] = [pw.pw_gid]
    if add_sgid:
        updates["sgid"] = sorted(set(os.getgrouplist(pw.pw_name, pw.pw_gid)))
    return updates


def lookup_group(name: str) -> int:
    try:
        gid = grp.getgrnam(name).gr_gid
    except KeyError:
        raise AccountError(f"no such group {name!r}")
    if not 0 < gid <= MAX_ID:
        raise AccountError(f"group {name!r} has gid {gid}; refusing")
    return gid


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        raise AccountError(f"gid {gid} has no group name")


def default_mapfile(path: str | None, default: str = "/etc/grid-security/grid-mapfile") -> str:
    """LCMAPS' rule for a configured map file: relative names live under /etc/grid-security."""
    if not path:
        return default
    if not path.startswith("/"):
        return "/etc/grid-security/" + path
    return path
