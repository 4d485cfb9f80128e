"""verify_proxy plugin: original option spellings, refusals as Result.failure, config errors."""

from __future__ import annotations

import pytest
from glexec_py.plugins.verify_proxy import VerifyProxyPlugin, parse_ttl

from glexec_py.credentials import load_and_verify
from glexec_py.plugin_api import CredentialView, PolicyConfigError, Request


def run(args, cred, now=None):
    plugin = VerifyProxyPlugin()
    plugin.configure(args)
    return plugin.run(Request(credential=cred, now=now), CredentialView())


@pytest.fixture
def cred_of(make_proxy, test_ca):
    def verify(kind, **kw):
        return load_and_verify(make_proxy(kind).read_bytes(), certdir=str(test_ca.certdir),
                               vomsdir=str(test_ca.vomsdir), **kw)
    return verify


def test_parse_ttl() -> None:
    assert parse_ttl("1-02:03", "x") == 86400 + 7200 + 180
    assert parse_ttl("12:00", "x") == 43200
    for bad in ("", "x", "1-", "a-01:00", "01:xx"):
        with pytest.raises(PolicyConfigError):
            parse_ttl(bad, "x")


def test_defaults_accept(cred_of) -> None:
    assert run([], cred_of("rfc")).ok
    assert run(["--allow-limited-proxy"], cred_of("limited")).ok


def test_limited_options(cred_of) -> None:
    result = run(["--disallow-limited-proxy"], cred_of("limited"))
    assert not result.ok and result.reason == "limited proxy not allowed"
    assert not run(["--require-limited-proxy"], cred_of("rfc")).ok
    assert run(["--require-limited-proxy"], cred_of("limited")).ok


def test_level_ttl_both_spellings(cred_of) -> None:
    cred = cred_of("rfc")  # 12 h
    assert not run(["--max-proxy-level-ttl=0", "0-01:00"], cred).ok
    assert not run(["--max-proxy-level-ttl@L", "0-01:00"], cred).ok
    assert run(["--max-proxy-level-ttl=0", "1-00:00"], cred).ok
    result = run(["--max-voms-ttl", "0-01:00"], cred_of("voms"))
    assert not result.ok and "VOMS AC of atlas" in result.reason


def test_only_lifetimes_skips_other_checks(cred_of) -> None:
    cred = cred_of("limited")
    assert run(["--disallow-limited-proxy", "--only-enforce-lifetime-checks"], cred).ok


def test_private_key_absence(cred_of) -> None:
    cred = cred_of("no-key", require_key=False)
    assert not run([], cred).ok
    assert not run(["--never_discard_private_key_absence"], cred).ok
    assert run(["--discard_private_key_absence"], cred).ok


def test_extras_and_certdir(cred_of, test_ca, trusted_tmp) -> None:
    assert not run(["--min-key-bits", "4096"], cred_of("rfc")).ok
    assert not run(["--refuse-signature-hash", "sha256"], cred_of("rfc")).ok
    assert run(["-certdir", str(test_ca.certdir), "--crl-policy", "require"], cred_of("rfc")).ok
    result = run(["--capath", str(trusted_tmp)], cred_of("rfc"))
    assert not result.ok and "trusted CA" in result.reason
    assert run(["--enforce-namespaces"], cred_of("rfc")).ok


@pytest.mark.parametrize("args", [
    ["--bogus"], ["--allow-limited-proxy", "--disallow-limited-proxy"],
    ["--max-proxy-level-ttl=X", "1-00:00"], ["--max-proxy-level-ttl=0"],
    ["--crl-policy", "never"], ["-certdir", "relative/dir"], ["-certdir", "/nonexistent/dir"],
    ["--discard_private_key_absence", "--never_discard_private_key_absence"],
])
def test_bad_configuration(args) -> None:
    with pytest.raises(PolicyConfigError):
        VerifyProxyPlugin().configure(args)


def test_no_credential() -> None:
    assert not run([], None).ok
