"""Parse grid-mapfile-format files (grid-mapfile, groupmapfile, ban lists) with LCMAPS' rules.

Runs as: root. Trusts: the file's bytes only after ``glexec_py.trust`` accepted the file.
Hot path: yes.

Format (LCMAPS ``lcmaps_gridmapfile.c``): one entry per line; blank lines and lines whose first
non-blank character is ``#`` are skipped. The subject is a double-quoted string (a backslash only
protects the next character while the closing quote is searched; escapes stay verbatim in the
subject) or a bare word ending at white space. After it, spaces, tabs and commas are skipped and
the rest of the line up to an unescaped ``#`` holds the mappings, separated by commas and/or white
space, with backslash escapes expanded.

Where LCMAPS is unsafe this parser is strict instead (attack catalogue E60): LCMAPS reads lines
into a 1024-byte buffer and parses the tail of a longer line as a fabricated entry; here a line of
more than 1023 characters, a NUL byte, invalid UTF-8, an unbalanced quote or a trailing backslash
makes the *whole file* unusable (PolicyConfigError, 202) with file:line, so a damaged ban list can
never silently drop an entry. A leading UTF-8 byte-order mark and CR line ends are accepted and
ignored (editors on other systems add them; LCMAPS would have made the first DN and every last
mapping unmatchable).
"""

from __future__ import annotations

from glexec_py.plugin_api import PolicyConfigError

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MAX_LINE = 1023
_BOM = "\ufeff"


class MapEntry:
    """One usable line: the subject (DN or FQAN pattern) and its mappings in file order."""

    __slots__ = ("subject", "mappings", "line")

    def __init__(self, subject: str, mappings: tuple[str, ...], line: int) -> None:
        self.subject = subject
        self.mappings = mappings
        self.line = line

    def __repr__(self) -> str:
        return f"MapEntry({self.subject!r}, {self.mappings!r}, line={self.line})"


def _split_mappings(rest: str, where: str) -> tuple[str, ...]:
    out: list[str] = []
    cur: list[str] = []
    i = 0
    n = len(rest)
    while i < n:
        c = rest[i]
        if c == "\\":
            if i + 1 >= n:
                raise PolicyConfigError(f"{where}: trailing backslash (line continuation "
                                        f"is not supported)")
            cur.append(rest[i + 1])
            i += 2
            continue
        if c == "#":
            break
        if c in " \t,":
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        out.append("".join(cur))
    return tuple(out)


def parse_line(text: str, where: str) -> tuple[str, tuple[str, ...]] | None:
    """Parse one line; None for a blank or comment line. ``where`` is "file:line" for errors."""
    s = text.lstrip(" \t")
    if not s or s[0] == "#":
        return None
    if s[0] == '"':
        i = 1
        while i < len(s):
            if s[i] == "\\":
                i += 2
                continue
            if s[i] == '"':
                break
            i += 1
        if i >= len(s):
            raise PolicyConfigError(f"{where}: unbalanced quotes in subject")
        subject = s[1:i]
        rest = s[i + 1:]
    else:
        i = 0
        while i < len(s) and s[i] not in " \t":
            i += 1
        subject = s[:i]
        rest = s[i:]
        if subject.endswith("\\") and not rest:
            raise PolicyConfigError(f"{where}: trailing backslash (line continuation "
                                    f"is not supported)")
    rest = rest.lstrip(" \t,")
    return subject, _split_mappings(rest, where)


def iter_lines(data: bytes, path: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) of a mapfile's bytes, enforcing the strict byte rules."""
    if b"\0" in data:
        lineno = data[:data.index(b"\0")].count(b"\n") + 1
        raise PolicyConfigError(f"{path}:{lineno}: NUL byte in file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        lineno = data[:e.start].count(b"\n") + 1
        raise PolicyConfigError(f"{path}:{lineno}: not valid UTF-8")
    if text.startswith(_BOM):
        text = text[1:]
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if len(line) > MAX_LINE:
            raise PolicyConfigError(f"{path}:{lineno}: line longer than {MAX_LINE} characters")
        yield lineno, line


def parse_mapfile(data: bytes, path: str) -> tuple[MapEntry, ...]:
    """All entries of a grid-mapfile-format file, in file order; raises PolicyConfigError."""
    entries: list[MapEntry] = []
    for lineno, line in iter_lines(data, path):
        parsed = parse_line(line, f"{path}:{lineno}")
        if parsed is not None:
            entries.append(MapEntry(parsed[0], parsed[1], lineno))
    return tuple(entries)


def read_mapfile(path: str, what: str = "grid-mapfile") -> tuple[MapEntry, ...]:
    """Read ``path`` through the trust checks and parse it."""
    from glexec_py.trust import read_trusted_file

    return parse_mapfile(read_trusted_file(path, what=what), path)


def select_mapping(entries: tuple[MapEntry, ...], matches: Callable[[str], bool], *,
                   pool: bool, requested: str | None = None) -> tuple[MapEntry, str] | None:
    """LCMAPS' "first suitable line" rule: (entry, mapping) or None.

    A line is suitable when its subject matches and it has a mapping of the wanted kind: starting
    with ``.`` for pools, not starting with it for local accounts; with ``requested`` the mapping
    must also equal it (for pools: the requested account must carry the pool prefix). A matching
    line without a suitable mapping does not stop the search.
    """
    for entry in entries:
        if not entry.mappings or not matches(entry.subject):
            continue
        for mapping in entry.mappings:
            if mapping.startswith(".") != pool:
                continue
            if requested is not None:
                if pool and not requested.startswith(mapping[1:]):
                    continue
                if not pool and mapping != requested:
                    continue
            return entry, mapping
    return None
