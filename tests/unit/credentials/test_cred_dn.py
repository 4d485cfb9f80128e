"""DN rendering and the canonical DN key: byte-compatibility with OpenSSL, refusals, aliases."""

from __future__ import annotations

import datetime
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from fixtures.prereq import require_program

from glexec_py.credentials.dn import (
    SHORT_NAMES,
    AmbiguousNameError,
    dn_key,
    render_name,
    split_dn,
)

A = x509.NameAttribute
T = _ASN1Type
DC = NameOID.DOMAIN_COMPONENT
CN = NameOID.COMMON_NAME
O = NameOID.ORGANIZATION_NAME  # noqa: E741
OU = NameOID.ORGANIZATIONAL_UNIT_NAME
EMAIL = NameOID.EMAIL_ADDRESS
UID = NameOID.USER_ID


def rdn(*attrs: x509.NameAttribute) -> x509.RelativeDistinguishedName:
    return x509.RelativeDistinguishedName(attrs)


def name(*parts) -> x509.Name:
    return x509.Name([p if isinstance(p, x509.RelativeDistinguishedName) else rdn(p)
                      for p in parts])


# Names OpenSSL must print exactly as render_name does (the grid's own shapes and the tricky ones).
OPENSSL_NAMES = [
    name(A(DC, "org"), A(DC, "example"), A(O, "glexec-py demo"), A(CN, "Demo User")),
    name(A(DC, "ch"), A(DC, "cern"), A(OU, "Users"), A(CN, "bbockelm"), A(CN, "659869"),
         A(CN, "Brian Paul Bockelman")),
    name(A(NameOID.COUNTRY_NAME, "NL"), A(O, "NIKHEF"), A(CN, "Jane Doe"),
         A(EMAIL, "jane@nikhef.nl")),
    name(A(DC, "org"), A(CN, "host/foo.example.org")),
    name(A(DC, "org"), A(CN, "alice/CN=root")),
    name(A(DC, "org"), A(CN, "alice"), A(CN, "root")),
    name(A(DC, "org"), rdn(A(CN, "a"), A(UID, "b"))),
    name(A(DC, "org"), A(CN, "a"), A(UID, "b")),
    name(A(O, "AT+T, Inc."), A(CN, "x=y,z")),
    name(A(O, "Ünïcødé"), A(CN, "日本語")),
    name(A(O, "Doe, John"), A(CN, "  spaced  out ")),
    name(A(CN, "Al", T.BMPString), A(O, "é", T.BMPString)),
    name(A(CN, "Al", T.UniversalString)),
    name(A(CN, "plain", T.PrintableString), A(CN, "ia5", T.IA5String),
         A(CN, "12", T.NumericString), A(CN, "t61", T.T61String)),
    name(A(UID, "jdoe"), A(NameOID.SERIAL_NUMBER, "1234"), A(NameOID.GIVEN_NAME, "J"),
         A(NameOID.SURNAME, "D"), A(NameOID.PSEUDONYM, "p"), A(NameOID.TITLE, "t"),
         A(NameOID.STREET_ADDRESS, "s"), A(NameOID.LOCALITY_NAME, "l"),
         A(NameOID.STATE_OR_PROVINCE_NAME, "st"), A(NameOID.POSTAL_CODE, "1"),
         A(NameOID.DN_QUALIFIER, "q"), A(NameOID.BUSINESS_CATEGORY, "b"),
         A(NameOID.ORGANIZATION_IDENTIFIER, "oi")),
    name(A(x509.ObjectIdentifier("1.2.3.4.5"), "private"), A(CN, "x")),
    name(A(CN, "trailing+plus/"), A(CN, "=")),
    name(A(CN, "~tilde`quote'\"<>;#%")),
    name(),
]
OPENSSL_NAMES.append(x509.Name([rdn(*(A(x509.ObjectIdentifier(oid),
                                        "NL" if short in ("C", "jurisdictionC") else "v")
                                      for oid, short in SHORT_NAMES.items()))]))


def openssl_subject(subject: x509.Name, key: ec.EllipticCurvePrivateKey) -> str:
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject)
            .issuer_name(x509.Name([rdn(A(CN, "issuer"))]))
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "compat"],
                         input=cert.public_bytes(Encoding.PEM), capture_output=True, check=True)
    line = out.stdout.rstrip(b"\n")
    assert line.startswith(b"subject=")
    return line[len(b"subject="):].decode("ascii")


def test_render_matches_openssl_compat() -> None:
    require_program("openssl")
    key = ec.generate_private_key(ec.SECP256R1())
    for subject in OPENSSL_NAMES:
        assert render_name(subject) == openssl_subject(subject, key), subject


