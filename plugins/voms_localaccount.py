"""``voms_localaccount``: map the first suitable FQAN to a local account.

Runs as: root. Trusts: the grid-mapfile after ``glexec_py.trust``. Hot path: yes (when named).

As LCMAPS ``lcmaps_voms_localaccount.mod``: FQANs in order; the first whose grid-mapfile line
(wildcards on) has a mapping not starting with ``.`` wins. By default the account's uid, primary
gid and groups are added; ``--use-voms-gid`` adds only the uid, leaving groups to
voms_localgroup.
"""

from __future__ import annotations

from glexec_py.plugins.localaccount import GRIDMAP_OPTION, requested_account
from glexec_py.plugins.voms_localgroup import NO_WILDCARD, fqans_of

from glexec_py.plugin_api import Option, Plugin, Result, parse_options
from glexec_py.policy.accounts import AccountError, account_updates, default_mapfile
from glexec_py.policy.mapfile import read_mapfile, select_mapping
from glexec_py.policy.subject import match_fqan

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request


class VomsLocalAccountPlugin(Plugin):
    name = "voms_localaccount"
    lcmaps_names = ("lcmaps_voms_localaccount.mod",)
    summary = "first mapped FQAN -> local account (grid-mapfile with FQAN patterns)"
    options = (
        GRIDMAP_OPTION,
        Option("--use-voms-gid", "flag", False, "add only the uid, not the account's groups",
               aliases=("-use_voms_gid",)),
        NO_WILDCARD,
    )
    reads = frozenset({"dn", "fqans", "requested_username", "requested_uid"})
    sets = frozenset({"dn", "uid", "pgid", "sgid"})

    def configure(self, args: Sequence[str]) -> None:
        opts = parse_options(self.options, args, self.name)
        self.gridmapfile = default_mapfile(opts["-gridmapfile"])
        self.use_voms_gid = bool(opts["--use-voms-gid"])
        self.wildcard = not opts["-no_wildcard"]
        self.entries = read_mapfile(self.gridmapfile)

    def run(self, request: Request, creds: CredentialView) -> Result:
        requested = requested_account(request)
        for fqan in fqans_of(request, creds):
            found = select_mapping(self.entries,
                                   lambda s, f=fqan: match_fqan(s, f, wildcard=self.wildcard),
                                   pool=False, requested=requested)
            if found is None:
                continue
            try:
                updates = account_updates(found[1], add_pgid=not self.use_voms_gid,
                                          add_sgid=not self.use_voms_gid)
            except AccountError as e:
                return Result.failure(str(e))
            dn = creds.dn or request.dn
            return Result.success(dn=dn, **updates) if dn else Result.success(**updates)
        return Result.failure(f"no FQAN has a local account in {self.gridmapfile}")
