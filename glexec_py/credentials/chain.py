"""Proxy chain verification: from the leaf proxy through the EEC to a trusted CA, with CRLs.

Runs as: root. Trusts: the CA directory (via :class:`TrustDir`); nothing in the proxy file.
Hot path: yes as a module (a verification, i.e. a cache miss, imports certparse/pkcs1 and, only
when they hand over, ``cryptography``).

``cryptography.x509.verification`` cannot build proxy chains (it requires ``cA=TRUE`` on every
issuer, which RFC 3820 forbids for proxies), so the path is checked here link by link, with the
rules of RFC 3820, the Globus draft and legacy proxies, and LCMAPS verify-proxy:

* leaf first: every certificate is classified as a proxy (``rfc3820*``, ``draft*``,
  ``legacy*``) or not; the first non-proxy is the EEC, which must not be a CA; everything above it
  must be a CA (from the file or the CA directory) up to a trust anchor of the CA directory;
* each proxy: subject = issuer subject + exactly one single-valued ``CN`` (``CN=proxy`` or
  ``CN=limited proxy`` for legacy), not a CA, no alternative names, ProxyCertInfo critical for
  RFC 3820, a known policy language, its issuer allowed to sign (digitalSignature), the path
  length of every proxy above it respected;
* every link: name match and signature (RSA PKCS#1 v1.5 with SHA-2 by certparse/pkcs1 without
  ``cryptography``; SHA-1, RSA-PSS, ECDSA, Ed25519 and anything unusual through it); every
  certificate of the presented chain within its validity (201 otherwise, as gLExec's tests want);
  unknown critical extensions refused; every CA-issued certificate checked against its CA's CRL.

Errors: ClientError (201) for unusable or out-of-date input, AuthorizationError (203) for a
chain that does not prove the identity. Messages are one line and name the certificate.

Two readers, one logic: a :class:`CertInfo` wraps a certparse.ParsedCert (fast path) or a
cryptography Certificate; the checks read only its slots. On the fast path every decision that
cryptography's own code would word (a refused signature, a CRL or anchor that does not verify)
raises der.NotOnFastPath, and ``load_and_verify`` verifies the proxy again with cryptography.
"""

from __future__ import annotations

from glexec_py.credentials import der
from glexec_py.credentials.dn import AmbiguousNameError, render_name_der
from glexec_py.credentials.trustdir import canon_rdns
from glexec_py.errors import AuthorizationError, ClientError

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from glexec_py.credentials import VerifyOptions
    from glexec_py.credentials.trustdir import TrustDir

OID_PCI_RFC = "1.3.6.1.5.5.7.1.14"
OID_PCI_DRAFT = "1.3.6.1.4.1.3536.1.222"
POLICY_INHERIT_ALL = "1.3.6.1.5.5.7.21.1"
POLICY_INDEPENDENT = "1.3.6.1.5.5.7.21.2"
POLICY_LIMITED = "1.3.6.1.4.1.3536.1.1.1.9"
OID_CN = "2.5.4.3"
MAX_CA_DEPTH = 8

# Critical extensions a grid chain may carry; any other critical one fails the chain, as in
# OpenSSL and verify-proxy (a critical extension one does not understand must not be ignored).
_KNOWN_CRITICAL = frozenset({
    "2.5.29.19", "2.5.29.15", "2.5.29.37", "2.5.29.17", "2.5.29.32", "2.5.29.30", "2.5.29.36",
    "2.5.29.54", "2.5.29.14", "2.5.29.35", "2.5.29.31", "1.3.6.1.5.5.7.1.1",
    OID_PCI_RFC, OID_PCI_DRAFT,
})
_ALT_NAMES = ("2.5.29.17", "2.5.29.18")


