"""The one contract between the policy engine and its plugins (built-in, entry point or external).

Runs as: root (the launcher), or an unprivileged user in ``glexec-policy``. Trusts: the policy
file that named the plugin. Hot path: yes (imported on every call; keep it import-free).

Versioned like ``sudo_plugin.h``: a plugin declares ``api_version = (major, minor)``; the registry
refuses a different major.  Plugins *decide* and return data (:class:`Result`); the engine applies
the data with LCMAPS semantics and only ``glexec_py.launch`` ever changes identities or execs.

Call order the engine promises, per compiled policy:
  1. ``cls()``                     no arguments, no I/O
  2. ``plugin.configure(args)``    once, with the argument words from lcmaps.db / YAML; open and
                                   check the plugin's own files here; raise ``PolicyConfigError``
                                   (exit 202) on any problem: LCMAPS' all-plugins-at-init rule.
  3. ``plugin.run(request, creds)`` (or ``verify`` in verify-account mode) per evaluation;
                                   return ``Result.success(...)`` or ``Result.failure(reason)``.
                                   Raising anything is an *error* (202), never a failure.
"""

from __future__ import annotations

from glexec_py.errors import SiteError

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

API_VERSION = (1, 0)

# Names of the request fields a plugin may declare in ``reads``.
REQUEST_FIELDS = frozenset({
    "caller_uid", "caller_gid", "caller_name", "caller_groups", "dn", "fqans", "voms",
    "credential", "command", "cwd", "requested_username", "requested_uid", "mode",
    "invoker_pid", "launcher_pid", "now",
})

# Names of the credential-store fields (LCMAPS credential data) a plugin may declare in ``sets``.
#   dn          one string, a later value overwrites          (LCMAPS DN)
#   uid         list, appended in order, duplicates kept      (LCMAPS UID)
#   pgid        list, appended in order, duplicates kept      (LCMAPS PRI_GID)
#   sgid        set, kept sorted ascending                    (LCMAPS SEC_GID)
#   pool_index  one string, overwrites                        (LCMAPS POOL_INDEX: the lease name)
#   fqans       list of FQAN strings, appended                (LCMAPS VO_CRED_STRING)
#   vo_mappings list of (fqan, gid, group name), appended     (LCMAPS VO_CRED_MAPPING)
CRED_FIELDS = frozenset({"dn", "uid", "pgid", "sgid", "pool_index", "fqans", "vo_mappings"})


class PolicyConfigError(SiteError):
    """A policy file or a plugin's arguments or files are unusable (exit 202)."""


class Request:
    """What a plugin may read about the invocation; immutable once built by the launcher.

    ``credential`` is the verified credential object from ``glexec_py.credentials`` (chain,
    EEC, VOMS attributes); ``dn`` and ``fqans`` are taken from it. ``mode`` is ``"run"`` or
    ``"verify"``. ``invoker_pid`` is the pid of the process that called glexec (the pilot).
    """

    __slots__ = tuple(sorted(REQUEST_FIELDS))

    def __init__(self, **fields: object) -> None:
        unknown = set(fields) - REQUEST_FIELDS
        if unknown:
            raise TypeError(f"unknown request fields: {', '.join(sorted(unknown))}")
        for name in REQUEST_FIELDS:
            object.__setattr__(self, name, fields.get(name))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Request is read-only")

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}


class Result:
    """A plugin's answer: success with credential updates, or failure with a reason.

    ``updates`` maps CRED_FIELDS names to values: a str for ``dn``/``pool_index``, a sequence
    for the list/set fields (their items are appended/added by the engine). ``replace`` names
    fields whose accumulated value the update replaces instead of extending (used by plugins
    that rewrite an earlier mapping, such as ``rewrite_username``).
    """

    __slots__ = ("ok", "reason", "updates", "replace")

    def __init__(self, ok: bool, reason: str = "", updates: Mapping[str, object] | None = None,
                 replace: frozenset[str] = frozenset()) -> None:
        self.ok = ok
        self.reason = reason
        self.updates = dict(updates or {})
        self.replace = replace

    @classmethod
    def success(cls, *, replace: Sequence[str] = (), **updates: object) -> Result:
        return cls(True, "", updates, frozenset(replace))

    @classmethod
    def failure(cls, reason: str) -> Result:
        return cls(False, reason)

    def __repr__(self) -> str:
        if self.ok:
            return f"Result.success({self.updates!r})"
        return f"Result.failure({self.reason!r})"


