"""Which proxy files the caller named, and their bytes, read with the caller's own rights.

Runs as: root, with the caller's effective ids while it reads (``privsep``). Trusts: nothing about
the files; only what the kernel enforces for the caller and what fstat says about the opened
descriptor. Hot path: yes.

gLExec's rules: GLEXEC_CLIENT_CERT (the identity to authorize and map) and GLEXEC_SOURCE_PROXY
(what is copied for the payload; defaults to the client cert) must be absolute paths of regular
files owned by the caller with no group/other/special permission bits, small, and not modified
while read. Root's rights never open or stat these paths; X509_USER_PROXY (the pilot's own
proxy in pilot use) is never used for mapping.
"""

from __future__ import annotations

import fcntl
import os
import stat
import time

from glexec_py.errors import ClientError

MAX_PROXY_SIZE = 256 * 1024
MAX_PATH = 4096


class ProxyFiles:
    """The bytes of the client certificate and of the source proxy (often the same file)."""

    __slots__ = ("client_path", "client", "source_path", "source")

    def __init__(self, client_path: str, client: bytes, source_path: str, source: bytes) -> None:
        self.client_path = client_path
        self.client = client
        self.source_path = source_path
        self.source = source


def _check_path(name: str, value: str | None) -> str:
    if value is None:
        raise ClientError(f"{name} is not set: no proxy provided")
    if value == "":
        raise ClientError(f"{name} is empty: no proxy provided")
    if not value.startswith("/"):
        raise ClientError(f"{name} must be an absolute path")
    if len(value) > MAX_PATH:
        raise ClientError(f"{name} is too long")
    return value


def read_proxy_as_caller(path: str, *, caller_uid: int, lock: str = "flock") -> bytes:
    """Open and read one proxy file; runs with the caller's effective ids already taken.

    Imports nothing (the modules above are loaded before the ids change), so no file but the
    proxy is opened while they are the caller's.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        reason = "is a symbolic link" if exc.errno == 40 else exc.strerror
        raise ClientError(f"proxy {path}: {reason}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ClientError(f"proxy {path}: not a regular file")
        if st.st_uid != caller_uid:
            raise ClientError(f"proxy {path}: owned by uid {st.st_uid}, not by the caller")
        if st.st_mode & 0o7077:
            raise ClientError(f"proxy {path}: permissions {stat.S_IMODE(st.st_mode):04o} allow "
                              f"more than the owner (at most 0700)")
        if st.st_size > MAX_PROXY_SIZE:
            raise ClientError(f"proxy {path}: larger than {MAX_PROXY_SIZE} bytes")
        if lock != "disabled":
            for _ in range(100):
                try:
                    if lock == "fcntl":
                        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    else:
                        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (11, 13):  # EAGAIN, EACCES: held by a writer
                        break  # e.g. a file system without locks: read anyway
                    time.sleep(0.05)
            else:
                raise ClientError(f"proxy {path}: locked by another process for too long")
        data = os.read(fd, MAX_PROXY_SIZE + 1)
        while True:
            more = os.read(fd, MAX_PROXY_SIZE + 1 - len(data))
            if not more:
                break
            data += more
            if len(data) > MAX_PROXY_SIZE:
                break
        after = os.fstat(fd)
        if len(data) > MAX_PROXY_SIZE:
            raise ClientError(f"proxy {path}: larger than {MAX_PROXY_SIZE} bytes")
        if (after.st_size, after.st_mtime_ns) != (len(data), st.st_mtime_ns):
            raise ClientError(f"proxy {path}: modified while being read")
        if not data:
            raise ClientError(f"proxy {path}: empty file")
        return data
    finally:
        os.close(fd)


def read_proxy_files(env: dict[str, str], *, caller_uid: int, caller_gid: int,
                     caller_groups: tuple[int, ...], lock: str) -> ProxyFiles:
    """Read GLEXEC_CLIENT_CERT and GLEXEC_SOURCE_PROXY as the caller."""
    from glexec_py.privsep import run_with_caller_rights

    client_path = _check_path("GLEXEC_CLIENT_CERT", env.get("GLEXEC_CLIENT_CERT"))
    source_var = env.get("GLEXEC_SOURCE_PROXY")
    source_path = client_path if source_var is None else _check_path("GLEXEC_SOURCE_PROXY",
                                                                     source_var)

    def read_both() -> tuple[bytes, bytes]:
        client = read_proxy_as_caller(client_path, caller_uid=caller_uid, lock=lock)
        if source_path == client_path:
            return client, client
        return client, read_proxy_as_caller(source_path, caller_uid=caller_uid, lock=lock)

    client, source = run_with_caller_rights(caller_uid, caller_gid, caller_groups, read_both)
    return ProxyFiles(client_path, client, source_path, source)