def test_render_examples() -> None:
    assert render_name(OPENSSL_NAMES[0]) == "/DC=org/DC=example/O=glexec-py demo/CN=Demo User"
    assert render_name(OPENSSL_NAMES[4]) == "/DC=org/CN=alice\\/CN=root"
    assert render_name(OPENSSL_NAMES[5]) == "/DC=org/CN=alice/CN=root"
    assert render_name(OPENSSL_NAMES[6]) == "/DC=org/CN=a+UID=b"
    assert render_name(OPENSSL_NAMES[7]) == "/DC=org/CN=a/UID=b"
    assert render_name(OPENSSL_NAMES[9]) == "/O=\\xC3\\x9Cn\\xC3\\xAFc\\xC3\\xB8d\\xC3\\xA9" \
        "/CN=\\xE6\\x97\\xA5\\xE6\\x9C\\xAC\\xE8\\xAA\\x9E"
    assert render_name(OPENSSL_NAMES[11]) == "/CN=\\x00A\\x00l/O=\\x00\\xE9"
    # DER bytes are accepted as well as Name objects.
    assert render_name(OPENSSL_NAMES[0].public_bytes()) == render_name(OPENSSL_NAMES[0])


@pytest.mark.parametrize("attribute", [
    A(CN, "back\\slash"),
    A(CN, "new\nline"),
    A(CN, "nul\x00"),
    A(CN, "del\x7f"),
    A(CN, "中", T.BMPString),
    A(CN, "𝄞", T.UniversalString),
    A(CN, "é", T.T61String),
])
def test_render_refuses_ambiguous_values(attribute: x509.NameAttribute) -> None:
    with pytest.raises(AmbiguousNameError):
        render_name(name(A(DC, "org"), attribute))


def test_render_refuses_malformed_der() -> None:
    for blob in (b"", b"\x30", b"\x30\x05\x31\x03\x30\x01\x06", b"\x31\x00", b"\x30\x00\x00",
                 b"\x30\x02\x31\x00", b"\x30\x84\x00\x00\x00\x00"):
        with pytest.raises(ValueError):
            render_name(blob)


def test_render_refuses_invalid_utf8() -> None:
    # SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, UTF8String 0xff } } }
    blob = bytes.fromhex("300c310a300806035504030c01ff")
    with pytest.raises(AmbiguousNameError):
        render_name(blob)


# ---- dn_key --------------------------------------------------------------------------------

SAME = [
    ("/DC=org/CN=Jane/emailAddress=jane@x.org", "/DC=org/CN=Jane/E=jane@x.org"),
    ("/DC=org/CN=Jane/emailAddress=jane@x.org", "/DC=org/CN=Jane/Email=JANE@X.ORG"),
    ("/DC=org/CN=Jane/emailAddress=jane@x.org", "/dc=ORG/cn=jane/1.2.840.113549.1.9.1=jane@x.org"),
    ("/DC=org/UID=jdoe", "/DC=org/USERID=jdoe"),
    ("/DC=org/UID=jdoe", "/domainComponent=org/userId=JDOE"),
    ("/O=Grid/CN=Jane  Doe", "/O=Grid/CN= jane doe "),
    ("/CN=host/foo.example.org", "/CN=host\\/foo.example.org"),
    ("/CN=a+UID=b", "/UID=b+CN=a"),
    ("/CN=\\xC3\\xA9t\\xC3\\xA9", "/CN=été"),
    ("/CN=\\xC3\\x89T\\xC3\\x89", "/CN=été"),
    ("/CN=\\x41", "/CN=a"),
    ("/O=AT\\+T", "/O=AT+T"),  # '+T' is not 'attr=': the plus is part of the value
]
DIFFERENT = [
    ("/DC=org/CN=alice/CN=root", "/DC=org/CN=alice\\/CN=root"),
    ("/DC=org/CN=a+UID=b", "/DC=org/CN=a/UID=b"),
    ("/DC=org/CN=alice", "/DC=org/CN=alice/CN=proxy"),
    ("/DC=org/CN=alice/CN=123", "/DC=org/CN=alice"),
    ("/DC=org/CN=alice", "/DC=com/CN=alice"),
    ("/DC=org/CN=a\\+UID=b", "/DC=org/CN=a+UID=b"),
    ("/CN=\\x00A\\x00l", "/CN=Al"),
    ("/O=x/CN=y", "/O=x,CN=y"),
    ("/CN=a\\\\", "/CN=a"),
]


@pytest.mark.parametrize(("left", "right"), SAME)
def test_dn_key_equal(left: str, right: str) -> None:
    assert dn_key(left) == dn_key(right)


@pytest.mark.parametrize(("left", "right"), DIFFERENT)
def test_dn_key_different(left: str, right: str) -> None:
    assert dn_key(left) != dn_key(right)


@pytest.mark.parametrize("bad", ["", "CN=x,O=y", "/", "/=x", "//CN=x", "/CN", "/ CN=x",
                                 "/1.=x", "/1..2=x"])
def test_dn_key_refuses_non_slash_dns(bad: str) -> None:
    with pytest.raises(ValueError):
        dn_key(bad)


def test_dn_key_structure_of_rendered_names() -> None:
    # Every rendered name parses back into the same RDN structure (no split, no merge).
    for subject in OPENSSL_NAMES[:-1]:
        rendered = render_name(subject)
        if not subject.rdns:
            continue
        parsed = split_dn(rendered)
        assert [len(r) for r in parsed] == [len(r) for r in subject.rdns], rendered


def test_dn_key_of_key_is_stable() -> None:
    for left, _ in SAME + DIFFERENT:
        key = dn_key(left)
        assert dn_key(key) == key
