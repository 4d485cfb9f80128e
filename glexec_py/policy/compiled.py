"""Compiled-policy cache: a repeated call skips parsing lcmaps.db (~2.5 ms with the parser).

Runs as: root (setuid mode only). Trusts: the policy file only through ``glexec_py.trust`` (read
on every call, as without the cache); its own entries in /run/glexec-py/policies only when
root-owned, 0600, in the root-owned 0700 directory. Hot path: yes.

An entry is keyed by the exact bytes of the policy file and its path (read fresh on every call,
so a changed policy is compiled anew on the very next call whatever its timestamps say) and by
the identity (dev, inode, size, mtime_ns, ctime_ns) of the plugin table ``glexec_py.plugins``,
which a reinstallation changes. Only lcmaps.db files whose every module is a built-in plugin are
cached: the YAML form and entry-point plugins (other installed distributions) always compile.
The value is ``CompiledPolicy``'s plain data, marshalled; any problem is a miss.
"""

from __future__ import annotations

import marshal
import os

from glexec_py.cachedir import CacheDir
from glexec_py.policy.model import CompiledPolicy

FORMAT = 1
# beyond max_entries, a store first drops entries older than max_age
CACHE = CacheDir("policies", what="cache directory", max_entry_size=4 << 20, max_entries=256,
                 max_age=86400.0)


def compile_cached(path: str) -> CompiledPolicy:
    """``policy.compile_file(path)``, served from the cache when the same bytes were compiled."""
    from glexec_py.policy import compile_file, is_yaml_path
    from glexec_py.trust import read_trusted_file

    data = read_trusted_file(path, what="policy file")
    if os.geteuid() != 0 or is_yaml_path(path):
        return compile_file(path, data)
    name = _entry_name(path, data)
    compiled = _load(name, path, data)
    if compiled is not None:
        return compiled
    compiled = compile_file(path, data)
    _store(name, path, data, compiled)
    return compiled


def _entry_name(path: str, data: bytes) -> str:
    import _sha256

    import glexec_py.plugins

    st = os.stat(glexec_py.plugins.__file__)
    h = _sha256.sha256(data)
    ident = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    h.update(f"\0{path}\0{ident}".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _load(name: str, path: str, data: bytes) -> CompiledPolicy | None:
    raw = CACHE.read(name)
    if raw is None:
        return None
    try:
        entry = marshal.loads(raw)  # noqa: S302 - root-owned 0600 entry in a 0700 root dir
        if (not isinstance(entry, dict) or entry.get("format") != FORMAT
                or entry["path"] != path or entry["data"] != data):
            return None
        return CompiledPolicy(entry["source"], tuple(entry["policies"]), dict(entry["states"]),
                              tuple(entry["warnings"]))
    except (ValueError, TypeError, KeyError, EOFError):
        return None


def _store(name: str, path: str, data: bytes, compiled: CompiledPolicy) -> None:
    from glexec_py.plugins import BUILTIN

    if any(plugin not in BUILTIN for plugin, _module, _args in compiled.states.values()):
        return  # entry-point plugins depend on other installed distributions: never cached
    try:
        raw = marshal.dumps({"format": FORMAT, "path": path, "data": data,
                             "source": compiled.source, "policies": compiled.policies,
                             "states": compiled.states, "warnings": compiled.warnings})
    except ValueError:
        return
    CACHE.write(name, raw)
