"""Who called glexec, from the kernel's ids, and whether they may call it at all.

Runs as: root. Trusts: the uid/gid the front end took from getuid()/getgid() and the process's
supplementary groups (inherited from the caller); never the environment (USER, LOGNAME, SUDO_UID
are the caller's to forge). Hot path: yes.
"""

from __future__ import annotations

import grp
import os
import pwd

from glexec_py.errors import AuthorizationError, SiteError


class CallerIdentity:
    """The calling account: uid, gid, name, primary group name, supplementary gids, cwd."""

    __slots__ = ("uid", "gid", "name", "group", "groups", "home", "cwd", "pid")

    def __init__(self, uid: int, gid: int, name: str, group: str, groups: tuple[int, ...],
                 home: str, cwd: str, pid: int) -> None:
        self.uid = uid
        self.gid = gid
        self.name = name
        self.group = group
        self.groups = groups
        self.home = home
        self.cwd = cwd
        self.pid = pid


def lookup_account(uid: int, gid: int, role: str) -> tuple[pwd.struct_passwd, str]:
    """The passwd entry of ``uid`` and the name of group ``gid``.

    An account without a passwd entry is never authorized (203): it must not match ``*`` or a
    pool prefix by accident. A failing name service (LDAP down) is the site's problem (202).
    """
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        raise AuthorizationError(f"{role} uid {uid} has no account entry") from None
    except OSError as exc:
        raise SiteError(f"account lookup for uid {uid} failed: {exc}") from None
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return pw, group


def identify_caller(uid: int, gid: int, *, invoker_pid: int, cwd: str) -> CallerIdentity:
    """The calling account, from the ids the kernel gave the front end."""
    pw, group = lookup_account(uid, gid, "calling")
    groups = tuple(sorted(set(os.getgroups())))
    return CallerIdentity(uid, gid, pw.pw_name, group, groups, pw.pw_dir, cwd, invoker_pid)


def _name_matches(name: str, entry: str) -> bool:
    """A whitelist entry: an exact account name, or '.prefix' for prefix + digits pool names."""
    if entry == "*":
        return True
    if entry.startswith("."):
        prefix = entry[1:]
        rest = name[len(prefix):]
        return bool(prefix) and name.startswith(prefix) and rest.isdigit() and rest.isascii()
    return name == entry


def check_whitelist(caller: CallerIdentity, users: tuple[str, ...],
                    groups: tuple[str, ...]) -> None:
    """Refuse (203) a caller that neither user_white_list nor group_white_list admits."""
    if any(_name_matches(caller.name, entry) for entry in users):
        return
    if groups:
        member_gids = {caller.gid, *caller.groups}
        for entry in groups:
            try:
                gid = int(entry) if entry.isdigit() else grp.getgrnam(entry).gr_gid
            except KeyError:
                continue
            if gid in member_gids:
                return
    raise AuthorizationError(f"caller {caller.name} (uid {caller.uid}) is not in "
                             f"user_white_list")


def is_listed(caller: CallerIdentity, entries: tuple[str, ...]) -> bool:
    """Whether the caller matches a user list such as omission_private_key_white_list."""
    return any(_name_matches(caller.name, entry) for entry in entries)
