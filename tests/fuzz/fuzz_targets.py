"""Fuzz targets: every parser glexec-py runs on outside input, with the one error each may raise.

A target takes bytes and returns nothing; it may raise only its parser's documented exception
(the clean error the launcher turns into 201/202/203). Anything else -- IndexError, RecursionError,
UnicodeError, an escaped ValueError -- is a crash, and so is running longer than the time bound
or allocating more than the memory bound (both checked by the replay and property tests).

The same targets serve the hypothesis tests, the corpus replay (tests/data/corpus/<target>/) and
the optional atheris campaign (``python tests/fuzz/atheris_main.py <target>``, SECURITY.md).
"""

from __future__ import annotations

TIME_BOUND = 2.0          # seconds for one input of at most MAX_INPUT bytes
MEMORY_BOUND = 64 << 20   # peak Python allocation for one input (tracemalloc)
MAX_INPUT = 64 << 10


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def fuzz_glexec_conf(data: bytes) -> None:
    from glexec_py.config import parse_config

    # load_config refuses non-UTF-8 and NUL before parsing; the parser sees the rest
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    if "\0" not in text:
        parse_config(text, "/fuzz/glexec.conf")


def fuzz_lcmaps_db(data: bytes) -> None:
    from glexec_py.policy.lcmaps_db import parse_lcmaps_db
    from glexec_py.policy.model import compile_policy

    compile_policy(parse_lcmaps_db(data, "/fuzz/lcmaps.db"))


def fuzz_yaml_policy(data: bytes) -> None:
    from glexec_py.policy.model import compile_policy
    from glexec_py.policy.yaml_form import parse_yaml_policy

    compile_policy(parse_yaml_policy(data, "/fuzz/policy.yaml"))


def fuzz_lcas_db(data: bytes) -> None:
    from glexec_py.policy.lcas import parse_lcas_db

    parse_lcas_db(data, "/fuzz/lcas.db")


def fuzz_grid_mapfile(data: bytes) -> None:
    """grid-mapfiles and ban lists share this parser; matching runs on every entry."""
    from glexec_py.policy.mapfile import parse_mapfile
    from glexec_py.policy.subject import match_dn

    entries = parse_mapfile(data, "/fuzz/grid-mapfile")
    for entry in entries[:50]:
        for dn in ("/DC=org/DC=example/CN=Demo User", entry.subject, entry.subject.upper()):
            match_dn(entry.subject, dn, wildcard=True)
            match_dn(entry.subject, dn, wildcard=False)


def fuzz_ban_pattern(data: bytes) -> None:
    """A ban-list wildcard against a long DN: no backtracking blow-up."""
    from glexec_py.policy.subject import match_dn

    pattern, _, dn = _text(data).partition("\n")
    match_dn(pattern, dn or "/DC=org/CN=" + "a" * 200, wildcard=True)


def fuzz_timeslots(data: bytes) -> None:
    from glexec_py.plugins.timeslots import parse_slots

    parse_slots(data, "/fuzz/timeslots")


def fuzz_pem(data: bytes) -> None:
    from glexec_py.credentials.pem import split_pem

    split_pem(data)


def fuzz_der_certificate(data: bytes) -> None:
    from glexec_py.credentials.chain import load_certificates

    load_certificates([data])


def fuzz_der_structure(data: bytes) -> None:
    """Our own DER reader (TBS names, OIDs, times) on arbitrary bytes."""
    from glexec_py.credentials import der

    item = der.read_item(data)
    stack = [item]
    seen = 0
    while stack and seen < 2000:
        node = stack.pop()
        seen += 1
        if node.tag == der.TAG_OID:
            der.decode_oid(node.content)
        elif node.tag in (0x17, 0x18):
            der.decode_time(node)
        elif node.tag in (0x30, 0x31, 0xA0, 0xA3):
            stack.extend(node.children())
    der.tbs_names(data)


def fuzz_attribute_certificate(data: bytes) -> None:
    """The VOMS extension: AC list splitting and the AC's own structure."""
    from glexec_py.credentials import voms

    for ac in voms._split_acs(data):
        if ac:
            voms._general_names(voms.der.read_single(ac, voms.der.TAG_SEQUENCE, "AC"))


def fuzz_dn(data: bytes) -> None:
    from glexec_py.credentials.dn import dn_key, split_dn

    text = _text(data)
    split_dn(text)
    dn_key(text)


def fuzz_dn_der(data: bytes) -> None:
    from glexec_py.credentials.dn import render_name_der

    render_name_der(data)


def fuzz_caller_environment(data: bytes) -> None:
    """The front end's sealed blob, then the payload's environment built from it."""
    from glexec_py.environment import build_payload_env, check_glexec_values, parse_env_blob

    env = parse_env_blob(data)
    check_glexec_values(env)
    build_payload_env(env, preserve=("SLURM_*", "CONDOR_INHERIT"), home="/home/u", user="u",
                      path="/usr/bin:/bin", proxy="/tmp/x509up_u1")


def fuzz_wrapped_environment(data: bytes) -> None:
    from glexec_py.tools.unwrapenv import decode_blob

    decode_blob(data)


def fuzz_external_filter_json(data: bytes) -> None:
    from glexec_py.plugins.external import parse_reply

    parse_reply(data, frozenset({"uid", "gid", "sgids", "username"}), "fuzz")


def fuzz_command_line(data: bytes) -> None:
    from glexec_py.cli import parse_args

    parse_args([_text(w) for w in data.split(b"\0")][:64])


def _errors() -> dict[str, tuple[type[BaseException], ...]]:
    from glexec_py.errors import GlexecError
    from glexec_py.plugin_api import PolicyConfigError
    from glexec_py.tools.unwrapenv import BlobError

    return {
        "glexec_conf": (GlexecError,),
        "lcmaps_db": (PolicyConfigError,),
        "yaml_policy": (PolicyConfigError,),
        "lcas_db": (PolicyConfigError,),
        "grid_mapfile": (PolicyConfigError,),
        "ban_pattern": (),
        "timeslots": (PolicyConfigError,),
        "pem": (GlexecError,),
        "der_certificate": (GlexecError,),
        "der_structure": (GlexecError, _der_error()),
        "attribute_certificate": (GlexecError, _der_error()),
        "dn": (ValueError,),         # documented: "not a slash-form DN", ambiguous names
        "dn_der": (ValueError,),     # documented: "malformed name: ..."
        "caller_environment": (GlexecError,),
        "wrapped_environment": (BlobError,),
        "external_filter_json": (GlexecError,),
        "command_line": (GlexecError,),
    }


def _der_error() -> type[BaseException]:
    from glexec_py.credentials.der import DerError

    return DerError


TARGETS = {name[len("fuzz_"):]: fn for name, fn in globals().items()
           if name.startswith("fuzz_") and callable(fn)}


def run_target(name: str, data: bytes) -> None:
    """Run one input; raise AssertionError describing any crash (not the documented error)."""
    allowed = _errors()[name]
    try:
        TARGETS[name](data)
    except allowed:
        pass
    except Exception as exc:  # noqa: BLE001 - the point: anything else is a finding
        raise AssertionError(f"{name}: {type(exc).__name__}: {exc!s:.300} "
                             f"on input {data[:200]!r}") from exc
