"""``localaccount``: map a DN to the local account its grid-mapfile line names.

Runs as: root. Trusts: the grid-mapfile after ``glexec_py.trust``. Hot path: yes (when named).

As LCMAPS ``lcmaps_localaccount.mod``: exact subject match (no wildcards), first line whose
subject matches and that has a mapping not starting with ``.`` wins; the account's uid, primary
gid and full group list are added. With a requested account (verify mode, gsissh) the mapping
must equal it. Subjects are compared with ``glexec_py.policy.subject.match_dn``.
"""

from __future__ import annotations

from glexec_py.plugin_api import Option, Plugin, Result, parse_options
from glexec_py.policy.accounts import AccountError, account_updates, default_mapfile
from glexec_py.policy.mapfile import read_mapfile, select_mapping
from glexec_py.policy.subject import match_dn

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request

GRIDMAP_OPTION = Option("-gridmapfile", "str", None, "grid-mapfile to read "
                        "(default /etc/grid-security/grid-mapfile; relative names under "
                        "/etc/grid-security)", aliases=("-GRIDMAPFILE", "-gridmap", "-GRIDMAP"))


def requested_account(request: Request) -> str | None:
    """The account the caller asked for (verify mode), by name or uid; None when not asked."""
    if request.requested_username:
        return str(request.requested_username)
    if request.requested_uid is not None:
        import pwd

        try:
            return pwd.getpwuid(int(request.requested_uid)).pw_name
        except (KeyError, ValueError, OverflowError):
            return "\0no such uid"
    return None


class LocalAccountPlugin(Plugin):
    name = "localaccount"
    lcmaps_names = ("lcmaps_localaccount.mod",)
    summary = "grid-mapfile DN -> local account (exact DN, first suitable line)"
    options = (GRIDMAP_OPTION,
               Option("-use_wildcard", "flag", False, "match subjects as fnmatch patterns "
                      "(glexec-py extension; LCMAPS localaccount never does)"))
    reads = frozenset({"dn", "requested_username", "requested_uid"})
    sets = frozenset({"dn", "uid", "pgid", "sgid"})

    def configure(self, args: Sequence[str]) -> None:
        opts = parse_options(self.options, args, self.name)
        self.gridmapfile = default_mapfile(opts["-gridmapfile"])
        self.wildcard = bool(opts["-use_wildcard"])
        self.entries = read_mapfile(self.gridmapfile)

    def run(self, request: Request, creds: CredentialView) -> Result:
        dn = creds.dn or request.dn
        if not dn:
            return Result.failure("no DN")
        found = select_mapping(self.entries, lambda s: match_dn(s, dn, wildcard=self.wildcard),
                               pool=False, requested=requested_account(request))
        if found is None:
            return Result.failure(f"no localaccount mapping for {dn!r} in {self.gridmapfile}")
        entry, account = found
        try:
            updates = account_updates(account)
        except AccountError as e:
            return Result.failure(f"{self.gridmapfile}:{entry.line}: {e}")
        return Result.success(dn=dn, **updates)