class CertInfo:
    """One certificate of the path with the facts the checks and the result need."""

    __slots__ = ("cert", "subject_der", "issuer_der", "subject_rdns", "issuer_rdns", "kind",
                 "pathlen", "is_ca", "not_before", "not_after", "dn", "from_file", "fast",
                 "serial", "exts", "digital_signature")

    def __init__(self, cert: object, from_file: bool) -> None:
        # ``cert`` is a certparse.ParsedCert (the cryptography-free path) or a cryptography
        # Certificate; everything below the constructor and _classify reads only these slots.
        self.cert = cert
        self.from_file = from_file
        self.fast = getattr(cert, "is_fast", False)
        if self.fast:
            self.issuer_der, self.subject_der = cert.issuer_der, cert.subject_der
            self.not_before, self.not_after = cert.not_before, cert.not_after
            self.serial = cert.serial
        else:
            self.issuer_der, self.subject_der = der.tbs_names(cert.tbs_certificate_bytes)
            self.not_before = cert.not_valid_before_utc.timestamp()
            self.not_after = cert.not_valid_after_utc.timestamp()
            self.serial = cert.serial_number
        self.subject_rdns = canon_rdns(self.subject_der)
        self.issuer_rdns = canon_rdns(self.issuer_der)
        self.exts: list[tuple[str, bool, object]] = []  # (oid, critical, value), by _classify
        self.digital_signature: bool | None = None  # keyUsage's bit; None without keyUsage
        self.kind = ""      # proxy kind, "" for EEC/CA
        self.pathlen = None  # proxy path length constraint
        self.is_ca = False
        try:
            self.dn = render_name_der(self.subject_der)
        except AmbiguousNameError as exc:
            raise AuthorizationError(f"certificate subject cannot be named unambiguously: {exc}")


class ChainResult:
    """What :func:`verify_chain` proved: the path leaf first, the EEC and its index."""

    __slots__ = ("path", "eec_index", "leaf_key_bits", "rsa_bits_min", "signature_hashes")

    def __init__(self, path: list[CertInfo], eec_index: int) -> None:
        self.path = path
        self.eec_index = eec_index
        self.leaf_key_bits = 0
        self.rsa_bits_min: int | None = None  # smallest RSA/DSA key of EEC and proxies
        self.signature_hashes: tuple[str, ...] = ()  # EEC and proxies, leaf first

    @property
    def eec(self) -> CertInfo:
        return self.path[self.eec_index]

    @property
    def proxies(self) -> list[CertInfo]:
        """The proxies from the EEC downwards (first delegation first, leaf last)."""
        return list(reversed(self.path[:self.eec_index]))


def format_time(epoch: float) -> str:
    """``2026-11-21 10:00:00 UTC`` without importing time-zone machinery."""
    days, secs = divmod(int(epoch), 86400)
    # civil from days (inverse of der.days_from_civil)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    return (f"{year:04d}-{month:02d}-{day:02d} "
            f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d} UTC")


def load_certificates(blobs: list[bytes], fast: bool = False) -> list[CertInfo]:
    """CertInfos of DER certificates; ``fast`` reads them without cryptography (certparse),
    raising der.NotOnFastPath for any certificate outside its subset."""
    if fast:
        from glexec_py.credentials.certparse import parse_certificate as load
    else:
        from cryptography.x509 import load_der_x509_certificate as load

    out = []
    for index, blob in enumerate(blobs):
        try:
            cert = load(blob)
            info = CertInfo(cert, True)
        except (ValueError, der.DerError) as exc:
            raise ClientError(f"proxy certificate #{index} is not a valid X.509 certificate"
                              f" ({_short(exc)})")
        out.append(info)
    return out


