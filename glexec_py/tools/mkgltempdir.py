"""Create (or remove) a directory owned by the glexec target account, through glexec: mkgltempdir.

Runs as: the pilot (never privileged itself); the directory operations run as the target account
under glexec. Trusts: nothing the pilot passes beyond what the pilot could do itself; the kernel
checks every operation the target performs. Hot path: no.

Why: the target proxy (``GLEXEC_TARGET_PROXY``) and the payload's work area must live in a
directory the *target* owns and nobody else can write, and only the target can create one. This
is Nikhef's ``mkgltempdir`` (PanDA: ``mkgltempdir -t 777 <cwd>`` then ``mkgltempdir -r <dir> -f``;
the CMS SAM probe: ``mkgltempdir`` with no argument).

Usage::

    mkgltempdir [-t MODE] [-m PARENTMODE] [--glexec PATH] [DIRECTORY]
    mkgltempdir -r DIR [-f] [--glexec PATH]

Creating (prints the new directory's absolute path, and only that, on stdout):

1. As the pilot: make the parent ``DIRECTORY/mkgltempdir.XXXXXXXX`` with ``mkdtemp`` (0700).
   ``DIRECTORY`` defaults to ``$TMPDIR``, else ``/tmp``. Like the original, search permission
   (``a+x``) is added to ``DIRECTORY`` and its ancestors, up to the first one the pilot does not
   own, so the target can reach the directory at all; nothing else about them changes.
2. Open the parent (``O_NOFOLLOW``) and, through that descriptor, make it ``01733``: sticky, and
   writable but not listable by others, for as long as the target needs to create its entry.
3. Run ``glexec /bin/sh -c 'umask 077 && mkdir -m "$2" -- "$1"' mkgltempdir PARENT/NAME MODE``
   (``/bin/sh`` resolved to its real path, since glexec refuses symlinked commands): the names
   are arguments, never spliced into shell text. NAME is random, so nobody can pre-create it
   and the target's ``mkdir`` fails rather than adopt a planted entry; the sticky bit stops
   anyone but the target (and the pilot) from renaming or removing the result.
4. Make the parent ``PARENTMODE`` (``-m``, default 0755; group/other write is refused since it
   would let others swap the directory) through the descriptor, whatever glexec returned.
5. Check through the descriptor that NAME is a real directory (not a symlink) with the requested
   mode; print ``PARENT/NAME``.

``-t MODE`` is the target directory's mode (octal, default 0700, at most 01777: setuid/setgid
bits are refused). glexec's diagnostics go to stderr (its stdout as well, so ours holds only the
path). If glexec fails, its exit status is ours (201/202/203 keep their meaning for callers such
as DIRAC), the parent is removed, and nothing is printed on stdout.

Removing (``-r DIR``): the parent of ``DIR`` must be a ``mkgltempdir.*`` directory owned by the
caller and ``DIR`` must be a directory, not a symlink; otherwise nothing is run (the tool does not
become a way to delete arbitrary paths of the target account, EGI-SVG-2013-5560's lesson for
helpers that take paths). The parent is put back to ``01733`` for the call, since removing an
entry needs write access to its directory, then the target runs ``rmdir -- DIR``, or with ``-f``
``rm -rf -- DIR``; finally the pilot removes the parent (with ``-f``, also whatever else it can
delete in it).

glexec is ``--glexec PATH``, else the first executable of ``$OSG_GLEXEC_LOCATION``,
``$GLEXEC_LOCATION/sbin/glexec``, ``/usr/sbin/glexec``, ``$GLITE_LOCATION/sbin/glexec`` and
``glexec`` on ``PATH`` (PanDA's search order). The caller's environment (``GLEXEC_CLIENT_CERT``
and friends) is passed to glexec unchanged. Exit status: 0 success, glexec's status when glexec
failed, 1 other failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile

PROG = "mkgltempdir"
PARENT_PREFIX = "mkgltempdir."
WINDOW_MODE = 0o1733
DEFAULT_TARGET_MODE = 0o700
DEFAULT_PARENT_MODE = 0o755
MKDIR_SCRIPT = 'umask 077 && mkdir -m "$2" -- "$1"'
RMDIR_SCRIPT = 'rmdir -- "$1"'
RMTREE_SCRIPT = 'rm -rf -- "$1"'
EXIT_FAILURE = 1
EXIT_USAGE = 2
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class ToolError(Exception):
    """A one-line failure; ``status`` is the exit code."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


