"""The YAML form of a policy file: the same meaning as lcmaps.db, with safe and strict loading.

Runs as: root (launcher, only for ``*.yaml`` policies) or anyone (``glexec-policy``). Trusts:
nothing. Hot path: no for lcmaps.db sites; ``yaml`` is imported only here.

Loading uses PyYAML's *composer* only (``yaml.compose`` with the safe loader): no constructor
runs, so no tag can build objects, and every scalar is read as the text that was written — YAML
1.1's surprises (``0644`` becoming 420, ``on``/``yes`` becoming True) cannot happen. Duplicate
keys, anchors/aliases, explicit tags and unknown keys are errors with file:line:column.

Shape::

    glexec_policy: 1
    path: /usr/lib/lcmaps                 # optional, informational (LCMAPS' path =)
    modules:                              # state name -> plugin (lcmaps.db variables)
      poolaccount:
        module: lcmaps_poolaccount.mod    # or a plugin name: poolaccount
        args: [-gridmapfile, /etc/grid-security/grid-mapfile]
    policies:                             # in evaluation order
      - name: glexec
        rules:
          - {run: poolaccount, on_success: posix_enf, on_failure: localaccount}
          - {run: localaccount, on_failure: bad}   # = "~localaccount -> bad"

``on_success`` only = ``A -> B``; both = ``A -> B | C``; ``on_failure`` only = ``~A -> C``.
"""

from __future__ import annotations

from typing import Any

from glexec_py.plugin_api import PolicyConfigError
from glexec_py.policy.model import Policy, PolicyFile, Rule, Variable, check_policies, quote_arg

_STD_TAGS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool",
             "tag:yaml.org,2002:null", "tag:yaml.org,2002:float", "tag:yaml.org,2002:seq",
             "tag:yaml.org,2002:map", "tag:yaml.org,2002:timestamp"}
_TERM_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./")


def _err(path: str, node: Any, message: str) -> PolicyConfigError:
    mark = getattr(node, "start_mark", None)
    if mark is None:
        return PolicyConfigError(f"{path}: {message}")
    return PolicyConfigError(f"{path}:{mark.line + 1}:{mark.column + 1}: {message}")


