"""RSA PKCS#1 v1.5 signature verification and RSA private-key reading with builtins only.

Runs as: root. Trusts: nothing (keys, signatures and messages are hostile). Hot path: no (a
verification only); imports only the builtin hash modules ``_sha1``/``_sha256``/``_sha512``
(``hashlib`` would load OpenSSL's ``_hashlib``, ~2.5 ms) inside the function that hashes.

Verification builds the whole expected encoded message ``00 01 FF..FF 00 || DigestInfo`` of
the modulus length and compares every byte with ``sig^e mod n``; it never parses the decrypted
block, so the Bleichenbacher-2006 forgeries (garbage after the digest, short padding, loose
DigestInfo) cannot pass. The DigestInfo always carries the NULL parameters, because OpenSSL's
RSA_verify re-encodes it that way and compares (a DigestInfo without NULL fails there too).
"""

from __future__ import annotations

from glexec_py.credentials import der
from glexec_py.credentials.certparse import RSA_SIGNATURES, read_integer, usable_rsa_key
from glexec_py.credentials.der import NotOnFastPath

# DER DigestInfo up to the digest: SEQUENCE { SEQUENCE { hash OID, NULL }, OCTET STRING (len) }
DIGEST_INFO_PREFIX = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha224": bytes.fromhex("302d300d06096086480165030402040500041c"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_RSA_KEY_ALG = bytes.fromhex("300d06092a864886f70d0101010500")  # rsaEncryption, NULL


def digest(name: str, data: bytes) -> bytes:
    if name == "sha1":
        import _sha1

        return _sha1.sha1(data).digest()
    if name in ("sha224", "sha256"):
        import _sha256

        return getattr(_sha256, name)(data).digest()
    if name in ("sha384", "sha512"):
        import _sha512

        return getattr(_sha512, name)(data).digest()
    raise NotOnFastPath(f"hash {name}")


def verify_signature(key: tuple[int, int], hash_name: str, signature: bytes,
                     message: bytes) -> bool:
    """True iff ``signature`` is the PKCS#1 v1.5 signature of ``message`` under ``key``.

    NotOnFastPath when OpenSSL's answer would not follow from the arithmetic alone (a key
    OpenSSL refuses, a signature not exactly the modulus length, a modulus too small for the
    DigestInfo).
    """
    n, e = key
    if not usable_rsa_key(n, e):
        raise NotOnFastPath("RSA key outside the fast path")
    size = (n.bit_length() + 7) // 8
    if len(signature) != size:
        raise NotOnFastPath("signature length differs from the modulus length")
    tail = DIGEST_INFO_PREFIX.get(hash_name)
    if tail is None:
        raise NotOnFastPath(f"hash {hash_name}")
    tail += digest(hash_name, message)
    if size < len(tail) + 11:
        raise NotOnFastPath("modulus too small for the DigestInfo")
    value = int.from_bytes(signature, "big")
    if value >= n:
        return False
    expected = b"\x00\x01" + b"\xff" * (size - len(tail) - 3) + b"\x00" + tail
    return pow(value, e, n).to_bytes(size, "big") == expected


def verify_certificate_signature(signed: object, issuer_key: tuple[int, int] | None) -> bool:
    """The signature of a ParsedCert/ParsedCrl ``signed`` under an issuer's (n, e)."""
    if issuer_key is None:
        raise NotOnFastPath("issuer key is not an RSA key the fast path handles")
    return verify_signature(issuer_key, RSA_SIGNATURES[signed.signature_oid],
                            signed.signature, signed.tbs)


def read_private_key(key_pem: bytes) -> tuple[int, int]:
    """(n, e) of an unencrypted PKCS#1 ``RSA PRIVATE KEY`` or PKCS#8 ``PRIVATE KEY`` (RSA).

    NotOnFastPath for every other key or encoding (cryptography then reads it and reports).
    """
    from glexec_py.credentials.certparse import pem_blocks

    try:
        if key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----"):
            (blob,) = pem_blocks(key_pem, b"RSA PRIVATE KEY")
            return _read_pkcs1(blob)
        if key_pem.startswith(b"-----BEGIN PRIVATE KEY-----"):
            (blob,) = pem_blocks(key_pem, b"PRIVATE KEY")
            parts = der.read_single(blob, der.TAG_SEQUENCE, "PKCS#8").children()
            if len(parts) != 3 or read_integer(parts[0]) != 0 \
                    or parts[1].encoded != _RSA_KEY_ALG:
                raise NotOnFastPath("PKCS#8 key that is not a plain RSA key")
            return _read_pkcs1(parts[2].expect(der.TAG_OCTET_STRING, "privateKey").content)
    except (der.DerError, ValueError, IndexError) as exc:
        raise NotOnFastPath(f"private key: {exc}") from None
    raise NotOnFastPath("private key of another type")


def _read_pkcs1(blob: bytes) -> tuple[int, int]:
    parts = der.read_single(blob, der.TAG_SEQUENCE, "RSAPrivateKey").children()
    if len(parts) != 9:
        raise NotOnFastPath("RSAPrivateKey of an unusual shape")
    values = [read_integer(p) for p in parts]
    if values[0] != 0 or any(v <= 0 for v in values[1:]):
        raise NotOnFastPath("RSAPrivateKey with an unusual version or component")
    return values[1], values[2]
