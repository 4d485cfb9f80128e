"""The credential store one policy accumulates, with LCMAPS' rules, and its CRED FINAL lines.

Runs as: root. Trusts: plugin results only after the type checks in :meth:`CredStore.apply`.
Hot path: yes.

LCMAPS semantics (``lcmaps_cred_data.c``): DN and POOL_INDEX are single values (a later add
overwrites); UID and PRI_GID are lists in order of addition, duplicates kept; SEC_GID is a set
kept sorted ascending; VO strings and VO mappings are appended. The store is wiped whenever
evaluation moves to another policy.
"""

from __future__ import annotations

from glexec_py.errors import SiteError
from glexec_py.plugin_api import CRED_FIELDS, CredentialView

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from glexec_py.plugin_api import Result

MAX_ID = 0xFFFFFFFE  # 4294967295 is (uid_t)-1: "no change" to set*id, never an identity


def _check_id(field: str, value: object, plugin: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise SiteError(f"plugin {plugin} returned an invalid {field}: {value!r}")
    return value


class CredStore:
    __slots__ = ("dn", "uid", "pgid", "sgid", "pool_index", "fqans", "vo_mappings")

    def __init__(self, dn: str | None = None) -> None:
        self.dn = dn
        self.uid: list[int] = []
        self.pgid: list[int] = []
        self.sgid: list[int] = []
        self.pool_index: str | None = None
        self.fqans: list[str] = []
        self.vo_mappings: list[tuple[str, int, str]] = []

    def view(self) -> CredentialView:
        return CredentialView(self.dn, self.uid, self.pgid, self.sgid, self.pool_index,
                              self.fqans, self.vo_mappings)

    def apply(self, result: Result, plugin: str) -> None:
        """Merge a plugin's successful result; malformed data is a plugin error (202)."""
        updates = result.updates
        unknown = set(updates) - CRED_FIELDS
        if unknown:
            raise SiteError(f"plugin {plugin} set unknown fields: {', '.join(sorted(unknown))}")
        for field in result.replace:
            if field not in CRED_FIELDS:
                raise SiteError(f"plugin {plugin} replaces unknown field {field!r}")
            if field in ("dn", "pool_index"):
                setattr(self, field, None)
            else:
                setattr(self, field, [])
        for field, value in updates.items():
            if field in ("dn", "pool_index"):
                if value is not None and not isinstance(value, str):
                    raise SiteError(f"plugin {plugin} returned a non-string {field}")
                setattr(self, field, value)
            elif field in ("uid", "pgid"):
                getattr(self, field).extend(_check_id(field, v, plugin) for v in _seq(value))
            elif field == "sgid":
                merged = set(self.sgid)
                merged.update(_check_id(field, v, plugin) for v in _seq(value))
                self.sgid = sorted(merged)
            elif field == "fqans":
                for v in _seq(value):
                    if not isinstance(v, str):
                        raise SiteError(f"plugin {plugin} returned a non-string FQAN")
                    self.fqans.append(v)
            else:  # vo_mappings
                for v in _seq(value):
                    if (not isinstance(v, tuple) or len(v) != 3 or not isinstance(v[0], str)
                            or not isinstance(v[2], str)):
                        raise SiteError(f"plugin {plugin} returned a malformed VO mapping")
                    self.vo_mappings.append((v[0], _check_id("gid", v[1], plugin), v[2]))

    def cred_final_lines(self) -> list[str]:
        """The ``LCMAPS CRED FINAL:`` lines exactly as LCMAPS logs them (LOG_NOTICE)."""
        parts = [f"uid:'{u}'" for u in self.uid]
        parts += [f"pgid:'{g}'" for g in self.pgid]
        parts += [f"sgid:'{g}'" for g in self.sgid]
        lines = [f'LCMAPS CRED FINAL: DN:"{self.dn or ""}"->mapped ' + ",".join(parts)]
        for fqan, gid, name in self.vo_mappings:
            lines.append(f'LCMAPS CRED FINAL: FQAN:"{fqan}"->mapped group:{gid}({name})')
        return lines


def _seq(value: object) -> tuple:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(value))
    return (value,)
