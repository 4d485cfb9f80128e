"""``good`` and ``bad``: the always-succeeding and always-failing states policies need.

Runs as: root. Trusts: nothing. Hot path: yes (imported when a policy names them).

LCMAPS rules always have an arrow, so a one-plugin policy is written ``gridmapfile -> good | bad``
(``lcmaps_dummy_good.mod``, ``lcmaps_dummy_bad.mod``). They add nothing to the credentials.
"""

from __future__ import annotations

from glexec_py.plugin_api import Plugin, PolicyConfigError, Result

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request


class GoodPlugin(Plugin):
    name = "good"
    lcmaps_names = ("lcmaps_dummy_good.mod",)
    summary = "always succeeds; adds nothing"

    def configure(self, args: Sequence[str]) -> None:
        # The originals ignore their arguments; OSG's "--dummy-username" is refused here rather
        # than silently ignored, because a site writing it expects a mapping to happen.
        if args:
            raise PolicyConfigError(f"{self.name}: takes no options, got {' '.join(args)!r}")

    def run(self, request: Request, creds: CredentialView) -> Result:
        return Result.success()


class BadPlugin(GoodPlugin):
    name = "bad"
    lcmaps_names = ("lcmaps_dummy_bad.mod",)
    summary = "always fails"

    def run(self, request: Request, creds: CredentialView) -> Result:
        return Result.failure("bad plugin always fails")
