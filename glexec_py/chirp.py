"""A small client for HTCondor's Chirp protocol: set and get job-ad attributes of a running job.

Runs as: the pilot (job) account, never root: the starter's ``.chirp.config`` is readable by the
job's owner only, and talking to the starter as root would let the payload's mapping act with
more than the pilot's rights. Trusts: nothing the server answers beyond one integer per reply.
Hot path: yes (imported by the condor_update plugin; ``socket`` is imported inside ``connect``).

Wire facts this follows (HTCondor ``src/condor_chirp/PROTOCOL`` and the starter's io_proxy):
TCP, one LF-terminated command line per request, words separated by spaces, a backslash escapes
the next character; the first line must be ``cookie <cookie>``; every reply is one line holding a
decimal integer, negative meaning an error; commands returning data reply ``<length>`` and then
exactly that many raw bytes. Values of job attributes are ClassAd *expressions*: a string value
carries its own double quotes (:func:`classad_string`).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # "import typing" costs ~10 ms of start-up (it imports re)
if TYPE_CHECKING:
    import socket

# The protocol's guaranteed minimum line length; older starters refuse anything longer.
LINE_MAX = 1024
DEFAULT_TIMEOUT = 5.0
MAX_REPLY = 1 << 20

ERROR_NAMES = {
    -1: "NOT_AUTHENTICATED", -2: "NOT_AUTHORIZED", -3: "DOESNT_EXIST", -4: "ALREADY_EXISTS",
    -5: "TOO_BIG", -6: "NO_SPACE", -7: "NO_MEMORY", -8: "INVALID_REQUEST", -9: "TOO_MANY_OPEN",
    -10: "BUSY", -11: "TRY_AGAIN", -12: "BAD_FD", -13: "IS_DIR", -14: "NOT_DIR",
    -15: "NOT_EMPTY", -16: "CROSS_DEVICE_LINK", -17: "OFFLINE", -127: "UNKNOWN",
}


class ChirpError(Exception):
    """A Chirp failure: ``code`` is the server's negative reply, or 0 for transport problems."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class ChirpConfig:
    """The contents of a ``.chirp.config``: ``<host> <port> <cookie>``."""

    __slots__ = ("host", "port", "cookie")

    def __init__(self, host: str, port: int, cookie: str) -> None:
        self.host = host
        self.port = port
        self.cookie = cookie


def parse_chirp_config(data: bytes) -> ChirpConfig:
    """Parse the first line of a chirp config file; raise ChirpError if it is not usable."""
    line = data.split(b"\n", 1)[0].decode("ascii", "replace")
    words = line.split()
    if len(words) != 3 or not words[1].isdigit() or not 0 < int(words[1]) < 65536:
        raise ChirpError("chirp config is not '<host> <port> <cookie>'")
    return ChirpConfig(words[0], int(words[1]), words[2])


def read_chirp_config(path: str) -> ChirpConfig:
    """Read a chirp config file with the calling process's own rights."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise ChirpError(f"cannot open chirp config {path}: {exc.strerror}") from None
    try:
        data = os.read(fd, 4096)
    except OSError as exc:
        raise ChirpError(f"cannot read chirp config {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    return parse_chirp_config(data)


def escape_word(word: str) -> str:
    """Escape one protocol word: backslash before backslash, space, tab, CR and LF."""
    out = []
    for ch in word:
        if ch in "\\ \t\r\n":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def classad_string(value: str) -> str:
    """A ClassAd string literal for ``value`` (quotes and backslashes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ChirpClient:
    """One authenticated connection to a starter's Chirp server.

    Use ``with ChirpClient.connect(config) as client: client.set_job_attr(...)``. A single
    connection serves any number of requests (the starter keeps it open), unlike htchirp's
    constructor, which opens a second one just to probe.
    """

    __slots__ = ("sock", "_buffer")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    @classmethod
    def connect(cls, config: ChirpConfig, *, timeout: float = DEFAULT_TIMEOUT) -> ChirpClient:
        import socket

        try:
            sock = socket.create_connection((config.host, config.port), timeout=timeout)
        except OSError as exc:
            raise ChirpError(f"cannot connect to chirp server {config.host}:{config.port}: "
                             f"{exc.strerror or exc}") from None
        client = cls(sock)
        try:
            client.request(["cookie", config.cookie])
        except ChirpError as exc:
            client.close()
            if exc.code == -1:
                raise ChirpError("chirp server refused the cookie", -1) from None
            raise
        return client

    def __enter__(self) -> ChirpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # -- the requests the plugin and the tests need -------------------------------------------

    def set_job_attr(self, name: str, expr: str) -> int:
        return self.request(["set_job_attr", name, expr])

    def set_job_attr_delayed(self, name: str, expr: str) -> int:
        return self.request(["set_job_attr_delayed", name, expr])

    def get_job_attr(self, name: str) -> str:
        return self.request_data(["get_job_attr", name]).decode("utf-8", "replace")

    def get_job_attr_delayed(self, name: str) -> str:
        return self.request_data(["get_job_attr_delayed", name]).decode("utf-8", "replace")

    def ulog(self, text: str) -> int:
        return self.request(["ulog", text])

    def version(self) -> int:
        return self.request(["version"])

    # -- wire level ---------------------------------------------------------------------------

    def request(self, words: list[str]) -> int:
        """Send one command line; return the non-negative reply or raise ChirpError."""
        line = " ".join(escape_word(w) for w in words).encode("utf-8") + b"\n"
        if len(line) > LINE_MAX:
            raise ChirpError(f"chirp request of {len(line)} bytes exceeds {LINE_MAX}", -5)
        try:
            self.sock.sendall(line)
        except OSError as exc:
            raise ChirpError(f"chirp send failed: {exc.strerror or exc}") from None
        return self._read_status(words[0])

    def request_data(self, words: list[str]) -> bytes:
        length = self.request(words)
        if length > MAX_REPLY:
            raise ChirpError(f"chirp reply of {length} bytes is too large")
        return self._read_exact(length)

    def _read_status(self, command: str) -> int:
        text = self._read_line()
        try:
            value = int(text)
        except ValueError:
            raise ChirpError(f"chirp server sent a malformed reply to {command}") from None
        if value < 0:
            name = ERROR_NAMES.get(value, "UNKNOWN")
            raise ChirpError(f"chirp {command} failed: {value} ({name})", value)
        return value

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(4096)
        except OSError as exc:
            raise ChirpError(f"chirp receive failed: {exc.strerror or exc}") from None
        if not chunk:
            raise ChirpError("chirp server closed the connection")
        self._buffer += chunk

    def _read_line(self) -> str:
        while b"\n" not in self._buffer:
            if len(self._buffer) > 64:
                raise ChirpError("chirp server sent an over-long reply line")
            self._fill()
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("ascii", "replace").strip()

    def _read_exact(self, length: int) -> bytes:
        while len(self._buffer) < length:
            self._fill()
        data, self._buffer = self._buffer[:length], self._buffer[length:]
        return data
