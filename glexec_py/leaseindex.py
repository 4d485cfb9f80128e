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

from glexec_py.cachedir import CacheDir

FORMAT = 1
# beyond max_entries, a write first drops entries older than max_age
INDEX = CacheDir("gridmapdirs", what="lease index directory", max_entry_size=64 << 20,
                 max_entries=4096, max_age=86400.0)


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


def _read_entry(name: str) -> bytes | None:
    return INDEX.read(name)


def _write_entry(name: str, data: bytes) -> None:
    """Replace one entry atomically (best effort: without it the next call scans)."""
    INDEX.write(name, data)


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
