"""``ban_dn``: fail when the DN is listed in a ban file (grid-mapfile format).

Runs as: root. Trusts: the ban file after ``glexec_py.trust``. Hot path: yes (when named).

As LCMAPS ``lcmaps_ban_dn.mod``: a line whose subject (an fnmatch pattern unless ``-no_wildcard``)
matches the DN bans it; mappings on the line are ignored. Matching goes through
``glexec_py.policy.subject.match_dn`` like every mapfile, so a case or alias variant of a banned
DN is banned too. A ban file that cannot be parsed completely is a site error (202), never a
shorter ban list.
"""

from __future__ import annotations

from glexec_py.plugin_api import Option, Plugin, PolicyConfigError, Result, parse_options
from glexec_py.policy.mapfile import read_mapfile
from glexec_py.policy.subject import match_dn

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request


class BanDnPlugin(Plugin):
    name = "ban_dn"
    lcmaps_names = ("lcmaps_ban_dn.mod",)
    summary = "fails for DNs listed in a ban file"
    options = (
        Option("-banmapfile", "str", None, "the ban file (required)",
               aliases=("-BANMAPFILE", "-banmap", "-BANMAP")),
        Option("-no_wildcard", "flag", False, "compare DNs exactly",
               aliases=("-disablewildcard", "--disablewildcard", "--disablewildcards")),
    )
    reads = frozenset({"dn"})

    def configure(self, args: Sequence[str]) -> None:
        opts = parse_options(self.options, args, self.name)
        if not opts["-banmapfile"]:
            raise PolicyConfigError(f"{self.name}: -banmapfile is required")
        path = str(opts["-banmapfile"])
        self.banfile = path if path.startswith("/") else "/etc/grid-security/" + path
        self.wildcard = not opts["-no_wildcard"]
        self.entries = read_mapfile(self.banfile, what="ban file")

    def run(self, request: Request, creds: CredentialView) -> Result:
        dn = creds.dn or request.dn
        if not dn:
            return Result.failure("no DN")
        for entry in self.entries:
            if match_dn(entry.subject, dn, wildcard=self.wildcard):
                return Result.failure(f"DN banned by {self.banfile}:{entry.line}")
        return Result.success()