class Option:
    """One plugin option as sites write it in lcmaps.db (original spellings kept).

    kind: ``flag`` (no value), ``str``, ``path`` (absolute path), ``int``, ``yesno``,
    ``choice`` (one of ``choices``), ``multi`` (a string that may repeat; a tuple in order).
    ``aliases`` are further accepted spellings. :func:`parse_options` applies a table.
    """

    __slots__ = ("name", "kind", "default", "help", "aliases", "choices")

    def __init__(self, name: str, kind: str, default: object = None, help: str = "",
                 aliases: Sequence[str] = (), choices: Sequence[str] = ()) -> None:
        self.name = name
        self.kind = kind
        self.default = default
        self.help = help
        self.aliases = tuple(aliases)
        self.choices = tuple(choices)


class Plugin:
    """Base class of every plugin. Subclasses set the class attributes and implement ``run``."""

    name: str = ""
    lcmaps_names: tuple[str, ...] = ()
    api_version: tuple[int, int] = API_VERSION
    summary: str = ""
    options: tuple[Option, ...] = ()
    reads: frozenset[str] = frozenset()
    sets: frozenset[str] = frozenset()

    def configure(self, args: Sequence[str]) -> None:
        """Parse the argument words; open and check the plugin's own files."""

    def run(self, request: Request, creds: CredentialView) -> Result:
        raise NotImplementedError

    def verify(self, request: Request, creds: CredentialView) -> Result:
        """Verify-account mode (``lcmaps_verify_account_policy``); by default the same as run."""
        return self.run(request, creds)


class CredentialView:
    """Read-only view of the credential data accumulated so far in the current policy."""

    __slots__ = ("dn", "uid", "pgid", "sgid", "pool_index", "fqans", "vo_mappings")

    def __init__(self, dn: str | None = None, uid: Sequence[int] = (), pgid: Sequence[int] = (),
                 sgid: Sequence[int] = (), pool_index: str | None = None,
                 fqans: Sequence[str] = (),
                 vo_mappings: Sequence[tuple[str, int, str]] = ()) -> None:
        self.dn = dn
        self.uid = tuple(uid)
        self.pgid = tuple(pgid)
        self.sgid = tuple(sorted(set(sgid)))
        self.pool_index = pool_index
        self.fqans = tuple(fqans)
        self.vo_mappings = tuple(vo_mappings)


def parse_options(options: Sequence[Option], args: Sequence[str],
                  plugin: str = "plugin") -> dict[str, object]:
    """Parse lcmaps.db argument words against an Option table; PolicyConfigError on any problem.

    Returns {option name: value} for every option in the table (defaults filled in); flags are
    True when present. A value may follow as the next word or, for non-flags, after ``=`` in the
    same word (``--max-voms-ttl=1-00:00``). Unknown words fail: LCMAPS plugins refuse unknown
    options at initialisation.
    """
    by_name: dict[str, Option] = {}
    for opt in options:
        for spelling in (opt.name, *opt.aliases):
            by_name[spelling] = opt
    values: dict[str, object] = {opt.name: opt.default for opt in options}
    i = 0
    while i < len(args):
        word = args[i]
        inline = None
        opt = by_name.get(word)
        if opt is None and "=" in word:
            head, _, inline = word.partition("=")
            opt = by_name.get(head)
            if opt is not None and opt.kind == "flag":
                opt = None
        if opt is None:
            raise PolicyConfigError(f"{plugin}: unknown option {word!r}")
        if opt.kind == "flag":
            values[opt.name] = True
            i += 1
            continue
        if inline is None:
            if i + 1 >= len(args):
                raise PolicyConfigError(f"{plugin}: option {word} needs a value")
            raw = args[i + 1]
            i += 2
        else:
            raw = inline
            i += 1
        if opt.kind == "multi":
            values[opt.name] = (*(values[opt.name] or ()), raw)
        else:
            values[opt.name] = _convert_option(opt, raw, plugin)
    return values


def _convert_option(opt: Option, raw: str, plugin: str) -> object:
    if opt.kind == "str":
        return raw
    if opt.kind == "path":
        if not raw.startswith("/") or "\0" in raw:
            raise PolicyConfigError(f"{plugin}: {opt.name} needs an absolute path, got {raw!r}")
        return raw
    if opt.kind == "int":
        try:
            return int(raw, 10)
        except ValueError:
            raise PolicyConfigError(f"{plugin}: {opt.name} needs an integer, got {raw!r}")
    if opt.kind == "yesno":
        low = raw.lower()
        if low in ("yes", "true", "1"):
            return True
        if low in ("no", "false", "0"):
            return False
        raise PolicyConfigError(f"{plugin}: {opt.name} needs yes or no, got {raw!r}")
    if opt.kind == "choice":
        if raw not in opt.choices:
            raise PolicyConfigError(f"{plugin}: {opt.name} must be one of "
                                    f"{', '.join(opt.choices)}, got {raw!r}")
        return raw
    raise PolicyConfigError(f"{plugin}: option {opt.name} has unknown kind {opt.kind!r}")
