"""Attack catalogue group D (proxy content and chain), at the library level.

The exception class is the exit code (ClientError 201, AuthorizationError 203, SiteError 202);
"no side effects" here means the library wrote nothing: the CA directory and the proxy file are
byte-for-byte unchanged afterwards. End-to-end runs through the launcher reuse these fixtures.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from glexec_py.credentials import VerifyOptions, load_and_verify
from glexec_py.errors import AuthorizationError, ClientError, SiteError


def snapshot(*dirs) -> dict[str, str]:
    out = {}
    for base in dirs:
        for root, _, files in os.walk(base):
            for name in files:
                full = os.path.join(root, name)
                with open(full, "rb") as handle:
                    out[full] = hashlib.sha256(handle.read()).hexdigest()
    return out


def verdict(make_proxy, test_ca, kind, options=None, **made):
    path = make_proxy(kind, **made)
    before = snapshot(test_ca.certdir, test_ca.vomsdir, path.parent)
    try:
        cred = load_and_verify(path.read_bytes(), certdir=str(test_ca.certdir),
                               vomsdir=str(test_ca.vomsdir), options=options)
    except (ClientError, AuthorizationError, SiteError) as exc:
        assert "\n" not in exc.message and exc.message
        result = exc
    else:
        result = cred
    assert snapshot(test_ca.certdir, test_ca.vomsdir, path.parent) == before
    return result


CASES = [
    # D38: empty, random, DER
    ("d38_empty", "empty", None, ClientError, "not PEM"),
    ("d38_random", "garbage", None, ClientError, "not PEM"),
    ("d38_der", "der", None, ClientError, "not PEM"),
    # D39: certificate chain without private key
    ("d39_usercert_only", "usercert-only", None, ClientError, "no private key"),
    ("d39_proxy_without_key", "no-key", None, ClientError, "no private key"),
    # D40: key does not match the leaf
    ("d40_wrong_key", "wrong-key", None, ClientError, "does not match"),
    # D42: expired, not yet valid, expired intermediate proxy
    ("d42_expired", "expired", None, ClientError, "proxy expired at"),
    ("d42_not_yet_valid", "not-yet-valid", None, ClientError, "not valid before"),
    ("d42_expired_intermediate", "expired-intermediate", None, ClientError, "expired at"),
    # D43: self-signed CA with the real CA's name; untrusted CA
    ("d43_self_signed_ca", "self-signed-ca", None, AuthorizationError, "trusted CA"),
    ("d43_untrusted_ca", "untrusted-ca", None, AuthorizationError, "trusted CA"),
    # D44: revoked EEC; CRL policy (missing/expired CRL: see test_cred_crl.py)
    ("d44_revoked", "revoked-rfc", None, AuthorizationError, "revoked"),
    # D45: forged subject
    ("d45_forged_subject", "forged-subject", None, AuthorizationError, "plus one CN"),
    ("d45_two_cn", "two-cn", None, AuthorizationError, "plus one CN"),
    # D46: CA:TRUE on EEC/proxy, path length, proxy issuing a non-proxy
    ("d46_ca_true_proxy", "ca-true-proxy", None, AuthorizationError, "CA:TRUE"),
    ("d46_ca_true_eec", "ca-true-eec", None, AuthorizationError, "CA:TRUE"),
    ("d46_pathlen0_child", "pathlen0-child", None, AuthorizationError, "path length"),
    ("d46_pathlen1_grandchild", "pathlen1-grandchild", None, AuthorizationError, "path length"),
    ("d46_proxy_issues_eec", "proxy-issues-eec", None, AuthorizationError, "non-proxy"),
    ("d46_unknown_critical", "unknown-critical", None, AuthorizationError, "critical"),
    # D49: limited where forbidden, lifetime above maximum
    ("d49_limited_forbidden", "limited", VerifyOptions(limited="disallow"), AuthorizationError,
     "limited proxy not allowed"),
    ("d49_legacy_limited_forbidden", "legacy-limited", VerifyOptions(limited="disallow"),
     AuthorizationError, "limited proxy not allowed"),
    ("d49_limited_required", "rfc", VerifyOptions(limited="require"), AuthorizationError,
     "limited proxy is required"),
    ("d49_lifetime_level0", "rfc", VerifyOptions(max_proxy_level_ttl={0: 3600}),
     AuthorizationError, "lifetime at level 0"),
    ("d49_lifetime_leaf", "proxy-of-proxy", VerifyOptions(max_proxy_level_ttl={"L": 3600}),
     AuthorizationError, "lifetime at level L"),
    ("d49_voms_lifetime", "voms", VerifyOptions(max_voms_ttl=3600), AuthorizationError,
     "VOMS AC of atlas"),
    # D51: weak algorithms / keys where policy forbids
    ("d51_small_key", "rfc-512bit", None, AuthorizationError, "below the minimum"),
    ("d51_key_policy", "small-key", VerifyOptions(min_key_bits=2048), AuthorizationError,
     "below the minimum"),
    ("d51_hash_policy", "rfc", VerifyOptions(refused_signature_hashes=("sha256",)),
     AuthorizationError, "sha256 refused"),
    # E58 (identity from chain position): huge chains are refused up front
    ("d_huge_chain", "huge-chain", None, ClientError, "more than 16"),
]


@pytest.mark.parametrize(("case", "kind", "options", "error", "text"), CASES,
                         ids=[c[0] for c in CASES])
def test_group_d(make_proxy, test_ca, case, kind, options, error, text) -> None:
    result = verdict(make_proxy, test_ca, kind, options)
    assert type(result) is error, result
    assert text in result.message
    assert result.exit_code == {ClientError: 201, AuthorizationError: 203}[error]


@pytest.mark.parametrize("kind", ["rfc", "limited", "independent", "legacy", "legacy-limited",
                                  "draft", "draft-limited", "pathlen1", "proxy-of-proxy", "voms",
                                  "ec-proxy", "small-key"])
def test_good_chains(make_proxy, test_ca, kind) -> None:
    cred = verdict(make_proxy, test_ca, kind)
    assert cred.dn == "/DC=org/DC=example/O=glexec-py demo/CN=Demo User"
    assert cred.issuer_dn == "/DC=org/DC=example/CN=glexec-py Test CA"
    assert cred.has_key and cred.pem
    assert cred.chain_subjects[-1] == cred.dn
    assert cred.chain_subjects[0].startswith(cred.dn + "/CN=")
    assert cred.not_before < cred.not_after
    assert cred.limited == kind.endswith("limited")
    assert len(cred.proxy_kinds) == (2 if kind in ("proxy-of-proxy", "ec-proxy") else 1)


def test_proxy_kinds(make_proxy, test_ca) -> None:
    expect = {"rfc": ("rfc3820",), "limited": ("rfc3820-limited",),
              "independent": ("rfc3820-independent",), "legacy": ("legacy",),
              "legacy-limited": ("legacy-limited",), "draft": ("draft",),
              "draft-limited": ("draft-limited",), "proxy-of-proxy": ("rfc3820", "rfc3820")}
    for kind, kinds in expect.items():
        assert verdict(make_proxy, test_ca, kind).proxy_kinds == kinds, kind


def test_legacy_proxy_cn_is_not_identity(make_proxy, test_ca) -> None:
    # E58: the identity is the EEC by chain position, never the leaf minus "/CN=proxy".
    cred = verdict(make_proxy, test_ca, "legacy")
    assert cred.chain_subjects[0] == cred.dn + "/CN=proxy"
    assert cred.dn.endswith("/CN=Demo User")


def test_untrusted_certdir_is_site_error(make_proxy, test_ca, trusted_tmp) -> None:
    loose = trusted_tmp / "certificates"
    loose.mkdir()
    os.chmod(loose, 0o777)
    data = make_proxy("rfc").read_bytes()
    with pytest.raises(SiteError):
        load_and_verify(data, certdir=str(loose), vomsdir=None)


def test_empty_certdir_is_untrusted_chain(make_proxy, trusted_tmp) -> None:
    data = make_proxy("rfc").read_bytes()
    with pytest.raises(AuthorizationError, match="trusted CA"):
        load_and_verify(data, certdir=str(trusted_tmp), vomsdir=None)


def test_key_absence_may_be_allowed(make_proxy, test_ca) -> None:
    cred = load_and_verify(make_proxy("no-key").read_bytes(), certdir=str(test_ca.certdir),
                           vomsdir=None, require_key=False)
    assert not cred.has_key


def test_now_parameter(make_proxy, test_ca) -> None:
    data = make_proxy("rfc").read_bytes()
    cred = load_and_verify(data, certdir=str(test_ca.certdir), vomsdir=None)
    with pytest.raises(ClientError, match="expired at"):
        load_and_verify(data, certdir=str(test_ca.certdir), vomsdir=None,
                        now=cred.not_after + 1)
