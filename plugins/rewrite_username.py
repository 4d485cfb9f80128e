"""``rewrite_username``: replace the mapped account by the one a site rule derives from its name.

Runs as: root. Trusts: NSS. Hot path: yes (when named).

For sites whose mapping yields names such as ``DOMAIN\\user`` (winbind, a central service) while
the payload must run as a local ``domain.user``: takes the username of the first mapped uid,
applies ``-replace OLD=NEW`` rules (in order, every occurrence), then ``-lowercase``, then
``-prefix``, and maps to the resulting account, replacing uid, primary gid and groups (or only the
uid with ``-keep-groups``). The result must be an existing non-root account; otherwise the plugin
fails, so the policy can fall back.
"""

from __future__ import annotations

import pwd

from glexec_py.plugin_api import Option, Plugin, PolicyConfigError, Result, parse_options
from glexec_py.policy.accounts import AccountError, account_updates

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request


def rewrite_name(name: str, replaces: Sequence[tuple[str, str]], lowercase: bool,
                 prefix: str) -> str:
    for old, new in replaces:
        name = name.replace(old, new)
    if lowercase:
        name = name.lower()
    return prefix + name


class RewriteUsernamePlugin(Plugin):
    name = "rewrite_username"
    lcmaps_names = ("lcmaps_rewrite_username.mod",)
    summary = "turns the mapped account name into another by site rules (DOMAIN\\u -> domain.u)"
    options = (
        Option("-replace", "multi", (), "OLD=NEW, applied in order to every occurrence"),
        Option("-lowercase", "flag", False, "lower-case the name after replacing"),
        Option("-prefix", "str", "", "string put in front of the name"),
        Option("-keep-groups", "flag", False, "replace only the uid, keep the gids"),
    )
    reads = frozenset()
    sets = frozenset({"uid", "pgid", "sgid"})

    def configure(self, args: Sequence[str]) -> None:
        opts = parse_options(self.options, args, self.name)
        self.replaces = []
        for rule in opts["-replace"]:
            old, sep, new = rule.partition("=")
            if not sep or not old:
                raise PolicyConfigError(f"{self.name}: -replace needs OLD=NEW, got {rule!r}")
            self.replaces.append((old, new))
        self.lowercase = bool(opts["-lowercase"])
        self.prefix = str(opts["-prefix"])
        self.keep_groups = bool(opts["-keep-groups"])
        if not (self.replaces or self.lowercase or self.prefix):
            raise PolicyConfigError(f"{self.name}: no rule given")

    def run(self, request: Request, creds: CredentialView) -> Result:
        if not creds.uid:
            return Result.failure("no mapped account to rewrite")
        try:
            old = pwd.getpwuid(creds.uid[0]).pw_name
        except KeyError:
            return Result.failure(f"uid {creds.uid[0]} has no name")
        new = rewrite_name(old, self.replaces, self.lowercase, self.prefix)
        try:
            updates = account_updates(new, add_pgid=not self.keep_groups,
                                      add_sgid=not self.keep_groups)
        except AccountError as e:
            return Result.failure(f"rewritten {old!r} -> {new!r}: {e}")
        replace = ("uid",) if self.keep_groups else ("uid", "pgid", "sgid")
        return Result.success(replace=replace, **updates)
