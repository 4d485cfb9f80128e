"""Exit codes and the exception hierarchy, in one place.

Runs as: anyone. Trusts: nothing. Hot path: yes.

gLExec names its failures by who must act: the caller (201), the site administrator (202) or the
authorization decision (203).  Every module raises one of the classes below with a one-line
message; only ``main.run`` catches them, prints the line on stderr, logs it and exits with the code.
204 and 128+N are not exceptions: they describe what happened to the payload
(:func:`status_for_payload`).
"""

from __future__ import annotations

EXIT_CLIENT = 201
EXIT_SYSTEM = 202
EXIT_AUTHZ = 203
EXIT_PAYLOAD_20X = 204
EXIT_CANNOT_EXECUTE = 126

# (code, meaning, examples): feeds --help, the man page and the tests.
EXIT_CODE_TABLE: tuple[tuple[int | str, str, str], ...] = (
    ("N", "the payload's own exit code", "the command ran and exited N (0-200, 205-255)"),
    (EXIT_CLIENT, "client error: the caller must fix something",
     "no or unusable proxy, bad proxy permissions, target proxy location not usable, "
     "command not found (after the switch, as the target)"),
    (EXIT_SYSTEM, "system error: the site administrator must fix something",
     "glexec.conf missing, malformed or not trusted; policy or plugin initialization failed; "
     "log not writable; epilogue failed"),
    (EXIT_AUTHZ, "authorization error",
     "caller not in user_white_list; proxy not verified; policy found no mapping; "
     "target account refused"),
    (EXIT_PAYLOAD_20X, "the payload itself exited with 201, 202, 203 or 204", ""),
    (EXIT_CANNOT_EXECUTE, "the command could not be executed by the target account",
     "no execute permission for the target, exec format error"),
    ("128+N", "the payload was killed by signal N", "130 for SIGINT, 137 for SIGKILL"),
)


class GlexecError(Exception):
    """Base of every failure the launcher reports; ``str(e)`` is the one line the caller sees."""

    exit_code = EXIT_SYSTEM

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        # Detail goes to the log only (it may name site paths the caller need not see).
        self.detail = detail


class ClientError(GlexecError):
    """The caller's input is unusable (proxy, environment, arguments, target proxy location)."""

    exit_code = EXIT_CLIENT


class SiteError(GlexecError):
    """The site's configuration, policy, plugins, log or system state is broken."""

    exit_code = EXIT_SYSTEM


class AuthorizationError(GlexecError):
    """The caller or the credential is not authorized, or no acceptable mapping exists."""

    exit_code = EXIT_AUTHZ


class ExecError(GlexecError):
    """execve of the payload failed after the identity switch."""

    exit_code = EXIT_CANNOT_EXECUTE


def status_for_payload(wait_status: int) -> int:
    """Turn a ``wait`` status of the payload into glexec's own exit status.

    A payload exit of 201-204 becomes 204 so callers can tell the payload's codes from ours;
    death by signal N becomes 128+N, the shell convention DIRAC's table expects.
    """
    if wait_status & 0x7F == 0:  # WIFEXITED
        code = (wait_status >> 8) & 0xFF
        return EXIT_PAYLOAD_20X if 201 <= code <= 204 else code
    if (wait_status & 0xFF) == 0x7F:  # stopped: not a final status; treat as system error
        return EXIT_SYSTEM
    return 128 + (wait_status & 0x7F)
