"""What one verified VOMS attribute certificate says: the value object, and nothing else.

Runs as: root. Trusts: nothing (it only holds what ``voms.py`` verified). Hot path: yes.

It lives apart from ``voms.py`` because a cache hit rebuilds credentials from these values and
must not load the AC verifier (with the DER reader and the DN renderer) to do so.
"""

from __future__ import annotations


class VomsInfo:
    """One verified AC: VO, server URI (``host:port``), issuer DN, FQANs in AC order, window."""

    __slots__ = ("vo", "uri", "issuer_dn", "fqans", "not_before", "not_after")

    def __init__(self, vo: str, uri: str, issuer_dn: str, fqans: tuple[str, ...],
                 not_before: float, not_after: float) -> None:
        self.vo = vo
        self.uri = uri
        self.issuer_dn = issuer_dn
        self.fqans = fqans
        self.not_before = not_before
        self.not_after = not_after

    def __repr__(self) -> str:
        return f"VomsInfo(vo={self.vo!r}, uri={self.uri!r}, fqans={self.fqans!r})"