def _check_tree(path: str, node: Any, seen: set[int]) -> None:
    import yaml

    if id(node) in seen:
        raise _err(path, node, "anchors and aliases are not allowed")
    seen.add(id(node))
    if node.tag not in _STD_TAGS:
        raise _err(path, node, f"tag {node.tag} is not allowed")
    if isinstance(node, yaml.MappingNode):
        keys: dict[str, Any] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise _err(path, key, "mapping keys must be plain text")
            if key.value in keys:
                first = keys[key.value].start_mark.line + 1
                raise _err(path, key, f"duplicate key {key.value!r} (first at line {first})")
            keys[key.value] = key
            _check_tree(path, key, seen)
            _check_tree(path, value, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_tree(path, item, seen)


def _mapping(path: str, node: Any, what: str, allowed: set[str],
             required: set[str] = frozenset()) -> dict[str, Any]:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise _err(path, node, f"{what} must be a mapping")
    out = {k.value: v for k, v in node.value}
    unknown = set(out) - allowed
    if unknown:
        key = next(k for k, _ in node.value if k.value in unknown)
        raise _err(path, key, f"unknown key {key.value!r} in {what}")
    missing = required - set(out)
    if missing:
        raise _err(path, node, f"{what} needs {', '.join(sorted(missing))}")
    return out


def _text(path: str, node: Any, what: str) -> str:
    import yaml

    if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
        raise _err(path, node, f"{what} must be text")
    return str(node.value)


def _sequence(path: str, node: Any, what: str) -> list[Any]:
    import yaml

    if not isinstance(node, yaml.SequenceNode):
        raise _err(path, node, f"{what} must be a list")
    return list(node.value)


def _state(path: str, node: Any, what: str) -> str:
    value = _text(path, node, what)
    if not value or not all(c in _TERM_CHARS for c in value):
        raise _err(path, node, f"{what} {value!r}: state names use only letters, digits, "
                   f"'_', '.' and '/'")
    return value


def parse_yaml_policy(data: bytes, path: str) -> PolicyFile:
    """Parse the YAML form into a checked PolicyFile; PolicyConfigError on any problem."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(data, Loader=loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise PolicyConfigError(f"{where}: YAML syntax error: "
                                f"{getattr(e, 'problem', None) or e}")
    except (UnicodeDecodeError, ValueError) as e:
        raise PolicyConfigError(f"{path}: unreadable YAML: {e}")
    if root is None:
        raise PolicyConfigError(f"{path}: empty policy file")
    _check_tree(path, root, set())
    top = _mapping(path, root, "the document", {"glexec_policy", "path", "modules", "policies"},
                   {"glexec_policy", "policies"})
    if _text(path, top["glexec_policy"], "glexec_policy") != "1":
        raise _err(path, top["glexec_policy"], "only glexec_policy: 1 is understood")
    pf = PolicyFile(path)
    if "path" in top:
        pf.lcmaps_path = _text(path, top["path"], "path")
    if "modules" in top:
        import yaml as _y

        mods = top["modules"]
        if not isinstance(mods, _y.MappingNode):
            raise _err(path, mods, "modules must be a mapping")
        for key, value in mods.value:
            name = _state(path, key, "module name")
            spec = _mapping(path, value, f"module {name}", {"module", "args"}, {"module"})
            module = _text(path, spec["module"], "module")
            if " " in module or not module:
                raise _err(path, spec["module"], "module must be one word")
            args = []
            for item in _sequence(path, spec["args"], "args") if "args" in spec else []:
                arg = _text(path, item, "argument")
                if '"' in arg or "\n" in arg:
                    raise _err(path, item, "arguments cannot contain '\"' or newlines")
                args.append(quote_arg(arg))
            pf.variables[name] = Variable(name, " ".join([module, *args]),
                                          key.start_mark.line + 1, key.start_mark.column + 1)
    for pnode in _sequence(path, top["policies"], "policies"):
        spec = _mapping(path, pnode, "a policy", {"name", "rules"}, {"name", "rules"})
        name = _state(path, spec["name"], "policy name")
        if any(p.name == name for p in pf.policies):
            raise _err(path, spec["name"], f"policy '{name}' already defined")
        rules = []
        for rnode in _sequence(path, spec["rules"], f"rules of {name}"):
            r = _mapping(path, rnode, "a rule", {"run", "on_success", "on_failure"}, {"run"})
            ok = _state(path, r["on_success"], "on_success") if "on_success" in r else None
            fail = _state(path, r["on_failure"], "on_failure") if "on_failure" in r else None
            if ok is None and fail is None:
                raise _err(path, rnode, "a rule needs on_success, on_failure or both")
            mark = rnode.start_mark
            rules.append(Rule(_state(path, r["run"], "run"), ok, fail, mark.line + 1,
                              mark.column + 1))
        if not rules:
            raise _err(path, pnode, f"policy '{name}' has no rules")
        mark = pnode.start_mark
        pf.policies.append(Policy(name, rules, mark.line + 1, mark.column + 1))
    if not pf.policies:
        raise _err(path, top["policies"], "no policies")
    check_policies(pf)
    return pf


def render_yaml_policy(pf: PolicyFile) -> str:
    """YAML text with the same meaning as ``pf`` (``glexec-policy convert``)."""
    import json

    from glexec_py.policy.model import tokenize_args

    def q(s: str) -> str:
        return json.dumps(s)  # a JSON string is a valid double-quoted YAML scalar

    lines = ["glexec_policy: 1"]
    if pf.lcmaps_path:
        lines.append(f"path: {q(pf.lcmaps_path)}")
    if pf.variables:
        lines.append("modules:")
        for var in pf.variables.values():
            module, _, argtext = var.value.strip(" \t").partition(" ")
            lines.append(f"  {var.name}:")
            lines.append(f"    module: {q(module)}")
            args = tokenize_args(argtext)
            if args:
                lines.append("    args: [" + ", ".join(q(a) for a in args) + "]")
    lines.append("policies:")
    for policy in pf.policies:
        lines.append(f"  - name: {q(policy.name)}")
        lines.append("    rules:")
        for rule in policy.rules:
            parts = [f"run: {q(rule.state)}"]
            if rule.on_success is not None:
                parts.append(f"on_success: {q(rule.on_success)}")
            if rule.on_failure is not None:
                parts.append(f"on_failure: {q(rule.on_failure)}")
            lines.append("      - {" + ", ".join(parts) + "}")
    return "\n".join(lines) + "\n"
