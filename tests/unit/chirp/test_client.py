"""glexec_py.chirp against the protocol-exact server: framing, auth, replies, escapes, limits."""

from __future__ import annotations

import socket
import time

import pytest

from glexec_py.chirp import (
    ChirpClient,
    ChirpConfig,
    ChirpError,
    classad_string,
    escape_word,
    parse_chirp_config,
)


def _config(server) -> ChirpConfig:
    return parse_chirp_config(server.config_line())


def test_set_and_get_with_escaped_values(chirp_server) -> None:
    with ChirpClient.connect(_config(chirp_server)) as client:
        assert client.set_job_attr("glexec_x509userproxysubject",
                                   classad_string("/DC=org/DC=test/CN=Alice Tester")) == 0
        assert client.get_job_attr("glexec_x509userproxysubject") == (
            '"/DC=org/DC=test/CN=Alice Tester"')
        assert client.version() == 2
    assert chirp_server.job_ad == {"glexec_x509userproxysubject":
                                   '"/DC=org/DC=test/CN=Alice Tester"'}
    # The exact bytes on the wire: the space inside the value is backslash-escaped.
    assert chirp_server.transcript[0] == (f"cookie {chirp_server.cookie}", "0")
    assert chirp_server.transcript[1] == (
        'set_job_attr glexec_x509userproxysubject "/DC=org/DC=test/CN=Alice\\ Tester"', "0")
    assert chirp_server.connections == 1


def test_wrong_cookie_is_refused(chirp_server_factory) -> None:
    server = chirp_server_factory(wrong_cookie_delay=0.0)
    bad = ChirpConfig(server.host, server.port, "x" * 31)
    with pytest.raises(ChirpError, match="refused the cookie") as info:
        ChirpClient.connect(bad)
    assert info.value.code == -1


def test_commands_before_cookie_get_minus_one(chirp_server) -> None:
    with socket.create_connection((chirp_server.host, chirp_server.port), timeout=5) as sock:
        sock.sendall(b"version\n")
        assert sock.recv(16) == b"-1\n"


def test_updates_disabled_gives_invalid_request(chirp_server_factory) -> None:
    server = chirp_server_factory(remote_updates=False)
    with ChirpClient.connect(_config(server)) as client:
        with pytest.raises(ChirpError, match=r"-8 \(INVALID_REQUEST\)") as info:
            client.set_job_attr("glexec_user", '"alice"')
        assert info.value.code == -8
        # Delayed updates still work, but only for Chirp* names (others: reply 1, not an error).
        assert client.set_job_attr_delayed("ChirpGlexecUser", '"alice"') == 0
        assert client.set_job_attr_delayed("GlexecUser", '"alice"') == 1
        assert client.get_job_attr_delayed("ChirpGlexecUser") == '"alice"'
        with pytest.raises(ChirpError) as info:
            client.get_job_attr_delayed("ChirpMissing")
        assert info.value.code == -3
        with pytest.raises(ChirpError) as info:
            client.set_job_attr_delayed("ChirpTL", '"' + "x" * 992 + '"')
        assert info.value.code == -127


def test_over_long_line_is_refused_by_both_sides(chirp_server) -> None:
    with ChirpClient.connect(_config(chirp_server)) as client, pytest.raises(ChirpError) as info:
        client.set_job_attr("x", '"' + "y" * 2000 + '"')
    assert info.value.code == -5
    with socket.create_connection((chirp_server.host, chirp_server.port), timeout=5) as sock:
        sock.sendall(b"cookie " + b"z" * 2000 + b"\n")
        assert sock.recv(16) == b"-5\n"
        assert sock.recv(16) == b""  # and the server hangs up


def test_connection_refused_is_a_clean_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    start = time.monotonic()
    with pytest.raises(ChirpError, match="cannot connect"):
        ChirpClient.connect(ChirpConfig("127.0.0.1", port, "c"), timeout=2)
    assert time.monotonic() - start < 2


@pytest.mark.parametrize("data", [b"", b"127.0.0.1 notaport cookie\n", b"127.0.0.1 9618\n",
                                  b"127.0.0.1 99999 c\n", b"\xff\xfe garbage"])
def test_bad_config_files(data: bytes) -> None:
    with pytest.raises(ChirpError, match="chirp config"):
        parse_chirp_config(data)


def test_escaping() -> None:
    assert escape_word('a b\\c\td\ne') == 'a\\ b\\\\c\\\td\\\ne'
    assert classad_string('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