def parse_mode(text: str, *, limit: int, what: str) -> int:
    """An octal mode no larger than ``limit`` in bits (``limit`` is the allowed bit mask)."""
    if not text or len(text) > 5 or any(c not in "01234567" for c in text):
        raise ToolError(f"{what} {text!r} is not an octal mode", EXIT_USAGE)
    mode = int(text, 8)
    if mode & ~limit:
        raise ToolError(f"{what} {text} sets bits outside {limit:04o}", EXIT_USAGE)
    return mode


def find_glexec(explicit: str | None) -> str:
    if explicit:
        candidates = [explicit]
    else:
        env = os.environ
        candidates = [env.get("OSG_GLEXEC_LOCATION", ""),
                      os.path.join(env["GLEXEC_LOCATION"], "sbin", "glexec")
                      if env.get("GLEXEC_LOCATION") else "",
                      "/usr/sbin/glexec",
                      os.path.join(env["GLITE_LOCATION"], "sbin", "glexec")
                      if env.get("GLITE_LOCATION") else "",
                      shutil.which("glexec") or ""]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.abspath(path)
    tried = ", ".join(p for p in candidates if p) or "nothing"
    raise ToolError(f"cannot find an executable glexec (tried {tried}); use --glexec PATH")


def run_as_target(glexec: str, script: str, *args: str) -> None:
    """Run a fixed shell script as the target account; raise with glexec's status on failure."""
    shell = os.path.realpath("/bin/sh")
    # Our stdout carries only the result path, so the child's stdout goes to stderr.
    result = subprocess.run([glexec, shell, "-c", script, PROG, *args], stdin=subprocess.DEVNULL,
                            stdout=sys.stderr.fileno(), check=False)
    if result.returncode != 0:
        status = result.returncode if 0 < result.returncode < 256 else EXIT_FAILURE
        raise ToolError(f"{os.path.basename(glexec)} {os.path.basename(shell)} -c "
                        f"'{script}' failed with exit status {result.returncode}", status)


def open_search_path(base: str) -> None:
    """Add search permission for everyone to ``base`` and its ancestors up to one we don't own."""
    me = os.geteuid()
    path = base
    while True:
        try:
            st = os.stat(path)
        except OSError:
            return
        if st.st_uid != me:
            return
        if st.st_mode & 0o111 != 0o111:
            try:
                # Search only, never read or write: the target must reach its directory.
                os.chmod(path, stat.S_IMODE(st.st_mode) | 0o111)  # noqa: S103
            except OSError:
                return
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def create(base: str, target_mode: int, parent_mode: int, glexec: str) -> str:
    base = os.path.abspath(base)
    if not os.path.isdir(base):
        raise ToolError(f"{base} is not a directory")
    open_search_path(base)
    try:
        parent = tempfile.mkdtemp(prefix=PARENT_PREFIX, dir=base)
    except OSError as exc:
        raise ToolError(f"cannot create a directory in {base}: {exc.strerror}") from None
    fd = os.open(parent, _DIR_FLAGS)
    created = False
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise ToolError(f"{parent} is not owned by us after creating it")
        name = secrets.token_hex(8)
        target = os.path.join(parent, name)
        os.fchmod(fd, WINDOW_MODE)
        try:
            run_as_target(glexec, MKDIR_SCRIPT, target, f"{target_mode:o}")
        finally:
            os.fchmod(fd, parent_mode)
        created = True
        check_created(fd, parent, name, target_mode)
        return target
    finally:
        if not created:
            try:
                os.rmdir(parent)
            except OSError:
                pass
        os.close(fd)


