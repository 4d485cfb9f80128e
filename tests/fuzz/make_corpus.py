"""Regenerate the seed corpus in tests/data/corpus/ (run as root; needs openssl and voms-clients).

    /opt/glexec-py-dev/bin/python tests/fuzz/make_corpus.py

Seeds are the repository's own sample files, small hand-written hostile shapes per parser, and
credentials of a throw-away CA made on the spot (scripts/make-test-ca.sh) -- certificates, a
VOMS attribute certificate, and a proxy whose key was made for the corpus only. Inputs that once
broke a parser are added by hand as ``crash-<what>`` and never removed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "corpus"


def put(target: str, name: str, data: bytes | str) -> None:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def text_seeds() -> None:
    put("glexec_conf", "sample", (REPO / "etc" / "glexec.conf").read_bytes())
    put("glexec_conf", "minimal", "[glexec]\nlinger = yes\nlog_destination = syslog\n")
    put("glexec_conf", "dummy-section", "[glexec]\n[dummy]\n")
    put("glexec_conf", "malloc", "[glexec]\npreserve_env_variables = MALLOC*, SLURM_*\n")
    put("glexec_conf", "ranges", "[glexec]\ntracking_gid_ranges = 1-2, 5-3, 9999999999-1\n")
    put("glexec_conf", "crlf-bom", "\ufeff[glexec]\r\nlinger = no\r\n")
    for db in sorted((REPO / "etc" / "lcmaps").glob("*.db")):
        put("lcmaps_db", db.name, db.read_bytes())
    put("lcmaps_db", "loop", 'a = "lcmaps_dummy_good.mod"\np:\na -> a\n')
    put("lcmaps_db", "unbalanced", 'x = "lcmaps_localaccount.mod -gridmap "/a b\np:\nx\n')
    for yml in sorted((REPO / "etc" / "policy").glob("*.yaml")):
        put("yaml_policy", yml.name, yml.read_bytes())
    put("yaml_policy", "python-tag", "glexec_policy: 1\nx: !!python/object/apply:os.system [id]\n")
    put("yaml_policy", "billion-laughs",
        "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n")
    put("yaml_policy", "deep", "[" * 500 + "]" * 500)
    lcas = REPO / "etc" / "lcas"
    for db in sorted(lcas.glob("*")) if lcas.is_dir() else []:
        put("lcas_db", db.name, db.read_bytes())
    put("lcas_db", "plain", 'pluginname=lcas_userban.mod,pluginargs="ban_users.db"\n')
    put("lcas_db", "quotes", 'pluginname="lcas_timeslots.mod",pluginargs="a \\" b" # c\n')
    put("lcas_db", "garbage", "pluginname\npluginargs=\n=,=,\n")
    put("grid_mapfile", "sample", (REPO / "etc" / "grid-mapfile.example").read_bytes())
    put("grid_mapfile", "hostile",
        '"/DC=org/CN=a\\"b" user\r\n\ufeff"/CN=x"\tu1,u2 \n"/CN=\x00nul" x\n'
        '"/CN=' + "a" * 1100 + '" long\n"/CN=*" .pool\n"/CN=[a-" x\n')
    put("grid_mapfile", "ban-list", '"/DC=org/DC=example/*"\n"/CN=*/CN=proxy"\n# c\n')
    put("ban_pattern", "stars", "*a*a*a*a*a*a*a*a*a*b\n/" + "a" * 200)
    put("ban_pattern", "sets", "[[[[]]]]*[!a-z]?\n/CN=x")
    put("ban_pattern", "case", "/DC=ORG/*\n/DC=org/CN=x")
    put("timeslots", "sample", "* * * * * *\n0-30 8-17 * * 1-5 *\n# comment\n")
    put("timeslots", "bad-range", "99-1 * * * * *\n")
    put("timeslots", "huge", "0-99999999999999999999 * * * * *\n")
    put("dn", "plain", "/DC=org/DC=example/O=glexec-py demo/CN=Demo User")
    put("dn", "ambiguous", "/DC=org/CN=alice/CN=root/CN=a\\/CN=b/emailAddress=x@y/E=z")
    put("dn", "multi", "/CN=a+UID=b/CN=\xe9\udcff/")
    put("caller_environment", "basic",
        b"GLEXEC_CLIENT_CERT=/tmp/x\0PATH=/bin\0SLURM_JOB_ID=1\0")
    put("caller_environment", "duplicate", b"A=1\0A=2\0")
    put("caller_environment", "hostile",
        b"GLEXEC_ID=a\nb\0=x\0NOEQ\0MALLOC_CHECK_=3\0CONDOR_INHERIT=() { :; }\0\xff=\xfe\0")
    for i, env in enumerate([b"A=1\0B=2\0", b"HOME=/x\0GLEXEC_ENV=" + b"x" * 100 + b"\0",
                             b"NOEQUALS\0=\0"]):
        put("wrapped_environment", f"valid-{i}", base64.b64encode(zlib.compress(env)))
    put("wrapped_environment", "bomb", base64.b64encode(zlib.compress(b"A" * (8 << 20), 9)))
    put("wrapped_environment", "truncated", base64.b64encode(zlib.compress(b"A=1\0")[:-3]))
    put("external_filter_json", "accept", '{"result": "success", "uid": 1000}')
    put("external_filter_json", "crash-deep-nesting", "[" * 5000 + "]" * 5000)
    put("external_filter_json", "types",
        '{"result": "success", "uid": -1, "gid": 1e400, "sgids": [0, "x"], "username": "a/b"}')
    put("external_filter_json", "bigint", '{"result":"success","uid":' + "9" * 5000 + "}")
    put("command_line", "plain", b"/bin/sh\0-c\0echo hi")
    put("command_line", "options", b"--config=/etc/x\0--\0-V\0--config")
    put("command_line", "verify-form", b"47011\0" + b"47010\0/usr/bin/id")


def credential_seeds() -> None:
    with tempfile.TemporaryDirectory(dir="/run") as tmp:
        ca = Path(tmp) / "ca"
        subprocess.run([str(REPO / "scripts" / "make-test-ca.sh"), str(ca)], check=True,
                       capture_output=True)
        user_cert = (ca / "user" / "usercert.pem").read_bytes()
        ca_cert = (ca / "ca" / "ca.pem").read_bytes()
        proxy = Path(tmp) / "proxy"
        subprocess.run(["voms-proxy-fake", "-rfc", "-cert", str(ca / "user" / "usercert.pem"),
                        "-key", str(ca / "user" / "userkey.pem"),
                        "-hostcert", str(ca / "voms" / "hostcert.pem"),
                        "-hostkey", str(ca / "voms" / "hostkey.pem"), "-voms", "atlas",
                        "-uri", "voms.example.org:15001", "-fqan", "/atlas/Role=pilot",
                        "-out", str(proxy), "-hours", "1"],
                       check=True, capture_output=True,
                       env={"PATH": "/usr/bin:/bin", "HOME": tmp})
        proxy_pem = proxy.read_bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    certs = x509.load_pem_x509_certificates(proxy_pem)
    put("pem", "voms-proxy", proxy_pem)
    put("pem", "chain-only", user_cert + ca_cert)
    put("pem", "odd-labels", b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"
        b"-----BEGIN X-----\n-----END X-----\n-----BEGIN RSA PRIVATE KEY-----\n")
    for i, cert in enumerate(certs):
        der = cert.public_bytes(Encoding.DER)
        put("der_certificate", f"proxy-chain-{i}", der)
        put("der_structure", f"proxy-chain-{i}", der)
        put("dn_der", f"subject-{i}", cert.subject.public_bytes())
        for ext in cert.extensions:
            if ext.oid.dotted_string == "1.3.6.1.4.1.8005.100.100.5":
                put("attribute_certificate", "voms-extension", ext.value.value)
    put("der_certificate", "truncated", certs[0].public_bytes(Encoding.DER)[:200])
    put("der_structure", "deep", b"\x30\x80" * 100)
    put("der_structure", "long-length", b"\x30\x84\xff\xff\xff\xff")
    put("dn_der", "empty-rdn", b"\x30\x02\x31\x00")
    put("attribute_certificate", "empty", b"\x30\x00")
    put("attribute_certificate", "junk", hashlib.sha256(b"ac").digest())


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("run as root (the test CA lives under /run)")
    text_seeds()
    credential_seeds()
