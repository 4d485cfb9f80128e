"""Wrap the caller's environment into one ``GLEXEC_ENV`` blob on stdout: glexec_wrapenv.

Runs as: the pilot, before it calls glexec. Trusts: its own environment. Hot path: no.

Usage (PanDA's pattern)::

    export GLEXEC_ENV=`glexec_wrapenv [--exclude=NAME[,NAME...]]...`
    glexec /usr/bin/glexec_unwrapenv -- <command> [args...]

The wire format, the option grammar and the exclusion rules are specified once, in
:mod:`glexec_py.tools.unwrapenv`; this is their inverse. Observable behaviour kept from the Perl
``glexec_wrapenv.pl``: every variable not excluded becomes one entry; each excluded variable that
is present is reported as ``Skipping NAME`` on stderr; the blob is printed without a trailing
newline; the zlib stream uses zlib's default level with its header, like ``deflateInit()``.

Differences, all in the direction of failing loudly: an unknown option, a missing option value
or a stray argument is an error (exit 2; Perl warned and ignored it); a blob too large for the
kernel to pass to glexec as one variable (``GLEXEC_ENV=...`` over 128 KiB) is an error (exit 1)
naming the largest variables, instead of a blob that makes glexec's execve fail with E2BIG.
"""

from __future__ import annotations

import binascii
import sys
import zlib

from glexec_py.tools.unwrapenv import (
    MAX_ARG_STRLEN,
    ExclusionRule,
    UsageError,
    parse_options,
    read_initial_environment,
    show_bytes,
)

PROG = "glexec_wrapenv"
EXIT_TOO_LARGE = 1
EXIT_USAGE = 2


def encode_environment(environ: dict[bytes, bytes], rule: ExclusionRule,
                       skipped: list[bytes]) -> str:
    """Build the blob; names excluded by ``rule`` are appended to ``skipped`` instead."""
    entries = []
    for name, value in environ.items():
        if not name or rule.excludes(name):
            skipped.append(name)
            continue
        entries.append(binascii.b2a_base64(name + b"=" + value, newline=False) + b" ")
    compressed = zlib.compress(b"".join(entries))
    return binascii.b2a_base64(compressed, newline=False).decode("ascii")


def describe_largest(environ: dict[bytes, bytes], rule: ExclusionRule, count: int = 3) -> str:
    """Name the biggest wrapped variables, the ones worth excluding when the blob is too big."""
    sizes = sorted(((len(v), n) for n, v in environ.items() if n and not rule.excludes(n)),
                   reverse=True)
    return ", ".join(f"{show_bytes(n)} ({size} bytes)" for size, n in sizes[:count])


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse_options(sys.argv[1:] if argv is None else argv)
        if options.command:
            raise UsageError(f"unexpected argument: {options.command[0]}")
    except UsageError as exc:
        sys.stderr.write(f"{exc}\nusage: {PROG} [--exclude=NAME[,NAME...]]... "
                         f"[--include=NAME] [--substring-exclude]\n")
        return EXIT_USAGE
    environ = read_initial_environment()
    skipped: list[bytes] = []
    blob = encode_environment(environ, options.rule, skipped)
    for name in skipped:
        if name:
            sys.stderr.write(f"Skipping {show_bytes(name)}\n")
        else:
            sys.stderr.write(f"{PROG}: skipping a variable with an empty name\n")
    size = len("GLEXEC_ENV=") + len(blob) + 1
    if size > MAX_ARG_STRLEN:
        sys.stderr.write(f"{PROG}: the wrapped environment needs {size} bytes but the kernel "
                         f"passes at most {MAX_ARG_STRLEN} per variable; exclude some of: "
                         f"{describe_largest(environ, options.rule)}\n")
        return EXIT_TOO_LARGE
    sys.stdout.write(blob)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
