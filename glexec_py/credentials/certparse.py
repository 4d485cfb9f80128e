"""Strict DER reader for the X.509 certificates and CRLs the fast (cryptography-free) path handles.

Runs as: root (on certificates from the proxy file, the CA directory and the vomsdir). Trusts:
nothing (every byte is hostile). Hot path: no (imported only on a verification, never on a
cached call); imports nothing beyond the credential layer and builtins.

``import cryptography.x509`` costs ~40 ms, more than the rest of a first call. Grid chains are
almost always plain RSA certificates with a handful of well-known extensions, so this module
reads exactly that subset, *at least as strictly as cryptography does*, and raises
:class:`~glexec_py.credentials.der.NotOnFastPath` for anything else: a v1 certificate, an
unknown or non-RSA algorithm, an extension type it does not validate as cryptography would, a
string type cryptography might refuse, a leap second. The caller then verifies the whole proxy
again with cryptography, so a construct read here either gets the verdict cryptography would
give or no fast verdict at all; nothing is ever guessed.
"""

from __future__ import annotations

from glexec_py.credentials import der
from glexec_py.credentials.der import NotOnFastPath

OID_RSA = "1.2.840.113549.1.1.1"
# sha224/sha256/sha384/sha512 WithRSAEncryption: the PKCS#1 v1.5 certificate and CRL signatures
# this path checks. Not sha1WithRSAEncryption: cryptography 50's verify_directly_issued_by
# refuses it ("Unsupported signature algorithm") and its CRL check then counts the CRL as absent;
# such chains go to cryptography to get exactly that verdict. (AC signatures, which
# cryptography checks with key.verify, do accept SHA-1: see voms.py.)
RSA_SIGNATURES = {
    "1.2.840.113549.1.1.14": "sha224",
    "1.2.840.113549.1.1.11": "sha256", "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
}
_NULL = b"\x05\x00"
# Extensions cryptography does not parse (it keeps their bytes): ProxyCertInfo (RFC 3820 and the
# Globus draft), the VOMS AC extension, Netscape's certificate extensions.
_OPAQUE_EXTENSIONS = frozenset({"1.3.6.1.5.5.7.1.14", "1.3.6.1.4.1.3536.1.222",
                                "1.3.6.1.4.1.8005.100.100.5"})
_NETSCAPE_PREFIX = "2.16.840.1.113730.1."
_PRINTABLE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                       b" '()+,-./:=?")
_CPS_QUALIFIER = "1.3.6.1.5.5.7.2.1"
MAX_RSA_BITS = 16384  # OpenSSL's OPENSSL_RSA_MAX_MODULUS_BITS


class ParsedCert:
    """The facts of one certificate the verification needs, read from its DER.

    ``rsa_key`` is ``(n, e)`` when the subject key is an RSA key OpenSSL would verify with, else
    None; ``extensions`` is ``[(oid, critical, value_bytes)]`` in encoding order.
    """

    __slots__ = ("der", "tbs", "signature_alg", "signature_oid", "signature", "serial",
                 "issuer_der", "subject_der", "not_before", "not_after", "rsa_key",
                 "extensions", "is_ca", "digital_signature")
    is_fast = True


class ParsedCrl:
    """A CRL's facts: issuer, nextUpdate (None when absent), revoked serials, signed bytes."""

    __slots__ = ("tbs", "signature_alg", "signature_oid", "signature", "issuer_der",
                 "next_update", "revoked")


def parse_certificate(blob: bytes) -> ParsedCert:
    """Read one DER certificate; NotOnFastPath for anything outside the subset (see module)."""
    return _within_subset(_parse_certificate, blob, "certificate")


def parse_crl(blob: bytes) -> ParsedCrl:
    """Read one DER CRL; NotOnFastPath for anything outside the subset."""
    return _within_subset(_parse_crl, blob, "CRL")


def _within_subset(parse: object, blob: bytes, what: str) -> object:
    """``parse(blob)``, with any reading error turned into a hand-over to cryptography."""
    try:
        return parse(blob)
    except NotOnFastPath:
        raise
    except (der.DerError, ValueError, IndexError, UnicodeError) as exc:
        raise NotOnFastPath(f"{what}: {exc}") from None


