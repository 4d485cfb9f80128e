"""The man pages are what the generator makes from the code, render without warnings, and name
every glexec.conf key, exit code, plugin, plugin option and command-line option the code has."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
from pathlib import Path

import pytest
from fixtures.prereq import require_program

from glexec_py.config import KEYS
from glexec_py.errors import EXIT_CODE_TABLE
from glexec_py.tools import manpages

REPO = Path(__file__).resolve().parents[3]
MAN = REPO / "man"
PAGES = sorted(manpages.render_pages())


@pytest.fixture(scope="module")
def text() -> dict[str, str]:
    """Every committed page as a reader sees it (plain text, wide lines)."""
    groff = require_program("groff")
    out = {}
    for name in PAGES:
        proc = subprocess.run([groff, "-man", "-Tutf8", "-P-cbou", "-rLL=200n", str(MAN / name)],
                              capture_output=True, text=True, check=True)
        out[name] = proc.stdout
    return out


def test_committed_pages_are_the_generated_ones():
    assert manpages.compare_pages(str(MAN)) == [], (
        "run: python -m glexec_py.tools.manpages man")


def test_check_mode_notices_a_stale_page(tmp_path):
    manpages.write_pages(str(tmp_path))
    assert manpages.main([str(tmp_path), "--check"]) == 0
    page = tmp_path / "glexec.conf.5"
    page.write_text(page.read_text().replace("linger", "lingr"))
    (tmp_path / "stray.8").write_text(".TH STRAY 8\n")
    assert sorted(manpages.compare_pages(str(tmp_path))) == [
        "glexec.conf.5: differs from the generator's output", "stray.8: not made by the generator"]
    assert manpages.main([str(tmp_path), "--check"]) == 1


@pytest.mark.parametrize("name", PAGES)
def test_groff_renders_without_warnings(name):
    groff = require_program("groff")
    proc = subprocess.run([groff, "-man", "-ww", "-z", "-Tutf8", str(MAN / name)],
                          capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.parametrize("name", PAGES)
def test_man_renders_without_warnings(name):
    man = require_program("man")
    proc = subprocess.run([man, "--warnings", "-l", str(MAN / name)], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "MANWIDTH": "80",
                                          "LC_ALL": "C.UTF-8", "MANPAGER": "cat"})
    assert (proc.returncode, proc.stderr) == (0, "")
    assert name.split(".")[0].upper() in proc.stdout


def test_every_config_key_with_its_default(text):
    page = text["glexec.conf.5"]
    for key in KEYS:
        assert re.search(rf"^\s+{re.escape(key.name)}\b", page, re.M), key.name
        if key.kind != "compat":
            shown = key.default or "(empty)"
            assert f"{key.name} = {shown}" in page, key.name
        for choice in key.choices:
            assert choice in page


def test_every_exit_code(text):
    page = text["glexec.1"]
    exit_section = page.split("EXIT STATUS")[1].split("FILES")[0]
    flowing = " ".join(exit_section.split())  # man justifies lines with extra blanks
    for code, meaning, _ in EXIT_CODE_TABLE:
        assert re.search(rf"^\s+{re.escape(str(code))}\s", exit_section, re.M), code
        assert meaning.split(":")[0][1:] in flowing


def test_every_plugin_and_option(text):
    from glexec_py.plugins import ALIASES, BUILTIN

    from glexec_py.policy.registry import load_plugin_class

    page = text["glexec-plugins.5"]
    for name in BUILTIN:
        cls = load_plugin_class(name)
        assert re.search(rf"^   {re.escape(name)}$", page, re.M), name
        for module in cls.lcmaps_names:
            assert module in page
        for opt in cls.options:
            for spelling in (opt.name, *opt.aliases):
                assert spelling in page, (name, spelling)
    for alias in ALIASES:
        assert alias in page


def test_glexec_help_agrees_with_glexec_1(text):
    from glexec_py.cli import USAGE

    page = text["glexec.1"]
    options = re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", USAGE)
    assert {"-h", "--help", "-v", "--version", "-V", "--config"} <= set(options)
    for option in options:
        assert option in page, option
    for line in USAGE.split("\n\n")[0].splitlines():
        assert line.replace("usage: ", "").strip() in page


def _help_of(entry, argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        entry(argv)
    return out.getvalue()


def _tools():
    from glexec_py.sutest.cli import main as sutest

    from glexec_py.tools import gridmapdir, install, mkgltempdir, policy, prune_userprocs

    return {"glexec-policy.8": policy.main, "glexec-install.8": install.main,
            "glexec-gridmapdir.8": gridmapdir.main, "mkgltempdir.1": mkgltempdir.main,
            "prune_userprocs.8": prune_userprocs.main, "glexec-sutest.8": sutest}


@pytest.mark.parametrize("page_name", sorted(_tools()))
def test_tool_help_agrees_with_its_page(page_name, text):
    entry = _tools()[page_name]
    page = text[page_name]
    helps = [_help_of(entry, ["--help"])]
    commands = re.search(r"\{([\w,-]+)\}", helps[0])
    for command in (commands.group(1).split(",") if commands else []):
        assert f"{page_name.rsplit('.', 1)[0]} {command}" in page
        helps.append(_help_of(entry, [command, "--help"]))
    for help_text in helps:
        for option in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", help_text):
            assert option in page, (page_name, option)


def test_wrapenv_page_names_the_options_the_tools_accept(text):
    from glexec_py.tools import unwrapenv

    page = text["glexec_wrapenv.1"]
    for option in ("--exclude", "--include", "--substring-exclude"):
        assert option in page
    # ... and the options the page names are the ones the parser accepts.
    unwrapenv.parse_options(["--exclude=A,B", "--include=HOME", "--substring-exclude", "--",
                             "true"])
    with pytest.raises(unwrapenv.UsageError):
        unwrapenv.parse_options(["--no-such-option", "--", "true"])
