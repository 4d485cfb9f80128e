"""Grid DNs: render X.509 names in OpenSSL's slash form, and the one canonical comparison key.

Runs as: root or anyone. Trusts: nothing (names come from hostile certificates, DN strings from
site files). Hot path: yes (no cryptography import; names are read from their DER bytes).

Rendering (:func:`render_name`) is byte-compatible with ``openssl x509 -noout -subject -nameopt
compat`` (OpenSSL 3's ``X509_NAME_oneline``, which is also what LCMAPS prints and what
grid-mapfiles, ban lists and gridmapdir leases are written from):

* each RDN starts with ``/``; the attributes of a multi-valued RDN are joined with ``+``, in
  encoding order;
* the attribute is OpenSSL's short name (``CN``, ``DC``, ``emailAddress``, ``UID``, ...; table
  below) or the dotted OID when OpenSSL has no name for it;
* the value is written byte by byte from its encoding: ``/`` and ``+`` get a backslash, bytes
  outside printable ASCII become ``\\xHH`` (upper-case hex), everything else is copied. A BMPString
  therefore renders as ``\\x00A\\x00l...``, exactly as OpenSSL and LCMAPS print it.

OpenSSL does not escape a backslash, and prints the encoding's bytes without the string type.
So a few names render ambiguously: ``CN=a\\`` followed by ``CN=b`` and a single ``CN=a/CN=b``
both print as ``/CN=a\\/CN=b``; a T61String holding UTF-8 bytes prints like a UTF8String with
other characters. :func:`render_name` refuses exactly those names (:class:`AmbiguousNameError`)
instead of returning a string that another name shares; the credential layer turns that into
an authorization failure. Every name it does render is rendered injectively (checked by a
hypothesis property test). Refused:

* a backslash or a control character (U+0000-U+001F, U+007F) anywhere in a value;
* a UTF8String that is not valid UTF-8;
* a BMPString or UniversalString holding a character above U+00FF (its bytes could spell a
  printable ASCII string), or of a length that is not a whole number of characters;
* any other string type holding a byte outside printable ASCII.

Comparison (:func:`dn_key`): every plugin that compares DNs (ban lists, grid-mapfiles, lease
lookups, whitelists) compares ``dn_key(a) == dn_key(b)``, never the strings. See its docstring.
"""

from __future__ import annotations

from glexec_py.credentials import der

# OpenSSL 3.0 short names of the attribute types it knows (checked against ``openssl x509
# -nameopt compat`` in tests/unit/credentials/test_dn_openssl.py). Anything else renders dotted.
SHORT_NAMES: dict[str, str] = {
    "2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C",
    "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O", "2.5.4.11": "OU",
    "2.5.4.12": "title", "2.5.4.13": "description", "2.5.4.14": "searchGuide",
    "2.5.4.15": "businessCategory", "2.5.4.16": "postalAddress", "2.5.4.17": "postalCode",
    "2.5.4.18": "postOfficeBox", "2.5.4.19": "physicalDeliveryOfficeName",
    "2.5.4.20": "telephoneNumber", "2.5.4.21": "telexNumber",
    "2.5.4.22": "teletexTerminalIdentifier", "2.5.4.23": "facsimileTelephoneNumber",
    "2.5.4.24": "x121Address", "2.5.4.25": "internationaliSDNNumber",
    "2.5.4.26": "registeredAddress", "2.5.4.27": "destinationIndicator",
    "2.5.4.28": "preferredDeliveryMethod", "2.5.4.29": "presentationAddress",
    "2.5.4.30": "supportedApplicationContext", "2.5.4.31": "member", "2.5.4.32": "owner",
    "2.5.4.33": "roleOccupant", "2.5.4.34": "seeAlso", "2.5.4.35": "userPassword",
    "2.5.4.36": "userCertificate", "2.5.4.37": "cACertificate",
    "2.5.4.38": "authorityRevocationList", "2.5.4.39": "certificateRevocationList",
    "2.5.4.40": "crossCertificatePair", "2.5.4.41": "name", "2.5.4.42": "GN",
    "2.5.4.43": "initials", "2.5.4.44": "generationQualifier",
    "2.5.4.45": "x500UniqueIdentifier", "2.5.4.46": "dnQualifier",
    "2.5.4.47": "enhancedSearchGuide", "2.5.4.48": "protocolInformation",
    "2.5.4.49": "distinguishedName", "2.5.4.50": "uniqueMember", "2.5.4.51": "houseIdentifier",
    "2.5.4.53": "deltaRevocationList", "2.5.4.54": "dmdName", "2.5.4.65": "pseudonym",
    "2.5.4.72": "role", "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.1": "UID", "0.9.2342.19200300.100.1.2": "textEncodedORAddress",
    "0.9.2342.19200300.100.1.3": "mail", "0.9.2342.19200300.100.1.4": "info",
    "0.9.2342.19200300.100.1.5": "favouriteDrink",
    "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.37": "associatedDomain",
    "1.2.840.113549.1.9.1": "emailAddress", "1.2.840.113549.1.9.2": "unstructuredName",
    "1.2.840.113549.1.9.3": "contentType", "1.2.840.113549.1.9.7": "challengePassword",
    "1.2.840.113549.1.9.8": "unstructuredAddress", "1.2.840.113549.1.9.14": "extReq",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL", "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
}

