"""glexec-install: build the C front end for this environment and install it as glexec.

Runs as: root, from the virtual environment glexec-py was installed into. Trusts: that
environment, after checking every file and directory of it is root-owned and not writable by
group or others (whoever could write it would own every glexec call). Hot path: no.

The interpreter, bootstrap path, site-packages directory, config path and mode are compiled into
the front end, so a caller can influence none of them (``glexec -V`` prints them). The new binary
is built next to the destination and renamed over it, so a running site never sees a half-written
launcher. The lingering launcher's small C waiter (``glexec_py/launch/glexec_waiter.c``) is built
into the environment too, when missing or older than its source.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HARDENING = [
    "-O2", "-Wall", "-Wextra", "-Werror", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong",
    "-fstack-clash-protection", "-fPIE", "-pie", "-Wl,-z,relro,-z,now", "-Wl,-z,noexecstack",
]


class InstallError(Exception):
    pass


def _c_string(value: str) -> str:
    if any(ch in value for ch in '"\\\n\r\t') or not value.isprintable():
        raise InstallError(f"path not usable in the launcher: {value!r}")
    return f'"{value}"'


def check_tree(root: Path) -> None:
    """Every directory up to / and every entry below ``root``: root-owned, not g/o-writable."""
    for parent in [root, *root.parents]:
        st = parent.stat()
        if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise InstallError(f"{parent} must be owned by root and not writable by group or "
                               f"others")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                raise InstallError(f"{path} must be owned by root and not writable by group or "
                                   f"others")


def locate_installation() -> tuple[str, str, str]:
    """(interpreter, site-packages, bootstrap) of the environment running this command."""
    import glexec_py
    import glexec_py.plugins

    package_dir = Path(glexec_py.__file__).resolve().parent
    site = package_dir.parent
    plugins_dir = Path(glexec_py.plugins.__file__).resolve().parent
    if plugins_dir != package_dir / "plugins":
        raise InstallError("glexec_py is an editable (development) install; install it with "
                           "'pip install .' into a root-owned environment first")
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    if site != purelib:
        raise InstallError(f"glexec_py is not in this environment's site-packages ({purelib})")
    python = os.path.realpath(sys.executable)
    bootstrap = package_dir / "bootstrap.py"
    return python, str(site), str(bootstrap)


def build_frontend(*, source: Path, output: Path, python: str, bootstrap: str, site: str,
                   config: str, mode: str, compiler: str = "gcc") -> None:
    defines = [
        f"-DGLEXEC_PYTHON={_c_string(python)}",
        f"-DGLEXEC_BOOTSTRAP={_c_string(bootstrap)}",
        f"-DGLEXEC_SITE={_c_string(site)}",
        f"-DGLEXEC_CONFIG_FILE={_c_string(config)}",
        f"-DGLEXEC_MODE={_c_string(mode)}",
    ]
    cmd = [compiler, *HARDENING, *defines, "-o", str(output), str(source)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise InstallError(f"compiling the front end failed:\n{result.stderr.strip()}")


WAITER = "glexec-py-waiter"


def waiter_paths(site: str) -> tuple[Path, Path]:
    """(source, binary) of the lingering launcher's C waiter in the installation ``site``."""
    directory = Path(site) / "glexec_py" / "launch"
    return directory / "glexec_waiter.c", directory / WAITER


def build_waiter(*, source: Path, output: Path, compiler: str = "gcc") -> None:
    """Compile glexec_waiter.c with the front end's hardening flags (no paths compiled in)."""
    cmd = [compiler, *HARDENING, "-o", str(output), str(source)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise InstallError(f"compiling the lingering waiter failed:\n{result.stderr.strip()}")


def waiter_is_current(site: str) -> bool:
    """Whether the built waiter exists, is newer than its source and would be trusted."""
    source, binary = waiter_paths(site)
    try:
        src, st = source.stat(), binary.lstat()
    except OSError:
        return False
    return (stat.S_ISREG(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022
            and st.st_mode & 0o100 and st.st_mtime_ns >= src.st_mtime_ns)


def install_waiter(site: str) -> bool:
    """Build ``<site>/glexec_py/launch/glexec-py-waiter`` unless current; True if built.

    Root-owned 0755, written under a temporary name and renamed, so a launcher handing over at
    that moment execs either the old or the new binary, whole. Without it (or without gcc)
    the launcher simply hands over to the Python waiter.
    """
    if waiter_is_current(site):
        return False
    source, binary = waiter_paths(site)
    if shutil.which("gcc") is None:
        raise InstallError("gcc is needed to build the lingering waiter")
    fd, tmp = tempfile.mkstemp(prefix=f".{WAITER}.", dir=binary.parent)
    os.close(fd)
    try:
        build_waiter(source=source, output=Path(tmp))
        os.chown(tmp, 0, 0)
        os.chmod(tmp, 0o755)  # noqa: S103 - a root-owned program every launcher execs
        os.rename(tmp, binary)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def install(*, bin_path: str, config: str, declare_only: bool, quiet: bool = False) -> None:
    if os.geteuid() != 0:
        raise InstallError("glexec-install must run as root")
    for path in (bin_path, config):
        if not path.startswith("/"):
            raise InstallError(f"{path}: not an absolute path")
    python, site, bootstrap = locate_installation()
    check_tree(Path(site))
    check_tree(Path(sys.prefix))
    for path in (python,):
        st = os.stat(path)
        if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise InstallError(f"{path} must be owned by root and not writable by others")
    if shutil.which("gcc") is None:
        raise InstallError("gcc is needed to build the front end")
    source = Path(__file__).resolve().parent.parent / "frontend" / "glexec_frontend.c"
    mode = "declare-only" if declare_only else "setuid"
    destination = Path(bin_path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    os.close(fd)
    try:
        build_frontend(source=source, output=Path(tmp), python=python, bootstrap=bootstrap,
                       site=site, config=config, mode=mode)
        os.chown(tmp, 0, 0)
        os.chmod(tmp, 0o755 if declare_only else 0o4755)
        os.rename(tmp, destination)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    from glexec_py.codebundle import build_bundle, bundle_is_current

    if not bundle_is_current(site):
        build_bundle(site)
    install_waiter(site)
    if not quiet:
        print(f"installed {destination} ({mode}, config {config}, interpreter {python})")
        if not os.path.exists(config):
            print(f"note: {config} does not exist yet; glexec will exit 202 until it does")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="glexec-install",
        description="Build the glexec front end for this environment and install it; also "
                    "(re)build the lingering launcher's small C waiter and the launcher's module "
                    "bundle when they are missing or older than their sources.")
    parser.add_argument("--bin", default="/usr/sbin/glexec",
                        help="where to install the launcher (default: %(default)s)")
    parser.add_argument("--config", default="/etc/glexec.conf",
                        help="glexec.conf path compiled into the launcher (default: %(default)s)")
    parser.add_argument("--declare-only", action="store_true",
                        help="install without privileges: log the mapping, run as the caller")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    try:
        install(bin_path=args.bin, config=args.config, declare_only=args.declare_only,
                quiet=args.quiet)
    except (InstallError, OSError) as exc:
        print(f"glexec-install: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
