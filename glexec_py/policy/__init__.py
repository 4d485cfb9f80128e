"""Map a verified request to a local account: LCAS authorization, then the LCMAPS-style policy.

Runs as: root (leases in the gridmapdir are its only side effect). Trusts: policy, LCAS and plugin
files only after ``glexec_py.trust`` accepted them; the request as built by the launcher.
Hot path: yes.

``evaluate`` is the launcher's one entry point. It reads and compiles the policy file (lcmaps.db
grammar, or the YAML form for ``*.yaml``/``*.yml``), initialises every plugin of every policy,
runs LCAS first when asked (every plugin must allow), then the selected policies, and turns the
credential store of the successful policy into a :class:`Mapping`.
"""

from __future__ import annotations

import pwd

from glexec_py.errors import AuthorizationError
from glexec_py.plugin_api import PolicyConfigError

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import Request
    from glexec_py.policy.model import CompiledPolicy, PolicyFile

__all__ = ["Mapping", "evaluate", "load_policy_file", "compile_file"]


class Mapping:
    """The outcome the launcher acts on. ``cred_final`` holds LCMAPS' CRED FINAL log lines."""

    __slots__ = ("uid", "pgid", "pgids", "sgids", "username", "pool_index", "dn", "fqans", "policy",
                 "cred_final", "vo_mappings", "trace")

    def __init__(self, *, uid: int, pgid: int, sgids: tuple[int, ...], username: str,
                 pool_index: str | None, dn: str | None, fqans: tuple[str, ...], policy: str,
                 cred_final: list[str], vo_mappings: tuple[tuple[str, int, str], ...],
                 trace: tuple = (), pgids: tuple[int, ...] = ()) -> None:
        self.uid = uid
        self.pgid = pgid
        self.pgids = pgids or (pgid,)  # every PRI_GID in order, as LCMAPS returns them
        self.sgids = sgids
        self.username = username
        self.pool_index = pool_index
        self.dn = dn
        self.fqans = fqans
        self.policy = policy
        self.cred_final = cred_final
        self.vo_mappings = vo_mappings
        self.trace = trace

    def __repr__(self) -> str:
        return (f"Mapping(username={self.username!r}, uid={self.uid}, pgid={self.pgid}, "
                f"sgids={self.sgids}, pool_index={self.pool_index!r}, policy={self.policy!r})")


def is_yaml_path(path: str) -> bool:
    return path.endswith((".yaml", ".yml"))


def load_policy_file(path: str, data: bytes | None = None) -> PolicyFile:
    """Parse a policy file (read through the trust checks unless ``data`` is given)."""
    if data is None:
        from glexec_py.trust import read_trusted_file

        data = read_trusted_file(path, what="policy file")
    if is_yaml_path(path):
        from glexec_py.policy.yaml_form import parse_yaml_policy

        return parse_yaml_policy(data, path)
    from glexec_py.policy.lcmaps_db import parse_lcmaps_db

    return parse_lcmaps_db(data, path)


def compile_file(path: str, data: bytes | None = None) -> CompiledPolicy:
    from glexec_py.policy.model import compile_policy

    return compile_policy(load_policy_file(path, data))


def evaluate(request: Request, *, lcmaps_db_file: str, policy_names: Sequence[str] = (),
             use_lcas: bool = False, lcas_db_file: str | None = None,
             mode: str = "run") -> Mapping:
    """Map ``request``; AuthorizationError (203) on denial, PolicyConfigError (202) on bad setup."""
    from glexec_py.policy.compiled import compile_cached
    from glexec_py.policy.engine import Engine, deny
    from glexec_py.policy.model import split_policy_names

    if mode not in ("run", "verify"):
        raise PolicyConfigError(f"unknown policy mode {mode!r}")
    names = split_policy_names(policy_names)
    engine = Engine(compile_cached(lcmaps_db_file))
    if names:
        engine.select(names)  # an unknown policy name is a site error before anything runs
    if use_lcas:
        from glexec_py.policy.lcas import authorize

        if not lcas_db_file:
            raise PolicyConfigError("use_lcas is set but no lcas_db_file is configured")
        authorize(request, lcas_db_file)
    outcome = engine.run(request, names, mode)
    store = outcome.store
    if outcome.policy is None or store is None:
        raise deny(outcome, "no policy yielded a mapping")
    if not store.uid:
        raise deny(outcome, f"policy {outcome.policy} succeeded but mapped no uid")
    if not store.pgid:
        raise deny(outcome, f"policy {outcome.policy} succeeded but mapped no primary gid")
    uid = store.uid[0]
    try:
        username = pwd.getpwuid(uid).pw_name
    except KeyError:
        raise AuthorizationError(f"mapped uid {uid} has no account")
    return Mapping(uid=uid, pgid=store.pgid[0], sgids=tuple(store.sgid), username=username,
                   pool_index=store.pool_index, dn=store.dn,
                   fqans=tuple(request.fqans or ()), policy=outcome.policy,
                   cred_final=store.cred_final_lines(),
                   vo_mappings=tuple(store.vo_mappings), trace=tuple(outcome.trace),
                   pgids=tuple(store.pgid))
