"""Write the payload's copy of the proxy, as the target account, atomically, mode 0600.

Runs as: the target account (inside the payload child, after the switch). Trusts: nothing about
the destination; the kernel checks the target's permissions. Hot path: yes.

Because the writer already *is* the target, a hostile GLEXEC_TARGET_PROXY (``/etc/passwd``, a
symlink, another user's file) can do no more than the target itself could. On top of that: the
directory must belong to the target (or be a root-owned sticky directory such as /tmp), an
existing file is only replaced if it is the target's own private regular file, and the new
content goes to an O_EXCL temporary name in the same directory, then is renamed over it,
so a reader never sees a partial proxy and concurrent writers never interleave bytes.
"""

from __future__ import annotations

import os
import stat

from glexec_py.cachedir import write_new_file
from glexec_py.errors import ClientError, SiteError

DEV_NULL = "/dev/null"


def default_target_proxy(uid: int) -> str:
    return f"/tmp/x509up_u{uid}"


def check_target_proxy_path(path: str) -> str:
    """Shape checks done before anything runs (the real checks happen as the target)."""
    if path == DEV_NULL:
        return path
    if not path.startswith("/") or path.endswith("/"):
        raise ClientError(f"GLEXEC_TARGET_PROXY {path!r}: must be an absolute file path")
    name = path.rpartition("/")[2]
    if name in (".", "..") or len(name) > 200 or len(path) > 4096:
        raise ClientError(f"GLEXEC_TARGET_PROXY {path!r}: unusable file name")
    return path


LOCK_TRIES = 100  # x 50 ms


def _lock(dirfd: int, existing: int, mechanism: str) -> None:
    """Serialise writers for a while, never wait forever.

    The flock is on the directory, and anyone may open sticky /tmp (where the default target
    proxy lives) and hold an exclusive flock on it: a blocking wait let any local user hang
    every glexec call. Correctness does not depend on the lock (each writer uses its own O_EXCL
    name and an atomic rename), so after ~5 s the write goes ahead without it.
    """
    import fcntl
    import time

    if mechanism == "flock":
        fd, take = dirfd, fcntl.flock
    elif mechanism == "fcntl" and existing >= 0:
        fd, take = existing, fcntl.lockf
    else:
        return
    for _ in range(LOCK_TRIES):
        try:
            take(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (11, 13):  # EAGAIN, EACCES: held by someone else
                return  # e.g. a file system without locks
        time.sleep(0.05)


def write_target_proxy(path: str, data: bytes, *, target_uid: int, lock: str = "flock") -> None:
    """Install ``data`` at ``path`` for the target (who we are now)."""
    if path == DEV_NULL:
        return
    directory, _, name = path.rpartition("/")
    directory = directory or "/"
    try:
        dirfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ClientError(f"target proxy directory {directory}: {exc.strerror}") from None
    tmp = ""
    existing = -1
    try:
        dst = os.fstat(dirfd)
        sticky = bool(dst.st_mode & stat.S_ISVTX)
        open_to_others = bool(dst.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
        if not (dst.st_uid == target_uid or (dst.st_uid == 0 and sticky)):
            raise ClientError(f"target proxy directory {directory}: not owned by the target "
                              f"account")
        if open_to_others and not sticky:
            raise ClientError(f"target proxy directory {directory}: writable by others")
        try:
            old = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if old is not None:
            if not stat.S_ISREG(old.st_mode) or old.st_uid != target_uid or old.st_nlink != 1:
                raise ClientError(f"target proxy {path}: exists and is not the target "
                                  f"account's own file; not overwritten")
            if lock == "fcntl":
                existing = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
        if lock != "disabled":
            _lock(dirfd, existing, lock)
        tmp = f".{name[:180]}.glexec-{os.getpid()}-{os.urandom(4).hex()}"
        write_new_file(tmp, data, dir_fd=dirfd)
        # No fsync: rename alone makes readers see the old or the whole new file; durability
        # across a crash buys nothing for a credential of a job that the crash ended, and two
        # fsyncs cost a journal commit each (milliseconds on a busy worker node's disk).
        os.rename(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
        tmp = ""
    except OSError as exc:
        cls = SiteError if exc.errno in (5, 28, 122) else ClientError  # EIO, ENOSPC, EDQUOT
        raise cls(f"cannot write target proxy {path}: {exc.strerror}") from None
    finally:
        if tmp:
            try:
                os.unlink(tmp, dir_fd=dirfd)
            except OSError:
                pass
        if existing >= 0:
            os.close(existing)
        os.close(dirfd)


def remove_target_proxy(path: str) -> None:
    """Undo a target proxy written for a payload that then could not be started."""
    if path == DEV_NULL:
        return
    try:
        os.unlink(path)
    except OSError:
        pass
