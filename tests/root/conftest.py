"""Launcher tests start without stale default target proxies of the session's accounts."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_stale_target_proxies(request):
    if "accounts" not in request.fixturenames:
        return
    accounts = request.getfixturevalue("accounts")
    if not hasattr(accounts, "mapped"):  # a module's own accounts fixture
        return
    for account in [accounts.mapped, *accounts.pool]:
        try:
            os.unlink(f"/tmp/x509up_u{account.uid}")
        except FileNotFoundError:
            pass
