"""``posix_enf``: enforce LCMAPS' limits on the collected ids; the switch itself is glexec's.

Runs as: root. Trusts: nothing. Hot path: yes (when named).

LCMAPS ``lcmaps_posix_enf.mod`` checks and then calls setregid/setgroups/setreuid. In glexec-py
plugins never change identities (only ``glexec_py.launch`` does, after ``identity.py``), so this
plugin keeps the *checks*: at least one uid and one primary gid, at most ``-maxuid``/``-maxpgid``/
``-maxsgid`` of each, and no root ids. ``-uid-range`` and ``-gid-range`` (``LO-HI``) are
glexec-py extensions. ``-set_only_euid``/``-set_only_egid yes`` (leaving the real uid root) are
refused: glexec-py always switches real, effective and saved ids.
"""

from __future__ import annotations

from glexec_py.plugin_api import Option, Plugin, PolicyConfigError, Result, parse_options

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request


def parse_range(text: object, what: str) -> tuple[int, int] | None:
    if text is None:
        return None
    lo, sep, hi = str(text).partition("-")
    try:
        low, high = int(lo), int(hi)
    except ValueError:
        raise PolicyConfigError(f"posix_enf: {what} must be LO-HI, got {text!r}")
    if not sep or low < 1 or high < low:
        raise PolicyConfigError(f"posix_enf: {what} must be LO-HI with 1 <= LO <= HI")
    return low, high


class PosixEnfPlugin(Plugin):
    name = "posix_enf"
    lcmaps_names = ("lcmaps_posix_enf.mod",)
    summary = "checks uid/gid counts and ranges (the switch is done by glexec-py itself)"
    options = (
        Option("-maxuid", "int", None, "at most this many uids"),
        Option("-maxpgid", "int", None, "at most this many primary gids"),
        Option("-maxsgid", "int", 32, "at most this many secondary gids (NGROUPS, 32)"),
        Option("-set_only_euid", "yesno", False, "refused when yes"),
        Option("-set_only_egid", "yesno", False, "refused when yes"),
        Option("-uid-range", "str", None, "every uid must lie in LO-HI (extension)"),
        Option("-gid-range", "str", None, "every gid must lie in LO-HI (extension)"),
    )
    sets = frozenset()

    def configure(self, args: Sequence[str]) -> None:
        opts = parse_options(self.options, args, self.name)
        if opts["-set_only_euid"] or opts["-set_only_egid"]:
            raise PolicyConfigError("posix_enf: -set_only_euid/-set_only_egid yes is not "
                                    "supported: glexec-py switches real and effective ids")
        self.limits = {"uid": opts["-maxuid"], "pgid": opts["-maxpgid"],
                       "sgid": opts["-maxsgid"]}
        for field, limit in self.limits.items():
            if limit is not None and limit < 0:
                raise PolicyConfigError(f"posix_enf: -max{field} must not be negative")
        self.uid_range = parse_range(opts["-uid-range"], "-uid-range")
        self.gid_range = parse_range(opts["-gid-range"], "-gid-range")

    def run(self, request: Request, creds: CredentialView) -> Result:
        if not creds.uid or not creds.pgid:
            return Result.failure("posix_enf needs at least one uid and one primary gid")
        for field, limit in self.limits.items():
            count = len(getattr(creds, field))
            if limit is not None and count > limit:
                return Result.failure(f"{count} {field}s collected, -max{field} is {limit}")
        if 0 in creds.uid or 0 in creds.pgid or 0 in creds.sgid:
            return Result.failure("root uid or gid in the mapping")
        if self.uid_range and not all(self.uid_range[0] <= u <= self.uid_range[1]
                                      for u in creds.uid):
            return Result.failure(f"uid outside {self.uid_range[0]}-{self.uid_range[1]}")
        gids = (*creds.pgid, *creds.sgid)
        if self.gid_range and not all(self.gid_range[0] <= g <= self.gid_range[1]
                                      for g in gids):
            return Result.failure(f"gid outside {self.gid_range[0]}-{self.gid_range[1]}")
        return Result.success()