def pem_blocks(blob: bytes, label: bytes) -> list[bytes]:
    """DER of every ``label`` block of a PEM file that holds nothing but such blocks."""
    import binascii

    out = []
    pos = 0
    while True:
        begin = blob.find(b"-----BEGIN ", pos)
        if begin < 0:
            break
        header = b"-----BEGIN " + label + b"-----"
        footer = b"-----END " + label + b"-----"
        if not blob.startswith(header, begin):
            raise NotOnFastPath("PEM block of another type")
        end = blob.find(footer, begin)
        if end < 0:
            raise NotOnFastPath("PEM block without its END line")
        lines = blob[begin + len(header):end].replace(b"\r\n", b"\n").split(b"\n")
        try:
            data = binascii.a2b_base64(b"".join(lines), strict_mode=True)
        except (binascii.Error, ValueError):
            raise NotOnFastPath("PEM body is not plain base64") from None
        out.append(data)
        pos = end + len(footer)
    if not out:
        raise NotOnFastPath("no PEM block")
    return out


def read_certificates_file(blob: bytes) -> list[ParsedCert]:
    """A CA or VOMS certificate file (PEM with certificates only, or one DER certificate)."""
    if b"-----BEGIN" in blob:
        return [parse_certificate(d) for d in pem_blocks(blob, b"CERTIFICATE")]
    return [parse_certificate(blob)]


def read_crl_file(blob: bytes) -> ParsedCrl:
    """A CRL file (PEM with exactly one ``X509 CRL`` block, or DER)."""
    if b"-----BEGIN" in blob:
        blocks = pem_blocks(blob, b"X509 CRL")
        if len(blocks) != 1:
            raise NotOnFastPath("CRL file with several CRLs")
        blob = blocks[0]
    return parse_crl(blob)


def _parse_certificate(blob: bytes) -> ParsedCert:
    top = der.read_single(blob, der.TAG_SEQUENCE, "certificate").children()
    if len(top) != 3:
        raise NotOnFastPath("certificate is not tbs, algorithm, signature")
    tbs_item, alg_item, sig_item = top
    fields = tbs_item.expect(der.TAG_SEQUENCE, "tbsCertificate").children()
    if len(fields) != 8 or fields[0].tag != 0xA0:
        raise NotOnFastPath("not a v3 certificate of the usual shape")
    (version_item,) = fields[0].children()
    if version_item.expect(der.TAG_INTEGER, "version").content != b"\x02":
        raise NotOnFastPath("certificate version is not v3")
    cert = ParsedCert()
    cert.der = blob
    cert.tbs = tbs_item.encoded
    cert.serial = read_integer(fields[1])
    if cert.serial <= 0 or len(fields[1].content) > 21:
        raise NotOnFastPath("serial number not positive or longer than 20 octets")
    inner_alg = fields[2]
    cert.signature_oid = read_rsa_signature_alg(inner_alg)
    if alg_item.encoded != inner_alg.encoded:
        raise NotOnFastPath("inner and outer signature algorithms differ")
    cert.signature_alg = alg_item.encoded
    cert.signature = read_signature_bits(sig_item)
    cert.issuer_der = check_name(fields[3])
    validity = fields[4].expect(der.TAG_SEQUENCE, "validity").children()
    if len(validity) != 2:
        raise NotOnFastPath("validity is not two times")
    cert.not_before = read_time(validity[0])
    cert.not_after = read_time(validity[1])
    cert.subject_der = check_name(fields[5])
    cert.rsa_key = _read_spki(fields[6])
    if fields[7].tag != 0xA3:
        raise NotOnFastPath("unique identifiers or no extensions")
    (exts_item,) = fields[7].children()
    cert.is_ca = False
    cert.digital_signature = None
    cert.extensions = _read_extensions(exts_item, cert)
    return cert


