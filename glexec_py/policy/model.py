"""The one in-memory form of a policy file, whichever syntax it was written in, and its checks.

Runs as: root (launcher) or anyone (``glexec-policy``). Trusts: nothing; every structural rule
LCMAPS enforces at start-up is enforced here. Hot path: yes.

Both parsers (``lcmaps_db`` and ``yaml_form``) produce a :class:`PolicyFile`; :func:`check_policies`
applies LCMAPS' semantic rules (duplicate states, policy names used as states, cycles,
unreachable rules); :func:`compile_policy` turns it into plain tuples and dicts (marshal-able)
that the engine runs — the shape a compiled-policy cache will store later.
"""

from __future__ import annotations

from glexec_py.plugin_api import PolicyConfigError

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

MAX_ARGS = 50
MAX_ARG_STRING = 2000
MAX_PATH = 500


class Variable:
    """``name = value`` in lcmaps.db (a module definition when a state uses it)."""

    __slots__ = ("name", "value", "line", "col")

    def __init__(self, name: str, value: str, line: int = 0, col: int = 0) -> None:
        self.name = name
        self.value = value
        self.line = line
        self.col = col


class Rule:
    """One rule: ``state -> on_success | on_failure``; ``~state -> on_failure`` has no success."""

    __slots__ = ("state", "on_success", "on_failure", "line", "col")

    def __init__(self, state: str, on_success: str | None, on_failure: str | None,
                 line: int = 0, col: int = 0) -> None:
        self.state = state
        self.on_success = on_success
        self.on_failure = on_failure
        self.line = line
        self.col = col

    def as_lcmaps(self) -> str:
        if self.on_success is None:
            return f"~{self.state} -> {self.on_failure}"
        if self.on_failure is None:
            return f"{self.state} -> {self.on_success}"
        return f"{self.state} -> {self.on_success} | {self.on_failure}"


class Policy:
    __slots__ = ("name", "rules", "line", "col")

    def __init__(self, name: str, rules: list[Rule], line: int = 0, col: int = 0) -> None:
        self.name = name
        self.rules = rules
        self.line = line
        self.col = col


class PolicyFile:
    """A parsed policy file: the LCMAPS ``path``, variables, policies (file order), warnings."""

    __slots__ = ("path", "lcmaps_path", "variables", "policies", "warnings")

    def __init__(self, path: str) -> None:
        self.path = path
        self.lcmaps_path: str | None = None
        self.variables: dict[str, Variable] = {}
        self.policies: list[Policy] = []
        self.warnings: list[str] = []

    def error(self, line: int, col: int, message: str) -> PolicyConfigError:
        return PolicyConfigError(f"{self.path}:{line}:{col}: {message}")

    def warn(self, line: int, col: int, message: str) -> None:
        self.warnings.append(f"{self.path}:{line}:{col}: warning: {message}")

    def states(self) -> list[str]:
        """Every state named by any rule, in first-use order."""
        seen: dict[str, None] = {}
        for policy in self.policies:
            for rule in policy.rules:
                for s in (rule.state, rule.on_success, rule.on_failure):
                    if s is not None:
                        seen.setdefault(s, None)
        return list(seen)


def tokenize_args(text: str) -> list[str]:
    """LCMAPS ``lcmaps_tokenize``: split at blanks; a token opening with ``"`` runs to the next."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in " \t\n":
            i += 1
            continue
        if c == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise ValueError("unbalanced quotes in arguments")
            out.append(text[i + 1:end])
            i = end + 1
            continue
        j = i
        while j < n and text[j] not in " \t\n":
            j += 1
        out.append(text[i:j])
        i = j
    return out


def quote_arg(arg: str) -> str:
    if arg and not any(c in arg for c in ' \t\n"'):
        return arg
    return '"' + arg + '"'


def resolve_state(pf: PolicyFile, state: str) -> tuple[str, list[str], Variable | None]:
    """(module file name, argument words, defining variable) of a state, as LCMAPS reduces it."""
    seen: list[str] = []
    value = state
    var: Variable | None = None
    while value in pf.variables:
        if value in seen:
            first = pf.variables[seen[0]]
            raise pf.error(first.line, first.col,
                           f"variable loop: {' -> '.join([*seen, value])}")
        seen.append(value)
        var = pf.variables[value]
        value = var.value
    line, col = (var.line, var.col) if var else (0, 0)
    text = value.strip(" \t")
    module, _, argtext = text.partition(" ")
    if not module:
        raise pf.error(line, col, f"state {state!r} names no module")
    if len(module) > MAX_PATH:
        raise pf.error(line, col, f"module name of {state!r} longer than {MAX_PATH} characters")
    if len(argtext) > MAX_ARG_STRING:
        raise pf.error(line, col, f"arguments of {state!r} longer than {MAX_ARG_STRING} "
                       f"characters")
    try:
        args = tokenize_args(argtext)
    except ValueError as e:
        raise pf.error(line, col, f"{state}: {e}")
    if len(args) > MAX_ARGS - 1:
        raise pf.error(line, col, f"{state}: more than {MAX_ARGS - 1} arguments")
    return module, args, var


def check_policies(pf: PolicyFile) -> None:
    """LCMAPS' post-parse rules: errors raise PolicyConfigError, warnings go to ``pf.warnings``."""
    names = {p.name for p in pf.policies}
    for policy in pf.policies:
        lhs: dict[str, Rule] = {}
        for rule in policy.rules:
            if rule.state in lhs:
                raise pf.error(rule.line, rule.col,
                               f"state '{rule.state}' is already in use in policy "
                               f"'{policy.name}'")
            lhs[rule.state] = rule
            for target in (rule.state, rule.on_success, rule.on_failure):
                if target in names:
                    raise pf.error(rule.line, rule.col,
                                   f"policy name '{target}' used as a state: not supported")
        _check_cycles(pf, policy, lhs)
        reachable = _reachable(policy, lhs)
        for rule in policy.rules:
            if rule.state not in reachable:
                pf.warn(rule.line, rule.col, f"rule '{rule.as_lcmaps()}' is not part of the "
                        f"chain of policy '{policy.name}'")


