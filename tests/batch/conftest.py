"""The glexec-py column of the batch tests: a real site, its setuid launchers and a pilot proxy.

A batch job runs as the pilot account ``gxfpilot`` and calls the installed launcher with the
test user's proxy; the site maps that DN to ``gxfpay2`` (the sutest probe is built for
``gxfpay``, so "no process of the target uid remains" cannot be confused between the columns).
Two front ends: one whose ``tracking_gid_ranges`` covers the batch system's tracking gids
(``TRACKING_GID_RANGE``, also Grid Engine's ``gid_range``), one that drops them (the
``gid_dropped`` shape).
"""

from __future__ import annotations

import os
import time

import pytest
from fixtures.credentials import USER_DN
from fixtures.daemons import TRACKING_GID_RANGE
from glexec_py.sutest.matrix import Launcher, MatrixResult, glexec_launcher


class GlexecColumn:
    __slots__ = ("launcher", "keeping", "dropping", "proxy", "pilot", "target")

    def __init__(self, launcher: Launcher, keeping: object, dropping: object, proxy: str,
                 pilot: object, target: object) -> None:
        self.launcher = launcher
        self.keeping = keeping
        self.dropping = dropping
        self.proxy = proxy
        self.pilot = pilot
        self.target = target


@pytest.fixture(scope="session")
def glexec_column(site_factory, make_proxy, gxf_accounts) -> GlexecColumn:
    pilot, target = gxf_accounts["gxfpilot"], gxf_accounts["gxfpay2"]
    low, high = TRACKING_GID_RANGE
    conf = {"user_white_list": pilot.pw_name, "tracking_gid_ranges": f"{low}-{high}",
            "cleanup_grace": "1"}
    mapfile = f'"{USER_DN}" {target.pw_name}\n'
    keeping = site_factory(conf=conf, mapfile=mapfile, pool=[])
    dropping = site_factory(conf={**conf, "tracking_gid_ranges": ""}, mapfile=mapfile, pool=[])
    proxy = str(make_proxy("rfc", owner_uid=pilot.pw_uid))
    launcher = glexec_launcher(str(keeping.bin), proxy, pilot.pw_name, str(dropping.bin))
    return GlexecColumn(launcher, keeping, dropping, proxy, pilot, target)


def save_cells(cells: list) -> None:
    """Merge ``cells`` into ``$GLEXEC_SUTEST_RESULT`` (JSON), replacing those of their systems.

    Unset: nothing is saved. ``glexec-sutest report FILE`` renders the file; that is how
    docs/batch-report.md is made from a test run.
    """
    path = os.environ.get("GLEXEC_SUTEST_RESULT")
    if not path:
        return
    result = MatrixResult()
    if os.path.exists(path):
        with open(path) as fh:
            result = MatrixResult.from_json(fh.read())
    systems = {c.system for c in cells}
    result.cells = [c for c in result.cells if c.system not in systems] + list(cells)
    result.meta["systems"] = sorted({c.system for c in result.cells})
    result.meta["made"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    with open(path, "w") as fh:
        fh.write(result.to_json())
