"""``voms_localgroup``: map each FQAN to a local group through a groupmapfile.

Runs as: root. Trusts: the groupmapfile after ``glexec_py.trust``. Hot path: yes (when named).

As LCMAPS ``lcmaps_voms_localgroup.mod``: for every FQAN in order, the first groupmapfile line
(FQAN patterns, wildcards on) with a mapping not starting with ``.`` names a group; an unknown
group fails the plugin. The first FQAN's group becomes the primary gid (unless
``--map-to-secondary-groups``), every later one a secondary gid; each is recorded as a VO mapping
(the ``LCMAPS CRED FINAL: FQAN:...`` lines). ``-mapall`` fails if any FQAN is unmapped,
``-mapmin N`` if fewer than N are mapped.
"""

from __future__ import annotations

from glexec_py.plugin_api import Option, Plugin, PolicyConfigError, Result, parse_options
from glexec_py.policy.accounts import AccountError, lookup_group
from glexec_py.policy.mapfile import read_mapfile, select_mapping
from glexec_py.policy.subject import match_fqan

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request

NO_WILDCARD = Option("-no_wildcard", "flag", False, "compare FQANs exactly",
                     aliases=("-disablewildcard", "--disablewildcard", "--disablewildcards"))


def fqans_of(request: Request, creds: CredentialView) -> tuple[str, ...]:
    """FQANs already in the store win over the request's (LCMAPS VO_CRED_STRING first)."""
    return tuple(creds.fqans) or tuple(request.fqans or ())


class VomsLocalGroupPlugin(Plugin):
    name = "voms_localgroup"
    lcmaps_names = ("lcmaps_voms_localgroup.mod",)
    summary = "FQANs -> local groups (groupmapfile); first FQAN gives the primary gid"
    options = (
        Option("-groupmapfile", "str", None, "groupmapfile (required)",
               aliases=("-GROUPMAPFILE", "-groupmap", "-GROUPMAP")),
        Option("-mapmin", "int", 0, "fail when fewer FQANs than this are mapped"),
        Option("-mapall", "flag", False, "fail when any FQAN is unmapped"),
        Option("--map-to-secondary-groups", "flag", False,
               "the first FQAN's group is a secondary gid too, no primary gid is set",
               aliases=("-map_to_secondary_groups",)),
        NO_WILDCARD,
    )
    reads = frozenset({"fqans"})
    sets = frozenset({"pgid", "sgid", "vo_mappings"})

    def configure(self, args: Sequence[str]) -> None:
        opts = parse_options(self.options, args, self.name)
        if not opts["-groupmapfile"]:
            raise PolicyConfigError(f"{self.name}: -groupmapfile is required")
        self.groupmapfile = str(opts["-groupmapfile"])
        if not self.groupmapfile.startswith("/"):
            self.groupmapfile = "/etc/grid-security/" + self.groupmapfile
        self.mapmin = int(opts["-mapmin"])
        self.mapall = bool(opts["-mapall"])
        self.secondary_only = bool(opts["--map-to-secondary-groups"])
        self.wildcard = not opts["-no_wildcard"]
        self.entries = read_mapfile(self.groupmapfile, what="groupmapfile")

    def run(self, request: Request, creds: CredentialView) -> Result:
        fqans = fqans_of(request, creds)
        if not fqans:
            return Result.failure("no FQANs")
        pgid: list[int] = []
        sgid: list[int] = []
        mappings: list[tuple[str, int, str]] = []
        for index, fqan in enumerate(fqans):
            found = select_mapping(self.entries,
                                   lambda s, f=fqan: match_fqan(s, f, wildcard=self.wildcard),
                                   pool=False)
            if found is None:
                if self.mapall:
                    return Result.failure(f"FQAN {fqan!r} has no group in {self.groupmapfile}")
                continue
            group = found[1]
            try:
                gid = lookup_group(group)
            except AccountError as e:
                return Result.failure(str(e))
            if index == 0 and not self.secondary_only:
                pgid.append(gid)
            else:
                sgid.append(gid)
            mappings.append((fqan, gid, group))
        if len(mappings) < self.mapmin:
            return Result.failure(f"only {len(mappings)} FQANs mapped, -mapmin is {self.mapmin}")
        return Result.success(pgid=pgid, sgid=sgid, vo_mappings=mappings)