# dn_key: spellings (lower-cased) that name the same attribute type -> the one key spelling.
# Short names, OpenSSL long names, the aliases older tools and sites write (E, Email, USERID),
# and dotted OIDs all land on the lower-cased short name.
_ALIASES: dict[str, str] = {
    "e": "emailaddress", "email": "emailaddress", "pkcs9email": "emailaddress",
    "userid": "uid", "commonname": "cn", "surname": "sn", "countryname": "c",
    "localityname": "l", "stateorprovincename": "st", "s": "st", "streetaddress": "street",
    "organizationname": "o", "organizationalunitname": "ou", "domaincomponent": "dc",
    "givenname": "gn", "g": "gn", "rfc822mailbox": "mail", "serialno": "serialnumber",
}
for _oid, _short in SHORT_NAMES.items():
    _ALIASES[_oid] = _short.lower()
del _oid, _short

_TAG_UTF8 = 0x0C
_TAG_BMP = 0x1E
_TAG_UNIVERSAL = 0x1C


class AmbiguousNameError(ValueError):
    """The name's slash form would be shared by another name (see the module docstring)."""


def render_name(name: object) -> str:
    """The OpenSSL ``-nameopt compat`` slash form of a ``cryptography.x509.Name`` or name DER.

    Raises :class:`AmbiguousNameError` for the names whose OpenSSL rendering is not unique and
    ``ValueError`` for undecodable DER.
    """
    if isinstance(name, (bytes, bytearray, memoryview)):
        encoded = bytes(name)
    else:
        encoded = name.public_bytes()  # type: ignore[attr-defined]
    return render_name_der(encoded)


def render_name_der(encoded: bytes) -> str:
    """Render a DER ``Name`` (``SEQUENCE OF SET OF AttributeTypeAndValue``)."""
    try:
        outer = der.read_single(encoded, der.TAG_SEQUENCE, "name")
        parts: list[str] = []
        for rdn in outer.children():
            rdn.expect(der.TAG_SET, "relative distinguished name")
            atvs = rdn.children()
            if not atvs:
                raise der.DerError("empty relative distinguished name")
            for index, atv in enumerate(atvs):
                atv.expect(der.TAG_SEQUENCE, "attribute")
                fields = atv.children()
                if len(fields) != 2:
                    raise der.DerError("attribute is not a type and a value")
                oid = der.decode_oid(fields[0].expect(der.TAG_OID, "attribute type").content)
                value = fields[1]
                if value.tag & 0x20:
                    raise der.DerError("constructed attribute value")
                parts.append("+" if index else "/")
                parts.append(SHORT_NAMES.get(oid, oid))
                parts.append("=")
                parts.append(_render_value(oid, value.tag, value.content))
    except der.DerError as exc:
        raise ValueError(f"malformed name: {exc}") from None
    return "".join(parts)


