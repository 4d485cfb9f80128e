"""Attack catalogue group D (proxy content and chain), end to end through the launcher.

The credentials layer's unit tests prove each verdict on the library; here each hostile proxy is
presented by an unprivileged pilot to the installed setuid launcher on a pool-account site (so a
wrongful success would create a lease) and must give the documented code with no side effects.
Site options of the verify_proxy plugin (limited proxies, lifetimes, key size) are exercised
through a real policy line.
"""

from __future__ import annotations

import pytest
from fixtures.credentials import USER_DN
from fixtures.site import assert_no_side_effects

pytestmark = [pytest.mark.root, pytest.mark.installed]

POLICY = """\
verifyproxy = "lcmaps_verify_proxy.mod -certdir {certdir} {options}"
poolaccount = "lcmaps_poolaccount.mod -gridmap {{site}}/grid-mapfile"
              "-gridmapdir {{site}}/gridmapdir"
good = "lcmaps_dummy_good.mod"

glexec_get_account:
verifyproxy -> poolaccount
poolaccount -> good
"""

ESSENTIAL = [
    ("d38_empty", "empty", 201), ("d38_random", "garbage", 201), ("d38_der", "der", 201),
    ("d39_usercert_only", "usercert-only", 201), ("d39_no_key", "no-key", 201),
    ("d40_wrong_key", "wrong-key", 201),
    ("d42_expired", "expired", 201), ("d42_not_yet_valid", "not-yet-valid", 201),
    ("d42_expired_intermediate", "expired-intermediate", 201),
    ("d43_self_signed_ca", "self-signed-ca", 203), ("d43_untrusted_ca", "untrusted-ca", 203),
    ("d44_revoked", "revoked-rfc", 203),
    ("d45_forged_subject", "forged-subject", 203), ("d45_two_cn", "two-cn", 203),
    ("d46_ca_true_proxy", "ca-true-proxy", 203), ("d46_ca_true_eec", "ca-true-eec", 203),
    ("d46_pathlen0_child", "pathlen0-child", 203),
    ("d46_pathlen1_grandchild", "pathlen1-grandchild", 203),
    ("d46_proxy_issues_eec", "proxy-issues-eec", 203),
    ("d46_unknown_critical", "unknown-critical", 203),
    ("d_huge_chain", "huge-chain", 201),
]

BY_POLICY = [
    ("d49_limited_forbidden", "limited", "--disallow-limited-proxy"),
    ("d49_legacy_limited_forbidden", "legacy-limited", "--disallow-limited-proxy"),
    ("d49_lifetime_level0", "rfc", "--max-proxy-level-ttl=0 0-01:00"),
    ("d51_key_policy", "small-key", "--min-key-bits 2048"),
]


@pytest.fixture(scope="module")
def pool_site(site_factory, test_ca):
    policy = POLICY.format(certdir=test_ca.certdir, options="")
    return site_factory(mapfile=f'"{USER_DN}" .gxlpool\n', lcmaps_db=policy)


@pytest.mark.parametrize(("case", "kind", "code"), ESSENTIAL, ids=[c[0] for c in ESSENTIAL])
def test_hostile_proxy_is_refused(pool_site, accounts, make_proxy, case, kind, code):
    path = make_proxy(kind, owner_uid=accounts.pilot.uid)
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(path)})
    assert_no_side_effects(pool_site, accounts, result, code)


@pytest.mark.parametrize(("case", "kind", "options"), BY_POLICY, ids=[c[0] for c in BY_POLICY])
def test_policy_options_refuse(site_factory, test_ca, accounts, make_proxy, case, kind, options):
    policy = POLICY.format(certdir=test_ca.certdir, options=options)
    site = site_factory(mapfile=f'"{USER_DN}" .gxlpool\n', lcmaps_db=policy)
    path = make_proxy(kind, owner_uid=accounts.pilot.uid)
    result = site.run(accounts.pilot, ["/usr/bin/id"], env={"GLEXEC_CLIENT_CERT": str(path)})
    assert_no_side_effects(site, accounts, result, 203)


@pytest.mark.parametrize("kind", ["rfc", "limited", "legacy", "draft", "proxy-of-proxy",
                                  "voms", "ec-proxy"])
def test_accepted_kinds_map_to_a_pool_account(site_factory, test_ca, accounts, make_proxy,
                                              kind):
    policy = POLICY.format(certdir=test_ca.certdir, options="")
    site = site_factory(mapfile=f'"{USER_DN}" .gxlpool\n', lcmaps_db=policy)
    path = make_proxy(kind, owner_uid=accounts.pilot.uid)
    result = site.run(accounts.pilot, ["/usr/bin/id", "-un"],
                      env={"GLEXEC_CLIENT_CERT": str(path),
                           "GLEXEC_TARGET_PROXY": "/dev/null"})
    assert result.code == 0, result
    assert result.out.strip().startswith("gxlpool")
    assert len(site.leases()) == 1