def verify_chain(certs: list[CertInfo], trust: TrustDir, options: VerifyOptions,
                 now: float) -> ChainResult:
    """Build and check the path from ``certs[0]`` (the leaf) to a CA of ``trust``."""

    for info in certs:
        _classify(info)
    leaf = certs[0]
    pool = certs[1:]
    path = [leaf]
    # 1. proxies down from the leaf, until the first non-proxy (the EEC).
    current = leaf
    while current.kind:
        issuer = _find_issuer(current, pool)
        if issuer is None:
            raise AuthorizationError(f"proxy {current.dn}: its issuer is not in the proxy file")
        pool = [c for c in pool if c is not issuer]
        path.append(issuer)
        current = issuer
    eec_index = len(path) - 1
    eec = current
    if eec.is_ca:
        raise AuthorizationError(f"end-entity certificate {eec.dn} is a CA (CA:TRUE)")
    # A bare EEC (usercert.pem with its key, no proxy) is accepted, as verify-proxy does.
    # 2. CAs above the EEC: from the file while the CA directory has no anchor for the issuer.
    anchor = None
    current = eec
    for _depth in range(MAX_CA_DEPTH):
        anchor = _find_anchor(current, trust)
        if anchor is not None:
            break
        issuer = _find_issuer(current, pool)
        if issuer is None:
            break
        if issuer.kind:
            raise AuthorizationError(
                f"proxy {issuer.dn} issued the non-proxy certificate {current.dn}")
        if not issuer.is_ca:
            raise AuthorizationError(f"certificate {issuer.dn} issued {current.dn} but is not a CA")
        pool = [c for c in pool if c is not issuer]
        path.append(issuer)
        current = issuer
    if anchor is None:
        if eec_index > 0 and eec.issuer_rdns == eec.subject_rdns:
            raise AuthorizationError(
                f"chain does not lead to a trusted CA: {eec.dn} is self-signed")
        raise AuthorizationError(
            f"chain does not lead to a trusted CA (issuer of {current.dn} is not in the CA "
            "directory)")
    if not anchor.is_ca:
        raise AuthorizationError(f"trust anchor {anchor.dn} is not a CA certificate")
    if not anchor.not_before <= now <= anchor.not_after:
        raise AuthorizationError(f"trusted CA {anchor.dn} is not valid now (valid "
                                 f"{format_time(anchor.not_before)} to "
                                 f"{format_time(anchor.not_after)})")
    # 3. the presented path: signatures (anchor down), then validity and extensions.
    full = path + [anchor]
    # Signatures first, from the trust anchor down: a chain whose proxies the EEC's key never
    # signed fails at that first link, before any key chosen by whoever wrote the file is used
    # (an RSA key with a 3000-bit public exponent makes each check cost ~50 ms).
    for index in range(len(path) - 1, -1, -1):
        _check_signature(path[index], full[index + 1])
    for index, info in enumerate(path):
        _check_validity(info, index, eec_index, now)
        _check_critical(info)
    # 4. proxy rules, walking from the EEC down.
    _check_proxies(path, eec_index)
    # 5. CRLs for every CA-issued certificate (EEC and CAs from the file).
    for index in range(eec_index, len(path)):
        _check_crl(path[index], full[index + 1], trust, options.crl_policy, now)
    result = ChainResult(path, eec_index)
    _collect_algorithms(result)
    for info in full:  # the verdict holds only while every certificate of the path is valid
        trust.note_window(info.not_before, info.not_after)
    return result


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def _classify(info: CertInfo) -> None:
    cert = info.cert
    if info.fast:  # certparse validated every extension as cryptography's parser would
        info.exts = cert.extensions
        info.is_ca = cert.is_ca
        info.digital_signature = cert.digital_signature
    else:
        try:
            exts = cert.extensions
        except Exception as exc:
            raise AuthorizationError(f"certificate {info.dn} has malformed extensions"
                                     f" ({_short(exc)})")
        info.exts = [(ext.oid.dotted_string, ext.critical, ext.value) for ext in exts]
        by_oid = {ext.oid.dotted_string: ext for ext in exts}
        bc = by_oid.get("2.5.29.19")
        info.is_ca = bool(bc is not None and bc.value.ca)
        ku = by_oid.get("2.5.29.15")
        info.digital_signature = None if ku is None else bool(ku.value.digital_signature)
    by_value = {oid: (critical, value) for oid, critical, value in info.exts}
    for oid, base in ((OID_PCI_RFC, "rfc3820"), (OID_PCI_DRAFT, "draft")):
        if oid not in by_value:
            continue
        critical, value = by_value[oid]
        language, pathlen = _parse_pci(extension_bytes(value), info)
        if language == POLICY_INHERIT_ALL:
            info.kind = base
        elif language == POLICY_LIMITED:
            info.kind = base + "-limited"
        elif language == POLICY_INDEPENDENT:
            info.kind = base + "-independent"
        else:
            raise AuthorizationError(f"proxy {info.dn} has an unsupported policy language"
                                     f" {language}")
        if base == "rfc3820" and not critical:
            raise AuthorizationError(f"proxy {info.dn}: ProxyCertInfo must be critical")
        info.pathlen = pathlen
        return
    # Legacy (GT2) proxy: no ProxyCertInfo, subject = issuer + CN=proxy / CN=limited proxy.
    if len(info.subject_rdns) == len(info.issuer_rdns) + 1 and \
            info.subject_rdns[:-1] == info.issuer_rdns:
        last = _last_cn(info)
        if last == b"proxy":
            info.kind = "legacy"
        elif last == b"limited proxy":
            info.kind = "legacy-limited"


def extension_bytes(value: object) -> bytes:
    """The DER of an extension's value: certparse keeps the bytes; cryptography keeps them for
    the extensions it does not know (ProxyCertInfo, VOMS) and re-encodes the others."""
    if isinstance(value, bytes):
        return value
    return value.value if hasattr(value, "value") else value.public_bytes()


