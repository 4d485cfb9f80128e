"""Shell-style wildcard matching with LCMAPS' rules (``fnmatch`` with FNM_NOESCAPE).

Runs as: root. Trusts: nothing (patterns come from site files, subjects from credentials).
Hot path: yes.

The standard ``fnmatch`` module compiles patterns through ``re`` (7 ms of imports on every call),
so this small matcher does the same job: ``*`` matches any run of characters *including* ``/``
(LCMAPS calls fnmatch without FNM_PATHNAME), ``?`` one character, ``[...]`` a set with ranges and
``!``/``^`` negation, and a backslash is an ordinary character (FNM_NOESCAPE).
"""

from __future__ import annotations

WILDCARD_CHARS = frozenset("*?[")


def has_wildcard(pattern: str) -> bool:
    return any(c in WILDCARD_CHARS for c in pattern)


def _match_set(pattern: str, pos: int, ch: str) -> tuple[bool, int]:
    """Match ``ch`` against the set starting at ``pattern[pos] == '['``.

    Returns (matched, index after the set); an unterminated set returns (ch == '[', pos + 1) so the
    bracket is an ordinary character, as glibc does.
    """
    i = pos + 1
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    start = i
    matched = False
    while i < len(pattern):
        c = pattern[i]
        if c == "]" and i > start:
            return (matched != negate, i + 1)
        if i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            if pattern[i] <= ch <= pattern[i + 2]:
                matched = True
            i += 3
            continue
        if c == ch:
            matched = True
        i += 1
    return (ch == "[", pos + 1)


def match_wildcard(pattern: str, text: str) -> bool:
    """True when ``text`` matches ``pattern`` as a whole (case-sensitive)."""
    p = t = 0
    star_p = -1
    star_t = 0
    while t < len(text):
        if p < len(pattern):
            c = pattern[p]
            if c == "*":
                star_p = p
                star_t = t
                p += 1
                continue
            if c == "?":
                p += 1
                t += 1
                continue
            if c == "[":
                ok, nxt = _match_set(pattern, p, text[t])
                if ok:
                    p = nxt
                    t += 1
                    continue
            elif c == text[t]:
                p += 1
                t += 1
                continue
        if star_p < 0:
            return False
        star_t += 1
        t = star_t
        p = star_p + 1
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)
