"""Parse the original ``lcmaps.db`` policy language into a ``PolicyFile`` with LCMAPS' errors.

Runs as: root (launcher) or anyone (``glexec-policy``). Trusts: nothing; the bytes come through
``glexec_py.trust``. Hot path: yes.

Lexical rules (LCMAPS ``pdl_lex.l``): blanks ignored, ``#`` comments, a *term* is
``[A-Za-z0-9_./]+`` (no ``-``), a *label* is a term glued to ``:`` that starts its line,
tokens ``=``, ``->``, ``|``, ``~``; strings are double-quoted, end on the same line, and several
in a row are joined with one space; ``\\"`` inside a string is a literal quote (an odd number of
them is "unbalanced quotes"); ``path = value`` takes the rest of the line. An unknown character
is a warning, as in LCMAPS. Grammar (``pdl_yacc.y``): definitions (``name = "str" "str"``,
``name = term``, ``path = ...``) all before the first policy; a policy is ``label:`` followed by
rules ``A -> B``, ``A -> B | C`` or ``~A -> C``. Every error is fatal with file:line:column.
"""

from __future__ import annotations

from glexec_py.policy.model import Policy, PolicyFile, Rule, Variable, check_policies

_TERM_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./")
MAX_FILE = 1 << 20

# Token kinds
TERM, LABEL, STRING, EQ, ARROW, PIPE, TILDE, PATHVAL, EOF = (
    "term", "label", "string", "'='", "'->'", "'|'", "'~'", "path value", "end of file")


class Token:
    __slots__ = ("kind", "value", "line", "col")

    def __init__(self, kind: str, value: str, line: int, col: int) -> None:
        self.kind = kind
        self.value = value
        self.line = line
        self.col = col

    def describe(self) -> str:
        if self.kind in (TERM, LABEL, STRING):
            return f"{self.kind} '{self.value}'"
        return self.kind


def lex(text: str, pf: PolicyFile) -> list[Token]:
    """Tokens of ``text``; unknown characters become warnings in ``pf``."""
    toks: list[Token] = []
    line = 1
    i = 0
    n = len(text)
    line_start = 0
    first_on_line = True
    prev_kind = None
    while i < n:
        c = text[i]
        col = i - line_start + 1
        if c == "\n":
            line += 1
            i += 1
            line_start = i
            first_on_line = True
            continue
        if c in " \t\r":
            i += 1
            continue
        if c == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c == '"':
            value, i = _lex_string(text, i, pf, line, col)
            toks.append(Token(STRING, value, line, col))
        elif c in _TERM_CHARS:
            j = i
            while j < n and text[j] in _TERM_CHARS:
                j += 1
            word = text[i:j]
            if j < n and text[j] == ":":
                if not first_on_line:
                    raise pf.error(line, col, f"label '{word}:' must start a line")
                toks.append(Token(LABEL, word, line, col))
                i = j + 1
            elif word == "path" and first_on_line and _next_is_eq(text, j):
                toks.append(Token(TERM, word, line, col))
                eq = text.index("=", j)
                toks.append(Token(EQ, "=", line, eq - line_start + 1))
                k = eq + 1
                end = k
                while end < n and text[end] not in "\n#":
                    end += 1
                toks.append(Token(PATHVAL, text[k:end].strip(" \t\r"), line,
                                  k - line_start + 1))
                i = end
            else:
                toks.append(Token(TERM, word, line, col))
                i = j
        elif c == "=":
            toks.append(Token(EQ, c, line, col))
            i += 1
        elif c == "|":
            toks.append(Token(PIPE, c, line, col))
            i += 1
        elif c == "~":
            toks.append(Token(TILDE, c, line, col))
            i += 1
        elif c == "-" and i + 1 < n and text[i + 1] == ">":
            toks.append(Token(ARROW, "->", line, col))
            i += 2
        else:
            pf.warn(line, col, f"unrecognized token {c!r}")
            i += 1
            continue
        first_on_line = False
        prev_kind = toks[-1].kind
    del prev_kind
    toks.append(Token(EOF, "", line, max(1, n - line_start + 1)))
    return toks


def _next_is_eq(text: str, j: int) -> bool:
    while j < len(text) and text[j] in " \t":
        j += 1
    return j < len(text) and text[j] == "="


def _lex_string(text: str, i: int, pf: PolicyFile, line: int, col: int) -> tuple[str, int]:
    out: list[str] = []
    escaped_quotes = 0
    j = i + 1
    n = len(text)
    while j < n:
        c = text[j]
        if c == "\n":
            break
        if c == "\\" and j + 1 < n and text[j + 1] == '"':
            out.append('"')
            escaped_quotes += 1
            j += 2
            continue
        if c == '"':
            if escaped_quotes % 2:
                raise pf.error(line, col, "unbalanced quotes (escaped quotes must pair)")
            return "".join(out), j + 1
        out.append(c)
        j += 1
    raise pf.error(line, col, "unbalanced quotes: string not closed on its line")


