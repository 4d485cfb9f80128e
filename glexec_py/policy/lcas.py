"""LCAS-style authorization: every plugin listed in ``lcas.db`` must allow, in file order.

Runs as: root. Trusts: lcas.db and the plugins' files after ``glexec_py.trust``. Hot path: yes
(when ``use_lcas`` is set).

``lcas.db`` format (LCAS ``lcas_db_read.c``): one plugin per line as comma-separated
``name=value`` pairs, ``pluginname=<module>`` and optional ``pluginargs=<args>``; values may be
double-quoted with backslash escapes; ``#`` comments; at most 250 entries. The pairs are split at
*every* comma before quotes are looked at (as in LCAS), so arguments cannot contain commas.
Module names resolve through the same registry as LCMAPS ones (``lcas_userban.mod`` ->
``userban``); a relative plugin argument that names a file is taken relative to lcas.db's
directory. No plugin at all denies ("no authorization modules were called").
"""

from __future__ import annotations

from glexec_py.errors import AuthorizationError
from glexec_py.plugin_api import CredentialView, PolicyConfigError

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from glexec_py.plugin_api import Request

MAX_ENTRIES = 250


class LcasEntry:
    __slots__ = ("module", "args", "line")

    def __init__(self, module: str, args: list[str], line: int) -> None:
        self.module = module
        self.args = args
        self.line = line


def _unquote(value: str, where: str) -> str:
    value = value.strip(" \t")
    if not value.startswith('"'):
        return value
    out = []
    i = 1
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
            continue
        if c == '"':
            if value[i + 1:].strip(" \t"):
                raise PolicyConfigError(f"{where}: text after closing quote")
            return "".join(out)
        out.append(c)
        i += 1
    raise PolicyConfigError(f"{where}: unbalanced quotes")


def _strip_comment(line: str) -> str:
    """Cut a ``#`` comment that is outside double quotes."""
    quoted = False
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and quoted:
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == "#" and not quoted:
            return line[:i]
        i += 1
    return line


def parse_lcas_db(data: bytes, path: str) -> list[LcasEntry]:
    from glexec_py.policy.mapfile import iter_lines
    from glexec_py.policy.model import tokenize_args

    entries: list[LcasEntry] = []
    base = path.rsplit("/", 1)[0] or "/"
    for lineno, line in iter_lines(data, path):
        where = f"{path}:{lineno}"
        text = _strip_comment(line).strip(" \t")
        if not text:
            continue
        pairs: dict[str, str] = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            key = key.strip(" \t")
            if not sep or key not in ("pluginname", "pluginargs"):
                raise PolicyConfigError(f"{where}: expected pluginname=... or pluginargs=..., "
                                        f"found {part.strip()!r}")
            if key in pairs:
                raise PolicyConfigError(f"{where}: {key} given twice")
            pairs[key] = _unquote(value, where)
        if not pairs.get("pluginname"):
            raise PolicyConfigError(f"{where}: no pluginname")
        try:
            args = tokenize_args(pairs.get("pluginargs", ""))
        except ValueError as e:
            raise PolicyConfigError(f"{where}: {e}")
        if len(args) == 1 and not args[0].startswith(("-", "/")):
            args = [f"{base}/{args[0]}"]
        entries.append(LcasEntry(pairs["pluginname"], args, lineno))
        if len(entries) > MAX_ENTRIES:
            raise PolicyConfigError(f"{where}: more than {MAX_ENTRIES} plugins")
    return entries


def load_lcas(path: str) -> list[tuple[str, object]]:
    """Parse lcas.db and configure every plugin (init failure = PolicyConfigError)."""
    from glexec_py.policy.engine import configure_plugin
    from glexec_py.policy.registry import plugin_name_for
    from glexec_py.trust import read_trusted_file

    plugins = []
    for entry in parse_lcas_db(read_trusted_file(path, what="LCAS db file"), path):
        name = plugin_name_for(entry.module)
        if name is None:
            raise PolicyConfigError(f"{path}:{entry.line}: unknown module '{entry.module}'")
        plugins.append((f"{name}@{entry.line}",
                        configure_plugin(name, entry.args, f"lcas:{entry.line}")))
    return plugins


def authorize(request: Request, lcas_db_file: str) -> None:
    """Raise AuthorizationError unless every LCAS plugin allows ``request``."""
    from glexec_py.errors import GlexecError, SiteError

    plugins = load_lcas(lcas_db_file)
    if not plugins:
        raise AuthorizationError("LCAS: no authorization modules were called")
    view = CredentialView(dn=request.dn, fqans=request.fqans or ())
    for label, plugin in plugins:
        try:
            result = plugin.run(request, view)
        except GlexecError:
            raise
        except Exception as e:  # noqa: BLE001 - plugin bug: site error, never an allow
            raise SiteError(f"LCAS plugin {label} failed: {type(e).__name__}: {e}")
        if not getattr(result, "ok", False):
            raise AuthorizationError(f"LCAS: {label} denied",
                                     detail=getattr(result, "reason", ""))