def _parse_pci(raw: bytes, info: CertInfo) -> tuple[str, int | None]:
    try:
        language = ""
        pathlen = None
        for item in der.read_single(raw, der.TAG_SEQUENCE, "ProxyCertInfo").children():
            if item.tag == der.TAG_INTEGER:
                pathlen = der.decode_integer(item.content)
            elif item.tag == 0xA1:  # draft: [1] EXPLICIT INTEGER
                (inner,) = item.children()
                pathlen = der.decode_integer(inner.expect(der.TAG_INTEGER, "pathlen").content)
            elif item.tag == der.TAG_SEQUENCE:
                fields = item.children()
                language = der.decode_oid(fields[0].expect(der.TAG_OID, "policy").content)
            else:
                raise der.DerError("unexpected ProxyCertInfo field")
        if not language or (pathlen is not None and pathlen < 0):
            raise der.DerError("ProxyCertInfo without policy language")
    except (der.DerError, ValueError, IndexError) as exc:
        raise AuthorizationError(f"proxy {info.dn} has a malformed ProxyCertInfo ({exc})")
    return language, pathlen


def _last_cn(info: CertInfo) -> bytes | None:
    """Canonical (lower-cased) value of the last RDN when it is one CN, else None."""
    last = der.read_single(info.subject_rdns[-1], der.TAG_SET, "rdn").children()
    if len(last) != 1:
        return None
    oid_item, value = last[0].children()
    if der.decode_oid(oid_item.content) != OID_CN:
        return None
    return value.content


def _find_issuer(info: CertInfo, pool: list[CertInfo]) -> CertInfo | None:
    for cand in pool:
        if cand.subject_rdns == info.issuer_rdns:
            return cand
    return None


def _find_anchor(info: CertInfo, trust: TrustDir) -> CertInfo | None:
    """The CA-directory certificate that issued ``info`` (name match and signature)."""
    refused_fast = False
    for cert in trust.anchors_for(info.issuer_der):
        if info.fast:
            if not _fast_issued_by(info.cert, cert):
                refused_fast = True
                continue
        else:
            try:
                info.cert.verify_directly_issued_by(cert)
            except Exception:  # noqa: S112 - a non-matching candidate is simply not the issuer
                continue
        try:
            anchor = CertInfo(cert, False)
            _classify(anchor)
        except AuthorizationError:
            continue
        return anchor
    if refused_fast:  # a fast "no" leaves the chain without an anchor: let cryptography say so
        from glexec_py.credentials.der import NotOnFastPath

        raise NotOnFastPath("no CA-directory candidate verified on the fast path")
    return None


def _fast_issued_by(cert: object, issuer: object) -> bool:
    """cryptography's verify_directly_issued_by on ParsedCerts: the name must be the issuer's
    subject byte for byte (it compares parsed names) and the signature must verify."""
    from glexec_py.credentials.pkcs1 import verify_certificate_signature

    if cert.issuer_der != issuer.subject_der:
        return False
    return verify_certificate_signature(cert, issuer.rsa_key)


def _check_validity(info: CertInfo, index: int, eec_index: int, now: float) -> None:
    role = "proxy" if index < eec_index else "certificate"
    if now > info.not_after:
        raise ClientError(f"{role} expired at {format_time(info.not_after)}: {info.dn}")
    if now < info.not_before:
        raise ClientError(f"{role} not valid before {format_time(info.not_before)}: {info.dn}")


def _check_critical(info: CertInfo) -> None:
    for oid, critical, _value in info.exts:
        if critical and oid not in _KNOWN_CRITICAL:
            raise AuthorizationError(f"certificate {info.dn} has an unknown critical extension "
                                     f"{oid}")


def _check_signature(info: CertInfo, issuer: CertInfo) -> None:
    if info.fast:
        if not _fast_issued_by(info.cert, issuer.cert):
            from glexec_py.credentials.der import NotOnFastPath

            # the refusal's wording is cryptography's exception text: let it say it
            raise NotOnFastPath(f"signature on {info.dn} refused on the fast path")
        return
    try:
        info.cert.verify_directly_issued_by(issuer.cert)
    except Exception as exc:
        raise AuthorizationError(f"bad signature on {info.dn} (not signed by {issuer.dn}:"
                                 f" {_short(exc) or 'invalid'})")