def _render_value(oid: str, tag: int, raw: bytes) -> str:
    _check_unambiguous(oid, tag, raw)
    out = []
    for byte in raw:
        if byte < 0x20 or byte > 0x7E:
            out.append(f"\\x{byte:02X}")
        elif byte == 0x2F or byte == 0x2B:  # '/' '+'
            out.append("\\" + chr(byte))
        else:
            out.append(chr(byte))
    return "".join(out)


def _check_unambiguous(oid: str, tag: int, raw: bytes) -> None:
    label = SHORT_NAMES.get(oid, oid)
    if tag == _TAG_UTF8:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise AmbiguousNameError(f"{label} value is not valid UTF-8") from None
    elif tag in (_TAG_BMP, _TAG_UNIVERSAL):
        width = 2 if tag == _TAG_BMP else 4
        if len(raw) % width:
            raise AmbiguousNameError(f"{label} value has a partial wide character")
        codes = [int.from_bytes(raw[i:i + width], "big") for i in range(0, len(raw), width)]
        if any(code > 0xFF for code in codes):
            raise AmbiguousNameError(f"{label} wide-string value has characters above U+00FF")
        text = "".join(chr(code) for code in codes)
    else:
        if any(byte < 0x20 or byte > 0x7E for byte in raw):
            raise AmbiguousNameError(f"{label} value has bytes outside printable ASCII")
        text = raw.decode("ascii")
    for char in text:
        if char == "\\":
            raise AmbiguousNameError(f"{label} value contains a backslash")
        if char < " " or char == "\x7f":
            raise AmbiguousNameError(f"{label} value contains a control character")


def dn_key(dn: str) -> str:
    """The canonical comparison key of a slash-form DN; compare keys, never DN strings.

    Deterministic rules, in order:

    1. The DN must start with ``/`` and its first component must be ``attr=value``; otherwise
       ``ValueError`` (an RFC 2253 ``CN=x,O=y`` string is not a grid DN and must not silently
       match anything).
    2. Escapes are decoded first: ``\\xHH`` (either case) is the byte HH; a backslash before any
       other character makes that character literal (``\\/``, ``\\+``, ``\\\\``, ``\\,``, ``\\=``);
       a trailing lone backslash is literal.
    3. An unescaped ``/`` starts a new RDN, and an unescaped ``+`` a further attribute of the same
       RDN, only when the text after it starts with an attribute name and ``=`` (a letter then
       letters/digits/``-``, or a dotted OID). Otherwise the character belongs to the value. This
       keeps DNs written by pre-3.0 OpenSSL (``/CN=host/foo.example.org``) equal to OpenSSL 3's
       ``/CN=host\\/foo.example.org``, while ``/CN=alice/CN=root`` (two RDNs) never equals the
       single value ``alice/CN=root`` (rendered ``/CN=alice\\/CN=root``): structure wins.
    4. Attribute names are case-insensitive and aliases collapse: ``E``, ``Email``,
       ``emailAddress`` and ``1.2.840.113549.1.9.1`` are one attribute; so are ``UID``,
       ``USERID`` and ``userId``; long names and dotted OIDs of known types map to the short name.
    5. Values follow X.500 caseIgnoreMatch: the bytes are read as UTF-8 (undecodable bytes are
       kept distinct), Unicode NFKC-normalized, case-folded, leading and trailing spaces dropped
       and inner runs of spaces reduced to one.
    6. The attributes of a multi-valued RDN are sorted (a SET has no order), so ``CN=a+UID=b``
       equals ``UID=b+CN=a`` but never ``/CN=a/UID=b``.
    7. The key is written back unambiguously: ``/`` between RDNs, ``+`` between attributes,
       ``attr=value`` with ``\\``, ``/``, ``+`` escaped by a backslash and control characters
       as ``\\xHH``.

    The string type is not part of a rendered DN, so a BMPString value (rendered
    ``\\x00A\\x00l``) and a UTF8String with the same text (``Al``) have different keys, exactly
    as their slash forms differ for LCMAPS.
    """
    if not isinstance(dn, str):
        raise TypeError("dn_key needs a str")
    rdns = _parse_slash_dn(dn)
    out = []
    for rdn in rdns:
        pairs = sorted((_key_attr(attr), _key_value(raw)) for attr, raw in rdn)
        out.append("/" + "+".join(f"{attr}={_escape_key(value)}" for attr, value in pairs))
    return "".join(out)


