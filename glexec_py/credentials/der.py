"""Minimal DER reader: walks tag-length-value items by offset over the original bytes.

Runs as: root or anyone. Trusts: nothing (input is hostile; every length is bounds-checked).
Hot path: yes.

The credential layer needs a few structures that ``cryptography`` does not expose with their
original bytes (names with their string types, ProxyCertInfo in two layouts, VOMS attribute
certificates whose signature covers the exact encoding). Reading them by offset means signatures
are checked over the bytes that were signed, never over a re-encoding.
"""

from __future__ import annotations

# Universal tags used by the credential layer.
TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
TAG_OID = 0x06
TAG_UTF8STRING = 0x0C
TAG_PRINTABLESTRING = 0x13
TAG_IA5STRING = 0x16
TAG_UTCTIME = 0x17
TAG_GENERALIZEDTIME = 0x18
TAG_SEQUENCE = 0x30
TAG_SET = 0x31

# Nesting deeper than this is not found in any real certificate; refusing it bounds the work.
MAX_DEPTH = 32


class DerError(ValueError):
    """The bytes are not the DER structure expected at this point."""


class NotOnFastPath(Exception):  # noqa: N818 - a hand-over signal, not an error to report
    """The cryptography-free verification cannot decide this input; use cryptography instead.

    Deliberately not a ValueError: code that swallows malformed input (an unreadable CRL counts
    as absent) must not swallow this, or the fast path would decide by omission.
    """


class Item:
    """One TLV item: ``tag`` (the identifier octet), content between ``start`` and ``end``."""

    __slots__ = ("buf", "tag", "header", "start", "end")

    def __init__(self, buf: bytes, tag: int, header: int, start: int, end: int) -> None:
        self.buf = buf
        self.tag = tag
        self.header = header  # offset of the identifier octet
        self.start = start
        self.end = end

    @property
    def content(self) -> bytes:
        return self.buf[self.start:self.end]

    @property
    def encoded(self) -> bytes:
        """The whole TLV, exactly as it appears in the input."""
        return self.buf[self.header:self.end]

    def children(self) -> list[Item]:
        """The items inside a constructed item (SEQUENCE, SET, explicit tags)."""
        if not self.tag & 0x20:
            raise DerError("expected a constructed item")
        return read_items(self.buf, self.start, self.end)

    def expect(self, tag: int, what: str) -> Item:
        if self.tag != tag:
            raise DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{self.tag:02x}")
        return self


def read_item(buf: bytes, pos: int = 0, limit: int | None = None) -> Item:
    """Read the TLV at ``pos``; the item must end at or before ``limit``."""
    if limit is None:
        limit = len(buf)
    if pos + 2 > limit:
        raise DerError("truncated item")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tags are not used in certificates")
    first = buf[pos + 1]
    cur = pos + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DerError("indefinite or oversized length")
        if cur + count > limit:
            raise DerError("truncated length")
        length = int.from_bytes(buf[cur:cur + count], "big")
        if length < 0x80 or (count > 1 and buf[cur] == 0):
            raise DerError("non-minimal length encoding")
        cur += count
    end = cur + length
    if end > limit:
        raise DerError("item runs past its container")
    return Item(buf, tag, pos, cur, end)


def read_items(buf: bytes, start: int, end: int) -> list[Item]:
    """All consecutive items between ``start`` and ``end`` (which they must fill exactly)."""
    items = []
    pos = start
    while pos < end:
        item = read_item(buf, pos, end)
        items.append(item)
        pos = item.end
    return items


def read_single(buf: bytes, tag: int, what: str) -> Item:
    """The one item that must make up the whole of ``buf``."""
    item = read_item(buf, 0)
    if item.end != len(buf):
        raise DerError(f"{what}: trailing bytes")
    return item.expect(tag, what)


def decode_oid(content: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content octets."""
    if not content or content[-1] & 0x80:
        raise DerError("malformed object identifier")
    arcs = []
    value = 0
    fresh = True
    for byte in content:
        if fresh and byte == 0x80:
            raise DerError("non-minimal object identifier arc")
        value = (value << 7) | (byte & 0x7F)
        fresh = not byte & 0x80
        if fresh:
            arcs.append(value)
            value = 0
        if len(arcs) > 64:
            raise DerError("object identifier too long")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(arc) for arc in head + arcs[1:])


def decode_integer(content: bytes) -> int:
    if not content:
        raise DerError("empty integer")
    return int.from_bytes(content, "big", signed=True)


def decode_time(item: Item) -> float:
    """UTCTime or GeneralizedTime (``...Z`` only, as DER requires) to epoch seconds."""
    text = item.content.decode("ascii", "replace")
    if item.tag == TAG_UTCTIME and len(text) == 13 and text.endswith("Z"):
        year = int(text[:2])
        year += 2000 if year < 50 else 1900
        rest = text[2:12]
    elif item.tag == TAG_GENERALIZEDTIME and len(text) == 15 and text.endswith("Z"):
        year = int(text[:4])
        rest = text[4:14]
    else:
        raise DerError(f"unsupported time encoding {text!r}")
    if not rest.isdigit():
        raise DerError(f"malformed time {text!r}")
    month, day = int(rest[0:2]), int(rest[2:4])
    hour, minute, second = int(rest[4:6]), int(rest[6:8]), int(rest[8:10])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        raise DerError(f"malformed time {text!r}")
    return float(days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (no calendar/datetime import)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def encode_tlv(tag: int, content: bytes) -> bytes:
    """DER-encode one item (definite, minimal length)."""
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + content


def tbs_names(tbs: bytes) -> tuple[bytes, bytes]:
    """(issuer, subject) Name DER, exactly as encoded, from a TBSCertificate."""
    fields = read_single(tbs, TAG_SEQUENCE, "certificate").children()
    offset = 1 if fields and fields[0].tag == 0xA0 else 0
    if len(fields) < offset + 6:
        raise DerError("certificate has too few fields")
    issuer = fields[offset + 2].expect(TAG_SEQUENCE, "issuer")
    subject = fields[offset + 4].expect(TAG_SEQUENCE, "subject")
    return issuer.encoded, subject.encoded
