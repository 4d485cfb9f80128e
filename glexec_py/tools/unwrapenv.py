"""Restore a wrapped caller environment (``GLEXEC_ENV``) and exec the payload: glexec_unwrapenv.

Runs as: the target account, as the payload of glexec. Trusts: nothing in ``GLEXEC_ENV`` (it was
written by the pilot, a different account). Hot path: no (but it starts every PanDA payload, so it
imports only ``os``, ``sys``, ``binascii`` and ``zlib``; measure with ``python -X importtime``).

glexec clears the caller's environment; the Nikhef wrapper scripts carry it across in one variable
that glexec lets through because its name starts with ``GLEXEC_``::

    export GLEXEC_ENV=`glexec_wrapenv`
    glexec /usr/bin/glexec_unwrapenv -- <command> [args...]

This module also holds what both halves share: the wire format and the option grammar, so that
``wrapenv`` (the inverse) cannot drift from it.

Wire format (identical to the Perl ``glexec_wrapenv.pl``/``glexec_unwrapenv.pl``, so a blob made by
either implementation is read by the other)::

    GLEXEC_ENV = base64( zlib( entry entry ... ) )
    entry      = base64( NAME "=" VALUE ) " "

Both base64 layers use the standard alphabet with padding and no line breaks; every entry,
including the last, is followed by exactly one space; the zlib layer is one complete zlib stream
(RFC 1950, header and Adler-32 trailer) at any compression level. NAME and VALUE are raw bytes.
The wrapper prints the blob without a trailing newline, as the Perl script did.

Reading (this module):

* ``GLEXEC_ENV`` unset or empty: ``GLEXEC_ENV not set. No environment to pass on`` (exit 255,
  Perl ``die``'s status).
* Whitespace in the blob is ignored (a captured newline); anything else that is not strict
  base64, not exactly one complete zlib stream, larger than :data:`MAX_BLOB` characters, inflating
  to more than :data:`MAX_INFLATED` bytes or holding more than :data:`MAX_ENTRIES` entries is
  refused with one line on stderr and exit 255, and the command is **not** run: a payload started
  with half an environment fails later in ways nobody can diagnose.
* An entry that decodes to something without ``=`` is reported as ``no = sign found in [...]!``
  and skipped, exactly like the original (empty fields between two spaces are such entries).
  Entries that are not valid base64, have an empty NAME, contain a NUL byte, exceed the kernel's
  per-string limit, or repeat a NAME are refused (exit 255): the Perl script could not produce
  them, so they are damage or an attack.

Options (Getopt::Long semantics, as in the Perl scripts): ``--exclude=A`` / ``--exclude A`` /
``--exclude=A,B`` (repeatable), with one or two leading dashes, case-insensitive, abbreviable to
any unique prefix (``--ex=A``); options may appear anywhere before ``--``; the arguments that are
not options, and everything after ``--``, form the command. Two options are new:
``--include=NAME[,NAME]`` takes a name off the default exclusion list (the explicit request needed
to let the wrapped environment override ``HOME``, ``USER``, ``LOGNAME`` or ``X509_USER_PROXY``),
and ``--substring-exclude`` reproduces the original's matching quirk (below). Unlike the Perl
scripts, which warned and carried on, an unknown option or a missing value is an error (exit 2):
silently dropping ``-l`` from ``glexec_unwrapenv ls -l`` hides the caller's mistake.

Exclusions. Default list: ``HOME LOGNAME USER X509_USER_PROXY _`` (the original's) plus
``GLEXEC_ENV``, so that a pilot re-wrapping its environment does not nest the previous blob into
the next one and so that the blob cannot replace itself. By default a variable is excluded when its
NAME equals an entry of the list. The Perl scripts tested ``grep { /$key/ } @exclude``: the
variable's NAME was used as a regular expression against each entry, so any NAME that is a
substring of an excluded name was dropped too (``E``, ``ME``, ``X509``, ``USER_PROXY``, and every
name appearing inside a user ``--exclude``). ``--substring-exclude`` restores that behaviour, as a
literal substring test (for names of letters, digits and ``_`` this is what Perl did; names with
regex metacharacters were matched as patterns by Perl, or made it die).

The launcher's own rewriting. glexec sets ``HOME``, ``USER``, ``LOGNAME`` and ``X509_USER_PROXY``
for the target account; they are on the default list on both sides, so the pilot's values cannot
undo that unless both sides are given ``--include``. ``PATH``, ``SHELL`` and everything else are
restored from the blob like the original did: payloads depend on the pilot's ``PATH``
and library paths, and since this program already runs as the target account, no variable it sets
can grant more than that account has.

Running the command: a single argument is run by ``/bin/sh -c`` (Perl's one-argument ``exec``;
PanDA passes ``'cd <dir>; <payload> 2>&1;'``); several arguments are exec'd directly with a
``PATH`` search in the restored environment. No command: exit 2. The command cannot be run: exit
127 when not found, 126 otherwise (the shell's convention; the Perl script printed a warning and
exited 0). ``GLEXEC_ENV`` itself stays in the payload's environment, as before.
"""