def check_created(fd: int, parent: str, name: str, target_mode: int) -> None:
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError as exc:
        raise ToolError(f"{parent}/{name} missing after glexec: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ToolError(f"{parent}/{name} is not a directory")
    if stat.S_IMODE(st.st_mode) != target_mode:
        raise ToolError(f"{parent}/{name} has mode {stat.S_IMODE(st.st_mode):04o}, "
                        f"not {target_mode:04o}")
    others = sorted(set(os.listdir(fd)) - {name})
    if others:
        # They cannot touch the target's directory (sticky parent); say so, then go on.
        sys.stderr.write(f"{PROG}: warning: {parent} also holds entries made by others: "
                         f"{', '.join(others[:5])}\n")


def remove(path: str, force: bool, glexec: str) -> None:
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    if not os.path.basename(parent).startswith(PARENT_PREFIX) or not name:
        raise ToolError(f"refusing to remove {path}: it was not made by {PROG} "
                        f"(its parent must be a {PARENT_PREFIX}* directory)")
    try:
        fd = os.open(parent, _DIR_FLAGS)
    except OSError as exc:
        raise ToolError(f"refusing to remove {path}: cannot open {parent}: "
                        f"{exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise ToolError(f"refusing to remove {path}: {parent} is not owned by you")
        try:
            entry = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            entry = None
        if entry is not None:
            if not stat.S_ISDIR(entry.st_mode):
                raise ToolError(f"refusing to remove {path}: not a directory")
            # Unlinking the entry needs write access to the parent: reopen the sticky window.
            os.fchmod(fd, WINDOW_MODE)
            try:
                run_as_target(glexec, RMTREE_SCRIPT if force else RMDIR_SCRIPT, path)
            finally:
                os.fchmod(fd, stat.S_IMODE(st.st_mode) & 0o755)
        if force:
            clear_directory(fd)
    finally:
        os.close(fd)
    try:
        os.rmdir(parent)
    except OSError as exc:
        raise ToolError(f"cannot remove {parent}: {exc.strerror}") from None


def clear_directory(fd: int) -> None:
    """Delete what the pilot may in its own parent directory (entries others left there)."""
    for entry in os.listdir(fd):
        try:
            st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                sub = os.open(entry, _DIR_FLAGS, dir_fd=fd)
                try:
                    clear_directory(sub)
                finally:
                    os.close(sub)
                os.rmdir(entry, dir_fd=fd)
            else:
                os.unlink(entry, dir_fd=fd)
        except OSError:
            continue


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, usage="%(prog)s [-h] [-r [-f] dir] [-t mode] [-m parentmode] [directory]",
        description="Create a directory owned by the glexec target account (printing its "
        "path), or remove one made earlier.")
    parser.add_argument("directory", nargs="?", help="where to create it "
                        "(default $TMPDIR, else /tmp)")
    parser.add_argument("-r", metavar="dir", dest="remove", help="remove a directory made "
                        "earlier (as the target account)")
    parser.add_argument("-f", dest="force", action="store_true",
                        help="with -r: remove its contents too")
    parser.add_argument("-t", metavar="mode", dest="target_mode",
                        default=f"{DEFAULT_TARGET_MODE:o}",
                        help="target directory mode, octal (default 700)")
    parser.add_argument("-m", metavar="parentmode", dest="parent_mode",
                        default=f"{DEFAULT_PARENT_MODE:o}",
                        help="parent directory mode, octal (default 755)")
    parser.add_argument("--glexec", metavar="PATH", help="the glexec to call")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.force and not args.remove:
            raise ToolError("-f only applies to -r", EXIT_USAGE)
        if args.remove and args.directory:
            raise ToolError("-r takes the directory to remove; no other argument", EXIT_USAGE)
        target_mode = parse_mode(args.target_mode, limit=0o1777, what="target mode")
        parent_mode = parse_mode(args.parent_mode, limit=0o755, what="parent mode")
        glexec = find_glexec(args.glexec)
        if args.remove:
            remove(args.remove, args.force, glexec)
            return 0
        base = args.directory or os.environ.get("TMPDIR") or "/tmp"
        path = create(base, target_mode, parent_mode, glexec)
    except ToolError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return exc.status
    sys.stdout.write(path + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