def _parse_crl(blob: bytes) -> ParsedCrl:
    top = der.read_single(blob, der.TAG_SEQUENCE, "CRL").children()
    if len(top) != 3:
        raise NotOnFastPath("CRL is not tbs, algorithm, signature")
    tbs_item, alg_item, sig_item = top
    fields = tbs_item.expect(der.TAG_SEQUENCE, "tbsCertList").children()
    crl = ParsedCrl()
    pos = 0
    if fields and fields[0].tag == der.TAG_INTEGER:
        if fields[0].content != b"\x01":
            raise NotOnFastPath("CRL version is not v2")
        pos = 1
    crl.tbs = tbs_item.encoded
    crl.signature_oid = read_rsa_signature_alg(fields[pos])
    if alg_item.encoded != fields[pos].encoded:
        raise NotOnFastPath("inner and outer CRL signature algorithms differ")
    crl.signature_alg = alg_item.encoded
    crl.signature = read_signature_bits(sig_item)
    crl.issuer_der = check_name(fields[pos + 1])
    read_time(fields[pos + 2])  # thisUpdate: must be readable, as for cryptography
    rest = fields[pos + 3:]
    crl.next_update = None
    if rest and rest[0].tag in (der.TAG_UTCTIME, der.TAG_GENERALIZEDTIME):
        crl.next_update = read_time(rest[0])
        rest = rest[1:]
    revoked: set[int] = set()
    if rest and rest[0].tag == der.TAG_SEQUENCE:
        entries = rest[0].children()
        if not entries:
            raise NotOnFastPath("empty revokedCertificates")
        for entry in entries:
            parts = entry.expect(der.TAG_SEQUENCE, "revoked entry").children()
            if len(parts) not in (2, 3):
                raise NotOnFastPath("revoked entry of an unusual shape")
            revoked.add(read_integer(parts[0]))
            read_time(parts[1])
            if len(parts) == 3:
                _check_extension_list(parts[2])
        rest = rest[1:]
    if rest and rest[0].tag == 0xA0:
        (exts,) = rest[0].children()
        _check_extension_list(exts)
        rest = rest[1:]
    if rest:
        raise NotOnFastPath("unexpected CRL field")
    crl.revoked = frozenset(revoked)
    return crl


def read_integer(item: der.Item) -> int:
    """A minimally encoded INTEGER (DER), as a signed int."""
    content = item.expect(der.TAG_INTEGER, "integer").content
    if not content:
        raise NotOnFastPath("empty integer")
    if len(content) > 1 and ((content[0] == 0 and content[1] < 0x80)
                             or (content[0] == 0xFF and content[1] >= 0x80)):
        raise NotOnFastPath("non-minimal integer")
    return int.from_bytes(content, "big", signed=True)


def read_rsa_signature_alg(item: der.Item) -> str:
    """The OID of a PKCS#1 v1.5 RSA signature AlgorithmIdentifier (params NULL or absent)."""
    parts = item.expect(der.TAG_SEQUENCE, "signature algorithm").children()
    oid = der.decode_oid(parts[0].expect(der.TAG_OID, "algorithm").content)
    if oid not in RSA_SIGNATURES:
        raise NotOnFastPath(f"signature algorithm {oid}")
    if len(parts) > 2 or (len(parts) == 2 and parts[1].encoded != _NULL):
        raise NotOnFastPath("signature algorithm parameters are not NULL")
    return oid


def read_signature_bits(item: der.Item) -> bytes:
    content = item.expect(der.TAG_BIT_STRING, "signature").content
    if not content or content[0] != 0:
        raise NotOnFastPath("signature bit string with unused bits")
    return content[1:]


def check_name(item: der.Item) -> bytes:
    """A Name of single-valued RDNs with string values cryptography surely reads; its DER."""
    for rdn in item.expect(der.TAG_SEQUENCE, "name").children():
        atvs = rdn.expect(der.TAG_SET, "rdn").children()
        if len(atvs) != 1:
            raise NotOnFastPath("multi-valued or empty RDN")
        parts = atvs[0].expect(der.TAG_SEQUENCE, "attribute").children()
        if len(parts) != 2:
            raise NotOnFastPath("attribute is not a type and a value")
        der.decode_oid(parts[0].expect(der.TAG_OID, "attribute type").content)
        _check_string(parts[1])
    return item.encoded


def _check_string(value: der.Item) -> None:
    raw = value.content
    if value.tag == der.TAG_UTF8STRING:
        raw.decode("utf-8")
    elif value.tag == der.TAG_PRINTABLESTRING:
        if not set(raw) <= _PRINTABLE:
            raise NotOnFastPath("PrintableString with characters outside its set")
    elif value.tag == der.TAG_IA5STRING:
        raw.decode("ascii")
    elif value.tag == 0x1E:  # BMPString: whole UTF-16 code units, no lone surrogates
        if len(raw) % 2:
            raise NotOnFastPath("BMPString of odd length")
        raw.decode("utf-16-be")
    else:
        raise NotOnFastPath(f"name string type 0x{value.tag:02x}")


