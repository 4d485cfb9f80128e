"""The grid CA directory: trust anchors, CRLs and namespace files, found by OpenSSL name hash.

Runs as: root. Trusts: the CA directory only after ``glexec_py.trust`` has checked it and every
file it reads (root-owned, not writable by others: SiteError 202 otherwise). Hot path: yes
(no heavy import at module level; certificate parsing happens inside the functions).

Layout (the one Globus, OpenSSL ``-CApath``, LCMAPS and fetch-crl share): ``<hash>.N`` anchors,
``<hash>.rN`` CRLs, ``<hash>.signing_policy`` and ``<hash>.namespaces``, where ``<hash>`` is
OpenSSL's subject hash (``openssl x509 -hash``). Looking a CA up by hash instead of loading the
whole directory keeps a verification at a few file reads even with the ~300 IGTF CAs installed.
"""

from __future__ import annotations

import os

from glexec_py.credentials import der
from glexec_py.trust import open_trusted_dir, read_trusted_file_with_identity

# String types OpenSSL canonicalises (ASN1_MASK_CANON) before hashing and comparing names.
_CANON_TAGS = {0x0C: "utf-8", 0x13: "latin-1", 0x14: "latin-1", 0x16: "latin-1",
               0x1A: "latin-1", 0x1E: "utf-16-be", 0x1C: "utf-32-be"}
_SPACE = b" \t\n\v\f\r"
MAX_INDEX = 10  # <hash>.0 .. <hash>.9: hash collisions are rare; more is a broken directory


def canon_rdns(name_der: bytes) -> list[bytes]:
    """OpenSSL's canonical encoding of each RDN (x509_name_canon): values as UTF-8, ASCII
    lower-cased, surrounding whitespace dropped and inner runs collapsed. Equal lists = equal
    names for OpenSSL; their concatenation is what the subject hash is taken of."""
    out = []
    for rdn in der.read_single(name_der, der.TAG_SEQUENCE, "name").children():
        atvs = []
        for atv in rdn.expect(der.TAG_SET, "rdn").children():
            oid_item, value = atv.expect(der.TAG_SEQUENCE, "attribute").children()
            encoding = _CANON_TAGS.get(value.tag)
            if encoding is None:
                atvs.append(der.encode_tlv(der.TAG_SEQUENCE, oid_item.encoded + value.encoded))
                continue
            try:
                text = value.content.decode(encoding).encode("utf-8")
            except UnicodeDecodeError:
                raise der.DerError("undecodable name string") from None
            atvs.append(der.encode_tlv(der.TAG_SEQUENCE, oid_item.encoded
                                       + der.encode_tlv(der.TAG_UTF8STRING, _canon_text(text))))
        out.append(der.encode_tlv(der.TAG_SET, b"".join(atvs)))
    return out


def _canon_text(raw: bytes) -> bytes:
    raw = raw.strip(_SPACE)
    out = bytearray()
    pending_space = False
    for byte in raw:
        if byte in _SPACE:
            pending_space = True
            continue
        if pending_space:
            out.append(0x20)
            pending_space = False
        out.append(byte + 32 if 0x41 <= byte <= 0x5A else byte)
    return bytes(out)


def name_hash(name_der: bytes) -> str:
    """``openssl x509 -hash`` of a name: first 4 bytes of SHA-1 over the canonical RDNs, read
    little-endian, as 8 hex digits."""
    import _sha1  # hashlib would load OpenSSL's _hashlib (~2.5 ms) for one small digest

    digest = _sha1.sha1(b"".join(canon_rdns(name_der))).digest()
    return f"{int.from_bytes(digest[:4], 'little'):08x}"


