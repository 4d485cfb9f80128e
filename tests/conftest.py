"""Test-suite wiring: markers, shared fixtures, and the --require-all switch CI uses.

Tests state their prerequisites with ``fixtures.prereq.require``: locally a missing one (not
root, no Slurm, ...) skips with a stated reason; ``.ci/run`` passes ``--require-all``, which turns
every such skip into a failure so a CI run cannot go green by skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from fixtures import prereq

pytest_plugins = [
    name for name in (
        "fixtures.credentials",
        "fixtures.accounts",
        "fixtures.site",
        "fixtures.lcmaps",
        "fixtures.chirp",
        "fixtures.daemons",
        "fixtures.side_effects",
    )
    if (Path(__file__).parent / "fixtures" / (name.split(".")[1] + ".py")).exists()
]

TRUSTED_BASE = Path("/run/glexec-py-tests")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--require-all", action="store_true",
                     help="fail instead of skipping when a test's prerequisite is missing")


def pytest_configure(config: pytest.Config) -> None:
    prereq.REQUIRE_ALL[0] = bool(config.getoption("--require-all"))


@pytest.fixture
def trusted_tmp() -> Path:
    """A fresh root-owned 0755 directory whose whole path passes glexec-py's trust checks.

    pytest's ``tmp_path`` lives under sticky, world-writable /tmp, which the launcher (rightly)
    refuses to trust for configuration, policies, CA directories or gridmapdirs.
    """
    TRUSTED_BASE.mkdir(mode=0o755, exist_ok=True)
    os.chmod(TRUSTED_BASE, 0o755)
    path = TRUSTED_BASE / uuid.uuid4().hex[:12]
    path.mkdir(mode=0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