def read_time(item: der.Item) -> float:
    """UTCTime ``YYMMDDHHMMSSZ`` or GeneralizedTime ``YYYYMMDDHHMMSSZ`` naming a real instant."""
    text = item.content
    if item.tag == der.TAG_UTCTIME and len(text) == 13:
        year = int(text[:2])
        year += 2000 if year < 50 else 1900
        rest = text[2:12]
    elif item.tag == der.TAG_GENERALIZEDTIME and len(text) == 15:
        year = int(text[:4])
        rest = text[4:14]
    else:
        raise NotOnFastPath("time of an unusual form")
    if text[-1:] != b"Z" or not rest.isdigit() or not text[:-1].isdigit():
        raise NotOnFastPath("time of an unusual form")
    month, day = int(rest[0:2]), int(rest[2:4])
    hour, minute, second = int(rest[4:6]), int(rest[6:8]), int(rest[8:10])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if not (1 <= month <= 12 and 1 <= day <= days[month - 1] and hour < 24 and minute < 60
            and second < 60):
        raise NotOnFastPath("time that names no instant")
    return float(der.days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60
                 + second)


def _read_spki(item: der.Item) -> tuple[int, int] | None:
    """(n, e) of an RSA key OpenSSL verifies with; None for any other or unusable key."""
    alg, bits = item.expect(der.TAG_SEQUENCE, "subjectPublicKeyInfo").children()
    parts = alg.expect(der.TAG_SEQUENCE, "key algorithm").children()
    oid = der.decode_oid(parts[0].expect(der.TAG_OID, "key algorithm").content)
    content = bits.expect(der.TAG_BIT_STRING, "subjectPublicKey").content
    if oid != OID_RSA or len(parts) > 2 or (len(parts) == 2 and parts[1].encoded != _NULL):
        return None
    if not content or content[0] != 0:
        return None
    try:
        n_item, e_item = der.read_single(content[1:], der.TAG_SEQUENCE, "RSA key").children()
        n, e = read_integer(n_item), read_integer(e_item)
    except (der.DerError, NotOnFastPath, ValueError):
        return None
    return (n, e) if usable_rsa_key(n, e) else None


def usable_rsa_key(n: int, e: int) -> bool:
    """The keys whose verification outcome OpenSSL decides by the arithmetic alone."""
    bits = n.bit_length()
    if not (512 <= bits <= MAX_RSA_BITS) or not n & 1 or not e & 1 or not 3 <= e < n:
        return False
    return bits <= 3072 or e.bit_length() <= 64  # OpenSSL's exponent limit for large moduli


def _read_extensions(item: der.Item, cert: ParsedCert) -> list[tuple[str, bool, bytes]]:
    out = _check_extension_list(item)
    for oid, _critical, value in out:
        checker = _EXTENSION_CHECKS.get(oid)
        if checker is not None:
            checker(der.read_single(value, der.read_item(value).tag, oid), cert)
        elif not (oid in _OPAQUE_EXTENSIONS or oid.startswith(_NETSCAPE_PREFIX)):
            raise NotOnFastPath(f"extension {oid} not read on the fast path")
    return out


def _check_extension_list(item: der.Item) -> list[tuple[str, bool, bytes]]:
    out = []
    seen = set()
    entries = item.expect(der.TAG_SEQUENCE, "extensions").children()
    if not entries:
        raise NotOnFastPath("empty extension list")
    for ext in entries:
        parts = ext.expect(der.TAG_SEQUENCE, "extension").children()
        oid = der.decode_oid(parts[0].expect(der.TAG_OID, "extension id").content)
        critical = False
        if len(parts) == 3:
            if parts[1].expect(der.TAG_BOOLEAN, "critical").content != b"\xff":
                raise NotOnFastPath("critical flag not DER TRUE")
            critical = True
        elif len(parts) != 2:
            raise NotOnFastPath("extension of an unusual shape")
        if oid in seen:
            raise NotOnFastPath(f"duplicate extension {oid}")
        seen.add(oid)
        out.append((oid, critical, parts[-1].expect(der.TAG_OCTET_STRING, "value").content))
    return out


def _basic_constraints(item: der.Item, cert: ParsedCert) -> None:
    parts = item.expect(der.TAG_SEQUENCE, "basicConstraints").children()
    ca = False
    if parts and parts[0].tag == der.TAG_BOOLEAN:
        if parts[0].content != b"\xff":
            raise NotOnFastPath("cA encoded FALSE or not DER")
        ca = True
        parts = parts[1:]
    if parts and (len(parts) != 1 or read_integer(parts[0]) < 0 or not ca):
        raise NotOnFastPath("unusual basicConstraints")
    cert.is_ca = ca


def _key_usage(item: der.Item, cert: ParsedCert) -> None:
    raw = item.expect(der.TAG_BIT_STRING, "keyUsage").content
    if not 2 <= len(raw) <= 3 or raw[0] > 7 or raw[-1] & ((1 << raw[0]) - 1):
        raise NotOnFastPath("keyUsage bit string of an unusual form")
    first = raw[1]
    second = raw[2] if len(raw) == 3 else 0
    if (first & 0x01 or second & 0x80) and not first & 0x08:
        raise NotOnFastPath("encipherOnly/decipherOnly without keyAgreement")
    cert.digital_signature = bool(first & 0x80)


