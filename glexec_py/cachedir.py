"""Root-private cache directories under /run/glexec-py: find, read and replace one entry.

Runs as: root (anyone else simply gets no cache). Trusts: an entry only when it is a regular,
root-owned, 0600, singly-linked file in a root-owned 0700 directory reached through trusted
directories. Hot path: yes.

The verified-chain cache, the compiled-policy cache and the lease index all keep small marshal
blobs here; they differ in what an entry means and how it is validated, not in how it is stored,
so storage is this one module. Every operation is best effort: a missing, foreign or damaged
entry reads as "no entry" and a failed write is dropped, so a cache can only save work, never
change or block a decision.
"""

from __future__ import annotations

import os
import stat

CACHE_ROOT = "/run/glexec-py"


def write_new_file(name: str, data: bytes, *, dir_fd: int | None, mode: int = 0o600) -> None:
    """Create ``name`` (which must not exist, never through a symlink) and write all of ``data``.

    The one way glexec-py writes a file that it then renames into place: a cache entry, the
    target proxy, the module bundle. OSError on failure; the caller removes the name.
    """
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                 dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if mode & 0o077:
            os.fchmod(fd, mode)  # what the umask took away (the launcher's is 077)
    finally:
        os.close(fd)


class CacheDir:
    """One subdirectory of CACHE_ROOT with its size limits and pruning rule."""

    __slots__ = ("path", "what", "max_entry_size", "max_entries", "max_age")

    def __init__(self, name: str, *, what: str, max_entry_size: int, max_entries: int,
                 max_age: float) -> None:
        self.path = f"{CACHE_ROOT}/{name}"
        self.what = what
        self.max_entry_size = max_entry_size
        self.max_entries = max_entries
        self.max_age = max_age

    def open(self, *, create: bool) -> int:
        """The directory's fd if it is trusted and private (created when asked), else -1."""
        if os.geteuid() != 0:
            return -1
        if create:
            for path in (CACHE_ROOT, self.path):
                try:
                    os.mkdir(path, 0o700)
                except FileExistsError:
                    pass
                except OSError:
                    return -1
        from glexec_py.errors import GlexecError
        from glexec_py.trust import open_trusted_dir

        try:
            fd = open_trusted_dir(self.path, what=self.what)
        except GlexecError:
            return -1
        st = os.fstat(fd)
        if st.st_uid != 0 or stat.S_IMODE(st.st_mode) & 0o077:
            os.close(fd)
            return -1
        return fd

    def read(self, name: str) -> bytes | None:
        """The bytes of entry ``name``, or None when absent or not a private root file."""
        dirfd = self.open(create=False)
        if dirfd < 0:
            return None
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                         dir_fd=dirfd)
        except OSError:
            return None
        finally:
            os.close(dirfd)
        try:
            st = os.fstat(fd)
            if (not stat.S_ISREG(st.st_mode) or st.st_uid != 0
                    or stat.S_IMODE(st.st_mode) & 0o077 or st.st_nlink != 1
                    or st.st_size > self.max_entry_size):
                return None
            return os.read(fd, st.st_size + 1)
        except OSError:
            return None
        finally:
            os.close(fd)

    def write(self, name: str, data: bytes) -> None:
        """Replace entry ``name`` atomically (private temporary file, then rename)."""
        if len(data) > self.max_entry_size:
            return
        dirfd = self.open(create=True)
        if dirfd < 0:
            return
        tmp = f".{name}.{os.getpid()}"
        try:
            write_new_file(tmp, data, dir_fd=dirfd)
            os.rename(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)  # atomic for readers
            self._prune(dirfd)
        except OSError:
            try:
                os.unlink(tmp, dir_fd=dirfd)
            except OSError:
                pass
        finally:
            os.close(dirfd)

    def _prune(self, dirfd: int) -> None:
        """Past max_entries, drop entries untouched for max_age (stale sites, old chains);
        a dropped entry that was still useful only costs the work it saved, once."""
        import time

        names = os.listdir(dirfd)
        if len(names) <= self.max_entries:
            return
        limit = time.time() - self.max_age
        for entry in names:
            try:
                if os.stat(entry, dir_fd=dirfd, follow_symlinks=False).st_mtime < limit:
                    os.unlink(entry, dir_fd=dirfd)
            except OSError:
                pass