class _Parser:
    def __init__(self, toks: list[Token], pf: PolicyFile) -> None:
        self.toks = toks
        self.pos = 0
        self.pf = pf

    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.pos + k, len(self.toks) - 1)]

    def take(self, kind: str, what: str) -> Token:
        tok = self.peek()
        if tok.kind != kind:
            raise self.pf.error(tok.line, tok.col,
                                f"syntax error: expected {what}, found {tok.describe()}")
        self.pos += 1
        return tok

    def parse(self) -> None:
        pf = self.pf
        while self.peek().kind == TERM:
            self.definition()
        tok = self.peek()
        if tok.kind not in (LABEL, EOF):
            raise pf.error(tok.line, tok.col,
                           f"syntax error: expected a definition or a policy label, found "
                           f"{tok.describe()}")
        had_definitions = bool(pf.variables) or pf.lcmaps_path is not None
        while self.peek().kind == LABEL:
            self.policy()
        tok = self.peek()
        if tok.kind != EOF:
            if tok.kind == TERM and self.peek(1).kind == EQ:
                raise pf.error(tok.line, tok.col,
                               "syntax error: definitions must come before the first policy")
            raise pf.error(tok.line, tok.col, f"syntax error: unexpected {tok.describe()}")
        if not pf.policies:
            if had_definitions:
                raise pf.error(tok.line, tok.col, "config file contains no policy rules")
            pf.warn(1, 1, "empty policy file")

    def definition(self) -> None:
        pf = self.pf
        name = self.take(TERM, "a variable name")
        self.take(EQ, "'='")
        if name.value == "path" and self.peek().kind == PATHVAL:
            val = self.take(PATHVAL, "a path")
            if not val.value:
                raise pf.error(val.line, val.col, "path = needs a value")
            if pf.lcmaps_path is not None:
                pf.warn(name.line, name.col, f"path already defined as {pf.lcmaps_path}; "
                        f"ignoring {val.value}")
            else:
                pf.lcmaps_path = val.value
            return
        tok = self.peek()
        if tok.kind == STRING:
            parts = []
            while self.peek().kind == STRING:
                parts.append(self.take(STRING, "a string").value)
            value = " ".join(parts)
        elif tok.kind == TERM:
            value = self.take(TERM, "a term").value
        else:
            raise pf.error(tok.line, tok.col,
                           f"syntax error: expected a string or term, found {tok.describe()}")
        if name.value in pf.variables:
            first = pf.variables[name.value]
            raise pf.error(name.line, name.col, f"variable '{name.value}' already defined at "
                           f"line {first.line}")
        pf.variables[name.value] = Variable(name.value, value, name.line, name.col)

    def policy(self) -> None:
        pf = self.pf
        label = self.take(LABEL, "a policy label")
        rules: list[Rule] = []
        while self.peek().kind in (TERM, TILDE):
            if self.peek().kind == TERM and self.peek(1).kind == EQ:
                break
            rules.append(self.rule())
        if any(p.name == label.value for p in pf.policies):
            raise pf.error(label.line, label.col, f"policy '{label.value}' already defined")
        if not rules:
            pf.warn(label.line, label.col, f"policy '{label.value}' has no rules; ignored")
            return
        pf.policies.append(Policy(label.value, rules, label.line, label.col))

    def rule(self) -> Rule:
        negated = self.peek().kind == TILDE
        start = self.peek()
        if negated:
            self.pos += 1
        state = self.take(TERM, "a state")
        self.take(ARROW, "'->'")
        target = self.take(TERM, "a state").value
        if negated:
            if self.peek().kind == PIPE:
                tok = self.peek()
                raise self.pf.error(tok.line, tok.col,
                                    "syntax error: '~state -> state' takes no '|' branch")
            return Rule(state.value, None, target, start.line, start.col)
        failure = None
        if self.peek().kind == PIPE:
            self.pos += 1
            failure = self.take(TERM, "a state").value
        return Rule(state.value, target, failure, start.line, start.col)


def parse_lcmaps_db(data: bytes | str, path: str) -> PolicyFile:
    """Parse lcmaps.db text; raises PolicyConfigError ("file:line:col: message") on any error."""
    pf = PolicyFile(path)
    if isinstance(data, bytes):
        if len(data) > MAX_FILE:
            raise pf.error(1, 1, "file too large")
        if b"\0" in data:
            lineno = data[:data.index(b"\0")].count(b"\n") + 1
            raise pf.error(lineno, 1, "NUL byte in file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            lineno = data[:e.start].count(b"\n") + 1
            raise pf.error(lineno, 1, "not valid UTF-8")
    else:
        text = data
    if text.startswith("\ufeff"):
        text = text[1:]
    _Parser(lex(text, pf), pf).parse()
    check_policies(pf)
    return pf


def render_lcmaps_db(pf: PolicyFile) -> str:
    """lcmaps.db text with the same meaning as ``pf`` (used by ``glexec-policy convert``)."""
    out = []
    if pf.lcmaps_path:
        out.append(f"path = {pf.lcmaps_path}")
    for var in pf.variables.values():
        out.append(f"{var.name} = " + _render_value(var.value))
    out.append("")
    for policy in pf.policies:
        out.append(f"{policy.name}:")
        out.extend(rule.as_lcmaps() for rule in policy.rules)
        out.append("")
    return "\n".join(out)


def _render_value(value: str) -> str:
    if value and all(c in _TERM_CHARS for c in value):
        return value
    if "\n" in value:
        raise ValueError("a value cannot contain a newline in lcmaps.db")
    return '"' + value.replace('"', '\\"') + '"'