def split_dn(dn: str) -> list[list[tuple[str, bytes]]]:
    """The RDN structure of a slash-form DN (rules 1-3 of :func:`dn_key`): raw attribute names
    and unescaped value bytes, for callers that need more than equality."""
    return _parse_slash_dn(dn)


def _parse_slash_dn(dn: str) -> list[list[tuple[str, bytes]]]:
    if not dn.startswith("/"):
        raise ValueError(f"not a slash-form DN: {dn[:60]!r}")
    rdns: list[list[tuple[str, bytes]]] = []
    pos = 0
    length = len(dn)
    new_rdn = True
    while pos < length:
        # pos sits on a separator ('/' or '+') that starts an attribute.
        name_end = _attr_name_end(dn, pos + 1)
        if name_end < 0:
            raise ValueError(f"DN component without attribute name at offset {pos}: {dn[:60]!r}")
        attr = dn[pos + 1:name_end]
        pos = name_end + 1  # past '='
        value = bytearray()
        while pos < length:
            char = dn[pos]
            if char == "\\":
                if dn.startswith("x", pos + 1) or dn.startswith("X", pos + 1):
                    hexpart = dn[pos + 2:pos + 4]
                    if len(hexpart) == 2 and all(c in "0123456789abcdefABCDEF" for c in hexpart):
                        value.append(int(hexpart, 16))
                        pos += 4
                        continue
                if pos + 1 < length:
                    value += dn[pos + 1].encode("utf-8")
                    pos += 2
                else:
                    value.append(0x5C)
                    pos += 1
                continue
            if (char == "/" or char == "+") and _attr_name_end(dn, pos + 1) >= 0:
                break
            value += char.encode("utf-8", "surrogateescape")
            pos += 1
        if new_rdn:
            rdns.append([])
        rdns[-1].append((attr, bytes(value)))
        new_rdn = pos < length and dn[pos] == "/"
    return rdns


def _attr_name_end(dn: str, pos: int) -> int:
    """Offset of the '=' ending an attribute name that starts at ``pos``, or -1."""
    length = len(dn)
    if pos >= length:
        return -1
    first = dn[pos]
    end = pos
    if first.isascii() and first.isalpha():
        while end < length and dn[end].isascii() and (dn[end].isalnum() or dn[end] == "-"):
            end += 1
    elif first.isascii() and first.isdigit():
        while end < length and dn[end].isascii() and (dn[end].isdigit() or dn[end] == "."):
            end += 1
        if dn[end - 1] == "." or "." not in dn[pos:end] or ".." in dn[pos:end]:
            return -1
    else:
        return -1
    if end < length and dn[end] == "=":
        return end
    return -1


def _key_attr(attr: str) -> str:
    lowered = attr.lower()
    return _ALIASES.get(lowered, lowered)


def _key_value(raw: bytes) -> str:
    text = raw.decode("utf-8", "surrogateescape")
    if not text.isascii():
        import unicodedata

        text = unicodedata.normalize("NFKC", text)
    text = " ".join(part for part in text.split(" ") if part)
    return text.casefold()


def _escape_key(value: str) -> str:
    out = []
    for char in value:
        if char in "\\/+":
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(f"\\x{ord(char):02X}")
        elif "\udc80" <= char <= "\udcff":  # an undecodable byte kept by surrogateescape
            out.append(f"\\x{ord(char) - 0xDC00:02X}")
        else:
            out.append(char)
    return "".join(out)
