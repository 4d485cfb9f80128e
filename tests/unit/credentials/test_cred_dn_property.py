"""Property: render_name is injective over generated names (it has a left inverse).

A name is identified by its RDN structure and each attribute's (OID, text) — the string type is
an encoding detail, except that a wide string (BMP/Universal) renders its zero bytes, which the
inverse below uses. If ``decode_rendered(render_name(n)) == identity(n)`` for every name that
renders, two different names can never render the same.
"""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from glexec_py.credentials.dn import SHORT_NAMES, AmbiguousNameError, dn_key, render_name

pytestmark = pytest.mark.fuzz

OIDS = ["2.5.4.3", "2.5.4.10", "2.5.4.11", "0.9.2342.19200300.100.1.25",
        "0.9.2342.19200300.100.1.1", "1.2.840.113549.1.9.1", "2.5.4.5", "1.2.3.4", "1.2.3.44"]
TYPES = [_ASN1Type.UTF8String, _ASN1Type.PrintableString, _ASN1Type.IA5String,
         _ASN1Type.BMPString, _ASN1Type.UniversalString, _ASN1Type.T61String]
# Mostly characters that render (so most examples exercise the inverse), some that must refuse.
SAFE = list("aAzZ09 /+=,.-'\"x") + ["é", "ü", "ÿ", "\x80", "中"]
TRICKY = ["\\", "\x00", "\n", "\u0100", "𝄞", "\x7f"]
ALPHABET = st.sampled_from(SAFE * 6 + TRICKY)
OID_OF = {short: oid for oid, short in SHORT_NAMES.items()}


@st.composite
def attributes(draw) -> x509.NameAttribute:
    oid = draw(st.sampled_from(OIDS))
    kind = draw(st.sampled_from(TYPES))
    text = "".join(draw(st.lists(ALPHABET, max_size=8)))
    try:
        return x509.NameAttribute(x509.ObjectIdentifier(oid), text, kind)
    except ValueError:  # cryptography refuses e.g. non-printable PrintableString
        assume(False)
        raise


names = st.lists(st.lists(attributes(), min_size=1, max_size=3,
                          unique_by=lambda a: (a.oid, a.value)), max_size=5).map(
    lambda rdns: x509.Name([x509.RelativeDistinguishedName(r) for r in rdns]))


def identity(name: x509.Name) -> list[list[tuple[str, str]]]:
    # An RDN is a SET: DER sorts its members, so compare them as sorted lists.
    return [sorted((a.oid.dotted_string, a.value) for a in rdn) for rdn in name.rdns]


def decode_rendered(text: str) -> list[list[tuple[str, str]]]:
    """Independent inverse of the OpenSSL compat rendering for names render_name accepts."""
    rdns: list[list[tuple[str, str]]] = []
    pos = 0
    while pos < len(text):
        sep = text[pos]
        eq = text.index("=", pos)
        attr = text[pos + 1:eq]
        pos = eq + 1
        raw = bytearray()
        while pos < len(text) and text[pos] not in "/+":
            if text[pos] == "\\":
                if text[pos + 1] == "x":
                    raw.append(int(text[pos + 2:pos + 4], 16))
                    pos += 4
                else:
                    raw.append(ord(text[pos + 1]))
                    pos += 2
            else:
                raw.append(ord(text[pos]))
                pos += 1
        data = bytes(raw)
        if data and len(data) % 4 == 0 and all(data[i] == 0 for i in range(len(data))
                                               if i % 4 != 3):
            value = data.decode("utf-32-be")
        elif data and len(data) % 2 == 0 and all(data[i] == 0 for i in range(0, len(data), 2)):
            value = data.decode("utf-16-be")
        else:
            value = data.decode("utf-8")
        if sep == "/":
            rdns.append([])
        rdns[-1].append((OID_OF.get(attr, attr), value))
    return [sorted(rdn) for rdn in rdns]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(names)
def test_render_has_a_left_inverse(name: x509.Name) -> None:
    try:
        rendered = render_name(name)
    except AmbiguousNameError:
        return
    assert decode_rendered(rendered) == identity(name)
    # and its key keeps the RDN structure (same number of RDNs and attributes)
    if name.rdns:
        key = dn_key(rendered)
        assert key.count("/") - key.count("\\/") == len(name.rdns)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.lists(names, min_size=2, max_size=12))
def test_distinct_names_render_distinctly(batch: list[x509.Name]) -> None:
    seen: dict[str, list] = {}
    for name in batch:
        try:
            rendered = render_name(name)
        except AmbiguousNameError:
            continue
        ident = identity(name)
        assert seen.setdefault(rendered, ident) == ident