from __future__ import annotations

import binascii
import os
import sys
import zlib

PROG = "glexec_unwrapenv"

DEFAULT_EXCLUDES: tuple[str, ...] = ("HOME", "LOGNAME", "USER", "X509_USER_PROXY", "_",
                                     "GLEXEC_ENV")
# A blob longer than the kernel's limit for one "NAME=value" string (MAX_ARG_STRLEN) cannot
# have been passed through execve, so anything larger did not come from a real caller.
MAX_ARG_STRLEN = 131072
MAX_BLOB = MAX_ARG_STRLEN
# An environment larger than this could not be passed to execve either (ARG_MAX with the
# default 8 MiB stack is 2 MiB); the cap stops zlib bombs before they cost memory.
MAX_INFLATED = 4 << 20
MAX_ENTRIES = 16384

EXIT_USAGE = 2
EXIT_BLOB = 255
EXIT_NOT_FOUND = 127
EXIT_CANNOT_EXEC = 126

_OPTIONS = ("exclude", "include", "substring-exclude")
_OPTIONS_WITH_VALUE = ("exclude", "include")
_WHITESPACE = b" \t\r\n\v\f"


class UsageError(Exception):
    """A command-line problem: the message is printed as it is (Getopt::Long wording)."""


class BlobError(Exception):
    """``GLEXEC_ENV`` is unusable; the message is one line naming what is wrong."""


class ExclusionRule:
    """Decides which names are not carried across, with or without the original's quirk."""

    __slots__ = ("names", "substring")

    def __init__(self, excludes: list[str], includes: list[str], substring: bool) -> None:
        wanted = [n for n in DEFAULT_EXCLUDES if n not in includes]
        # Getopt values are comma-joined and split again, as the original did.
        for value in excludes:
            wanted.extend(value.split(","))
        self.names = tuple(os.fsencode(n) for n in wanted)
        self.substring = substring

    def excludes(self, name: bytes) -> bool:
        if self.substring:
            return any(name in entry for entry in self.names)
        return name in self.names


class Options:
    """The parsed command line of either script."""

    __slots__ = ("rule", "command")

    def __init__(self, rule: ExclusionRule, command: list[str]) -> None:
        self.rule = rule
        self.command = command


def parse_options(argv: list[str]) -> Options:
    """Parse like Getopt::Long's defaults (permute, auto_abbrev, ignore_case, ``--`` ends)."""
    excludes: list[str] = []
    includes: list[str] = []
    substring = False
    command: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            command.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            command.append(arg)
            continue
        body = arg[2:] if arg.startswith("--") else arg[1:]
        name, has_value, value = body.partition("=")
        option = match_option(name)
        if option not in _OPTIONS_WITH_VALUE:
            if has_value:
                raise UsageError(f"Option {option} does not take an argument")
            substring = True
            continue
        if has_value:
            if value == "":
                raise UsageError(f"Option {option} requires an argument")
        elif i < len(args):
            # Getopt::Long: a mandatory string value takes the next argument, whatever it is.
            value = args[i]
            i += 1
        else:
            raise UsageError(f"Option {option} requires an argument")
        (excludes if option == "exclude" else includes).append(value)
    included = [n for value in includes for n in value.split(",")]
    for name in included:
        if name not in DEFAULT_EXCLUDES:
            # Only the defaults can be taken off; anything else is a typo worth reporting.
            raise UsageError(f"Option include: {name} is not excluded by default "
                             f"({' '.join(DEFAULT_EXCLUDES)})")
    return Options(ExclusionRule(excludes, included, substring), command)


def match_option(name: str) -> str:
    """Resolve an option name or unique abbreviation, ignoring case."""
    lowered = name.lower()
    found = [o for o in _OPTIONS if lowered and o.startswith(lowered)]
    if lowered in _OPTIONS:
        return lowered
    if len(found) == 1:
        return found[0]
    if found:
        raise UsageError(f"Option {name} is ambiguous ({', '.join(found)})")
    raise UsageError(f"Unknown option: {lowered}")


