"""Whole-path trust checks and safe opening of site files (config, policies, CA dirs, gridmapdirs).

Runs as: root (or the caller in declare-only mode). Trusts: nothing but the kernel's answers about
the objects it has opened. Hot path: yes.

A site file is only as safe as every directory above it: whoever can write a parent can swap the
file. So a path is walked from ``/`` one component at a time with ``openat`` and ``O_NOFOLLOW``,
and each opened object is checked with ``fstat`` on its descriptor (never stat-then-open): it must
be owned by root (or the glexec service account) and not writable by group or others. Symlinks are
allowed, because sites link ``/etc/grid-security/certificates`` elsewhere, but only when the link
sits in a trusted directory; its target is then walked and checked the same way (HTCondor's
safefile rule). A sticky world-writable directory such as /tmp is *not* trusted: anyone could
have hard-linked or pre-created a name there.
"""

from __future__ import annotations

import errno
import os
import stat

from glexec_py.errors import SiteError

MAX_SYMLINKS = 40
MAX_RETRIES = 5
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

_trusted_uids: set[int] = set()


def trusted_uids() -> frozenset[int]:
    """Root plus the ``glexec`` service account, if the site created one."""
    if not _trusted_uids:
        _trusted_uids.add(0)
        try:
            import pwd

            _trusted_uids.add(pwd.getpwnam("glexec").pw_uid)
        except KeyError:
            pass
    return frozenset(_trusted_uids)


class FileIdentity:
    """What identifies one version of a file: used to key caches on exactly what was read."""

    __slots__ = ("dev", "ino", "size", "mtime_ns", "ctime_ns")

    def __init__(self, st: os.stat_result) -> None:
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.size = st.st_size
        self.mtime_ns = st.st_mtime_ns
        self.ctime_ns = st.st_ctime_ns

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns)


def _check_owner_mode(st: os.stat_result, what: str, path: str) -> None:
    # root first: the service-account lookup is an NSS query (a miss falls through every
    # source in nsswitch.conf), needed only for a file that root does not own
    if st.st_uid != 0 and st.st_uid not in trusted_uids():
        raise SiteError(f"{what} {path}: owned by uid {st.st_uid}, not by root or the "
                        f"glexec service account")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SiteError(f"{what} {path}: writable by group or others "
                        f"(mode {stat.S_IMODE(st.st_mode):04o})")


def _open_walk(path: str, *, want_dir: bool, what: str) -> tuple[int, os.stat_result]:
    """Walk ``path`` from ``/``; return an fd of the final object and its fstat."""
    if not path or not path.startswith("/"):
        raise SiteError(f"{what} {path!r}: not an absolute path")
    if "\0" in path or len(path) > 4096:
        raise SiteError(f"{what}: unusable path")
    pending = [c for c in path.split("/") if c not in ("", ".")]
    pending.reverse()  # a stack: the next component is at the end
    stack: list[int] = []
    hops = 0
    retries = 0
    try:
        fd = os.open("/", _DIR_FLAGS)
        st = os.fstat(fd)
        _check_owner_mode(st, what, path)
        stack.append(fd)
        while pending:
            name = pending.pop()
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            parent = stack[-1]
            try:
                lst = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                raise SiteError(f"{what} {path}: does not exist") from None
            if stat.S_ISLNK(lst.st_mode):
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise SiteError(f"{what} {path}: too many symbolic links")
                target = os.readlink(name, dir_fd=parent)
                parts = [c for c in target.split("/") if c not in ("", ".")]
                pending.extend(reversed(parts))
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                continue
            last = not pending
            flags = _DIR_FLAGS if (not last or want_dir) else _FILE_FLAGS
            try:
                fd = os.open(name, flags, dir_fd=parent)
            except OSError as exc:
                if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                    kind = "directory" if (not last or want_dir) else "file"
                    raise SiteError(f"{what} {path}: {name} is not a {kind}") from None
                raise SiteError(f"{what} {path}: {exc.strerror}") from None
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != (lst.st_dev, lst.st_ino):
                # The parent is trusted, so only a trusted writer can have replaced the name
                # (an administrator renaming a new glexec.conf over the old one): look again
                # rather than fail the call; give up only if it keeps changing.
                os.close(fd)
                retries += 1
                if retries > MAX_RETRIES:
                    raise SiteError(f"{what} {path}: changed while being checked")
                pending.append(name)
                continue
            stack.append(fd)
            _check_owner_mode(st, what, path)
        final = stack.pop()
        st = os.fstat(final)
        if want_dir and not stat.S_ISDIR(st.st_mode):
            os.close(final)
            raise SiteError(f"{what} {path}: not a directory")
        if not want_dir and not stat.S_ISREG(st.st_mode):
            os.close(final)
            raise SiteError(f"{what} {path}: not a regular file")
        return final, st
    except PermissionError as exc:
        raise SiteError(f"{what} {path}: {exc.strerror}") from None
    finally:
        for fd in stack:
            os.close(fd)


def open_trusted_file(path: str, *, what: str = "file") -> tuple[int, os.stat_result]:
    """Open a trusted regular file for reading; return its fd (caller closes) and fstat."""
    return _open_walk(path, want_dir=False, what=what)


def read_trusted_file(path: str, *, max_size: int = 4 << 20, what: str = "file") -> bytes:
    """Read a whole trusted regular file, refusing anything larger than ``max_size``."""
    data, _ = read_trusted_file_with_identity(path, max_size=max_size, what=what)
    return data


def read_trusted_file_with_identity(path: str, *, max_size: int = 4 << 20,
                                   what: str = "file") -> tuple[bytes, FileIdentity]:
    """Like :func:`read_trusted_file`, plus the identity of exactly the version that was read."""
    fd, st = _open_walk(path, want_dir=False, what=what)
    try:
        if st.st_size > max_size:
            raise SiteError(f"{what} {path}: larger than {max_size} bytes")
        chunks = []
        total = 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            total += len(chunk)
            if total > max_size:
                raise SiteError(f"{what} {path}: larger than {max_size} bytes")
            chunks.append(chunk)
        after = os.fstat(fd)
        if after.st_size != total or after.st_mtime_ns != st.st_mtime_ns:
            raise SiteError(f"{what} {path}: changed while being read")
        return b"".join(chunks), FileIdentity(after)
    except OSError as exc:
        raise SiteError(f"{what} {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def open_trusted_dir(path: str, *, what: str = "directory") -> int:
    """Open a trusted directory; the returned fd is for ``dir_fd=`` calls (caller closes it)."""
    fd, _ = _open_walk(path, want_dir=True, what=what)
    return fd


def identify_trusted_path(path: str, *, directory: bool = False,
                          what: str = "file") -> FileIdentity:
    """Check a path and return the identity of what it names now (for cache validation)."""
    fd, st = _open_walk(path, want_dir=directory, what=what)
    os.close(fd)
    return FileIdentity(st)


def is_trusted_path(path: str, *, directory: bool | None = None) -> bool:
    """True when ``path`` passes the whole-path check (as a directory or a file, or either)."""
    kinds = (True, False) if directory is None else (directory,)
    for want_dir in kinds:
        try:
            fd, _ = _open_walk(path, want_dir=want_dir, what="path")
        except SiteError:
            continue
        os.close(fd)
        return True
    return False
