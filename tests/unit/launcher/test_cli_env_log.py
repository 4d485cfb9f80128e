"""Pure parts of the launcher: argv grammar, environment intake and allowlist, log escaping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glexec_py.cli import parse_args
from glexec_py.environment import build_payload_env, parse_env_blob
from glexec_py.errors import ClientError, status_for_payload
from glexec_py.log import escape


def test_parsing_stops_at_the_command():
    inv = parse_args(["/bin/sh", "-c", "-V --config=/x", "-h"])
    assert inv.action == "run"
    assert inv.command == ("/bin/sh", "-c", "-V --config=/x", "-h")


@pytest.mark.parametrize("argv,action", [([], "refresh"), (["-h"], "help"), (["-v"], "version"),
                                         (["-V"], "defaults"), (["--", "-x"], "run")])
def test_actions(argv, action):
    assert parse_args(argv).action == action


def test_double_dash_protects_a_dash_command():
    assert parse_args(["--", "-weird"]).command == ("-weird",)


@pytest.mark.parametrize("argv", [["-x", "/bin/true"], ["--config", "relative", "/bin/true"],
                                  [""]])
def test_bad_arguments_are_client_errors(argv):
    with pytest.raises(ClientError):
        parse_args(argv)


def test_deprecated_verify_form():
    inv = parse_args(["1001", "1002", "/usr/bin/id"])
    assert (inv.requested_uid, inv.requested_gid, inv.command) == (1001, 1002, ("/usr/bin/id",))


def test_env_blob_refuses_duplicates_and_skips_nameless():
    assert parse_env_blob(b"A=1\0=x\0noequals\0B=\0") == {"A": "1", "B": ""}
    with pytest.raises(ClientError):
        parse_env_blob(b"A=1\0A=2\0")


def test_payload_env_allowlist():
    caller = {"GLEXEC_CLIENT_CERT": "/p", "GLEXEC_EPILOG_X": "1", "MALLOC_CHECK_": "3",
              "LD_PRELOAD": "/x.so", "SLURM_JOB_ID": "7", "KEEP": "() { evil; }",
              "HOME": "/home/pilot", "X509_USER_PROXY": "/pilot/proxy"}
    env = build_payload_env(caller, preserve=("SLURM_*", "KEEP", "HOME"), home="/home/t",
                            user="t", path="/usr/bin:/bin", proxy="/tmp/x509up_u5")
    assert env == {"GLEXEC_CLIENT_CERT": "/p", "SLURM_JOB_ID": "7", "HOME": "/home/t",
                   "USER": "t", "LOGNAME": "t", "PATH": "/usr/bin:/bin", "SHELL": "/bin/sh",
                   "X509_USER_PROXY": "/tmp/x509up_u5"}


@pytest.mark.parametrize("value", ["a\nb", "a\x1bb", "a\udcffb", "x" * 300000])
def test_glexec_values_are_bounded_and_printable(value):
    with pytest.raises(ClientError):
        build_payload_env({"GLEXEC_ID": value}, preserve=(), home="/", user="u", path="/bin",
                          proxy="")


@given(st.text())
def test_escape_never_emits_control_characters(text):
    out = escape(text, limit=10**9)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in out)


@given(st.text(), st.text())
def test_escape_is_injective(a, b):
    if a != b:
        assert escape(a, limit=10**9) != escape(b, limit=10**9)


def test_escape_bounds_length():
    assert escape("x" * 5000, limit=100).endswith("...[4900 more]")


@pytest.mark.parametrize("status,code", [(0, 0), (3 << 8, 3), (201 << 8, 204), (204 << 8, 204),
                                         (205 << 8, 205), (15, 143), (9, 137)])
def test_status_for_payload(status, code):
    assert status_for_payload(status) == code
