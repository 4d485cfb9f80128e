"""Decision, failure and completion records: to syslog or a file, escaped, failing closed.

Runs as: root (setuid mode) or the caller (declare-only). Trusts: the log file's directory only
after ``trust.py`` accepted it. Hot path: yes (``_socket``, not ``socket``/``logging``).

syslog(3) silently drops records when no daemon listens, which would let a run go unrecorded. So
records are sent over our own datagram socket to /dev/log, where a missing or refusing daemon is an
error: before the payload starts that is a 202 (fail closed); afterwards (the completion record)
it is reported on stderr. Every caller-influenced value (DN, argv, paths, environment) passes
through :func:`escape`, so a newline or escape sequence can never forge a record, and values are
bounded so a 1 MB argument cannot make a 1 MB record.
"""

from __future__ import annotations

import os
import time

from glexec_py.errors import SiteError

LOG_SOCKET = "/dev/log"
MAX_VALUE = 1024
MAX_RECORD = 8000
LOG_ROOM = 1 << 20  # the records of one call, with a wide margin

FACILITIES = {
    "LOG_AUTH": 4, "LOG_AUTHPRIV": 10, "LOG_DAEMON": 3, "LOG_USER": 1,
    "LOG_LOCAL0": 16, "LOG_LOCAL1": 17, "LOG_LOCAL2": 18, "LOG_LOCAL3": 19,
    "LOG_LOCAL4": 20, "LOG_LOCAL5": 21, "LOG_LOCAL6": 22, "LOG_LOCAL7": 23,
}
ERR, WARNING, NOTICE, INFO, DEBUG = 3, 4, 5, 6, 7
# glexec.conf log_level (1 fatal .. 5 debug) -> the least important syslog priority logged
_LEVEL_LIMIT = {0: -1, 1: ERR, 2: WARNING, 3: NOTICE, 4: INFO, 5: DEBUG}

# Characters that must never reach a log line raw: C0, DEL, C1, and Unicode controls that
# reorder or hide text (bidi overrides/isolates, zero-width marks, line/paragraph separators).
_UNSAFE = set(range(0x20)) | {0x7F} | set(range(0x80, 0xA0)) | {
    0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2028, 0x2029, 0x202A, 0x202B, 0x202C, 0x202D,
    0x202E, 0x2066, 0x2067, 0x2068, 0x2069, 0xFEFF}


def escape(value: str, limit: int = MAX_VALUE) -> str:
    """Render a caller-supplied string safely and injectively for a log line.

    Backslash and double quote are escaped too, so a value can be quoted in a record and still
    be parsed back unambiguously; undecodable bytes (surrogateescape) appear as ``\\xNN``.
    """
    out = []
    for ch in value:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif 0xDC80 <= code <= 0xDCFF:  # surrogateescape'd raw byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code in _UNSAFE:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    text = "".join(out)
    if len(text) > limit:
        text = f"{text[:limit]}...[{len(text) - limit} more]"
    return text


