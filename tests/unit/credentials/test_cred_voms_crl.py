"""VOMS FQAN extraction from voms-proxy-fake proxies, refusals that drop FQANs, CRL policies."""

from __future__ import annotations

import datetime
import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from glexec_py.credentials import VerifyOptions, load_and_verify
from glexec_py.errors import AuthorizationError

FQANS = ["/atlas/Role=pilot/Capability=NULL", "/atlas/Role=NULL/Capability=NULL",
         "/atlas/usatlas/Role=NULL/Capability=NULL"]


def verify(data: bytes, ca, vomsdir=None, **kw):
    return load_and_verify(data, certdir=str(ca.certdir),
                           vomsdir=str(vomsdir or ca.vomsdir), **kw)


@pytest.mark.parametrize("newformat", [False, True])
def test_fqans_equal_request(make_proxy, test_ca, newformat) -> None:
    cred = verify(make_proxy("voms", fqans=FQANS, newformat=newformat).read_bytes(), test_ca)
    assert cred.fqans == tuple(FQANS)
    (info,) = cred.voms
    assert (info.vo, info.uri) == ("atlas", "voms.example.org:15001")
    assert info.issuer_dn == "/DC=org/DC=example/O=glexec-py demo/CN=voms.example.org"
    assert info.fqans == tuple(FQANS) and info.not_before < info.not_after
    assert cred.voms_rejected == ()


def test_other_vo(make_proxy, test_ca) -> None:
    cred = verify(make_proxy("voms", vo="dteam", fqans=["/dteam/Role=NULL"]).read_bytes(),
                  test_ca)
    assert cred.fqans == ("/dteam/Role=NULL",)


def test_no_vomsdir_means_no_fqans(make_proxy, test_ca) -> None:
    cred = load_and_verify(make_proxy("voms").read_bytes(), certdir=str(test_ca.certdir),
                           vomsdir=None)
    assert cred.fqans == () and cred.voms == ()


@pytest.mark.parametrize(("kind", "reason"), [
    ("tampered-ac", "signature does not verify"),
    ("voms-expired-ac", "expired at"),
    ("ac-other-holder", "holder"),
])
def test_bad_acs_yield_no_fqans(make_proxy, test_ca, kind, reason) -> None:
    cred = verify(make_proxy(kind).read_bytes(), test_ca)
    assert cred.fqans == () and cred.voms == ()
    assert any(reason in r for r in cred.voms_rejected), cred.voms_rejected


def _vomsdir(trusted_tmp, vo: str, lsc: str | None = None, pem: bytes | None = None):
    root = trusted_tmp / "vomsdir"
    (root / vo).mkdir(parents=True)
    if lsc is not None:
        (root / vo / "voms.example.org.lsc").write_text(lsc)
    if pem is not None:
        (root / vo / "voms.pem").write_bytes(pem)
    return root


def test_wrong_lsc_yields_no_fqans(make_proxy, test_ca, trusted_tmp) -> None:
    vomsdir = _vomsdir(trusted_tmp, "atlas", "/DC=org/DC=example/O=glexec-py demo/CN=impostor\n"
                       "/DC=org/DC=example/CN=glexec-py Test CA\n")
    cred = verify(make_proxy("voms").read_bytes(), test_ca, vomsdir)
    assert cred.fqans == ()
    assert any(".lsc" in r for r in cred.voms_rejected)


def test_lsc_of_another_vo_yields_no_fqans(make_proxy, test_ca, trusted_tmp) -> None:
    good = (test_ca.vomsdir / "atlas" / "voms.example.org.lsc").read_text()
    vomsdir = _vomsdir(trusted_tmp, "cms", good)
    assert verify(make_proxy("voms").read_bytes(), test_ca, vomsdir).fqans == ()


def test_server_certificate_in_vomsdir(make_proxy, test_ca, trusted_tmp) -> None:
    vomsdir = _vomsdir(trusted_tmp, "atlas", pem=test_ca.voms_cert.read_bytes())
    assert verify(make_proxy("voms").read_bytes(), test_ca, vomsdir).fqans[0] == FQANS[0]