def _check_proxies(path: list[CertInfo], eec_index: int) -> None:
    remaining: int | None = None  # proxies still allowed below this point (None = unlimited)
    for index in range(eec_index - 1, -1, -1):
        proxy = path[index]
        issuer = path[index + 1]
        if remaining is not None and remaining <= 0:
            raise AuthorizationError(f"proxy path length exceeded at {proxy.dn}")
        if remaining is not None:
            remaining -= 1
        if proxy.pathlen is not None:
            remaining = proxy.pathlen if remaining is None else min(remaining, proxy.pathlen)
        if proxy.is_ca:
            raise AuthorizationError(f"proxy {proxy.dn} claims to be a CA (CA:TRUE)")
        if len(proxy.subject_rdns) != len(issuer.subject_rdns) + 1 or \
                proxy.subject_rdns[:-1] != issuer.subject_rdns or _last_cn(proxy) is None:
            raise AuthorizationError(f"proxy subject {proxy.dn} is not its issuer's subject "
                                     "plus one CN")
        if any(oid in _ALT_NAMES for oid, _critical, _value in proxy.exts):
            raise AuthorizationError(f"proxy {proxy.dn} carries alternative names")
        if issuer.digital_signature is False:
            raise AuthorizationError(f"{issuer.dn} may not sign proxies (keyUsage lacks "
                                     "digitalSignature)")


def _check_crl(info: CertInfo, ca: CertInfo, trust: TrustDir, policy: str, now: float) -> None:
    valid = []
    for crl in trust.crls_for(info.issuer_der):
        if ca.fast:
            if canon_rdns(crl.issuer_der) != ca.subject_rdns:
                continue
            from glexec_py.credentials.pkcs1 import verify_certificate_signature

            if not verify_certificate_signature(crl, ca.cert.rsa_key):
                from glexec_py.credentials.der import NotOnFastPath

                # an ignored CRL must never rest on the fast verifier's word alone
                raise NotOnFastPath(f"CRL of {ca.dn} refused on the fast path")
            valid.append(crl)
            continue
        try:
            if canon_rdns(crl.issuer.public_bytes()) != ca.subject_rdns:
                continue
            if not crl.is_signature_valid(ca.cert.public_key()):
                continue
        except Exception:  # noqa: S112 - an unusable CRL counts as absent
            continue
        valid.append(crl)
    if not valid:
        if policy == "require":
            raise AuthorizationError(f"no valid CRL for CA {ca.dn} (crl_policy=require)")
        return
    for crl in valid:
        if ca.fast:
            next_update = crl.next_update
            revoked = info.serial in crl.revoked
        else:
            stamp = crl.next_update_utc
            next_update = stamp.timestamp() if stamp is not None else None
            revoked = crl.get_revoked_certificate_by_serial_number(info.serial) is not None
        trust.note_window(None, next_update)
        if next_update is not None and now > next_update:
            raise AuthorizationError(f"CRL of CA {ca.dn} expired at "
                                     f"{format_time(next_update)}")
        if revoked:
            raise AuthorizationError(f"certificate {info.dn} (serial "
                                     f"{info.serial}) is revoked by its CA")


def _collect_algorithms(result: ChainResult) -> None:
    if result.path[0].fast:
        _collect_algorithms_fast(result)
        return
    from cryptography.hazmat.primitives.asymmetric import dsa, rsa

    bits = []
    hashes = []
    for info in result.path[:result.eec_index + 1]:
        public_key = info.cert.public_key()
        if isinstance(public_key, (rsa.RSAPublicKey, dsa.DSAPublicKey)):
            # EC sizes are not comparable with RSA sizes; min_key_bits is about RSA/DSA
            bits.append(public_key.key_size)
        if info is result.path[0]:
            result.leaf_key_bits = key_bits(public_key)
        try:
            algorithm = info.cert.signature_hash_algorithm
            hashes.append(algorithm.name if algorithm is not None else "none")
        except Exception:
            hashes.append("unsupported:" + info.cert.signature_algorithm_oid.dotted_string)
    result.rsa_bits_min = min(bits) if bits else None
    result.signature_hashes = tuple(hashes)


def _collect_algorithms_fast(result: ChainResult) -> None:
    from glexec_py.credentials.certparse import RSA_SIGNATURES
    from glexec_py.credentials.der import NotOnFastPath

    bits = []
    for info in result.path[:result.eec_index + 1]:
        if info.cert.rsa_key is None:
            raise NotOnFastPath(f"key of {info.dn} is not an RSA key the fast path handles")
        bits.append(info.cert.rsa_key[0].bit_length())  # cryptography's RSA key_size
    result.leaf_key_bits = bits[0]
    result.rsa_bits_min = min(bits)
    result.signature_hashes = tuple(RSA_SIGNATURES[info.cert.signature_oid]
                                    for info in result.path[:result.eec_index + 1])


def key_bits(public_key: object) -> int:
    size = getattr(public_key, "key_size", None)
    if size is None:
        curve = getattr(public_key, "curve", None)
        size = getattr(curve, "key_size", 0) if curve is not None else 256  # Ed25519
    return int(size)
