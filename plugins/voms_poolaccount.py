"""``voms_poolaccount``: lease a pool account per (DN, mapped VOMS groups) for the first FQAN.

Runs as: root. Trusts: grid-mapfile and gridmapdir after ``glexec_py.trust``. Hot path: yes
(when named).

As LCMAPS ``lcmaps_voms_poolaccount.mod``: FQANs in order; the first whose grid-mapfile line maps
to a ``.pool`` *and* gets a lease wins. The lease name is the encoded DN followed by ``:`` and the
group names of the gids already in the store (primary, then secondary unless
``-do_not_use_secondary_gids``), so running voms_localgroup first gives one account per (DN,
groups). By default only the uid is added (``--use-account-gid`` adds the account's groups).
"""

from __future__ import annotations

from glexec_py.plugins.localaccount import GRIDMAP_OPTION, requested_account
from glexec_py.plugins.poolaccount import POOL_OPTIONS, PoolMapping, configure_pool, lease_account
from glexec_py.plugins.voms_localgroup import NO_WILDCARD, fqans_of

from glexec_py.errors import AuthorizationError
from glexec_py.gridmapdir import PoolRequest, encode_lease_name
from glexec_py.plugin_api import Option, Plugin, Result, parse_options
from glexec_py.policy.accounts import AccountError, account_updates, group_name
from glexec_py.policy.mapfile import select_mapping
from glexec_py.policy.subject import match_fqan

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request


class VomsPoolAccountPlugin(PoolMapping, Plugin):
    name = "voms_poolaccount"
    lcmaps_names = ("lcmaps_voms_poolaccount.mod",)
    summary = "first FQAN with a .pool -> leased pool account, lease keyed by DN and groups"
    options = (
        GRIDMAP_OPTION, *POOL_OPTIONS,
        Option("-do_not_use_secondary_gids", "flag", False,
               "lease name uses the primary group only"),
        Option("--use-account-gid", "flag", False, "also add the account's groups",
               aliases=("-use_account_gid",)),
        Option("--require-primary-gid", "flag", False, "fail unless a primary gid is mapped",
               aliases=("-require_primary_gid",)),
        NO_WILDCARD,
    )
    reads = frozenset({"dn", "fqans", "requested_username", "requested_uid", "mode"})
    sets = frozenset({"dn", "uid", "pgid", "sgid", "pool_index"})

    def configure(self, args: Sequence[str]) -> None:
        opts = parse_options(self.options, args, self.name)
        configure_pool(self, opts)
        self.no_secondary = bool(opts["-do_not_use_secondary_gids"])
        self.use_account_gid = bool(opts["--use-account-gid"])
        self.require_pgid = bool(opts["--require-primary-gid"])

    def lease_name(self, dn: str, creds: CredentialView) -> str:
        gids = list(creds.pgid) + ([] if self.no_secondary else list(creds.sgid))
        names = [group_name(g) for g in gids]
        for name in names:
            if "/" in name or ":" in name or not name:
                raise AccountError(f"group name {name!r} cannot be part of a lease name")
        return encode_lease_name(dn, names)

    def _map(self, request: Request, creds: CredentialView, *, create: bool) -> Result:
        dn = creds.dn or request.dn
        if not dn:
            return Result.failure("no DN")
        if self.require_pgid and not creds.pgid:
            return Result.failure("no primary gid mapped yet (--require-primary-gid)")
        try:
            lease_name = self.lease_name(dn, creds)
        except AccountError as e:
            return Result.failure(str(e))
        requested = requested_account(request)
        reasons = []
        for fqan in fqans_of(request, creds):
            found = select_mapping(self.entries,
                                   lambda s, f=fqan: match_fqan(s, f, wildcard=self.wildcard),
                                   pool=True, requested=requested)
            if found is None:
                continue
            req = PoolRequest(lease_name, found[1][1:], strict=self.strict,
                              override_inconsistency=self.override, requested=requested,
                              create=create)
            try:
                account = lease_account(self.gridmapdir, req)
            except AuthorizationError as e:
                reasons.append(e.message)
                continue
            if account is None:
                reasons.append(f"pool {found[1]} exhausted")
                continue
            try:
                updates = account_updates(account, add_pgid=self.use_account_gid,
                                          add_sgid=self.use_account_gid)
            except AccountError as e:
                return Result.failure(str(e))
            return Result.success(dn=dn, pool_index=lease_name, **updates)
        return Result.failure("; ".join(reasons) or "no FQAN maps to a pool")
