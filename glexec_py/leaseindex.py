"""A gridmapdir's reverse index and free list, so lease lookup and allocation need no scan.

Runs as: root (a process that is not root neither reads nor writes it and simply scans). Trusts:
its entries in /run/glexec-py/gridmapdirs (root-owned 0700, entries 0600) as *hints* only.
Hot path: yes.

The on-disk format LCMAPS shares stays exactly as it is (gridmapdir.py): an account file per pool
account, a lease is a hard link named after the identity. Finding which account a lease points
to means finding the other name of an inode, and allocating means finding the first account with
link count 1 in readdir order; both are directory scans, 20,000 entries for a 10,000-account pool.
This module remembers, per gridmapdir (keyed by its device and inode), inode -> account name and
the first free accounts in readdir order, with the directory's (mtime_ns, ctime_ns) at the
moment it was known exact. Every answer is re-checked by the caller against the kernel (lstat:
same inode, regular file, link count), so a stale entry costs a rescan, never a wrong lease:

* lookup: the hinted name must exist, be a regular non-lease file and carry the lease's inode
  (with link count 2 that is the only other name), else the caller scans;
* allocation (under the gridmapdir lock): the free list is used only when the directory's
  mtime/ctime are unchanged since it was recorded (any link, unlink or rename in the directory
  changes them), candidates are still link(2)ed with LCMAPS' link-count check, and an exhausted
  list is confirmed by a full scan before the pool is reported exhausted.

Known difference: a change made by someone else in the same timestamp tick as our own can leave
the free list unaware of an account freed meanwhile; a later account is then leased (any free
account is a valid lease for LCMAPS) and the exhausted case still rescans.
"""

from __future__ import annotations

import marshal
import os
import stat

INDEX_PARENT = "/run/glexec-py"
INDEX_DIR = "/run/glexec-py/gridmapdirs"
FORMAT = 1
MAX_INDEX_SIZE = 64 << 20
MAX_ENTRIES = 4096     # beyond this, a write first drops entries older than MAX_AGE
MAX_AGE = 86400.0


FREE_KEPT = 64  # free accounts remembered (in order); when used up, one scan refills the list


class LeaseIndex:
    """The first free accounts in readdir order and the directory state they are exact for."""

    __slots__ = ("key", "dir_state", "free", "more")

    def __init__(self, key: str, dir_state: tuple, free: list[str], more: bool) -> None:
        self.key = key
        self.dir_state = dir_state
        self.free = free
        self.more = more  # free accounts beyond the list exist


def _dir_state(dirfd: int) -> tuple[str, tuple]:
    st = os.fstat(dirfd)
    return f"{st.st_dev}-{st.st_ino}", (st.st_mtime_ns, st.st_ctime_ns)


def _open_index_dir(create: bool) -> int:
    if os.geteuid() != 0:
        return -1
    if create:
        for path in (INDEX_PARENT, INDEX_DIR):
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                pass
            except OSError:
                return -1
    from glexec_py.errors import GlexecError
    from glexec_py.trust import open_trusted_dir

    try:
        fd = open_trusted_dir(INDEX_DIR, what="lease index directory")
    except GlexecError:
        return -1
    st = os.fstat(fd)
    if st.st_uid != 0 or stat.S_IMODE(st.st_mode) & 0o077:
        os.close(fd)
        return -1
    return fd


def _read_entry(name: str) -> bytes | None:
    idx = _open_index_dir(create=False)
    if idx < 0:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     dir_fd=idx)
    except OSError:
        return None
    finally:
        os.close(idx)
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != 0 or stat.S_IMODE(st.st_mode) & 0o077
                or st.st_size > MAX_INDEX_SIZE):
            return None
        return os.read(fd, st.st_size + 1)
    finally:
        os.close(fd)


def _write_entry(name: str, data: bytes) -> None:
    """Replace one entry atomically (best effort: without it the next call scans)."""
    idx = _open_index_dir(create=True)
    if idx < 0:
        return
    tmp = f".{name}.{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=idx)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=idx, dst_dir_fd=idx)
        _prune(idx)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=idx)
        except OSError:
            pass
    finally:
        os.close(idx)


# -- lookup: one small hint file per inode that was asked for ---------------------------------

