"""``glexec-policy``: check, convert and describe policy files (lcmaps.db, YAML, lcas.db).

Runs as: the administrator (root or not). Trusts: nothing; files named on the command line are
read directly, and whether the launcher would trust them is reported. Hot path: no.

  glexec-policy check FILE [--lcas] [--no-init] [--policy NAME ...]
      like ``visudo -c``: parse, apply LCMAPS' structural rules and (unless --no-init)
      initialise every plugin as the launcher would; each error as FILE:LINE:COL; exit 0 if
      usable, 1 if not. Warnings go to stderr and do not fail.
  glexec-policy convert FILE [--to yaml|lcmaps] [-o OUT]
      lcmaps.db -> YAML or back, with the same meaning (the result is re-parsed and compared).
  glexec-policy plugins
      the built-in plugins, their LCMAPS names, summaries and options.
"""

from __future__ import annotations

import argparse
import os
import sys

from glexec_py.errors import GlexecError
from glexec_py.policy import is_yaml_path, load_policy_file


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(4 << 20)


def _trust_note(path: str) -> str | None:
    from glexec_py.trust import read_trusted_file

    try:
        read_trusted_file(os.path.abspath(path), what="policy file")
    except GlexecError as e:
        return e.message
    return None


def check(args: argparse.Namespace) -> int:
    ok = True
    for path in args.files:
        try:
            data = _read(path)
        except OSError as e:
            print(f"{path}: cannot read: {e.strerror}", file=sys.stderr)
            ok = False
            continue
        try:
            if args.lcas:
                from glexec_py.policy.lcas import parse_lcas_db

                entries = parse_lcas_db(data, path)
                if not args.no_init:
                    from glexec_py.policy.lcas import load_lcas

                    load_lcas(path)
                print(f"{path}: OK ({len(entries)} LCAS plugins)")
            else:
                from glexec_py.policy.engine import Engine
                from glexec_py.policy.model import compile_policy, split_policy_names

                pf = load_policy_file(path, data)
                for warning in pf.warnings:
                    print(warning, file=sys.stderr)
                compiled = compile_policy(pf)
                if not args.no_init:
                    engine = Engine(compiled)
                    if args.policy:
                        engine.select(split_policy_names(args.policy))
                names = ", ".join(compiled.policy_names()) or "none"
                print(f"{path}: OK (policies: {names})")
        except GlexecError as e:
            print(e.message, file=sys.stderr)
            ok = False
            continue
        note = _trust_note(path)
        if note:
            print(f"{path}: warning: the launcher would refuse this file: {note}",
                  file=sys.stderr)
    return 0 if ok else 1


def convert(args: argparse.Namespace) -> int:
    from glexec_py.policy.lcmaps_db import parse_lcmaps_db, render_lcmaps_db
    from glexec_py.policy.yaml_form import parse_yaml_policy, render_yaml_policy

    try:
        pf = load_policy_file(args.file, _read(args.file))
        target = args.to or ("lcmaps" if is_yaml_path(args.file) else "yaml")
        text = render_yaml_policy(pf) if target == "yaml" else render_lcmaps_db(pf)
        again = (parse_yaml_policy(text.encode(), "<converted>") if target == "yaml"
                 else parse_lcmaps_db(text.encode(), "<converted>"))
    except (GlexecError, OSError, ValueError) as e:
        print(getattr(e, "message", None) or f"{args.file}: {e}", file=sys.stderr)
        return 1
    if describe(again) != describe(pf):
        print(f"{args.file}: conversion would change the meaning; not written", file=sys.stderr)
        return 1
    if args.output:
        with open(args.output, "x", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def describe(pf: object) -> tuple:
    """What a policy file means: reduced states and rules (names of variables are kept)."""
    from glexec_py.policy.model import resolve_state

    states = {s: tuple(resolve_state(pf, s)[:2]) for s in pf.states()}
    states = {s: (m, tuple(a)) for s, (m, a) in states.items()}
    rules = [(p.name, [(r.state, r.on_success, r.on_failure) for r in p.rules])
             for p in pf.policies]
    return (tuple(sorted(states.items())), tuple((n, tuple(r)) for n, r in rules))


def plugins(_args: argparse.Namespace) -> int:
    from glexec_py.plugins import BUILTIN
    from glexec_py.policy.registry import load_plugin_class

    for name in sorted(BUILTIN):
        try:
            cls = load_plugin_class(name)
        except GlexecError as e:
            print(f"{name}: unavailable ({e.message})")
            continue
        print(f"{name} ({', '.join(cls.lcmaps_names) or '-'}): {cls.summary}")
        for opt in cls.options:
            spell = " | ".join((opt.name, *opt.aliases))
            print(f"    {spell} [{opt.kind}] {opt.help}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glexec-policy", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="validate policy files")
    p.add_argument("files", nargs="+")
    p.add_argument("--lcas", action="store_true", help="the files are lcas.db files")
    p.add_argument("--no-init", action="store_true", help="do not initialise plugins")
    p.add_argument("--policy", action="append", default=[],
                   help="policy names the launcher selects (must exist)")
    p.set_defaults(func=check)
    p = sub.add_parser("convert", help="lcmaps.db <-> YAML")
    p.add_argument("file")
    p.add_argument("--to", choices=("yaml", "lcmaps"))
    p.add_argument("-o", "--output")
    p.set_defaults(func=convert)
    p = sub.add_parser("plugins", help="list the built-in plugins")
    p.set_defaults(func=plugins)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
