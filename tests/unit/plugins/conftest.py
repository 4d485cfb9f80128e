"""Shared set-up for plugin tests: a trusted site directory with the gxp accounts."""

from __future__ import annotations

import pytest


@pytest.fixture
def plugin_site(trusted_tmp, gxp_accounts):
    return trusted_tmp
