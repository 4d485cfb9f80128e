"""glexec_wrapenv / glexec_unwrapenv: the wire format, checked against an independent decoder.

The blob layout is decoded and built here with the standard library only (``base64``, ``zlib``),
following the documented layout (outer base64 of one zlib stream of space-terminated base64
``NAME=VALUE`` entries), so a bug shared by both halves of the project's code cannot hide.  The
commands run as real processes; the launcher's environment clearing is modelled by ``env -i``.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from fixtures.prereq import require
from hypothesis import given, settings
from hypothesis import strategies as st

from glexec_py.tools.unwrapenv import (
    MAX_ARG_STRLEN,
    MAX_INFLATED,
    BlobError,
    ExclusionRule,
    decode_blob,
)
from glexec_py.tools.wrapenv import encode_environment

SCRIPT = """#!{python}
import sys
from glexec_py.tools.{module} import main
sys.exit(main())
"""


@pytest.fixture(scope="module")
def bindir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """glexec_wrapenv / glexec_unwrapenv as the console scripts pip would generate."""
    path = tmp_path_factory.mktemp("envwrap-bin")
    for name, module in (("glexec_wrapenv", "wrapenv"), ("glexec_unwrapenv", "unwrapenv")):
        script = path / name
        script.write_text(SCRIPT.format(python=sys.executable, module=module))
        script.chmod(0o755)
    return path


def run_wrap(bindir: Path, env: dict[str, str] | dict[bytes, bytes], *args: str
             ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(bindir / "glexec_wrapenv"), *args], env=env,
                          capture_output=True, timeout=30)


def run_unwrap(bindir: Path, blob: str | bytes | None, *args: str,
               base: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    env: dict[str, str | bytes] = dict(base or {"PATH": "/usr/bin:/bin", "HOME": "/target"})
    if blob is not None:
        env["GLEXEC_ENV"] = blob
    return subprocess.run([str(bindir / "glexec_unwrapenv"), *args], env=env,
                          capture_output=True, timeout=30)


def independent_decode(blob: bytes) -> list[bytes]:
    """Decode the documented layout with the standard library; return the entries in order."""
    inflated = zlib.decompress(base64.b64decode(blob, validate=True))
    assert inflated == b"" or inflated.endswith(b" "), "each entry is followed by one space"
    fields = inflated.split(b" ")
    assert fields[-1] == b""
    return [base64.b64decode(f, validate=True) for f in fields[:-1]]


def independent_encode(pairs: list[tuple[bytes, bytes]], level: int = -1,
                       sep: bytes = b" ") -> bytes:
    inner = b"".join(base64.b64encode(k + b"=" + v) + sep for k, v in pairs)
    return base64.b64encode(zlib.compress(inner, level))


def payload_env(output: bytes) -> dict[bytes, bytes]:
    """Parse ``env -0`` output."""
    result = {}
    for item in output.split(b"\0"):
        if item:
            name, _, value = item.partition(b"=")
            result[name] = value
    return result


# --- the wrap side, decoded independently -------------------------------------------------------

def test_wrap_output_matches_documented_layout(bindir: Path) -> None:
    env = {b"PATH": b"/usr/bin:/bin", b"SPACES": b"a b  c", b"MULTI": b"line1\nline2",
           b"EQ": b"x=y=z", b"EMPTY": b"", b"BIN": b"\xff\xfe\x80", b"HOME": b"/home/pilot",
           b"USER": b"pilot", b"LOGNAME": b"pilot", b"X509_USER_PROXY": b"/tmp/x509up_u1",
           b"_": b"/usr/bin/env"}
    result = run_wrap(bindir, env)
    assert result.returncode == 0, result.stderr
    blob = result.stdout
    assert b"\n" not in blob, "printed without line breaks or a trailing newline"
    assert zlib.decompress(base64.b64decode(blob))  # a complete zlib stream with its header
    assert base64.b64decode(blob)[0] == 0x78, "zlib header as deflateInit() writes it"
    entries = independent_decode(blob)
    assert sorted(entries) == sorted([b"PATH=/usr/bin:/bin", b"SPACES=a b  c",
                                      b"MULTI=line1\nline2", b"EQ=x=y=z", b"EMPTY=",
                                      b"BIN=\xff\xfe\x80"])
    skipped = sorted(result.stderr.decode().splitlines())
    assert skipped == ["Skipping HOME", "Skipping LOGNAME", "Skipping USER",
                       "Skipping X509_USER_PROXY", "Skipping _"]


def test_wrap_of_empty_environment_is_an_empty_stream(bindir: Path) -> None:
    result = run_wrap(bindir, {})
    assert result.returncode == 0
    assert zlib.decompress(base64.b64decode(result.stdout)) == b""


@pytest.mark.parametrize("args, gone", [
    (["--exclude=A"], {b"A"}),
    (["--exclude=A", "--exclude=B"], {b"A", b"B"}),
    (["--exclude=A,B"], {b"A", b"B"}),
    (["--exclude", "A,B"], {b"A", b"B"}),
    (["-exclude=A"], {b"A"}),
    (["--ex=A", "--EXCLUDE=B"], {b"A", b"B"}),
    (["--e", "B"], {b"B"}),
    (["--"], set()),
])
def test_wrap_exclude_option_forms(bindir: Path, args: list[str], gone: set[bytes]) -> None:
    env = {"A": "1", "B": "2", "C": "3"}
    result = run_wrap(bindir, env, *args)
    assert result.returncode == 0, result.stderr
    names = {e.partition(b"=")[0] for e in independent_decode(result.stdout)}
    assert names == {b"A", b"B", b"C"} - gone
    assert sorted(result.stderr.decode().splitlines()) == sorted(
        f"Skipping {n.decode()}" for n in gone)


def test_wrap_default_matching_is_exact_and_quirk_is_opt_in(bindir: Path) -> None:
    env = {"E": "1", "ME": "2", "USER_PROXY": "3", "X509": "4", "OTHER": "5", "USER": "u"}
    plain = run_wrap(bindir, env)
    names = {e.partition(b"=")[0] for e in independent_decode(plain.stdout)}
    assert names == {b"E", b"ME", b"USER_PROXY", b"X509", b"OTHER"}
    quirky = run_wrap(bindir, env, "--substring-exclude")
    names = {e.partition(b"=")[0] for e in independent_decode(quirky.stdout)}
    # The original used the name as a pattern against each excluded name.
    assert names == {b"OTHER"}


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "Unknown option: bogus"),
    (["--exclude"], "Option exclude requires an argument"),
    (["--exclude="], "Option exclude requires an argument"),
    (["stray"], "unexpected argument: stray"),
    (["--include=PATH"], "Option include: PATH is not excluded by default"),
])
def test_wrap_usage_errors(bindir: Path, args: list[str], message: str) -> None:
    result = run_wrap(bindir, {"A": "1"}, *args)
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr.decode().splitlines()[0].startswith(message)


def test_wrap_refuses_blob_the_kernel_cannot_pass(bindir: Path) -> None:
    noise = [base64.b64encode(os.urandom(75_000)).decode() for _ in range(2)]  # incompressible
    result = run_wrap(bindir, {"BIG1": noise[0], "BIG2": noise[1], "SMALL": "x"})
    assert result.returncode == 1
    assert result.stdout == b""
    message = result.stderr.decode()
    assert "BIG1 (100000 bytes)" in message and "BIG2 (100000 bytes)" in message


# --- the unwrap side, fed independently built blobs ---------------------------------------------

@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_unwrap_restores_independently_built_blob(bindir: Path, level: int) -> None:
    pairs = [(b"FOO", b"bar"), (b"SPACES", b"a  b "), (b"MULTI", b"l1\nl2\n"), (b"EQ", b"=x="),
             (b"EMPTY", b""), (b"BIN", b"\xc3\x28\xff"), (b"PATH", b"/opt/pilot/bin:/usr/bin:/bin")]
    result = run_unwrap(bindir, independent_encode(pairs, level), "--", "env", "-0")
    assert result.returncode == 0, result.stderr
    env = payload_env(result.stdout)
    for name, value in pairs:
        assert env[name] == value
    assert env[b"HOME"] == b"/target"


def test_unwrap_protects_launcher_set_names_unless_included(bindir: Path) -> None:
    blob = independent_encode([(b"HOME", b"/home/pilot"), (b"X509_USER_PROXY", b"/tmp/pilot"),
                               (b"USER", b"pilot"), (b"LOGNAME", b"pilot"), (b"_", b"/x"),
                               (b"GLEXEC_ENV", b"old"), (b"KEEP", b"1")])
    base = {"HOME": "/target", "X509_USER_PROXY": "/target/proxy", "USER": "tgt",
            "LOGNAME": "tgt", "PATH": "/usr/bin:/bin"}
    env = payload_env(run_unwrap(bindir, blob, "--", "env", "-0", base=base).stdout)
    assert env[b"HOME"] == b"/target"
    assert env[b"X509_USER_PROXY"] == b"/target/proxy"
    assert env[b"USER"] == b"tgt" and env[b"LOGNAME"] == b"tgt"
    assert env[b"GLEXEC_ENV"] == blob, "the blob cannot replace itself"
    assert env[b"KEEP"] == b"1"
    env = payload_env(run_unwrap(bindir, blob, "--include=HOME,X509_USER_PROXY", "--", "env", "-0",
                                 base=base).stdout)
    assert env[b"HOME"] == b"/home/pilot"
    assert env[b"X509_USER_PROXY"] == b"/tmp/pilot"
    assert env[b"USER"] == b"tgt"


def test_unwrap_exclusions_and_quirk(bindir: Path) -> None:
    blob = independent_encode([(b"A", b"1"), (b"B", b"2"), (b"E", b"3"), (b"SER", b"4")])
    env = payload_env(run_unwrap(bindir, blob, "--exclude=A", "-e", "B", "--", "env", "-0").stdout)
    assert (b"A" in env, b"B" in env, env[b"E"], env[b"SER"]) == (False, False, b"3", b"4")
    env = payload_env(run_unwrap(bindir, blob, "--substring-exclude", "--", "env", "-0").stdout)
    assert b"E" not in env and b"SER" not in env  # substrings of HOME / USER


def test_unwrap_getopt_permutes_until_double_dash(bindir: Path) -> None:
    blob = independent_encode([(b"A", b"1"), (b"B", b"2")])
    # Options are taken from anywhere before "--"; what follows "--" is untouched.
    result = run_unwrap(bindir, blob, "printf", "--exclude=A", "%s|", "--", "--exclude=B", "-x")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"--exclude=B|-x|"


def test_unwrap_single_argument_runs_through_shell(bindir: Path) -> None:
    blob = independent_encode([(b"FOO", b"from pilot")])
    result = run_unwrap(bindir, blob, "--", 'cd / && echo "$FOO in $(pwd)"; exit 7')
    assert result.returncode == 7
    assert result.stdout == b"from pilot in /\n"


def test_unwrap_several_arguments_are_execd_directly(bindir: Path) -> None:
    blob = independent_encode([(b"FOO", b"x")])
    result = run_unwrap(bindir, blob, "--", "printf", "[%s]", "a b", "$FOO", ";")
    assert result.stdout == b"[a b][$FOO][;]"


def test_unwrap_searches_restored_path(bindir: Path, tmp_path: Path) -> None:
    tool = tmp_path / "pilot-tool"
    tool.write_text("#!/bin/sh\necho found-by-restored-path\n")
    tool.chmod(0o755)
    blob = independent_encode([(b"PATH", str(tmp_path).encode() + b":/usr/bin:/bin")])
    result = run_unwrap(bindir, blob, "--", "pilot-tool", "arg")
    assert result.stdout == b"found-by-restored-path\n"


@pytest.mark.parametrize("args, code, message", [
    (["--", "/nonexistent/cmd", "x"], 127, "glexec_unwrapenv: cannot execute /nonexistent/cmd"),
    (["--", "/etc/hostname", "x"], 126, "glexec_unwrapenv: cannot execute /etc/hostname"),
    (["--"], 2, "glexec_unwrapenv: no command given"),
    (["--frob", "true"], 2, "Unknown option: frob"),
    (["--exclude"], 2, "Option exclude requires an argument"),
])
def test_unwrap_failures(bindir: Path, args: list[str], code: int, message: str) -> None:
    result = run_unwrap(bindir, independent_encode([(b"A", b"1")]), *args)
    assert result.returncode == code
    assert result.stderr.decode().splitlines()[0].startswith(message)


@pytest.mark.parametrize("blob", [None, ""])
def test_unwrap_without_blob_dies_like_the_original(bindir: Path, blob: str | None) -> None:
    result = run_unwrap(bindir, blob, "--", "true")
    assert result.returncode == 255
    assert result.stderr == b"GLEXEC_ENV not set. No environment to pass on\n"


def test_unwrap_entry_without_equals_is_reported_and_skipped(bindir: Path) -> None:
    inner = (base64.b64encode(b"GOOD=1") + b" " + base64.b64encode(b"no equals\nhere") + b"  "
             + base64.b64encode(b"ALSO=2") + b" ")
    blob = base64.b64encode(zlib.compress(inner))
    result = run_unwrap(bindir, blob, "--", "env", "-0")
    assert result.returncode == 0
    env = payload_env(result.stdout)
    assert env[b"GOOD"] == b"1" and env[b"ALSO"] == b"2"
    # Inner empty field (two spaces): the Perl split yields an empty entry as well.
    assert result.stderr.decode().splitlines() == ["no = sign found in [no equals\\x0ahere]!",
                                                   "no = sign found in []!"]


def _bomb() -> bytes:
    return base64.b64encode(zlib.compress(b"A" * (MAX_INFLATED + 1), 9))


HOSTILE = {
    "outer not base64": (b"!!!not base64!!!", "GLEXEC_ENV is not valid base64"),
    "outer bad padding": (b"eJxLTEoGAAJ", "GLEXEC_ENV is not valid base64"),
    "not zlib": (base64.b64encode(b"plain text"), "GLEXEC_ENV does not hold a valid zlib"),
    "truncated": (base64.b64encode(zlib.compress(b"QT0x ")[:-3]), "truncated zlib stream"),
    "trailing data": (base64.b64encode(zlib.compress(b"QT0x ") + b"junk"),
                      "data after the end of its zlib stream"),
    "zlib bomb": (None, f"inflates to more than {MAX_INFLATED} bytes"),
    "too many entries": (base64.b64encode(zlib.compress(b"QT0x " * 20000)),
                         "holds 20000 entries, more than 16384"),
    "entry not base64": (base64.b64encode(zlib.compress(b"QT0x @@@ ")),
                         "GLEXEC_ENV entry 2 is not valid base64"),
    "empty name": (independent_encode([(b"", b"value")]), "entry 1 has an empty variable name"),
    "NUL byte": (independent_encode([(b"A", b"x\0y")]), "entry 1 (A) contains a NUL byte"),
    "duplicate": (independent_encode([(b"A", b"1"), (b"B", b"2"), (b"A", b"3")]),
                  "GLEXEC_ENV sets A twice"),
    "huge entry": (independent_encode([(b"A", b"x" * MAX_ARG_STRLEN)]),
                   "entry 1 is 131074 bytes"),
    "blob too long": (b"A" * (MAX_ARG_STRLEN + 4), "GLEXEC_ENV is 131076 bytes, more than"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_unwrap_refuses_hostile_blob_without_running_command(bindir: Path, tmp_path: Path,
                                                             case: str) -> None:
    blob, message = HOSTILE[case]
    if blob is None:
        blob = _bomb()
    marker = tmp_path / "ran"
    with pytest.raises(BlobError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode_blob(blob)
    if len(blob) < MAX_ARG_STRLEN:  # larger ones cannot be passed to a process at all
        result = run_unwrap(bindir, blob, "--", "touch", str(marker))
        assert result.returncode == 255
        lines = result.stderr.decode().splitlines()
        assert len(lines) == 1 and message in lines[0]
        assert "Traceback" not in result.stderr.decode()
        assert not marker.exists()


def test_unwrap_accepts_whitespace_in_blob(bindir: Path) -> None:
    blob = independent_encode([(b"A", b"1")])
    wrapped = b"\n".join(blob[i:i + 8] for i in range(0, len(blob), 8)) + b"\n"
    result = run_unwrap(bindir, wrapped, "--", "env", "-0")
    assert payload_env(result.stdout)[b"A"] == b"1"


# --- both halves together -----------------------------------------------------------------------

def test_panda_calling_pattern_with_clearing_launcher(bindir: Path, tmp_path: Path) -> None:
    """``export GLEXEC_ENV=`glexec_wrapenv`; glexec glexec_unwrapenv -- <cmd>`` delivers vars.

    The stand-in ``glexec`` clears the environment the way the launcher does (keeps GLEXEC_*,
    sets HOME/USER/X509_USER_PROXY for the target); the real launcher is used in
    tests/root/test_tools_envwrap.py.
    """
    glexec = tmp_path / "glexec"
    glexec.write_text('#!/bin/sh\nexec env -i GLEXEC_ENV="$GLEXEC_ENV" HOME=/target '
                      'USER=target LOGNAME=target X509_USER_PROXY=/target/proxy '
                      'PATH=/usr/bin:/bin "$@"\n')
    glexec.chmod(0o755)
    workdir = tmp_path / "work"
    workdir.mkdir()
    payload = 'echo "$PILOT_VAR|$ATLAS_LOCAL|$HOME|$X509_USER_PROXY|$(pwd)"'
    script = (f'export GLEXEC_ENV=`{bindir}/glexec_wrapenv`; '
              f'{glexec} {bindir}/glexec_unwrapenv -- '
              f"'cd {workdir}; {payload} 2>&1;'")
    result = subprocess.run(["/bin/sh", "-c", script], capture_output=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin", "PILOT_VAR": "pilot value",
                                 "ATLAS_LOCAL": "a=b c", "HOME": "/home/pilot",
                                 "X509_USER_PROXY": "/tmp/x509up_pilot"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == f"pilot value|a=b c|/target|/target/proxy|{workdir}\n"


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True),
    st.binary(max_size=200).filter(lambda b: b"\0" not in b), max_size=30))
def test_encode_decode_round_trip(environ: dict[str, bytes]) -> None:
    env = {k.encode(): v for k, v in environ.items()}
    rule = ExclusionRule([], [], False)
    skipped: list[bytes] = []
    blob = encode_environment(env, rule, skipped).encode()
    expected = {k: v for k, v in env.items() if not rule.excludes(k)}
    assert set(skipped) == set(env) - set(expected)
    pairs, without_equals = decode_blob(blob)
    assert dict(pairs) == expected and not without_equals
    assert sorted(independent_decode(blob)) == sorted(k + b"=" + v for k, v in expected.items())


def test_unwrap_options_after_command_need_double_dash(bindir: Path) -> None:
    """Getopt::Long permutes: ``ls -l`` without ``--`` hands ``-l`` to the option parser."""
    result = run_unwrap(bindir, independent_encode([(b"A", b"1")]), "env", "-0")
    assert result.returncode == 2
    assert result.stderr.decode().startswith("Unknown option: 0\n")


PERL_ENCODE = r"""
use Compress::Zlib; use MIME::Base64;
my $text = join("", map { encode_base64("$_=$ENV{$_}", "") . " " } sort keys %ENV);
my ($d, $st) = deflateInit(); my ($out) = $d->deflate($text); my ($tail) = $d->flush();
print encode_base64($out . $tail, "");
"""
PERL_DECODE = r"""
use Compress::Zlib; use MIME::Base64;
my ($i, $st) = inflateInit(); my $raw = decode_base64(<STDIN>); my ($text) = $i->inflate($raw);
print join("\0", map { decode_base64($_) } split(/ /, $text));
"""


def test_interoperates_with_perl_zlib_and_base64(bindir: Path) -> None:
    """Blobs made with Perl's Compress::Zlib/MIME::Base64 (what the original used) both ways."""
    perl = subprocess.run(["perl", "-MCompress::Zlib", "-MMIME::Base64", "-e", "1"],
                                  capture_output=True)
    require(perl.returncode == 0, "needs perl with Compress::Zlib (perl package)")
    env = {"FOO": "bar baz", "MULTI": "a\nb", "EQ": "=1="}
    blob = subprocess.run(["perl", "-e", PERL_ENCODE], env=env, capture_output=True,
                          check=True).stdout
    restored = payload_env(run_unwrap(bindir, blob, "--", "env", "-0").stdout)
    assert {k: restored[k.encode()].decode() for k in env} == env
    ours = run_wrap(bindir, env).stdout
    decoded = subprocess.run(["perl", "-e", PERL_DECODE], input=ours, capture_output=True,
                             check=True).stdout
    assert sorted(decoded.split(b"\0")) == sorted(f"{k}={v}".encode() for k, v in env.items())
