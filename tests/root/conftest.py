"""Shared fixtures of the launcher tests: a default site, the pilot's proxy, no stale proxies."""

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


@pytest.fixture(scope="module")
def site(site_factory):
    """A default site (grid-mapfile mapping to the session's mapped user), one per module."""
    return site_factory()


@pytest.fixture
def proxy(make_proxy, accounts):
    """A fresh RFC 3820 proxy of the test user, owned by the pilot, mode 0600."""
    return make_proxy("rfc", owner_uid=accounts.pilot.uid)
