"""Run one function in a forked child permanently dropped to another account; get bytes back.

Runs as: root (parent); the child runs as the given account. Trusts: the bytes coming back no
more than the account they came from. Hot path: yes.

This is how the root launcher touches anything a caller names (the proxy files): it never opens,
stats or resolves those paths itself. The child drops for good (``ids.drop_to``), does the work
with the kernel checking permissions, and streams the result through a pipe; errors come back as
a code and a one-line message, so the parent raises the same exception class.
"""

from __future__ import annotations

import os

from glexec_py.errors import ClientError, GlexecError, SiteError

TYPE_CHECKING = False  # "import typing" costs ~10 ms of start-up (it imports re)
if TYPE_CHECKING:
    from collections.abc import Callable

MAX_REPLY = 8 << 20
_CLASSES = {201: ClientError, 202: SiteError}


def run_as(uid: int, gid: int, groups: tuple[int, ...], work: Callable[[], bytes],
           *, max_reply: int = MAX_REPLY) -> bytes:
    """Fork, drop to uid/gid/groups in the child, run ``work`` there, return its bytes.

    A whitelisted root caller's files are read as root (its own rights); in declare-only mode
    the process already is the caller and nothing is dropped.
    """
    from glexec_py import ids

    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # child
        status = 0
        try:
            os.close(rfd)
            try:
                if os.geteuid() == 0 and uid != 0:
                    ids.drop_to(uid, gid, groups)
                elif os.getuid() != uid:  # declare-only: we already are the caller
                    raise SiteError(f"cannot act as uid {uid} without privileges")
                payload = b"\x00" + work()
            except GlexecError as exc:
                payload = b"%d %s" % (exc.exit_code, exc.message.encode("utf-8", "replace"))
            except MemoryError:
                payload = b"202 out of memory"
            except Exception as exc:  # noqa: BLE001 - report, never let the child continue
                payload = b"202 internal error in unprivileged helper: " + type(
                    exc).__name__.encode()
            view = memoryview(payload)
            while view:
                written = os.write(wfd, view)
                view = view[written:]
        except BaseException:  # noqa: BLE001
            status = 1
        finally:
            os._exit(status)
    os.close(wfd)
    chunks = []
    total = 0
    try:
        while True:
            chunk = os.read(rfd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > max_reply + 1:
                raise ClientError("unprivileged helper returned too much data")
            chunks.append(chunk)
    finally:
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
    reply = b"".join(chunks)
    if status != 0 or not reply:
        raise SiteError("unprivileged helper failed")
    if reply[:1] == b"\x00":
        return reply[1:]
    code, _, message = reply.partition(b" ")
    exc_class = _CLASSES.get(int(code) if code.isdigit() else 202, SiteError)
    raise exc_class(message.decode("utf-8", "replace"))
