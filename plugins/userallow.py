"""``userallow`` (LCAS ``lcas_userallow.mod``): allow only DNs listed in a file.

Runs as: root. Trusts: the list after ``glexec_py.trust``. Hot path: yes (when named).

The file is in grid-mapfile format (in practice the grid-mapfile itself, or a list of quoted DNs);
given as the only argument or with ``-allowfile``. Exact DN comparison through
``glexec_py.policy.subject.match_dn``.
"""

from __future__ import annotations

from glexec_py.plugins.userban import file_argument

from glexec_py.plugin_api import Option, Plugin, Result
from glexec_py.policy.mapfile import read_mapfile
from glexec_py.policy.subject import match_dn

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request


class UserAllowPlugin(Plugin):
    name = "userallow"
    lcmaps_names = ("lcas_userallow.mod",)
    summary = "allows only DNs listed in a file (LCAS)"
    options = (Option("-allowfile", "path", None, "file of allowed DNs"),)
    reads = frozenset({"dn"})

    def configure(self, args: Sequence[str]) -> None:
        self.path = file_argument(self, args, "-allowfile")
        self.entries = read_mapfile(self.path, what="allow list")

    def run(self, request: Request, creds: CredentialView) -> Result:
        dn = creds.dn or request.dn
        if dn and any(match_dn(e.subject, dn, wildcard=False) for e in self.entries):
            return Result.success()
        return Result.failure(f"DN not listed in {self.path}")
