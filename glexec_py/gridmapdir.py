"""Pool-account leases in a gridmapdir, on-disk format identical to LCMAPS; for plugins and tools.

Runs as: root. Trusts: the gridmapdir only after ``glexec_py.trust.open_trusted_dir`` accepted
every component of its path. Hot path: yes.

The format (LCMAPS ``lcmaps_gridmapdir.c``, Globus gridmapdir): one empty regular file per pool
account (``atlas001``); a lease is a *hard link* to it named after the encoded identity
(:func:`encode_lease_name`). Link count 1 = free, 2 = leased. LCMAPS uses no lock, only the
atomicity of ``link(2)`` and a link-count check afterwards; glexec-py keeps that check (an LCMAPS
on the same directory, or another host over NFS, still races safely) and in addition holds an
exclusive ``flock`` on the directory while it allocates or releases, so that glexec-py launchers
never back off against each other and the lease tools never race a launcher.

Every access is relative to one directory fd with ``follow_symlinks=False``: a symlink,
directory or device planted under a lease or account name is never followed or "repaired".

A launcher marks the account it got as in use, with a shared ``flock`` on the account's own pool
file, taken while it still holds the directory lock and kept until it exits (a lingering
launcher: the payload's lifetime; ``linger = no``: until the exec, after which the payload's
process of that uid shows the account is busy). The lease tools take the directory lock and test
that flock before releasing, so a lease being used is never released between its creation and
the payload's start (catalogue L136).

Lookups of an existing lease find the account by inode (:func:`find_name_by_inode`) and
allocation takes the first free account in readdir order; both first ask the root-only index of
``glexec_py.leaseindex`` (inode -> account, the free list) and verify its answer with lstat, so
their cost does not grow with the pool; a missing or stale index means one directory scan.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from glexec_py.errors import AuthorizationError, SiteError

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

NAME_MAX = 255
LINK_RETRIES = 3
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def encode_lease_name(identity: str, extras: Sequence[str] = ()) -> str:
    """The lease file name LCMAPS gives ``identity`` (a DN, or an FQAN for group pools).

    ASCII letters and digits are copied lower-cased, every other byte of the UTF-8 string becomes
    ``%xx`` in lower-case hex. ``extras`` (voms_poolaccount's group names) follow, each after a
    ``:``, un-encoded, exactly as LCMAPS appends them. (For bytes >= 0x80 LCMAPS' signed-char
    ``%02x`` would print eight hex digits; DNs reaching it are ASCII, here they are two digits.)
    """
    out = []
    for b in identity.encode("utf-8"):
        c = chr(b)
        if c in _ALNUM:
            out.append(c.lower())
        else:
            out.append(f"%{b:02x}")
    for extra in extras:
        out.append(":")
        out.append(extra)
    return "".join(out)


def check_lease_name(name: str) -> str | None:
    """Why ``name`` cannot be a lease name, or None: too long, or unsafe in a directory."""
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        return f"lease name longer than {NAME_MAX} bytes"
    if "/" in name or "\0" in name or name in ("", ".", ".."):
        return "lease name contains '/' or NUL"
    return None


def is_pool_member(name: str, prefix: str, *, strict: bool = True) -> bool:
    """Whether the account file ``name`` belongs to pool ``prefix`` (LCMAPS ``pool_match``).

    Strict (LCMAPS' code default): the prefix followed by at least one digit and only digits, so
    pool ``atlas`` never takes ``atlasprd001``. Never: dot-files, ``%`` names (leases), names with
    ``~``, and ``root``.
    """
    if not name or name[0] in "%." or "~" in name or name == "root":
        return False
    if not prefix or not name.startswith(prefix):
        return False
    if not strict:
        return True
    rest = name[len(prefix):]
    return rest.isascii() and rest.isdigit()


class Lease:
    """A lease that exists now: the account it maps to, its name, and its inode's mtime."""

    __slots__ = ("account", "name", "mtime", "inode")

    def __init__(self, account: str, name: str, mtime: float, inode: int) -> None:
        self.account = account
        self.name = name
        self.mtime = mtime
        self.inode = inode

    def __repr__(self) -> str:
        return f"Lease({self.account!r}, {self.name!r})"


def open_gridmapdir(path: str) -> int:
    """An O_DIRECTORY fd of the trust-checked gridmapdir (202 when untrusted or missing)."""
    from glexec_py.trust import open_trusted_dir

    return open_trusted_dir(path, what="gridmapdir")


def lock_gridmapdir(dirfd: int, *, blocking: bool = True) -> bool:
    """Take the exclusive allocation lock (released when the fd is closed)."""
    flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
    try:
        fcntl.flock(dirfd, flags)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN) and not blocking:
            return False
        raise SiteError(f"cannot lock gridmapdir: {e.strerror}")
    return True


def _lstat(dirfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def iter_names(dirfd: int) -> Iterator[str]:
    """Directory entries in readdir order (the order LCMAPS allocates in)."""
    dup = os.dup(dirfd)
    try:
        with os.scandir(dup) as it:
            for entry in it:
                yield entry.name
    finally:
        try:
            os.close(dup)
        except OSError:
            pass


def find_name_by_inode(dirfd: int, inode: int, exclude: str, *,
                       want_lease: bool = False) -> str | None:
    """The other name (account, or with ``want_lease`` the lease) sharing ``inode``."""
    if not want_lease:
        from glexec_py import leaseindex

        hint = leaseindex.hinted_account(dirfd, inode)
        if hint is not None and hint != exclude and hint[0] not in "%.":
            st = _lstat(dirfd, hint)
            if st is not None and st.st_ino == inode and stat.S_ISREG(st.st_mode):
                return hint
    found = _scan_for_inode(dirfd, inode, exclude, want_lease)
    if not want_lease and found is not None and os.geteuid() == 0:
        from glexec_py import leaseindex

        leaseindex.note_account(dirfd, inode, found)  # the next lookup needs no scan
    return found


def _scan_for_inode(dirfd: int, inode: int, exclude: str, want_lease: bool) -> str | None:
    for name in iter_names(dirfd):
        if name == exclude:
            continue
        if (name[0] == "%") != want_lease:
            continue
        st = _lstat(dirfd, name)
        if st is not None and st.st_ino == inode and stat.S_ISREG(st.st_mode):
            return name
    return None


def _touch(dirfd: int, name: str) -> None:
    try:
        os.utime(name, dir_fd=dirfd, follow_symlinks=False)
    except OSError:
        pass  # LCMAPS ignores a failed touch as well: the mtime is only a hint


def _unlink(dirfd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dirfd)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise SiteError(f"gridmapdir: cannot remove {name}: {e.strerror}")


class PoolRequest:
    """What a lease is for: identity name, pool prefix, and LCMAPS' options."""

    __slots__ = ("lease_name", "prefix", "strict", "override_inconsistency", "requested",
                 "create")

    def __init__(self, lease_name: str, prefix: str, *, strict: bool = True,
                 override_inconsistency: bool = False, requested: str | None = None,
                 create: bool = True) -> None:
        self.lease_name = lease_name
        self.prefix = prefix
        self.strict = strict
        self.override_inconsistency = override_inconsistency
        self.requested = requested
        self.create = create


def _existing(dirfd: int, req: PoolRequest) -> tuple[str | None, bool]:
    """Step 1 of LCMAPS ``get_pool_mapping``: (account of a valid lease, whether to re-allocate).

    Raises AuthorizationError for states LCMAPS refuses (not a regular file, link count > 2,
    another pool's account without ``-override_inconsistency``).
    """
    st = _lstat(dirfd, req.lease_name)
    if st is None:
        return None, True
    if not stat.S_ISREG(st.st_mode):
        raise AuthorizationError(f"gridmapdir: lease {req.lease_name} is not a regular file")
    if st.st_nlink == 1:
        # An orphan lease (its account file was removed): LCMAPS drops it and allocates anew.
        return None, True
    if st.st_nlink > 2:
        raise AuthorizationError(f"gridmapdir: lease {req.lease_name} has link count "
                                 f"{st.st_nlink}: more than one identity shares the account")
    account = find_name_by_inode(dirfd, st.st_ino, req.lease_name)
    if account is not None and is_pool_member(account, req.prefix, strict=req.strict):
        if req.requested is not None and account != req.requested:
            raise AuthorizationError(f"gridmapdir: identity already leases {account}, "
                                     f"not the requested {req.requested}")
        return account, False
    if not req.override_inconsistency:
        raise AuthorizationError(
            f"gridmapdir: lease {req.lease_name} points to "
            f"{account or 'an account outside the gridmapdir'}, not a member of pool "
            f"{req.prefix}")
    return None, True


def _candidates(dirfd: int, req: PoolRequest, index: object = None) -> Iterator[str]:
    """Pool members to try, in readdir order: the index's free list, then (only if that ran
    out) every member from a full scan, so a stale index can never make a pool look full."""
    if req.requested is not None:
        if is_pool_member(req.requested, req.prefix, strict=req.strict):
            yield req.requested
        return
    tried = set()
    if index is not None:
        for name in list(index.free):
            if is_pool_member(name, req.prefix, strict=req.strict):
                tried.add(name)
                yield name
    for name in iter_names(dirfd):
        if name not in tried and is_pool_member(name, req.prefix, strict=req.strict):
            yield name


def _try_link(dirfd: int, account: str, lease_name: str) -> str:
    """Link ``lease_name`` to ``account``: 'ok', 'taken' (account grabbed), 'exists', 'busy'."""
    st = _lstat(dirfd, account)
    if st is None or not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        return "busy"
    try:
        os.link(account, lease_name, src_dir_fd=dirfd, dst_dir_fd=dirfd,
                follow_symlinks=False)
    except FileExistsError:
        return "exists"
    except OSError as e:
        # EROFS, ENOSPC, EMLINK, EACCES: the site must look; nothing was created.
        raise SiteError(f"gridmapdir: cannot create lease for {account}: {e.strerror}")
    after = _lstat(dirfd, lease_name)
    if after is None or after.st_ino != st.st_ino:
        return "exists"
    if after.st_nlink > 2:
        # Someone else (an LCMAPS, another host) linked the same account at the same moment:
        # LCMAPS' rule is that both back off.
        _unlink(dirfd, lease_name)
        return "taken"
    _touch(dirfd, lease_name)
    return "ok"


_HELD: list[int] = []  # pool files this process holds flock(LOCK_SH) on: accounts in use


def hold_account(dirfd: int, account: str) -> None:
    """Mark ``account`` as in use by this process until it exits (see the module docstring)."""
    try:
        fd = os.open(account, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dirfd)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        os.close(fd)
        return
    _HELD.append(fd)


def drop_held_accounts() -> None:
    """Give up this process's in-use marks (a long-lived process that leased on behalf of a
    finished request, such as a test driving the engine in-process)."""
    while _HELD:
        os.close(_HELD.pop())


def account_in_use(dirfd: int, account: str) -> bool:
    """Whether a running launcher holds ``account`` (the caller holds the directory lock)."""
    try:
        fd = os.open(account, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dirfd)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def acquire_lease(dirfd: int, req: PoolRequest) -> str | None:
    """Find or create the lease for ``req`` and hold its account (:func:`hold_account`)."""
    account = _acquire_lease(dirfd, req)
    if account is not None:
        hold_account(dirfd, account)
    return account


def _acquire_lease(dirfd: int, req: PoolRequest) -> str | None:
    """Find or create the lease for ``req``; the account name, or None if the pool is exhausted.

    Follows LCMAPS ``get_pool_mapping``/``create_link``: reuse (and touch) a consistent lease;
    otherwise take the first free member in readdir order with ``link(2)``, retrying when the
    name appeared meanwhile. The caller holds :func:`lock_gridmapdir` when ``req.create``.
    """
    reason = check_lease_name(req.lease_name)
    if reason:
        raise AuthorizationError(f"gridmapdir: {reason}")
    for _attempt in range(LINK_RETRIES + 1):
        account, allocate = _existing(dirfd, req)
        if account is not None:
            if req.create:
                _touch(dirfd, req.lease_name)
            return account
        if not req.create:
            return None
        if _lstat(dirfd, req.lease_name) is not None:
            _unlink(dirfd, req.lease_name)  # orphan or overridden inconsistent lease
        raced = False
        index = None
        if req.requested is None:
            from glexec_py import leaseindex

            index = leaseindex.free_accounts(dirfd)
        for candidate in _candidates(dirfd, req, index):
            outcome = _try_link(dirfd, candidate, req.lease_name)
            if outcome == "ok":
                if index is not None:
                    st = _lstat(dirfd, candidate)
                    leaseindex.note_leased(dirfd, index, candidate, st.st_ino if st else 0)
                return candidate
            if outcome == "exists":
                raced = True
                break
        if not raced:
            return None
    return None


def list_leases(dirfd: int) -> list[Lease]:
    """Every lease (``%`` name with link count 2) and the account it maps to."""
    accounts: dict[int, str] = {}
    leases: list[tuple[str, os.stat_result]] = []
    for name in iter_names(dirfd):
        st = _lstat(dirfd, name)
        if st is None or not stat.S_ISREG(st.st_mode):
            continue
        if name.startswith("%"):
            leases.append((name, st))
        elif not name.startswith("."):
            accounts[st.st_ino] = name
    out = [Lease(accounts.get(st.st_ino, ""), name, st.st_mtime, st.st_ino)
           for name, st in leases]
    out.sort(key=lambda lease: (lease.account, lease.name))
    return out


def decode_lease_name(name: str) -> str:
    """Undo :func:`encode_lease_name` as far as possible (case is lost): for display only."""
    base, _, extras = name.partition(":")
    raw = bytearray()
    i = 0
    while i < len(base):
        if base[i] == "%" and _is_hex(base[i + 1:i + 3]):
            raw.append(int(base[i + 1:i + 3], 16))
            i += 3
        else:
            raw.extend(base[i].encode("utf-8"))
            i += 1
    text = raw.decode("utf-8", "replace")
    return text + (":" + extras if extras else "")


def _is_hex(s: str) -> bool:
    return len(s) == 2 and all(c in "0123456789abcdefABCDEF" for c in s)


def release_lease(dirfd: int, lease_name: str) -> str:
    """Remove one lease (caller holds the lock); returns the account it mapped to."""
    st = _lstat(dirfd, lease_name)
    if st is None:
        raise SiteError(f"gridmapdir: no lease {lease_name}")
    if not lease_name.startswith("%") or not stat.S_ISREG(st.st_mode):
        raise SiteError(f"gridmapdir: {lease_name} is not a lease")
    account = find_name_by_inode(dirfd, st.st_ino, lease_name) or ""
    from glexec_py import leaseindex

    index = leaseindex.exact_index(dirfd) if account else None
    _unlink(dirfd, lease_name)
    if index is not None:
        leaseindex.note_released(dirfd, index, account)
    return account


def lease_age(lease: Lease, now: float | None = None) -> float:
    return (time.time() if now is None else now) - lease.mtime