def test_lsc_with_comments_and_alternatives(make_proxy, test_ca, trusted_tmp) -> None:
    good = (test_ca.vomsdir / "atlas" / "voms.example.org.lsc").read_text()
    vomsdir = _vomsdir(trusted_tmp, "atlas", "# old server\n/DC=org/CN=old\n/DC=org/CN=old CA\n"
                       "------ NEXT CHAIN ------\n" + good.upper())
    assert verify(make_proxy("voms").read_bytes(), test_ca, vomsdir).fqans[0] == FQANS[0]


# ---- CRL policy ------------------------------------------------------------------------------

def _certdir(trusted_tmp, test_ca, crl: bytes | None):
    certdir = trusted_tmp / "certificates"
    certdir.mkdir()
    shutil.copy(test_ca.certdir / f"{test_ca.hash}.0", certdir)
    if crl is not None:
        (certdir / f"{test_ca.hash}.r0").write_bytes(crl)
    return certdir


def _crl(test_ca, days_ago: int) -> bytes:
    ca = x509.load_pem_x509_certificate(test_ca.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(test_ca.ca_key.read_bytes(), None)
    now = datetime.datetime.now(datetime.UTC)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
           .last_update(now - datetime.timedelta(days=days_ago + 30))
           .next_update(now - datetime.timedelta(days=days_ago)).sign(key, hashes.SHA256()))
    return crl.public_bytes(serialization.Encoding.PEM)


def test_missing_crl(make_proxy, test_ca, trusted_tmp) -> None:
    certdir = _certdir(trusted_tmp, test_ca, None)
    data = make_proxy("rfc").read_bytes()
    assert load_and_verify(data, certdir=str(certdir), vomsdir=None).dn.endswith("Demo User")
    with pytest.raises(AuthorizationError, match="no valid CRL"):
        load_and_verify(data, certdir=str(certdir), vomsdir=None,
                        options=VerifyOptions(crl_policy="require"))


def test_expired_crl(make_proxy, test_ca, trusted_tmp) -> None:
    certdir = _certdir(trusted_tmp, test_ca, _crl(test_ca, 2))
    with pytest.raises(AuthorizationError, match="CRL of CA .* expired at"):
        load_and_verify(make_proxy("rfc").read_bytes(), certdir=str(certdir), vomsdir=None)


def test_revoked_with_require(make_proxy, test_ca) -> None:
    with pytest.raises(AuthorizationError, match="revoked"):
        load_and_verify(make_proxy("revoked-rfc").read_bytes(), certdir=str(test_ca.certdir),
                        vomsdir=None, options=VerifyOptions(crl_policy="require"))
    cred = load_and_verify(make_proxy("rfc").read_bytes(), certdir=str(test_ca.certdir),
                           vomsdir=None, options=VerifyOptions(crl_policy="require"))
    assert cred.eec_serial == x509.load_pem_x509_certificate(
        test_ca.user_cert.read_bytes()).serial_number


def test_namespaces(make_proxy, test_ca, trusted_tmp) -> None:
    data = make_proxy("rfc").read_bytes()
    ns = VerifyOptions(enforce_namespaces=True)
    assert load_and_verify(data, certdir=str(test_ca.certdir), vomsdir=None, options=ns).dn
    certdir = _certdir(trusted_tmp, test_ca, None)
    with pytest.raises(AuthorizationError, match="namespace"):
        load_and_verify(data, certdir=str(certdir), vomsdir=None, options=ns)
    (certdir / f"{test_ca.hash}.namespaces").write_text(
        'TO Issuer "/DC=org/DC=example/CN=glexec-py Test CA" \\\n'
        '  PERMIT Subject "/DC=org/DC=other/.*"\n')
    with pytest.raises(AuthorizationError, match="does not permit"):
        load_and_verify(data, certdir=str(certdir), vomsdir=None, options=ns)
