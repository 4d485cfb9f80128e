"""Resolve policy module names to plugin classes: the built-in table first, entry points on a miss.

Runs as: root (launcher) or anyone (``glexec-policy``). Trusts: ``glexec_py.plugins.BUILTIN`` and
entry points of distributions installed in the launcher's own root-owned environment; never a
path from a policy file or the caller. Hot path: yes (the entry-point scan is not: it only runs
when a name is missing from ``BUILTIN``).
"""

from __future__ import annotations

from glexec_py.plugin_api import API_VERSION, CRED_FIELDS, REQUEST_FIELDS, PolicyConfigError

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from glexec_py.plugin_api import Plugin

ENTRY_POINT_GROUP = "glexec_py.plugins"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def plugin_name_for(module: str) -> str | None:
    """Reduce an lcmaps.db/lcas.db module reference to a plugin name, or None if unknown."""
    from glexec_py.plugins import ALIASES, BUILTIN

    name = module.rsplit("/", 1)[-1]
    for suffix in (".mod", ".so"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    for prefix in ("liblcmaps_", "liblcas_", "lcmaps_", "lcas_"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    name = name.lower()
    name = ALIASES.get(name, name)
    if name in BUILTIN:
        return name
    if name and all(c in _NAME_CHARS for c in name) and _entry_point_target(name):
        return name
    return None


def _entry_point_target(name: str) -> str | None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.value
    return None


def target_for(name: str) -> str:
    """``module:Class`` of plugin ``name`` (as stored in a compiled policy)."""
    from glexec_py.plugins import BUILTIN

    target = BUILTIN.get(name) or _entry_point_target(name)
    if target is None:
        raise PolicyConfigError(f"unknown plugin '{name}'")
    return target


def load_plugin_class(name: str) -> type[Plugin]:
    """Import and validate plugin ``name``; PolicyConfigError if it is missing or malformed."""
    import sys

    target = target_for(name)
    modname, _, clsname = target.partition(":")
    try:
        # __import__ + sys.modules is import_module without importlib's package (which pulls in
        # warnings: 0.3 ms of every call); dotted names are absolute here.
        __import__(modname)
        module = sys.modules[modname]
        cls = getattr(module, clsname)
    except (ImportError, ValueError) as e:  # ValueError: an empty or relative module name
        raise PolicyConfigError(f"plugin '{name}' ({target}) cannot be imported: {e}")
    except AttributeError:
        raise PolicyConfigError(f"plugin '{name}': {modname} has no class {clsname}")
    validate_plugin_class(name, cls)
    return cls


def validate_plugin_class(name: str, cls: type) -> None:
    """pluggy-style checks at load: API major, declared fields, callable methods."""
    from glexec_py.plugin_api import Plugin

    if not isinstance(cls, type) or not issubclass(cls, Plugin):
        raise PolicyConfigError(f"plugin '{name}' is not a glexec_py.plugin_api.Plugin")
    major = tuple(getattr(cls, "api_version", (0, 0)))[:1]
    if major != API_VERSION[:1]:
        raise PolicyConfigError(f"plugin '{name}' was written for plugin API "
                                f"{cls.api_version}, this is {API_VERSION}")
    bad_reads = set(cls.reads) - REQUEST_FIELDS
    bad_sets = set(cls.sets) - CRED_FIELDS
    if bad_reads or bad_sets:
        raise PolicyConfigError(f"plugin '{name}' declares unknown fields: "
                                f"{', '.join(sorted(bad_reads | bad_sets))}")
