"""Attack catalogue group B (the caller's environment), through the installed launcher.

Beyond the catalogue: interpreter and loader variables proven inert by marker files, a caller's
own CA offered through every OpenSSL/Globus variable, spoofed identity variables (USER, SUDO_UID),
entries without '=' or with an empty name, raw non-UTF-8 bytes, and preserve patterns that would
cover MALLOC_*. Caller-influenced refusals must leave no lease (the site maps to the pool).
"""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from fixtures.side_effects import assert_refused

pytestmark = [pytest.mark.root, pytest.mark.installed]

MARKER_LIB = r"""
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void mark(void)
{
    int fd = open("%s", O_WRONLY | O_CREAT | O_APPEND, 0666);
    if (fd >= 0) { write(fd, "loaded\n", 7); close(fd); }
}
"""


@pytest.fixture
def marker_dir(trusted_tmp):
    """A directory any uid may write a marker into (only markers go there)."""
    path = trusted_tmp / "markers"
    path.mkdir()
    os.chmod(path, 0o1777)
    return path


@pytest.fixture
def marker_library(trusted_tmp, marker_dir):
    source = trusted_tmp / "marker.c"
    marker = marker_dir / "library-loaded"
    source.write_text(MARKER_LIB % marker)
    library = trusted_tmp / "libmarker.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    os.chmod(library, 0o755)
    return library, marker


def test_b10_loader_variables_never_load_a_library(pool_site, accounts, proxy, marker_library):
    library, marker = marker_library
    env = {"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY": "/dev/null",
           "LD_PRELOAD": str(library), "LD_LIBRARY_PATH": str(library.parent),
           "LD_AUDIT": str(library), "GLIBC_TUNABLES": "glibc.malloc.check=3",
           "LD_DEBUG": "all", "LD_PROFILE": "libc.so.6"}
    result = pool_site.run(accounts.pilot, ["/usr/bin/env"], env=env)
    assert result.code == 0, result
    names = {line.partition("=")[0] for line in result.out.splitlines()}
    assert not {n for n in names if n.startswith(("LD_", "GLIBC_"))}, names
    assert not marker.exists()
    assert "calling init" not in result.err  # no LD_DEBUG output from anyone


def test_b12_interpreter_variables_are_inert(pool_site, accounts, proxy, marker_dir,
                                             trusted_tmp):
    evil = trusted_tmp / "evil"
    evil.mkdir()
    marker = marker_dir / "python-imported"
    code = f"open({str(marker)!r}, 'a').write('imported\\n')\n"
    for name in ("evilmod.py", "sitecustomize.py", "usercustomize.py", "encodings.py",
                 "prctl.py", "startup.py"):
        (evil / name).write_text(code)
    env = {"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY": "/dev/null",
           "PYTHONPATH": str(evil), "PYTHONHOME": str(evil),
           "PYTHONWARNINGS": "ignore::evilmod.X", "PYTHONBREAKPOINT": "evilmod.hook",
           "PYTHONPYCACHEPREFIX": str(evil), "PYTHONSTARTUP": str(evil / "startup.py"),
           "PYTHONUSERBASE": str(evil), "PYTHONINSPECT": "1", "PYTHONMALLOC": "debug",
           "PYTHONIOENCODING": "evilmod", "PYTHONSAFEPATH": "", "PYTHONPLATLIBDIR": str(evil)}
    result = pool_site.run(accounts.pilot, ["/bin/true"], env=env, stdin=b"import evilmod\n")
    assert result.code == 0, result
    assert not marker.exists()
    assert list(evil.iterdir()) and not any(p.suffix == ".pyc" for p in evil.rglob("*"))


def test_b14_callers_own_ca_through_environment_is_ignored(pool_site, accounts, make_proxy,
                                                            snapshot, trusted_tmp):
    path = make_proxy("self-signed-ca", owner_uid=accounts.pilot.uid)
    certs = path.read_bytes().split(b"-----END CERTIFICATE-----")
    fake_ca = certs[-2].split(b"-----BEGIN CERTIFICATE-----")[1]
    cadir = trusted_tmp / "evil-certs"
    cadir.mkdir()
    pem = cadir / "ca.pem"
    pem.write_bytes(b"-----BEGIN CERTIFICATE-----" + fake_ca + b"-----END CERTIFICATE-----\n")
    digest = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(pem)],
                            capture_output=True, text=True, check=True).stdout.strip()
    os.link(pem, cadir / f"{digest}.0")
    subprocess.run(["chown", "-R", f"{accounts.pilot.uid}", str(cadir)], check=True)
    env = {"GLEXEC_CLIENT_CERT": str(path), "X509_CERT_DIR": str(cadir),
           "X509_VOMS_DIR": str(cadir), "SSL_CERT_DIR": str(cadir), "SSL_CERT_FILE": str(pem),
           "OPENSSL_CONF": str(pem), "X509_USER_CERT": str(path), "X509_USER_PROXY": str(path),
           "GLEXEC_CERT_DIR": str(cadir)}
    snap = snapshot(pool_site)
    result = pool_site.run(accounts.pilot, ["/usr/bin/id"], env=env)
    assert_refused(pool_site, result, 203, snap)