def decode_blob(blob: bytes) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """Decode a ``GLEXEC_ENV`` value into (name, value) pairs and the entries lacking ``=``."""
    if len(blob) > MAX_BLOB:
        raise BlobError(f"GLEXEC_ENV is {len(blob)} bytes, more than {MAX_BLOB}")
    compact = blob.translate(None, _WHITESPACE)
    compressed = decode_base64(compact, "GLEXEC_ENV")
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(compressed, MAX_INFLATED)
    except zlib.error:
        raise BlobError("GLEXEC_ENV does not hold a valid zlib stream") from None
    if inflater.unconsumed_tail:
        raise BlobError(f"GLEXEC_ENV inflates to more than {MAX_INFLATED} bytes")
    if not inflater.eof:
        raise BlobError("GLEXEC_ENV holds a truncated zlib stream")
    if inflater.unused_data:
        raise BlobError("GLEXEC_ENV has data after the end of its zlib stream")
    fields = text.split(b" ")
    # Perl's split drops trailing empty fields only; leading and inner ones stay.
    while fields and fields[-1] == b"":
        fields.pop()
    if len(fields) > MAX_ENTRIES:
        raise BlobError(f"GLEXEC_ENV holds {len(fields)} entries, more than {MAX_ENTRIES}")
    pairs: list[tuple[bytes, bytes]] = []
    without_equals: list[bytes] = []
    seen: set[bytes] = set()
    for number, field in enumerate(fields, 1):
        entry = decode_base64(field, f"GLEXEC_ENV entry {number}")
        if len(entry) >= MAX_ARG_STRLEN:
            raise BlobError(f"GLEXEC_ENV entry {number} is {len(entry)} bytes, more than the "
                            f"kernel passes for one variable")
        name, equals, value = entry.partition(b"=")
        if not equals:
            without_equals.append(entry)
            continue
        if not name:
            raise BlobError(f"GLEXEC_ENV entry {number} has an empty variable name")
        if b"\0" in entry:
            raise BlobError(f"GLEXEC_ENV entry {number} ({show_bytes(name)}) contains a NUL byte")
        if name in seen:
            raise BlobError(f"GLEXEC_ENV sets {show_bytes(name)} twice")
        seen.add(name)
        pairs.append((name, value))
    return pairs, without_equals


def decode_base64(data: bytes, what: str) -> bytes:
    """Strict standard base64 (padding required, no stray characters)."""
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise BlobError(f"{what} is not valid base64") from None


def show_bytes(data: bytes, limit: int = 200) -> str:
    """Render caller-supplied bytes on one line: printable ASCII as is, the rest escaped."""
    text = data[:limit].decode("ascii", "backslashreplace")
    text = "".join(c if " " <= c <= "~" else f"\\x{ord(c):02x}" for c in text)
    return text + ("..." if len(data) > limit else "")


def read_initial_environment() -> dict[bytes, bytes]:
    """The environment this process was started with, as the caller passed it.

    ``os.environ`` is not that: on start-up in the C locale Python adds ``LC_CTYPE=C.UTF-8``
    (PEP 538), which would then be wrapped, or handed to the payload, although nobody set it.
    ``/proc/self/environ`` still holds the block the kernel copied at exec time.
    """
    try:
        with open("/proc/self/environ", "rb") as handle:
            block = handle.read()
    except OSError:
        return dict(os.environb)
    environ: dict[bytes, bytes] = {}
    for item in block.split(b"\0"):
        name, equals, value = item.partition(b"=")
        if equals and name not in environ:  # getenv() returns the first of duplicates
            environ[name] = value
    return environ


def restore_environment(options: Options, blob: bytes) -> dict[bytes, bytes]:
    """The payload's environment: the current one updated from ``blob`` minus exclusions."""
    pairs, without_equals = decode_blob(blob)
    for entry in without_equals:
        sys.stderr.write(f"no = sign found in [{show_bytes(entry)}]!\n")
    env = read_initial_environment()
    for name, value in pairs:
        if not options.rule.excludes(name):
            env[name] = value
    return env


def exec_command(command: list[str], env: dict[bytes, bytes]) -> int:
    """Replace this process with the command; return an exit status only if that failed."""
    if len(command) == 1:
        path, argv = "/bin/sh", ["/bin/sh", "-c", command[0]]
    else:
        path, argv = command[0], command
    # Running the caller's command is this program's whole purpose (S606).
    try:
        if path == "/bin/sh":
            os.execve(path, argv, env)  # noqa: S606
        else:
            os.execvpe(path, argv, env)  # noqa: S606
    except OSError as exc:
        sys.stderr.write(f"{PROG}: cannot execute {path}: {exc.strerror}\n")
        return EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_CANNOT_EXEC
    except ValueError as exc:  # NUL in an argument, or both PATH spellings present
        sys.stderr.write(f"{PROG}: cannot execute {path}: {exc}\n")
        return EXIT_CANNOT_EXEC
    return EXIT_CANNOT_EXEC  # not reached: exec does not return on success


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse_options(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        sys.stderr.write(f"{exc}\nusage: {PROG} [--exclude=NAME[,NAME...]]... "
                         f"[--include=NAME] [--substring-exclude] [--] command [args...]\n")
        return EXIT_USAGE
    blob = read_initial_environment().get(b"GLEXEC_ENV", b"")
    if not blob:
        sys.stderr.write("GLEXEC_ENV not set. No environment to pass on\n")
        return EXIT_BLOB
    try:
        env = restore_environment(options, blob)
    except BlobError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return EXIT_BLOB
    if not options.command:
        sys.stderr.write(f"{PROG}: no command given\n")
        return EXIT_USAGE
    return exec_command(options.command, env)


if __name__ == "__main__":
    sys.exit(main())
