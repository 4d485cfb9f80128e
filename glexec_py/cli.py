"""glexec's command line: a few options, then the command, which is never parsed further.

Runs as: root, before anything is read. Trusts: nothing. Hot path: yes (hand-written: argparse
costs ~10 ms and would try to interpret the payload's own options).

Grammar (gLExec's, plus a root-only test option)::

    glexec [--config=PATH] [--] <command> [args...]   run <command> as the mapped account
    glexec                                          authorize and refresh the target proxy
    glexec <uid> <gid> <command> [args...]          deprecated verify-account form
    glexec -h | -v | -V                             usage, version, installed defaults (root)

Option parsing stops at the first word that does not start with '-': ``glexec /bin/sh -c ...``
passes ``-c ...`` to the shell untouched.
"""

from __future__ import annotations

from glexec_py.errors import ClientError

USAGE = """\
usage: glexec <command> [arguments...]
       glexec                       (authorize and refresh the target proxy only)
       glexec -h | -v | -V

Runs <command> under the local account that the site's policy maps the payload's grid
identity to. The proxy is taken from GLEXEC_CLIENT_CERT (and GLEXEC_SOURCE_PROXY); the
copy for the payload goes to GLEXEC_TARGET_PROXY (default /tmp/x509up_u<uid>).

  -h, --help      this text
  -v, --version   the version
  -V              the installed defaults (root only)
  --config=PATH   use another glexec.conf (root callers only, for testing)

Exit status: the command's own, or
  201 client error (proxy, environment, command), 202 system error (site configuration),
  203 authorization error, 204 the command itself exited 201-204,
  126 the command could not be executed, 128+N the command died of signal N.
See glexec(1)."""


class Invocation:
    """What the caller asked for."""

    __slots__ = ("action", "command", "config_path", "requested_uid", "requested_gid")

    def __init__(self, action: str, command: tuple[str, ...] = (), config_path: str = "",
                 requested_uid: int | None = None, requested_gid: int | None = None) -> None:
        self.action = action            # run, refresh, help, version, defaults
        self.command = command
        self.config_path = config_path
        self.requested_uid = requested_uid
        self.requested_gid = requested_gid


def parse_args(args: list[str]) -> Invocation:
    """Parse glexec's arguments (argv without the program name)."""
    config_path = ""
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            i += 1
            break
        if not word.startswith("-") or word == "-":
            break
        if word in ("-h", "--help"):
            return Invocation("help")
        if word in ("-v", "--version"):
            return Invocation("version")
        if word == "-V":
            return Invocation("defaults")
        if word.startswith("--config="):
            config_path = word[len("--config="):]
            if not config_path.startswith("/"):
                raise ClientError("--config needs an absolute path")
            i += 1
            continue
        if word == "--config":
            if i + 1 >= len(args) or not args[i + 1].startswith("/"):
                raise ClientError("--config needs an absolute path")
            config_path = args[i + 1]
            i += 2
            continue
        raise ClientError(f"unknown option {word!r} (options go before the command; "
                          f"see glexec -h)")
    command = tuple(args[i:])
    if not command:
        return Invocation("refresh", config_path=config_path)
    if len(command) >= 3 and command[0].isdigit() and command[1].isdigit():
        uid, gid = int(command[0]), int(command[1])
        if not (0 < uid < 4294967295 and 0 < gid < 4294967295):
            raise ClientError("requested uid/gid out of range")
        return Invocation("run", command[2:], config_path, uid, gid)
    if not command[0]:
        raise ClientError("empty command name")
    return Invocation("run", command, config_path)