def test_b16_hostile_shell_variables_do_not_reach_the_payload(pool_site, accounts, proxy,
                                                              attack_accounts, marker_dir):
    marker = marker_dir / "bash-env-sourced"
    script = marker_dir / "env.sh"
    script.write_text(f"echo sourced >> {marker}\n")
    os.chmod(script, 0o755)
    hostile = {"TMPDIR": "/tmp/../etc", "HOME": "/root", "PATH": ".:/tmp", "IFS": "/",
               "CDPATH": "/etc", "ENV": str(script), "BASH_ENV": str(script), "PS4": "$(id)",
               "SHELLOPTS": "xtrace", "BASHOPTS": "extdebug", "GLOBIGNORE": "*",
               "BASH_FUNC_id%%": "() { echo hijacked; }", "TZ": "/etc/shadow",
               "LANG": "../../../tmp/x", "USER": "root", "LOGNAME": "root", "SHELL": "/bin/evil"}
    result = pool_site.run(accounts.pilot, ["/bin/bash", "-c", "id -u; env"],
                           env={"GLEXEC_CLIENT_CERT": str(proxy),
                                "GLEXEC_TARGET_PROXY": "/dev/null", **hostile})
    assert result.code == 0, result
    lines = result.out.splitlines()
    uid = int(lines[0])
    env = dict(line.partition("=")[::2] for line in lines[1:] if "=" in line)
    pool = {a.uid: a for a in attack_accounts.pool}
    assert uid in pool
    assert env["HOME"] == pool[uid].home and env["USER"] == pool[uid].name
    assert env["PATH"] == "/usr/bin:/bin" or ".:" not in env["PATH"]
    assert env["SHELL"] == "/bin/sh"
    for name in hostile:
        if name not in ("HOME", "PATH", "USER", "LOGNAME", "SHELL"):
            assert name not in env, name
    assert not marker.exists()
    assert "hijacked" not in result.out


def test_b16_spoofed_identity_variables_do_not_whitelist(attack_site, accounts, make_proxy,
                                                         snapshot):
    site = attack_site(conf={"user_white_list": accounts.pilot.name})
    path = make_proxy("rfc", owner_uid=accounts.pilot2.uid)
    snap = snapshot(site)
    result = site.run(accounts.pilot2, ["/usr/bin/id"],
                      env={"GLEXEC_CLIENT_CERT": str(path), "USER": accounts.pilot.name,
                           "LOGNAME": accounts.pilot.name, "SUDO_UID": str(accounts.pilot.uid),
                           "SUDO_USER": accounts.pilot.name, "GLEXEC_CALLER": "root"})
    assert_refused(site, result, 203, snap)


def test_b18_duplicate_variable_is_refused_and_logged(pool_site, accounts, proxy, make_proxy,
                                                      snapshot, raw_run):
    other = make_proxy("rfc", owner_uid=accounts.pilot.uid)
    snap = snapshot(pool_site)
    result = raw_run(pool_site, accounts.pilot, [b"glexec", b"/usr/bin/id"],
                     [f"GLEXEC_CLIENT_CERT={proxy}".encode(),
                      f"GLEXEC_CLIENT_CERT={other}".encode()])
    assert_refused(pool_site, result, 201, snap)
    assert "GLEXEC_CLIENT_CERT" in result.err and "twice" in result.err


@pytest.mark.parametrize("name", [b"PATH", b"GLEXEC_TARGET_PROXY", b"X\nforged", b"\x1b[2J"])
def test_b18_duplicate_of_any_name_is_one_clean_line(pool_site, accounts, proxy, snapshot,
                                                     raw_run, name):
    snap = snapshot(pool_site)
    result = raw_run(pool_site, accounts.pilot, [b"glexec", b"/usr/bin/id"],
                     [f"GLEXEC_CLIENT_CERT={proxy}".encode(), name + b"=1", name + b"=2"])
    assert_refused(pool_site, result, 201, snap)


GLEXEC_VALUES = [
    ("b19_newline_forged_record", b"GLEXEC_ID=job\nglexec[1]: real_user(root)->forged"),
    ("b19_escape_sequence", b"GLEXEC_ID=\x1b]0;owned\x07"),
    ("b19_non_utf8", b"GLEXEC_ID=\xff\xfe\x80"),
    ("b19_nul_free_but_del", b"GLEXEC_ENV=a\x7fb"),
    ("b19_c1_control", "GLEXEC_ENV=a\u0085b".encode()),
    ("b19_carriage_return", b"GLEXEC_TARGET_PROXY=/dev/null\r"),
]


