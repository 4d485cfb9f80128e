"""One file of compiled modules for the launcher's imports: build it at install, load from it.

Runs as: root (build: at install time; load: in the launcher's bootstrap). Trusts: the bundle
only when it and its directory are root-owned and not writable by group or others (as the
site-packages they sit in), and each module in it only while its source file still has the
identity (inode, size, mtime, ctime) it had when compiled. Hot path: yes (loading).

A warm glexec call imports ~50 of its own modules. Through the normal path finder each costs a
directory scan or stat, an open, a read and the .pyc header checks, ~1.2 ms in all of a ~20 ms
call. The bundle is read once; each module's code is unmarshalled only when imported. A module
whose source changed since the bundle was built (an upgrade without a rebuild) is simply not
served from it: the normal finder then loads it, so a stale bundle can cost speed, never
correctness. Installation rebuilds it (``scripts/install-glexec-py.sh``, ``glexec-install``,
the .deb's postinst); ``prerm`` removes it with the bytecode.
"""

# No "from __future__ import annotations" here (unlike every other module): this module is
# imported before its finder exists, and that import would load __future__ the slow way.
import marshal
import os
import sys

HEADER = b"glexec-py launcher bundle 2\n"
BUNDLE_DIR = "glexec_py/__pycache__"
SKIPPED_PACKAGES = ("glexec_py.tools", "glexec_py.sutest")  # cold path: never in a call


def bundle_path(site: str) -> str:
    """Where the bundle of the product installed in ``site`` (its site-packages) lives."""
    return f"{site}/{BUNDLE_DIR}/launcher-bundle.{sys.implementation.cache_tag}.marshal"


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class BundleFinder:
    """A meta-path finder and loader serving the bundle's modules (see the module doc)."""

    def __init__(self, modules: dict[str, tuple], blob: memoryview) -> None:
        self.modules = modules
        self.blob = blob

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        entry = self.modules.get(name)
        if entry is None:
            return None
        origin, identity, is_package, _offset, _length = entry
        try:
            if _identity(os.stat(origin)) != identity:
                return None
        except OSError:
            return None
        spec = sys.modules["_frozen_importlib"].ModuleSpec(name, self, origin=origin,
                                                            is_package=is_package)
        if is_package:
            spec.submodule_search_locations = [origin.rpartition("/")[0]]
        spec.has_location = True
        return spec

    def create_module(self, spec: object) -> None:
        return None  # the default module object

    def exec_module(self, module: object) -> None:
        _origin, _identity, _package, offset, length = self.modules[module.__spec__.name]
        code = marshal.loads(self.blob[offset:offset + length])  # noqa: S302 - trusted file
        exec(code, module.__dict__)  # noqa: S102 - compiled from the root-owned sources


def install_finder(site: str) -> bool:
    """Serve imports from the bundle of ``site`` if there is a trusted one; True if so."""
    path = bundle_path(site)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        parent = os.stat(path.rpartition("/")[0], follow_symlinks=False)
        for item in (st, parent):
            if item.st_uid != 0 or item.st_mode & 0o022:
                return False
        import mmap  # 0.17 ms; reading the ~0.7 MB into memory instead costs twice that

        # Mapped, not read: only the pages of the modules a call imports are ever touched.
        # Installation replaces the file by rename, so the mapped inode never changes under us.
        table, blob = _split(memoryview(mmap.mmap(fd, 0, prot=mmap.PROT_READ)))
    except (OSError, ValueError, EOFError, TypeError):
        return False
    finally:
        os.close(fd)
    sys.meta_path.insert(0, BundleFinder(table, blob))
    return True


def _split(data: memoryview) -> tuple[dict[str, tuple], memoryview]:
    """(module table, code blob) of a bundle file; ValueError unless it is ours and current.

    Layout: HEADER, the table's size (4 bytes, big-endian), the marshalled table, then every
    module's marshalled code; only the small table is unmarshalled up front.
    """
    if bytes(data[:len(HEADER)]) != HEADER:
        raise ValueError("not a launcher bundle")
    start = len(HEADER) + 4
    size = int.from_bytes(data[len(HEADER):start], "big")
    table = marshal.loads(data[start:start + size])  # noqa: S302 - root-owned, checked
    if not isinstance(table, dict) or table.get("magic") != _magic() or \
            not isinstance(table.get("modules"), dict):
        raise ValueError("bundle of another format or interpreter")
    return table["modules"], data[start + size:]


def _magic() -> bytes:
    return sys.modules["_frozen_importlib_external"].MAGIC_NUMBER


def _sources(site: str) -> dict[str, tuple[str, bool]]:
    """Module name -> (source path, is a package) of everything the bundle should hold."""
    import __future__

    found = {"__future__": (__future__.__file__, False)}
    root = f"{site}/glexec_py"
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        rel = os.path.relpath(directory, site).replace("/", ".")
        if rel.startswith(SKIPPED_PACKAGES):
            subdirs[:] = []
            continue
        for filename in sorted(files):
            if filename.endswith(".py"):
                stem = filename[:-3]
                name = rel if stem == "__init__" else f"{rel}.{stem}"
                found[name] = (f"{directory}/{filename}", stem == "__init__")
    return found


def bundle_is_current(site: str) -> bool:
    """Whether the bundle of ``site`` exists and holds exactly today's sources, unchanged."""
    try:
        with open(bundle_path(site), "rb") as handle:
            modules, _blob = _split(memoryview(handle.read()))
        sources = _sources(site)
        if set(sources) != set(modules):
            return False
        return all(modules[name][0] == origin and
                   modules[name][1] == _identity(os.stat(origin))
                   for name, (origin, _package) in sources.items())
    except (OSError, ValueError, EOFError, TypeError, KeyError, IndexError):
        return False


def build_bundle(site: str) -> tuple[str, int]:
    """Compile every launcher module under ``site`` (plus ``__future__``) into the bundle.

    Returns (path, number of modules). Written as root, 0644, to a temporary name and renamed.
    """
    modules: dict[str, tuple] = {}
    codes = []
    offset = 0
    for name, (origin, is_package) in _sources(site).items():
        with open(origin, "rb") as handle:
            st = os.fstat(handle.fileno())
            source = handle.read()
        code = marshal.dumps(compile(source, origin, "exec", dont_inherit=True))
        modules[name] = (origin, _identity(st), is_package, offset, len(code))
        codes.append(code)
        offset += len(code)
    table = marshal.dumps({"magic": _magic(), "modules": modules})
    data = b"".join([HEADER, len(table).to_bytes(4, "big"), table, *codes])
    path = bundle_path(site)
    os.makedirs(path.rpartition("/")[0], mode=0o755, exist_ok=True)
    from glexec_py.cachedir import write_new_file

    tmp = f"{path}.{os.getpid()}.tmp"
    write_new_file(tmp, data, dir_fd=None, mode=0o644)
    os.rename(tmp, path)
    return path, len(modules)


def main(argv: list[str] | None = None) -> int:
    """``python -m glexec_py.codebundle [SITE]``: (re)build the bundle of an installation."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print("usage: python -m glexec_py.codebundle [SITE-PACKAGES]\n"
              "Compile the launcher's modules into one bundle next to their bytecode.")
        return 0
    site = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path, count = build_bundle(site)
    print(f"glexec-py: {count} modules bundled in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
