"""Verdict suite: every credential is judged by glexec-py and by two independent verifiers.

Oracles, on the same files: ``openssl verify -allow_proxy_certs -crl_check_all -CApath
<certdir> -untrusted <rest of chain> <leaf>`` and Debian's ``verify-proxy-tool`` (package
lcmaps-plugins-verify-proxy, the LCMAPS verify-proxy library). Each row states all three
expected verdicts; where they differ, ``why`` says which rule glexec-py follows and why.
Verdicts: "ok", 201 (ClientError), 203 (AuthorizationError); oracles: "ok" / "fail".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from fixtures.credentials import USER_DN
from fixtures.prereq import require

from glexec_py.credentials import VerifyOptions, load_and_verify
from glexec_py.errors import AuthorizationError, ClientError

pytestmark = pytest.mark.parity

NO_OPENSSL_GT2 = "OpenSSL knows only RFC 3820 proxies; GT2/GT3 proxies are plain EECs to it"
NO_KEY_CHECK = "openssl verify checks the certificates only, never the private key"
NO_SHA256 = VerifyOptions(refused_signature_hashes=("md5", "sha256"))
BIG_KEYS = VerifyOptions(min_key_bits=2048)

# (kind, factory options, verify options, ours, openssl, verify-proxy-tool, why)
CASES = [
    ("rfc", {}, None, "ok", "ok", "ok", ""),
    ("limited", {}, None, "ok", "ok", "ok", ""),
    ("independent", {}, None, "ok", "ok", "ok", ""),
    ("legacy", {}, None, "ok", "fail", "ok", NO_OPENSSL_GT2),
    ("legacy-limited", {}, None, "ok", "fail", "ok", NO_OPENSSL_GT2),
    ("draft", {}, None, "ok", "fail", "ok", NO_OPENSSL_GT2),
    ("draft-limited", {}, None, "ok", "fail", "ok", NO_OPENSSL_GT2),
    ("pathlen1", {}, None, "ok", "ok", "ok", ""),
    ("proxy-of-proxy", {}, None, "ok", "ok", "ok", ""),
    ("pathlen1-grandchild", {}, None, 203, "fail", "fail", ""),
    ("revoked-rfc", {}, None, 203, "fail", "fail", ""),
    ("voms", {}, None, "ok", "ok", "ok", ""),
    ("voms", {"newformat": True}, None, "ok", "ok", "ok", ""),
    ("voms", {"vo": "dteam", "fqans": ["/dteam/Role=NULL"]}, None, "ok", "ok", "ok", ""),
    ("voms-expired-ac", {}, None, "ok", "ok", "ok",
     "an expired AC only loses its FQANs (tested in test_cred_voms.py); the chain is fine"),
    ("voms-pathlen0-child", {}, None, 203, "fail", "fail", ""),
    ("expired", {}, None, 201, "fail", "fail", ""),
    ("not-yet-valid", {}, None, 201, "fail", "fail", ""),
    ("expired-intermediate", {}, None, 201, "fail", "fail", ""),
    ("wrong-key", {}, None, 201, "ok", "fail", NO_KEY_CHECK),
    ("no-key", {}, None, 201, "ok", "ok", NO_KEY_CHECK + "; verify-proxy-tool (unlike the plugin "
     "with --never_discard_private_key_absence) does not require the key; gLExec does (D39)"),
    ("usercert-only", {}, None, 201, "ok", "ok", NO_KEY_CHECK + "; the EEC itself is valid and "
     "verify-proxy-tool does not require a key; gLExec does (D39)"),
    ("forged-subject", {}, None, 203, "fail", "fail", ""),
    ("two-cn", {}, None, 203, "fail", "fail", ""),
    ("self-signed-ca", {}, None, 203, "fail", "fail", ""),
    ("untrusted-ca", {}, None, 203, "fail", "fail", ""),
    ("ca-true-proxy", {}, None, 203, "fail", "fail", ""),
    ("ca-true-eec", {}, None, 203, "fail", "fail", ""),
    ("proxy-issues-eec", {}, None, 203, "fail", "fail", ""),
    ("pathlen0-child", {}, None, 203, "fail", "fail", ""),
    ("rfc", {}, NO_SHA256, 203, "ok", "ok",
     "site option refused_signature_hashes (here sha256, to show the mechanism: neither the tools "
     "nor cryptography 50 can still sign SHA-1/MD5 test certificates); the oracles have no such "
     "option"),
    ("rfc-512bit", {}, None, 203, "ok", "ok",
     "grid-proxy-init -bits 512: glexec-py's default min_key_bits=1024 refuses it; verify-proxy "
     "only warns about small keys and openssl's default security level accepts 512-bit leaves"),
    ("small-key", {}, None, "ok", "ok", "ok", ""),
    ("small-key", {}, BIG_KEYS, 203, "ok", "ok",
     "site option min_key_bits=2048: verify-proxy only warns on small keys"),
    ("ec-proxy", {}, None, "ok", "ok", "ok", ""),
    ("huge-chain", {}, None, 201, "ok", "ok",
     "21 certificates: glexec-py refuses more than 16 up front to bound verification cost; "
     "the chain is otherwise valid, so both oracles accept it"),
    ("unknown-critical", {}, None, 203, "fail", "fail", ""),
    ("tampered-ac", {}, None, "ok", "ok", "ok",
     "the AC signature is not part of chain validity; its FQANs are dropped (test_cred_voms)"),
    ("ac-other-holder", {}, None, "ok", "ok", "ok",
     "a foreign AC only loses its FQANs (test_cred_voms); 'Other User' has a valid chain"),
    ("garbage", {}, None, 201, "fail", "fail", ""),
    ("der", {}, None, 201, "ok", "fail",
     "openssl verify auto-detects DER; a gLExec proxy file must be PEM (with its key)"),
    ("empty", {}, None, 201, "fail", "fail", ""),
]

_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----\n?", re.S)


def openssl_verdict(data: bytes, certdir: str, workdir: str) -> str:
    certs = [m.group(0) for m in _BLOCK.finditer(data) if m.group(1) == b"CERTIFICATE"]
    leaf = os.path.join(workdir, "leaf.pem")
    rest = os.path.join(workdir, "rest.pem")
    with open(leaf, "wb") as handle:
        handle.write(certs[0] if certs else data)
    argv = ["openssl", "verify", "-allow_proxy_certs", "-crl_check_all", "-CApath", certdir]
    if len(certs) > 1:
        with open(rest, "wb") as handle:
            handle.write(b"".join(certs[1:]))
        argv += ["-untrusted", rest]
    proc = subprocess.run([*argv, leaf], capture_output=True, timeout=30)
    return "ok" if proc.returncode == 0 else "fail"


def vpt_verdict(path: str, certdir: str) -> str:
    proc = subprocess.run(["verify-proxy-tool", path], capture_output=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "X509_CERT_DIR": certdir})
    return "ok" if proc.returncode == 0 else "fail"


def ours_verdict(data: bytes, ca, options: VerifyOptions | None) -> str | int:
    try:
        cred = load_and_verify(data, certdir=str(ca.certdir), vomsdir=str(ca.vomsdir),
                               options=options)
    except ClientError:
        return 201
    except AuthorizationError:
        return 203
    assert cred.dn in (USER_DN, "/DC=org/DC=example/O=glexec-py demo/CN=Other User")
    return "ok"


@pytest.mark.parametrize(("kind", "made", "options", "ours", "openssl", "vpt", "why"), CASES,
                         ids=[f"{c[0]}{'-' + '-'.join(map(str, c[1].values())) if c[1] else ''}"
                              f"{'-opt' if c[2] else ''}" for c in CASES])
def test_verdicts_agree_with_oracles(make_proxy, test_ca, trusted_tmp, kind, made, options,
                                     ours, openssl, vpt, why) -> None:
    require(bool(shutil.which("verify-proxy-tool")), "needs verify-proxy-tool "
            "(lcmaps-plugins-verify-proxy)")
    path = make_proxy(kind, **made)
    data = path.read_bytes()
    got = (ours_verdict(data, test_ca, options),
           openssl_verdict(data, str(test_ca.certdir), str(trusted_tmp)),
           vpt_verdict(str(path), str(test_ca.certdir)))
    assert got == (ours, openssl, vpt), why


def test_suite_is_broad_enough() -> None:
    distinct = {(kind, repr(made)) for kind, made, *_ in CASES}
    assert len(distinct) >= 30
