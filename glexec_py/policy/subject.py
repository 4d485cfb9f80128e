"""Decide whether a mapfile subject (DN or pattern) names a credential's DN: one rule for all files.

Runs as: root. Trusts: nothing. Hot path: yes.

Every DN comparison of the policy layer (grid-mapfile, ban lists, LCAS allow/ban lists) goes
through :func:`match_dn`, so a case or attribute-alias variant cannot be banned in one file and
mapped in another (attack catalogue E57). Exact subjects are compared by
``glexec_py.credentials.dn.dn_key`` (attribute aliases ``E``/``Email``/``emailAddress`` folded,
values compared caseIgnore).

Documented difference from LCMAPS: LCMAPS compares exact subjects with ``strcmp`` and patterns with
case-sensitive ``fnmatch``. glexec-py folds case and aliases for both (patterns are matched against
the normalised DN with the normalised pattern). A DN that differs from a mapfile entry only in
case therefore maps here and does not map in LCMAPS; the pool lease name is lower-cased in both, so
pool mappings agree. The parity table keeps to DNs where both rules give the same answer; the
difference has its own tests. FQANs are *not* DNs and keep LCMAPS' case-sensitive rules.
"""

from __future__ import annotations

from glexec_py.policy.wildcard import has_wildcard, match_wildcard

_cache: dict[str, object] = {}


def dn_key_of(dn: str) -> object:
    """The comparison key of ``dn``; the DN string itself when it cannot be parsed as a DN."""
    key = _cache.get(dn)
    if key is None:
        from glexec_py.credentials.dn import dn_key

        try:
            key = dn_key(dn)
        except Exception:  # noqa: BLE001 - an unparseable subject simply compares as text
            key = ("text", dn)
        if len(_cache) < 4096:
            _cache[dn] = key
    return key


def _pattern_text(key: object, fallback: str) -> str:
    return key if isinstance(key, str) else fallback


def match_dn(pattern: str, dn: str, *, wildcard: bool) -> bool:
    """True when the mapfile subject ``pattern`` names ``dn``.

    With ``wildcard`` and a pattern containing ``*``, ``?`` or ``[``, the pattern is matched with
    LCMAPS' fnmatch rules (``*`` crosses ``/``) against the DN as written, exactly as LCMAPS, and
    also (normalised pattern) against the normalised DN. A pattern such as ``/DC=org/*`` has no
    clean normalised form (``/*`` is not an RDN), so the plain match must stay; the union only
    adds case/alias variants, never drops an LCMAPS match.
    """
    if wildcard and has_wildcard(pattern):
        if match_wildcard(pattern, dn):
            return True
        dkey = dn_key_of(dn)
        pkey = dn_key_of(pattern)
        return isinstance(dkey, str) and isinstance(pkey, str) and match_wildcard(pkey, dkey)
    if pattern == dn:
        return True
    return dn_key_of(pattern) == dn_key_of(dn)


def match_fqan(pattern: str, fqan: str, *, wildcard: bool) -> bool:
    """FQAN matching exactly as LCMAPS: case-sensitive fnmatch or strcmp."""
    if wildcard:
        return match_wildcard(pattern, fqan)
    return pattern == fqan
