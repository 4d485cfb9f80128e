"""lcmaps.db grammar: lexical rules, definitions, rule forms, and LCMAPS' fatal errors."""

from __future__ import annotations

import pytest

from glexec_py.plugin_api import PolicyConfigError
from glexec_py.policy.lcmaps_db import parse_lcmaps_db, render_lcmaps_db
from glexec_py.policy.model import compile_policy, resolve_state, tokenize_args

NIKHEF_STYLE = """\
# comment line
path = /usr/lib/lcmaps   # trailing comment
localaccount = "lcmaps_localaccount.mod"
               " -gridmap /etc/grid-security/grid-mapfile"
poolaccount = "lcmaps_poolaccount.mod -override_inconsistency"
              "-gridmap /etc/grid-security/grid-mapfile -gridmapdir /etc/grid-security/gridmapdir"
posix_enf = "lcmaps_posix_enf.mod -maxuid 1 -maxpgid 1 -maxsgid 32"
good = lcmaps_dummy_good.mod

standard:
localaccount -> posix_enf | poolaccount
poolaccount -> posix_enf

other:
~localaccount -> good
"""


def parse(text: str):
    return parse_lcmaps_db(text.encode(), "/etc/lcmaps/lcmaps.db")


def test_nikhef_style_file_parses_with_strings_joined_by_one_space():
    pf = parse(NIKHEF_STYLE)
    assert pf.lcmaps_path == "/usr/lib/lcmaps"
    assert pf.variables["poolaccount"].value == (
        "lcmaps_poolaccount.mod -override_inconsistency -gridmap "
        "/etc/grid-security/grid-mapfile -gridmapdir /etc/grid-security/gridmapdir")
    assert [p.name for p in pf.policies] == ["standard", "other"]
    assert pf.policies[0].rules[0].as_lcmaps() == "localaccount -> posix_enf | poolaccount"
    assert pf.policies[1].rules[0].as_lcmaps() == "~localaccount -> good"
    module, args, _ = resolve_state(pf, "localaccount")
    assert module == "lcmaps_localaccount.mod"
    assert args == ["-gridmap", "/etc/grid-security/grid-mapfile"]
    assert resolve_state(pf, "good")[:2] == ("lcmaps_dummy_good.mod", [])


def test_compile_resolves_original_module_names_to_builtins():
    compiled = compile_policy(parse(NIKHEF_STYLE))
    assert compiled.states["poolaccount"][0] == "poolaccount"
    assert compiled.states["good"][0] == "good"
    assert compiled.states["posix_enf"][2] == ("-maxuid", "1", "-maxpgid", "1", "-maxsgid", "32")
    assert compiled.policies[0][1] == "localaccount"


def test_literal_module_as_state_and_escaped_quotes():
    pf = parse('x = "lcmaps_ban_dn.mod -banmapfile \\"/etc/a b\\""\np:\nx -> '
               'lcmaps_dummy_good.mod\n')
    assert pf.variables["x"].value == 'lcmaps_ban_dn.mod -banmapfile "/etc/a b"'
    assert resolve_state(pf, "x")[1] == ["-banmapfile", "/etc/a b"]
    assert resolve_state(pf, "lcmaps_dummy_good.mod")[0] == "lcmaps_dummy_good.mod"


def test_variable_chain_is_followed_and_loop_is_fatal():
    pf = parse('a = b\nb = "lcmaps_dummy_good.mod"\np:\na -> b\n')
    assert resolve_state(pf, "a")[0] == "lcmaps_dummy_good.mod"
    pf = parse("a = b\nb = a\np:\na -> c\n")
    with pytest.raises(PolicyConfigError, match="variable loop"):
        resolve_state(pf, "a")


def test_tokenize_args_keeps_quoted_words_together():
    assert tokenize_args(' -a "x y"\t-b ') == ["-a", "x y", "-b"]


@pytest.mark.parametrize(("text", "where", "message"), [
    ('x = "unterminated\np:\nx -> y\n', "1:5", "unbalanced quotes"),
    ('x = "a \\"b"\np:\nx -> y\n', "1:5", "unbalanced quotes"),
    ("x = y\nx = z\np:\nx -> y\n", "2:1", "already defined"),
    ("x = y\n", "2:1", "no policy rules"),
    ("p:\na -> b\nx = y\n", "3:1", "definitions must come before"),
    ("p:\na -> b\na -> c\n", "3:1", "already in use"),
    ("p:\na -> b\nb -> a\n", "2:1", "infinite loop"),
    ("p:\na -> a\n", "2:1", "infinite loop"),
    ("p:\na -> b\np:\nc -> d\n", "3:1", "policy 'p' already defined"),
    ("p:\na -> q\nq:\nc -> d\n", "2:1", "not supported"),
    ("p:\n~a -> b | c\n", "2:9", "takes no '|'"),
    ("p:\na -> \n", "3:1", "expected a state"),
    ("p:\na b\n", "2:3", "expected '->'"),
    ("x = y p:\na -> b\n", "1:7", "must start a line"),
    ("p:\na -> b | \n", "3:1", "expected a state"),
    ("= x\n", "1:1", "expected a definition"),
])
def test_fatal_errors_carry_file_line_column(text, where, message):
    with pytest.raises(PolicyConfigError) as exc:
        parse(text)
    assert f"/etc/lcmaps/lcmaps.db:{where}:" in str(exc.value)
    assert message in str(exc.value)


def test_warnings_are_not_fatal():
    pf = parse("path = /a\npath = /b\np:\nq:\na -> good\nz -> good\nb -> c$\n")
    text = "\n".join(pf.warnings)
    assert "path already defined" in text
    assert "policy 'p' has no rules" in text
    assert "not part of the chain" in text
    assert "unrecognized token '$'" in text
    assert pf.lcmaps_path == "/a"


def test_hyphen_in_a_bare_word_is_a_syntax_error_after_the_warning():
    with pytest.raises(PolicyConfigError, match="2:"):
        parse("p:\na-b -> c\n")


def test_empty_file_is_only_a_warning():
    pf = parse("# nothing\n")
    assert pf.policies == [] and pf.warnings


def test_unknown_module_is_fatal_at_compile():
    pf = parse('x = "lcmaps_nonexistent.mod"\np:\nx -> lcmaps_dummy_good.mod\n')
    with pytest.raises(PolicyConfigError, match="1:1: unknown module 'lcmaps_nonexistent.mod'"):
        compile_policy(pf)


def test_render_round_trip_has_the_same_meaning():
    pf = parse(NIKHEF_STYLE)
    again = parse(render_lcmaps_db(pf))
    assert again.lcmaps_path == pf.lcmaps_path
    assert {k: v.value for k, v in again.variables.items()} == {
        k: v.value for k, v in pf.variables.items()}
    assert [[r.as_lcmaps() for r in p.rules] for p in again.policies] == [
        [r.as_lcmaps() for r in p.rules] for p in pf.policies]


@pytest.mark.parametrize("data", [b"p:\n\x00a -> b\n", b"p:\n\xff -> b\n"])
def test_binary_garbage_is_a_clean_error(data):
    with pytest.raises(PolicyConfigError, match="lcmaps.db:2:"):
        parse_lcmaps_db(data, "/etc/lcmaps/lcmaps.db")
