"""``userban`` (LCAS ``lcas_userban.mod``): deny DNs listed in a ban file.

Runs as: root. Trusts: the ban file after ``glexec_py.trust``. Hot path: yes (when named).

The file lists one (quoted) DN per line in grid-mapfile format; it is given as the only argument
(LCAS style, ``pluginargs=ban_users.db``) or with ``-banfile``. Exact DN comparison through
``glexec_py.policy.subject.match_dn`` (so case and alias variants are banned too).
"""

from __future__ import annotations

from glexec_py.plugin_api import Option, Plugin, PolicyConfigError, Result, parse_options
from glexec_py.policy.mapfile import read_mapfile
from glexec_py.policy.subject import match_dn

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request


def file_argument(plugin: Plugin, args: Sequence[str], option: str) -> str:
    """The one file an LCAS plugin takes: a lone positional path, or ``option PATH``."""
    if len(args) == 1 and not args[0].startswith("-"):
        path = args[0]
    else:
        path = str(parse_options(plugin.options, args, plugin.name)[option] or "")
    if not path.startswith("/"):
        raise PolicyConfigError(f"{plugin.name}: needs an absolute file path, got {path!r}")
    return path


class UserBanPlugin(Plugin):
    name = "userban"
    lcmaps_names = ("lcas_userban.mod",)
    summary = "denies DNs listed in a ban file (LCAS)"
    options = (Option("-banfile", "path", None, "file of banned DNs"),)
    reads = frozenset({"dn"})

    def configure(self, args: Sequence[str]) -> None:
        self.path = file_argument(self, args, "-banfile")
        self.entries = read_mapfile(self.path, what="ban file")

    def run(self, request: Request, creds: CredentialView) -> Result:
        dn = creds.dn or request.dn
        if not dn:
            return Result.failure("no DN")
        for entry in self.entries:
            if match_dn(entry.subject, dn, wildcard=False):
                return Result.failure(f"DN banned by {self.path}:{entry.line}")
        return Result.success()
