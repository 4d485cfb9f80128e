"""Split a proxy file into its certificates (DER, in file order) and its one private key.

Runs as: root (on bytes read with the caller's rights). Trusts: nothing. Hot path: yes
(called only on a verification, but imports nothing heavy).

A proxy file is PEM: the proxy certificate, its private key (``PRIVATE KEY`` from grid-proxy-init,
``RSA PRIVATE KEY`` from voms-proxy-fake, ``EC PRIVATE KEY`` from others), then the rest of the
chain. Anything else in the file (text between blocks) is ignored as OpenSSL does; anything
inside a block must be clean base64.
"""

from __future__ import annotations

from glexec_py.errors import ClientError

MAX_CERTIFICATES = 16  # real chains have 2-6; far more is an attack on verification cost
_KEY_LABELS = (b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY")


class PemBundle:
    """``certificates``: DER blobs in file order; ``key_pem``: the key block (PEM) or None."""

    __slots__ = ("certificates", "key_pem")

    def __init__(self, certificates: list[bytes], key_pem: bytes | None) -> None:
        self.certificates = certificates
        self.key_pem = key_pem


def split_pem(data: bytes) -> PemBundle:
    """Parse the blocks; ClientError (201) for anything that is not a usable proxy file."""
    import binascii

    if not isinstance(data, bytes):
        raise ClientError("proxy is not a byte string")
    if b"-----BEGIN " not in data:
        raise ClientError("proxy file is not PEM (no BEGIN line): empty, binary or DER")
    certificates: list[bytes] = []
    key_pem: bytes | None = None
    pos = 0
    while True:
        begin = data.find(b"-----BEGIN ", pos)
        if begin < 0:
            break
        label_end = data.find(b"-----", begin + 11)
        if label_end < 0:
            raise ClientError("proxy file has a truncated PEM header")
        label = data[begin + 11:label_end]
        end_marker = b"-----END " + label + b"-----"
        end = data.find(end_marker, label_end + 5)
        if end < 0:
            raise ClientError(f"proxy file has no END line for {_show(label)}")
        body = data[label_end + 5:end]
        pos = end + len(end_marker)
        if label == b"CERTIFICATE":
            if len(certificates) >= MAX_CERTIFICATES:
                raise ClientError(f"proxy file has more than {MAX_CERTIFICATES} certificates")
            try:
                blob = binascii.a2b_base64(body, strict_mode=False)
            except (binascii.Error, ValueError):
                raise ClientError("proxy file has a certificate block that is not base64")
            if not _is_base64_text(body) or not blob:
                raise ClientError("proxy file has a certificate block that is not base64")
            certificates.append(blob)
        elif label in _KEY_LABELS:
            if key_pem is not None:
                raise ClientError("proxy file holds more than one private key")
            if b"Proc-Type:" in body or b"ENCRYPTED" in label:
                raise ClientError("proxy private key is encrypted")
            key_pem = data[begin:pos]
        elif label == b"ENCRYPTED PRIVATE KEY":
            raise ClientError("proxy private key is encrypted")
        else:
            raise ClientError(f"proxy file holds an unexpected PEM block {_show(label)}")
    if not certificates:
        raise ClientError("proxy file holds no certificate")
    return PemBundle(certificates, key_pem)


def _is_base64_text(body: bytes) -> bool:
    allowed = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n \t"
    return not body.translate(None, allowed)


def _show(label: bytes) -> str:
    text = label[:40].decode("ascii", "replace")
    return repr("".join(c if " " <= c <= "~" else "?" for c in text))
