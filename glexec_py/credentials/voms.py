"""VOMS attribute certificates: read them from the proxy, verify them, return their FQANs.

Runs as: root. Trusts: the vomsdir (``<vo>/<host>.lsc`` files or VOMS server certificates) and
the CA directory, both trust-checked; nothing in the proxy. Hot path: yes as a module (a
verification checks RSA AC signatures with pkcs1; cryptography is imported, inside, only for
the rest and on the hand-over path).

Layout (RFC 5755 as VOMS uses it): proxy extension 1.3.6.1.4.1.8005.100.100.5 holds
``SEQUENCE OF SEQUENCE OF AttributeCertificate``; the FQAN attribute 1.3.6.1.4.1.8005.100.100.4
holds ``IetfAttrSyntax`` whose policyAuthority URI is ``<vo>://<host>:<port>``; the AC extension
1.3.6.1.4.1.8005.100.100.10 carries the VOMS server certificate (and its chain), which the
``.lsc`` file names by subject and issuer. The signature is checked over the original bytes of
``acinfo``. An AC that fails any check contributes no FQAN and no VomsInfo; the reason is kept
for the log (``rejected``). Policies decide what a missing FQAN means.
"""

from __future__ import annotations

import os

from glexec_py.credentials import der
from glexec_py.credentials.dn import dn_key, render_name_der
from glexec_py.credentials.trustdir import canon_rdns
from glexec_py.credentials.vomsinfo import VomsInfo

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from glexec_py.credentials import VerifyOptions
    from glexec_py.credentials.chain import CertInfo
    from glexec_py.credentials.trustdir import TrustDir

OID_VOMS_EXT = "1.3.6.1.4.1.8005.100.100.5"
OID_FQAN_ATTR = "1.3.6.1.4.1.8005.100.100.4"
OID_AC_CERTS = "1.3.6.1.4.1.8005.100.100.10"
_KNOWN_AC_EXTENSIONS = frozenset({OID_AC_CERTS, "1.3.6.1.4.1.8005.100.100.11", "2.5.29.56",
                                  "2.5.29.35", "2.5.29.55"})
_SIG_HASHES = {
    "1.2.840.113549.1.1.5": "sha1", "1.2.840.113549.1.1.11": "sha256",
    "1.2.840.113549.1.1.12": "sha384", "1.2.840.113549.1.1.13": "sha512",
    "1.2.840.113549.1.1.14": "sha224", "1.2.840.113549.1.1.4": "md5",
    "1.2.840.10045.4.1": "sha1", "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384", "1.2.840.10045.4.3.4": "sha512",
}
_ECDSA_PREFIX = "1.2.840.10045.4."
MAX_ACS = 16
MAX_FQANS = 256


class AcRejected(Exception):
    """This AC does not count (internal: becomes an entry in ``rejected``)."""


def extract_and_verify(path: list[CertInfo], eec_index: int, vomsdir: str, trust: TrustDir,
                       options: VerifyOptions, now: float) -> tuple[list[VomsInfo], list[str]]:
    """Verified ACs of the proxy nearest the leaf that carries any, and rejection reasons."""
    from glexec_py.credentials.chain import extension_bytes
    from glexec_py.trust import open_trusted_dir

    blobs = []
    for info in path[:eec_index]:
        for oid, _critical, value in info.exts:
            if oid == OID_VOMS_EXT:
                blobs = _split_acs(extension_bytes(value))
                break
        if blobs:
            break
    if not blobs:
        return [], []
    fd = open_trusted_dir(vomsdir, what="vomsdir")
    os.close(fd)
    verified: list[VomsInfo] = []
    rejected: list[str] = []
    for index, blob in enumerate(blobs[:MAX_ACS]):
        try:
            verified.append(_verify_ac(blob, path[eec_index], vomsdir, trust, options, now))
        except AcRejected as exc:
            rejected.append(f"AC #{index}: {exc}")
        except (der.DerError, ValueError, IndexError) as exc:
            rejected.append(f"AC #{index}: malformed ({exc})")
    if len(blobs) > MAX_ACS:
        rejected.append(f"more than {MAX_ACS} ACs; the rest ignored")
    return verified, rejected