def hinted_account(dirfd: int, inode: int) -> str | None:
    """The account name recorded for ``inode`` (unverified: the caller lstat's it)."""
    key, _ = _dir_state(dirfd)
    data = _read_entry(f"{key}.i{inode}")
    if not data:
        return None
    try:
        return data.decode("utf-8", "surrogateescape")
    except ValueError:
        return None


def note_account(dirfd: int, inode: int, account: str) -> None:
    """Remember which account ``inode`` is (after a scan found it, or after a new lease)."""
    key, _ = _dir_state(dirfd)
    _write_entry(f"{key}.i{inode}", account.encode("utf-8", "surrogateescape"))


# -- allocation: the first free accounts in readdir order ------------------------------------

def load_index(dirfd: int) -> LeaseIndex | None:
    key, _ = _dir_state(dirfd)
    data = _read_entry(f"{key}.free")
    if data is None:
        return None
    try:
        entry = marshal.loads(data)  # noqa: S302 - root-owned 0600 entry in a 0700 root dir
        if not isinstance(entry, dict) or entry.get("format") != FORMAT:
            return None
        return LeaseIndex(key, tuple(entry["dir_state"]), list(entry["free"]),
                          bool(entry["more"]))
    except (ValueError, TypeError, KeyError, EOFError):
        return None


def scan_index(dirfd: int) -> LeaseIndex:
    """The first :data:`FREE_KEPT` free accounts from a full scan, in readdir order."""
    key, before = _dir_state(dirfd)
    free: list[str] = []
    more = False
    dup = os.dup(dirfd)
    try:
        with os.scandir(dup) as it:
            for entry in it:
                name = entry.name
                if name[0] in "%.":
                    continue
                try:
                    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                    if len(free) == FREE_KEPT:
                        more = True
                        break
                    free.append(name)
    finally:
        try:
            os.close(dup)
        except OSError:
            pass
    _, after = _dir_state(dirfd)
    # Changed while scanning: not exact, so the next allocation scans again.
    return LeaseIndex(key, after if after == before else (-1, -1), free, more)


def save_index(index: LeaseIndex) -> None:
    _write_entry(f"{index.key}.free", marshal.dumps(
        {"format": FORMAT, "dir_state": index.dir_state, "free": index.free,
         "more": index.more}))


def free_accounts(dirfd: int) -> LeaseIndex | None:
    """A free list exact for the directory as it is now (scanning if it must); None if not root
    or the list ran out while more free accounts exist (then the caller scans itself)."""
    if os.geteuid() != 0:
        return None
    index = load_index(dirfd)
    if index is not None and index.dir_state == _dir_state(dirfd)[1] and (
            index.free or not index.more):
        return index
    index = scan_index(dirfd)
    save_index(index)
    return index


def exact_index(dirfd: int) -> LeaseIndex | None:
    """The recorded index if it is exact for the directory right now (else None)."""
    if os.geteuid() != 0:
        return None
    index = load_index(dirfd)
    if index is not None and index.dir_state == _dir_state(dirfd)[1]:
        return index
    return None


def note_released(dirfd: int, index: LeaseIndex, account: str) -> None:
    """After our own unlink of a lease under the lock (glexec-gridmapdir release/expire).

    With no other free account known the freed one is exactly the free list; otherwise its
    place in readdir order is unknown, so the next allocation rescans.
    """
    if not index.free and not index.more:
        index.free = [account]
        index.dir_state = _dir_state(dirfd)[1]
    else:
        index.dir_state = (-1, -1)
    save_index(index)


def note_leased(dirfd: int, index: LeaseIndex, account: str, inode: int) -> None:
    """After our own link(2) under the lock: the account is taken, the directory state is new."""
    try:
        index.free.remove(account)
    except ValueError:
        pass
    index.dir_state = _dir_state(dirfd)[1]
    save_index(index)
    note_account(dirfd, inode, account)


def _prune(dirfd: int) -> None:
    """Past MAX_ENTRIES, drop entries untouched for MAX_AGE (stale sites, removed directories);
    a dropped entry that was still useful costs one directory scan later."""
    import time

    names = os.listdir(dirfd)
    if len(names) <= MAX_ENTRIES:
        return
    limit = time.time() - MAX_AGE
    for entry in names:
        try:
            if os.stat(entry, dir_fd=dirfd, follow_symlinks=False).st_mtime < limit:
                os.unlink(entry, dir_fd=dirfd)
        except OSError:
            pass