def _successors(rule: Rule | None) -> list[str]:
    if rule is None:
        return []
    return [s for s in (rule.on_success, rule.on_failure) if s is not None]


def _reachable(policy: Policy, lhs: dict[str, Rule]) -> set[str]:
    if not policy.rules:
        return set()
    seen = {policy.rules[0].state}
    todo = [policy.rules[0].state]
    while todo:
        for nxt in _successors(lhs.get(todo.pop())):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _check_cycles(pf: PolicyFile, policy: Policy, lhs: dict[str, Rule]) -> None:
    done: set[str] = set()
    for rule in policy.rules:
        if rule.state in done:
            continue
        # Iterative depth-first search; 'path' holds the current chain for the message.
        path: list[str] = [rule.state]
        on_path = {rule.state}
        stack = [iter(_successors(rule))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                done.add(path.pop())
                on_path = set(path)
                continue
            if nxt in on_path:
                raise pf.error(rule.line, rule.col,
                               f"policy '{policy.name}': rule causes infinite loop "
                               f"({' -> '.join([*path, nxt])})")
            if nxt in done:
                continue
            path.append(nxt)
            on_path.add(nxt)
            stack.append(iter(_successors(lhs.get(nxt))))


class CompiledPolicy:
    """Plain data the engine runs: marshal-able, no objects from the parsers.

    ``policies``: tuple of (name, start state, {state: (on_success, on_failure)}) in file order.
    ``states``: {state: (plugin name, module file name, args tuple)} for every state of every
    policy (all are initialised at start-up, as in LCMAPS).
    """

    __slots__ = ("source", "policies", "states", "warnings")

    def __init__(self, source: str, policies: tuple, states: dict, warnings: tuple) -> None:
        self.source = source
        self.policies = policies
        self.states = states
        self.warnings = warnings

    def policy_names(self) -> list[str]:
        return [p[0] for p in self.policies]


def compile_policy(pf: PolicyFile) -> CompiledPolicy:
    """Resolve every state of a parsed (and so checked) file to (plugin, module, args)."""
    from glexec_py.policy.registry import plugin_name_for

    states: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    for state in pf.states():
        module, args, var = resolve_state(pf, state)
        name = plugin_name_for(module)
        if name is None:
            line, col = (var.line, var.col) if var else _first_use(pf, state)
            raise pf.error(line, col, f"unknown module '{module}' (state '{state}')")
        states[state] = (name, module, tuple(args))
    policies = []
    for p in pf.policies:
        table = {r.state: (r.on_success, r.on_failure) for r in p.rules}
        policies.append((p.name, p.rules[0].state, table))
    return CompiledPolicy(pf.path, tuple(policies), states, tuple(pf.warnings))


def _first_use(pf: PolicyFile, state: str) -> tuple[int, int]:
    for p in pf.policies:
        for r in p.rules:
            if state in (r.state, r.on_success, r.on_failure):
                return r.line, r.col
    return 0, 0


def split_policy_names(names: Sequence[str] | str) -> list[str]:
    """``lcmaps_get_account_policy`` values: a sequence, items may be colon lists."""
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for item in names:
        for part in item.split(":"):
            part = part.strip().strip('"')
            if part:
                out.append(part)
    return out