@pytest.mark.parametrize(("case", "entry"), GLEXEC_VALUES, ids=[c[0] for c in GLEXEC_VALUES])
def test_b19_bad_glexec_values_refused_before_mapping(pool_site, accounts, proxy, snapshot,
                                                      raw_run, case, entry):
    snap = snapshot(pool_site)
    result = raw_run(pool_site, accounts.pilot, [b"glexec", b"/usr/bin/id"],
                     [f"GLEXEC_CLIENT_CERT={proxy}".encode(), entry])
    assert_refused(pool_site, result, 201, snap)
    assert len(result.records[0]) < 4000


@pytest.mark.parametrize("entries", [[b"NOEQUALSIGN"], [b"=value"], [b"=", b"=="],
                                     [b"\xff=\xfe"], [b"A=" + b"\xc3" * 1000]],
                         ids=["no-equals", "empty-name", "bare-equals", "non-utf8-name",
                              "truncated-utf8"])
def test_malformed_entries_outside_glexec_names_are_dropped(pool_site, accounts, proxy,
                                                            raw_run, entries):
    result = raw_run(pool_site, accounts.pilot, [b"glexec", b"/usr/bin/env"],
                     [f"GLEXEC_CLIENT_CERT={proxy}".encode(), b"GLEXEC_TARGET_PROXY=/dev/null",
                      *entries])
    assert result.code == 0, result
    names = {line.partition("=")[0] for line in result.out.splitlines()}
    assert names == {"GLEXEC_CLIENT_CERT", "GLEXEC_TARGET_PROXY", "HOME", "USER", "LOGNAME",
                     "PATH", "SHELL", "X509_USER_PROXY"}


@pytest.mark.parametrize("pattern", ["MALLOC_CHECK_", "MALLOC_*", "malloc_perturb_", "MALLOC*",
                                     "MALL*", "*"])
def test_b22_preserving_malloc_variables_is_a_site_error(attack_site, accounts, proxy,
                                                         snapshot, pattern):
    site = attack_site(conf={"preserve_env_variables": pattern})
    snap = snapshot(site)
    result = site.run(accounts.pilot, ["/usr/bin/env"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy), "MALLOC_CHECK_": "3"})
    assert_refused(site, result, 202, snap, site_log=False)


def test_b20_epilog_variables_are_cleared(pool_site, accounts, proxy):
    result = pool_site.run(accounts.pilot, ["/usr/bin/env"],
                           env={"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY":
                                "/dev/null", "GLEXEC_EPILOG_UID": "0",
                                "GLEXEC_EPILOG_" + uuid.uuid4().hex[:4]: "x"})
    assert result.code == 0, result
    assert "GLEXEC_EPILOG_" not in result.out


def test_b20_root_epilogue_gets_no_caller_or_payload_environment(
        attack_site, accounts, proxy, attack_accounts, marker_library, marker_dir, trusted_tmp):
    """The epilogue runs as root: whatever the payload may get (preserve_env_variables, the
    target's HOME with its dotfiles, the caller's GLEXEC_* values) must not reach it."""
    library, marker = marker_library
    out = marker_dir / "epilogue.env"
    script = trusted_tmp / "epilogue.sh"
    script.write_text(f"#!/bin/sh\nenv > {out}\n")
    os.chmod(script, 0o755)
    site = attack_site(to="user", conf={
        "epilogue": str(script),
        "preserve_env_variables": "LD_PRELOAD, LD_LIBRARY_PATH, BASH_ENV, PYTHONPATH"})
    result = site.run(accounts.pilot, ["/bin/true"],
                      env={"GLEXEC_CLIENT_CERT": str(proxy), "GLEXEC_TARGET_PROXY": "/dev/null",
                           "LD_PRELOAD": str(library), "LD_LIBRARY_PATH": str(marker_dir),
                           "BASH_ENV": str(marker_dir / "x.sh"), "PYTHONPATH": str(marker_dir),
                           "GLEXEC_JOB": "pilot-chosen"})
    assert result.code == 0, result
    env = dict(line.partition("=")[::2] for line in out.read_text().splitlines())
    assert not marker.exists(), "the caller's library was loaded into the root epilogue"
    for name in ("LD_PRELOAD", "LD_LIBRARY_PATH", "BASH_ENV", "PYTHONPATH", "GLEXEC_JOB",
                 "GLEXEC_CLIENT_CERT", "X509_USER_PROXY"):
        assert name not in env, name
    assert env["HOME"] != attack_accounts.user.home
    assert env["GLEXEC_EPILOG_UID"] == str(attack_accounts.user.uid)