def _octet_string(item: der.Item, cert: ParsedCert) -> None:
    item.expect(der.TAG_OCTET_STRING, "subjectKeyIdentifier")


def _authority_key_id(item: der.Item, cert: ParsedCert) -> None:
    parts = item.expect(der.TAG_SEQUENCE, "authorityKeyIdentifier").children()
    if len(parts) != 1 or parts[0].tag != 0x80:
        raise NotOnFastPath("authorityKeyIdentifier other than a key id")


def _extended_key_usage(item: der.Item, cert: ParsedCert) -> None:
    oids = item.expect(der.TAG_SEQUENCE, "extendedKeyUsage").children()
    if not oids:
        raise NotOnFastPath("empty extendedKeyUsage")
    for oid in oids:
        der.decode_oid(oid.expect(der.TAG_OID, "key purpose").content)


def _general_names(item: der.Item) -> None:
    names = item.children()
    if not names:
        raise NotOnFastPath("empty GeneralNames")
    for name in names:
        if name.tag in (0x81, 0x82, 0x86):  # rfc822Name, dNSName, URI: IA5String
            name.content.decode("ascii")
        elif name.tag == 0x87:
            if len(name.content) not in (4, 16):
                raise NotOnFastPath("iPAddress of an unusual length")
        elif name.tag == 0xA4:
            (inner,) = name.children()
            check_name(inner)
        else:
            raise NotOnFastPath(f"GeneralName tag 0x{name.tag:02x}")


def _alt_names(item: der.Item, cert: ParsedCert) -> None:
    _general_names(item.expect(der.TAG_SEQUENCE, "alternative names"))


def _crl_distribution_points(item: der.Item, cert: ParsedCert) -> None:
    points = item.expect(der.TAG_SEQUENCE, "cRLDistributionPoints").children()
    if not points:
        raise NotOnFastPath("empty cRLDistributionPoints")
    for point in points:
        (name,) = point.expect(der.TAG_SEQUENCE, "DistributionPoint").children()
        (full,) = name.expect(0xA0, "distributionPoint").children()
        _general_names(full.expect(0xA0, "fullName"))


def _certificate_policies(item: der.Item, cert: ParsedCert) -> None:
    policies = item.expect(der.TAG_SEQUENCE, "certificatePolicies").children()
    if not policies:
        raise NotOnFastPath("empty certificatePolicies")
    for policy in policies:
        parts = policy.expect(der.TAG_SEQUENCE, "PolicyInformation").children()
        der.decode_oid(parts[0].expect(der.TAG_OID, "policy").content)
        if len(parts) == 1:
            continue
        if len(parts) != 2:
            raise NotOnFastPath("PolicyInformation of an unusual shape")
        qualifiers = parts[1].expect(der.TAG_SEQUENCE, "qualifiers").children()
        if not qualifiers:
            raise NotOnFastPath("empty policy qualifiers")
        for qualifier in qualifiers:
            oid_item, value = qualifier.expect(der.TAG_SEQUENCE, "qualifier").children()
            if der.decode_oid(oid_item.content) != _CPS_QUALIFIER:
                raise NotOnFastPath("policy qualifier other than a CPS URI")
            value.expect(der.TAG_IA5STRING, "CPS URI").content.decode("ascii")


def _authority_info_access(item: der.Item, cert: ParsedCert) -> None:
    entries = item.expect(der.TAG_SEQUENCE, "authorityInfoAccess").children()
    if not entries:
        raise NotOnFastPath("empty authorityInfoAccess")
    for entry in entries:
        method, location = entry.expect(der.TAG_SEQUENCE, "AccessDescription").children()
        der.decode_oid(method.expect(der.TAG_OID, "accessMethod").content)
        location.expect(0x86, "accessLocation URI").content.decode("ascii")


_EXTENSION_CHECKS = {
    "2.5.29.19": _basic_constraints, "2.5.29.15": _key_usage, "2.5.29.14": _octet_string,
    "2.5.29.35": _authority_key_id, "2.5.29.37": _extended_key_usage,
    "2.5.29.17": _alt_names, "2.5.29.18": _alt_names, "2.5.29.31": _crl_distribution_points,
    "2.5.29.32": _certificate_policies, "1.3.6.1.5.5.7.1.1": _authority_info_access,
}
