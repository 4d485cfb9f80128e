"""Shared fixtures of the adversarial suite: a pool-account site and a way to run as the pilot.

The default attack site maps the test DN to the pool (``.gxlpool``), so any wrongful success
would be visible as a lease in the gridmapdir and a process of a pool uid, which the snapshots
catch.
"""

from __future__ import annotations

import pytest
from fixtures.credentials import USER_DN


@pytest.fixture(scope="module")
def pool_site(site_factory):
    return site_factory(mapfile=f'"{USER_DN}" .gxlpool\n')


@pytest.fixture
def pilot_env(proxy) -> dict[str, str]:
    return {"GLEXEC_CLIENT_CERT": str(proxy)}