def _split_acs(raw: bytes) -> list[bytes]:
    try:
        out = []
        for group in der.read_single(raw, der.TAG_SEQUENCE, "VOMS extension").children():
            for ac in group.expect(der.TAG_SEQUENCE, "AC list").children():
                out.append(ac.expect(der.TAG_SEQUENCE, "AC").encoded)
        return out
    except der.DerError:
        return [b""]  # one unparseable AC: reported as rejected, never trusted


def _general_names(item: der.Item) -> tuple[list[bytes], list[str]]:
    """Directory names (Name DER) and URIs in a GeneralNames (SEQUENCE or implicit tag)."""
    names, uris = [], []
    for gn in item.children():
        if gn.tag == 0xA4:
            (inner,) = gn.children()
            names.append(inner.expect(der.TAG_SEQUENCE, "directoryName").encoded)
        elif gn.tag == 0x86:
            uris.append(gn.content.decode("ascii"))
    return names, uris


def _verify_ac(blob: bytes, eec: CertInfo, vomsdir: str, trust: TrustDir,
               options: VerifyOptions, now: float) -> VomsInfo:
    ac = der.read_single(blob, der.TAG_SEQUENCE, "AC").children()
    if len(ac) != 3:
        raise AcRejected("not an attribute certificate")
    acinfo, sigalg, signature = ac
    fields = acinfo.expect(der.TAG_SEQUENCE, "acinfo").children()
    if der.decode_integer(fields[0].expect(der.TAG_INTEGER, "version").content) != 1:
        raise AcRejected("not a v2 attribute certificate")
    holder, issuer_field, _alg, _serial, validity, attributes = fields[1:7]
    extensions = [f for f in fields[7:] if f.tag == der.TAG_SEQUENCE]
    # Holder: bound to this EEC (serial, and EEC issuer or subject as VOMS writes either).
    bound = False
    for part in holder.expect(der.TAG_SEQUENCE, "holder").children():
        if part.tag == 0xA0:  # baseCertificateID
            id_fields = part.children()
            names, _ = _general_names(id_fields[0])
            serial = der.decode_integer(id_fields[1].expect(der.TAG_INTEGER, "serial").content)
            eec_names = (eec.issuer_rdns, eec.subject_rdns)
            bound = serial == eec.serial and any(
                canon_rdns(n) in eec_names for n in names)
    if not bound:
        raise AcRejected("holder is not this proxy's end-entity certificate")
    # Issuer (v2Form).
    if issuer_field.tag != 0xA0:
        raise AcRejected("AC issuer is not in v2Form")
    issuer_names, _ = _general_names(issuer_field.children()[0])
    if len(issuer_names) != 1:
        raise AcRejected("AC issuer is not one directory name")
    issuer_der = issuer_names[0]
    issuer_dn = render_name_der(issuer_der)
    # Validity.
    nb_item, na_item = validity.expect(der.TAG_SEQUENCE, "validity").children()
    not_before, not_after = der.decode_time(nb_item), der.decode_time(na_item)
    if now > not_after:
        from glexec_py.credentials.chain import format_time

        raise AcRejected(f"AC from {issuer_dn} expired at {format_time(not_after)}")
    if now < not_before:
        raise AcRejected(f"AC from {issuer_dn} is not yet valid")
    # FQANs and the VO.
    fqans: list[str] = []
    authority = ""
    for attribute in attributes.expect(der.TAG_SEQUENCE, "attributes").children():
        oid_item, values = attribute.children()
        if der.decode_oid(oid_item.content) != OID_FQAN_ATTR:
            continue
        for ietf in values.expect(der.TAG_SET, "attribute values").children():
            for part in ietf.children():
                if part.tag == 0xA0:
                    _, uris = _general_names(part)
                    authority = uris[0] if uris else ""
                elif part.tag == der.TAG_SEQUENCE:
                    for value in part.children():
                        fqans.append(value.expect(der.TAG_OCTET_STRING, "FQAN").content
                                     .decode("utf-8"))
    if not fqans or "://" not in authority:
        raise AcRejected("AC has no FQANs or no policy authority")
    if len(fqans) > MAX_FQANS or any(not f.startswith("/") or "\n" in f or "\0" in f
                                     for f in fqans):
        raise AcRejected("AC has malformed FQANs")
    vo, _, uri = authority.partition("://")
    host = uri.rsplit(":", 1)[0]
    if not _safe_component(vo) or not _safe_component(host):
        raise AcRejected(f"AC names an unusable VO or host {authority!r}")
    # Extensions: the embedded server certificates; unknown critical ones void the AC.
    embedded: list[bytes] = []
    if extensions:
        for ext in extensions[0].children():
            parts = ext.children()
            oid = der.decode_oid(parts[0].content)
            critical = len(parts) == 3 and parts[1].content == b"\xff"
            if oid == OID_AC_CERTS:
                embedded = _embedded_certs(parts[-1].content)
            elif critical and oid not in _KNOWN_AC_EXTENSIONS:
                raise AcRejected(f"AC has an unknown critical extension {oid}")
    server = _trusted_server(vo, host, issuer_der, embedded, vomsdir, trust, now)
    _check_ac_signature(acinfo.encoded, sigalg, signature, server, options)
    return VomsInfo(vo, uri, issuer_dn, tuple(fqans), not_before, not_after)


