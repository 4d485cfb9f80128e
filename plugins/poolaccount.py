"""``poolaccount``: lease a pool account for a DN in the gridmapdir, exactly as LCMAPS does.

Runs as: root. Trusts: grid-mapfile and gridmapdir after ``glexec_py.trust``. Hot path: yes
(when named).

As LCMAPS ``lcmaps_poolaccount.mod``: the first grid-mapfile line whose subject (an fnmatch
pattern unless ``-no_wildcard``) matches the DN and that has a ``.pool`` mapping gives the pool;
``glexec_py.gridmapdir`` then reuses this DN's lease or links the first free member (readdir
order). The lease name (lower-case ``%xx`` encoding of the DN) becomes the pool index. An
exhausted pool, or an inconsistent lease, is a *failure* so the policy can fall back.
"""

from __future__ import annotations

import os

from glexec_py.plugins.localaccount import GRIDMAP_OPTION, requested_account

from glexec_py.errors import AuthorizationError
from glexec_py.gridmapdir import (
    PoolRequest,
    acquire_lease,
    encode_lease_name,
    lock_gridmapdir,
    open_gridmapdir,
)
from glexec_py.plugin_api import Option, Plugin, PolicyConfigError, Result, parse_options
from glexec_py.policy.accounts import AccountError, account_updates, default_mapfile
from glexec_py.policy.mapfile import read_mapfile, select_mapping
from glexec_py.policy.subject import match_dn

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request

GRIDMAPDIR_OPTION = Option("-gridmapdir", "path", None, "the gridmapdir (required)",
                           aliases=("-GRIDMAPDIR",))
POOL_OPTIONS = (
    GRIDMAPDIR_OPTION,
    Option("-override_inconsistency", "flag", False,
           "re-lease when the DN's lease points outside its pool (default: fail)"),
    Option("-strict_poolprefix_match", "yesno", True,
           "pool members are the prefix plus digits only (LCMAPS' code default: yes)"),
    Option("-max_mappings_per_credential", "int", 1,
           "deprecated LCMAPS option; only 1 is supported"),
)
NO_WILDCARD = Option("-no_wildcard", "flag", False, "compare subjects exactly",
                     aliases=("-disablewildcard", "--disablewildcard", "--disablewildcards"))


def configure_pool(plugin: Plugin, opts: dict[str, object]) -> None:
    """The options every pool plugin shares: checked (the gridmapdir opened once for its trust
    check), then set on the plugin together with its grid-mapfile's entries."""
    gridmapdir = opts["-gridmapdir"]
    if not gridmapdir:
        raise PolicyConfigError(f"{plugin.name}: -gridmapdir is required")
    if opts["-max_mappings_per_credential"] != 1:
        raise PolicyConfigError(f"{plugin.name}: -max_mappings_per_credential other than 1 "
                                f"is not supported")
    os.close(open_gridmapdir(str(gridmapdir)))
    plugin.gridmapdir = str(gridmapdir)
    plugin.override = bool(opts["-override_inconsistency"])
    plugin.strict = bool(opts["-strict_poolprefix_match"])
    plugin.wildcard = not opts["-no_wildcard"]
    plugin.gridmapfile = default_mapfile(opts["-gridmapfile"])
    plugin.entries = read_mapfile(plugin.gridmapfile)


class PoolMapping:
    """run (creating leases) and verify (only accepting existing ones) of the pool plugins."""

    def run(self, request: Request, creds: CredentialView) -> Result:
        return self._map(request, creds, create=True)

    def verify(self, request: Request, creds: CredentialView) -> Result:
        return self._map(request, creds, create=False)


def lease_account(gridmapdir: str, req: PoolRequest) -> str | None:
    """Reuse or create a lease; takes the allocation lock only when a new lease is needed."""
    fd = open_gridmapdir(gridmapdir)
    try:
        if req.create:
            probe = PoolRequest(req.lease_name, req.prefix, strict=req.strict,
                                override_inconsistency=req.override_inconsistency,
                                requested=req.requested, create=False)
            try:
                account = acquire_lease(fd, probe)
            except AuthorizationError:
                account = None  # inconsistent: decide under the lock below
            if account is not None:
                return acquire_lease(fd, req)  # touches the existing lease
            lock_gridmapdir(fd)
        return acquire_lease(fd, req)
    finally:
        os.close(fd)


class PoolAccountPlugin(PoolMapping, Plugin):
    name = "poolaccount"
    lcmaps_names = ("lcmaps_poolaccount.mod",)
    summary = "grid-mapfile DN -> .pool -> leased pool account in the gridmapdir"
    options = (GRIDMAP_OPTION, *POOL_OPTIONS, NO_WILDCARD)
    reads = frozenset({"dn", "requested_username", "requested_uid", "mode"})
    sets = frozenset({"dn", "uid", "pgid", "sgid", "pool_index"})

    def configure(self, args: Sequence[str]) -> None:
        configure_pool(self, parse_options(self.options, args, self.name))

    def _map(self, request: Request, creds: CredentialView, *, create: bool) -> Result:
        dn = creds.dn or request.dn
        if not dn:
            return Result.failure("no DN")
        requested = requested_account(request)
        found = select_mapping(self.entries, lambda s: match_dn(s, dn, wildcard=self.wildcard),
                               pool=True, requested=requested)
        if found is None:
            return Result.failure(f"no pool mapping for {dn!r} in {self.gridmapfile}")
        entry, mapping = found
        lease_name = encode_lease_name(dn)
        req = PoolRequest(lease_name, mapping[1:], strict=self.strict,
                          override_inconsistency=self.override, requested=requested,
                          create=create)
        try:
            account = lease_account(self.gridmapdir, req)
        except AuthorizationError as e:
            return Result.failure(e.message)
        if account is None:
            return Result.failure(f"no pool-entry available for pool {mapping} and lease "
                                  f"{lease_name}")
        try:
            updates = account_updates(account)
        except AccountError as e:
            return Result.failure(str(e))
        return Result.success(dn=dn, pool_index=lease_name, **updates)
