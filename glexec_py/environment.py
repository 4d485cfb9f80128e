"""The caller's environment as data, and the payload's environment built from an allowlist.

Runs as: root. Trusts: nothing in the caller's environment; only names are matched, values are
bounded and checked. Hot path: yes.

The front end never lets the caller's environment reach the interpreter's own environ (PYTHON*,
LD_*, locale variables would influence the root process); it passes it as sealed data on fd 3.
Only GLEXEC_* (gLExec's rule) and the site's preserve_env_variables reach the payload, never
MALLOC_*; HOME, USER, LOGNAME, PATH and X509_USER_PROXY are set for the target account.
"""

from __future__ import annotations

import os

from glexec_py.errors import ClientError, SiteError

ENV_FD = 3
MAX_ENV_BYTES = 4 << 20
MAX_ENTRIES = 8192
MAX_GLEXEC_VALUE = 256 * 1024
F_GET_SEALS = 1034
F_SEAL_WRITE = 0x0008

# Set by glexec-py for the payload; a caller or preserve_env_variables can never override them.
LAUNCHER_SET = ("HOME", "USER", "LOGNAME", "PATH", "X509_USER_PROXY", "SHELL")


def read_caller_env(fd: int = ENV_FD) -> dict[str, str]:
    """Read the sealed environment blob the front end left on ``fd`` (NUL-separated K=V)."""
    import fcntl

    try:
        seals = fcntl.fcntl(fd, F_GET_SEALS)
    except OSError:
        raise SiteError("launcher front end did not pass the caller environment "
                        "(not started through the installed glexec?)") from None
    if not seals & F_SEAL_WRITE:
        raise SiteError("caller environment descriptor is not sealed")
    chunks = []
    total = 0
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        total += len(chunk)
        if total > MAX_ENV_BYTES:
            raise ClientError("environment too large")
        chunks.append(chunk)
    os.close(fd)
    return parse_env_blob(b"".join(chunks))


def parse_env_blob(blob: bytes) -> dict[str, str]:
    """NUL-separated ``KEY=VALUE`` entries; a name given twice is refused (201)."""
    env: dict[str, str] = {}
    entries = blob.split(b"\0")
    if len(entries) > MAX_ENTRIES:
        raise ClientError("too many environment variables")
    for entry in entries:
        if not entry:
            continue
        name, sep, value = entry.partition(b"=")
        if not sep or not name:
            continue
        key = name.decode("utf-8", "surrogateescape")
        if key in env:
            raise ClientError(f"environment variable {_printable(key)} is set twice")
        env[key] = value.decode("utf-8", "surrogateescape")
    return env


def _printable(text: str) -> str:
    from glexec_py.log import escape

    return escape(text, 64)


def check_glexec_value(name: str, value: str) -> str:
    """GLEXEC_* values are read by the launcher or passed on: bounded, printable, UTF-8."""
    if len(value) > MAX_GLEXEC_VALUE:
        raise ClientError(f"{name} is longer than {MAX_GLEXEC_VALUE} bytes")
    for ch in value:
        code = ord(ch)
        # C1 (0x80-0x9F) too: U+0085 is a line break to many log and terminal readers.
        if code < 0x20 or 0x7F <= code <= 0x9F or 0xDC80 <= code <= 0xDCFF:
            raise ClientError(f"{name} contains a control character or invalid UTF-8: "
                              f"{_printable(value)}")
    return value


def check_glexec_values(caller_env: dict[str, str]) -> None:
    """Refuse (201) a bad GLEXEC_* value up front, before any proxy is read or lease taken.

    build_payload_env checks the same values again; doing it first as well means a refusal for
    a newline in GLEXEC_ID never leaves a pool lease behind (the mapping runs in between).
    """
    for name, value in caller_env.items():
        if name.startswith("GLEXEC_") and not name.startswith("GLEXEC_EPILOG_"):
            check_glexec_value(name, value)


def _preserved(name: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if pattern.endswith("*"):
            if name.startswith(pattern[:-1]):
                return True
        elif name == pattern:
            return True
    return False


def build_payload_env(caller_env: dict[str, str], *, preserve: tuple[str, ...], home: str,
                      user: str, path: str, proxy: str) -> dict[str, str]:
    """The payload's complete environment (nothing else of the caller's survives)."""
    env: dict[str, str] = {}
    for name, value in caller_env.items():
        if name.upper().startswith("MALLOC_") or name in LAUNCHER_SET:
            continue
        if name.startswith("GLEXEC_EPILOG_"):
            continue
        if name.startswith("GLEXEC_"):
            env[name] = check_glexec_value(name, value)
        elif _preserved(name, preserve):
            if value.startswith("() {"):
                continue  # an exported shell function never crosses the switch
            env[name] = value
    env["HOME"] = home
    env["USER"] = user
    env["LOGNAME"] = user
    env["PATH"] = path
    env["SHELL"] = "/bin/sh"
    if proxy:
        env["X509_USER_PROXY"] = proxy
    return env