def _safe_component(text: str) -> bool:
    return bool(text) and "/" not in text and "\0" not in text and not text.startswith(".")


def _embedded_certs(content: bytes) -> list[bytes]:
    out = []
    top = der.read_single(content, der.TAG_SEQUENCE, "ACCerts")
    for item in top.children():
        kids = item.children()
        if len(kids) == 3 and kids[2].tag == der.TAG_BIT_STRING:
            out.append(item.encoded)
        else:
            out.extend(k.encoded for k in kids)
    return out


def _read_lsc(text: str) -> list[list[str]]:
    """Alternative chains of DNs (server first); ``-`` lines separate alternatives."""
    chains: list[list[str]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            chains.append([])
            continue
        chains[-1].append(line)
    return [c for c in chains if c]


def _trusted_server(vo: str, host: str, issuer_der: bytes, embedded: list[bytes],
                    vomsdir: str, trust: TrustDir, now: float) -> CertInfo:
    """The VOMS server certificate that may sign for (vo, host), verified against the CAs."""
    from glexec_py.credentials import chain
    from glexec_py.errors import GlexecError
    from glexec_py.trust import read_trusted_file, read_trusted_file_with_identity

    lsc_path = os.path.join(vomsdir, vo, host + ".lsc")
    candidates: list[list[chain.CertInfo]] = []
    try:
        lsc, identity = read_trusted_file_with_identity(lsc_path, max_size=64 << 10,
                                                        what="VOMS .lsc file")
        trust.note_file(lsc_path, identity.as_tuple())
    except GlexecError:
        lsc = None
        if os.path.exists(lsc_path):
            raise  # present but untrusted: a site error, not a missing configuration
        trust.cacheable = False  # the directory-scan fallback depends on a whole listing
    if lsc is not None:
        if not embedded:
            raise AcRejected("AC carries no server certificate to match the .lsc")
        infos = chain.load_certificates(embedded, fast=trust.fast)
        served = [render_name_der(infos[0].subject_der), render_name_der(infos[0].issuer_der)]
        served += [render_name_der(i.issuer_der) for i in infos[1:]]
        if not any([dn_key(d) for d in c] == [dn_key(d) for d in served[:len(c)]]
                   and len(c) >= 2 for c in _read_lsc(lsc.decode("utf-8", "replace"))):
            raise AcRejected(f"server certificate does not match {vo}/{host}.lsc")
        candidates.append(infos)
    else:
        for directory in (os.path.join(vomsdir, vo), vomsdir):
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                continue
            for name in names:
                full = os.path.join(directory, name)
                if name.endswith(".lsc") or not os.path.isfile(full):
                    continue
                blob = read_trusted_file(full, max_size=256 << 10, what="VOMS certificate")
                if trust.fast:
                    from glexec_py.credentials.certparse import parse_certificate, pem_blocks

                    if b"-----BEGIN" not in blob:
                        raise der.NotOnFastPath("vomsdir file that is not PEM")
                    certs = [parse_certificate(d) for d in pem_blocks(blob, b"CERTIFICATE")]
                else:
                    from cryptography import x509

                    try:
                        certs = x509.load_pem_x509_certificates(blob)
                    except ValueError:
                        continue
                for cert in certs:
                    candidates.append([chain.CertInfo(cert, False)])
        if not candidates:
            raise AcRejected(f"no {vo}/{host}.lsc and no VOMS server certificate in vomsdir")
    wanted = canon_rdns(issuer_der)
    from glexec_py.credentials import VerifyOptions
    from glexec_py.errors import AuthorizationError, ClientError

    last = "no server certificate names the AC issuer"
    for infos in candidates:
        if infos[0].subject_rdns != wanted:
            continue
        try:
            chain.verify_chain(infos, trust, VerifyOptions(), now)
        except (AuthorizationError, ClientError) as exc:
            last = f"VOMS server certificate refused: {exc.message}"
            continue
        return infos[0]
    raise AcRejected(last)


def _check_ac_signature(signed: bytes, sigalg: der.Item, signature: der.Item, server: CertInfo,
                        options: VerifyOptions) -> None:
    if server.fast:
        _check_ac_signature_fast(signed, sigalg, signature, server, options)
        return
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    oid = der.decode_oid(sigalg.children()[0].content)
    name = _SIG_HASHES.get(oid)
    if name is None or name in options.refused_signature_hashes:
        raise AcRejected(f"AC signature algorithm {oid} is not accepted")
    algorithm = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
                 "sha384": hashes.SHA384, "sha512": hashes.SHA512, "md5": hashes.MD5}[name]()
    bits = signature.expect(der.TAG_BIT_STRING, "signature").content
    if not bits or bits[0] != 0:
        raise AcRejected("AC signature has unused bits")
    key = server.cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey) and not oid.startswith(_ECDSA_PREFIX):
            key.verify(bits[1:], signed, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and oid.startswith(_ECDSA_PREFIX):
            key.verify(bits[1:], signed, ec.ECDSA(algorithm))
        else:
            raise AcRejected("AC signature algorithm does not fit the server key")
    except InvalidSignature:
        raise AcRejected("AC signature does not verify with the VOMS server key") from None


def _check_ac_signature_fast(signed: bytes, sigalg: der.Item, signature: der.Item,
                             server: CertInfo, options: VerifyOptions) -> None:
    """The same checks without cryptography; every case it cannot settle, and every refused
    signature, goes back to cryptography (der.NotOnFastPath) rather than dropping the AC."""
    from glexec_py.credentials.pkcs1 import verify_signature

    oid = der.decode_oid(sigalg.children()[0].content)
    name = _SIG_HASHES.get(oid)
    if name is None or name in options.refused_signature_hashes:
        raise AcRejected(f"AC signature algorithm {oid} is not accepted")
    bits = signature.expect(der.TAG_BIT_STRING, "signature").content
    if not bits or bits[0] != 0:
        raise AcRejected("AC signature has unused bits")
    key = server.cert.rsa_key
    if key is None or oid.startswith(_ECDSA_PREFIX) or name == "md5":
        raise der.NotOnFastPath("AC signature outside the fast path")
    if not verify_signature(key, name, bits[1:], signed):
        raise der.NotOnFastPath("AC signature refused on the fast path")