class Logger:
    """One destination, opened before anything happens, so an unusable log stops the run."""

    __slots__ = ("facility", "limit", "fd", "sock", "ident", "pid", "path")

    def __init__(self, *, destination: str, facility: str = "LOG_DAEMON", level: int = 3,
                 path: str = "", ident: str = "glexec", socket_path: str = LOG_SOCKET) -> None:
        self.facility = FACILITIES[facility]
        self.limit = _LEVEL_LIMIT.get(level, NOTICE)
        self.ident = ident
        self.pid = os.getpid()
        self.fd = -1
        self.sock = None
        self.path = path
        if self.limit < 0:
            return
        if destination == "file":
            self.fd = _open_log_file(path)
        else:
            self.sock = _connect_syslog(socket_path)

    def emit(self, priority: int, message: str, ident: str | None = None,
             tag: str | None = None) -> None:
        """Write one record; raise SiteError if it cannot be written."""
        if priority > self.limit:
            return
        message = message[:MAX_RECORD]
        tag = tag or f"{ident or self.ident}[{self.pid}]"
        try:
            if self.sock is not None:
                stamp = time.strftime("%b %d %H:%M:%S", time.localtime())
                line = f"<{self.facility * 8 + priority}>{stamp} {tag}: {message}"
                self.sock.send(line.encode("utf-8", "backslashreplace"))
            elif self.fd >= 0:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
                line = f"{stamp} {tag}: {message}\n"
                data = line.encode("utf-8", "backslashreplace")
                if os.write(self.fd, data) != len(data):
                    raise OSError(28, "short write")
        except OSError as exc:
            raise SiteError(f"cannot write the log: {exc.strerror or exc}") from None

    def export_state(self) -> dict:
        """The open destination as plain data, for the lingering launcher's hand-over to a new
        image (which must keep ``fd`` and ``sock_fd`` open across its exec)."""
        return {"facility": self.facility, "limit": self.limit, "ident": self.ident,
                "pid": self.pid, "path": self.path, "fd": self.fd,
                "sock_fd": self.sock.fileno() if self.sock is not None else -1}

    @classmethod
    def from_state(cls, state: dict) -> Logger:
        """The destination :meth:`export_state` described, in the image after the exec."""
        logger = cls.__new__(cls)
        for name in ("facility", "limit", "ident", "pid", "path", "fd"):
            setattr(logger, name, state[name])
        logger.sock = None
        if state["sock_fd"] >= 0:
            import _socket

            logger.sock = _socket.socket(fileno=state["sock_fd"])
        for fd in (logger.fd, state["sock_fd"]):
            if fd >= 0:
                os.set_inheritable(fd, False)
        return logger

    def error(self, message: str) -> None:
        self.emit(ERR, message)

    def warning(self, message: str) -> None:
        self.emit(WARNING, message)

    def notice(self, message: str, ident: str | None = None) -> None:
        self.emit(NOTICE, message, ident)

    def notice_line(self, line: str) -> None:
        """A preformatted ``tag: message`` line (the glexec.mon accounting format)."""
        tag, _, message = line.partition(": ")
        self.emit(NOTICE, message, tag=tag)

    def info(self, message: str) -> None:
        self.emit(INFO, message)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _connect_syslog(path: str):  # noqa: ANN202 - _socket.socket
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise SiteError(f"cannot reach syslog at {path}: {exc.strerror or exc}") from None
    return sock


def _open_log_file(path: str) -> int:
    """Append-open the log file in a trusted directory, never through a symlink."""
    import stat

    from glexec_py.trust import open_trusted_dir

    directory, _, name = path.rpartition("/")
    if not name or not directory:
        raise SiteError(f"log file {path!r}: not an absolute file path")
    dirfd = open_trusted_dir(directory, what="log directory")
    try:
        fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                     | os.O_NOCTTY | os.O_NONBLOCK, 0o640, dir_fd=dirfd)
    except OSError as exc:
        raise SiteError(f"cannot open log file {path}: {exc.strerror}") from None
    finally:
        os.close(dirfd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.geteuid() or (
            st.st_mode & 0o022):
        os.close(fd)
        raise SiteError(f"log file {path}: not a private regular file of the launcher's owner")
    _check_room(fd, st.st_size, path)
    return fd


def _check_room(fd: int, size: int, path: str) -> None:
    """Fail closed (202) when the caller's RLIMIT_FSIZE leaves no room for this call's records.

    The front end raises the limit where root may (CAP_SYS_RESOURCE); where it may not, a
    pilot could set the limit just above the log's size so that the decision record is written
    and the completion record is not (EGI-SVG-2011-1641 class). Refuse before anything runs.
    """
    import resource

    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if soft != resource.RLIM_INFINITY and soft - size < LOG_ROOM:
        os.close(fd)
        raise SiteError(f"RLIMIT_FSIZE {soft} leaves no room for the log records in {path}")