class TrustDir:
    """An opened, trust-checked CA directory. Use as a context manager (closes the dir fd)."""

    __slots__ = ("path", "fd", "_anchors", "_crls", "consulted", "window", "cacheable", "fast")

    def __init__(self, path: str, *, what: str = "CA directory", fast: bool = False) -> None:
        self.path = path
        # fast: anchors and CRLs are read by certparse (no cryptography); anything it cannot
        # read raises der.NotOnFastPath instead of being skipped as unreadable
        self.fast = fast
        self.fd = open_trusted_dir(path, what=what)
        self._anchors: dict[str, list] = {}
        self._crls: dict[str, list] = {}
        # What a verification depended on, for the verified-chain cache (credentials/cache.py):
        # every file read (path, identity of the version read) or probed and absent (path,
        # None), and the time window in which every certificate and CRL used stays valid.
        self.consulted: list[tuple[str, tuple | None]] = []
        self.window = [float("-inf"), float("inf")]
        self.cacheable = True

    def note_file(self, path: str, identity: tuple | None) -> None:
        self.consulted.append((path, identity))

    def note_window(self, not_before: float | None, not_after: float | None) -> None:
        if not_before is not None and not_before > self.window[0]:
            self.window[0] = not_before
        if not_after is not None and not_after < self.window[1]:
            self.window[1] = not_after

    def __enter__(self) -> TrustDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _exists(self, name: str) -> bool:
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            self.note_file(os.path.join(self.path, name), None)
            return False
        return True

    def _read(self, name: str, what: str) -> bytes:
        path = os.path.join(self.path, name)
        data, identity = read_trusted_file_with_identity(path, max_size=1 << 20, what=what)
        self.note_file(path, identity.as_tuple())
        return data

    def anchors_for(self, issuer_der: bytes) -> list:
        """CA certificates (cryptography objects, or certparse.ParsedCert when ``fast``) whose
        subject equals ``issuer_der``."""
        key = name_hash(issuer_der)
        if key in self._anchors:
            return self._anchors[key]
        wanted = canon_rdns(issuer_der)
        found = []
        for index in range(MAX_INDEX):
            name = f"{key}.{index}"
            if not self._exists(name):
                break
            blob = self._read(name, "CA certificate")
            if self.fast:
                from glexec_py.credentials.certparse import read_certificates_file

                for cert in read_certificates_file(blob):
                    if canon_rdns(cert.subject_der) == wanted:
                        found.append(cert)
                continue
            from cryptography import x509

            try:
                certs = (x509.load_pem_x509_certificates(blob) if b"-----BEGIN" in blob
                         else [x509.load_der_x509_certificate(blob)])
            except ValueError:
                continue  # an unreadable anchor is no anchor; the chain then fails closed
            for cert in certs:
                _, subject = der.tbs_names(cert.tbs_certificate_bytes)
                if canon_rdns(subject) == wanted:
                    found.append(cert)
        self._anchors[key] = found
        return found

    def crls_for(self, issuer_der: bytes) -> list:
        """CRLs (cryptography objects, or certparse.ParsedCrl when ``fast``) found for the CA
        named ``issuer_der`` (unverified)."""
        key = name_hash(issuer_der)
        if key in self._crls:
            return self._crls[key]
        found = []
        for index in range(MAX_INDEX):
            name = f"{key}.r{index}"
            if not self._exists(name):
                break
            blob = self._read(name, "CRL")
            if self.fast:
                from glexec_py.credentials.certparse import read_crl_file

                found.append(read_crl_file(blob))
                continue
            from cryptography import x509

            try:
                crl = (x509.load_pem_x509_crl(blob) if b"-----BEGIN" in blob
                       else x509.load_der_x509_crl(blob))
            except ValueError:
                continue
            found.append(crl)
        self._crls[key] = found
        return found

    def policy_files(self, ca_subject_der: bytes) -> tuple[bytes | None, bytes | None]:
        """(namespaces, signing_policy) file contents for the CA, None where absent."""
        key = name_hash(ca_subject_der)
        out: list[bytes | None] = []
        for suffix in ("namespaces", "signing_policy"):
            name = f"{key}.{suffix}"
            out.append(self._read(name, "CA policy file") if self._exists(name) else None)
        return out[0], out[1]
