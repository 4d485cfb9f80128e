"""The Debian package end to end: build it, apt-install it, map a whitelisted pilot to a pool
account through /usr/sbin/glexec, switch to declare-only, purge, and find nothing left behind.

Safe on a developer machine: refuses to run while glexec-py is installed as a package, moves an
existing /usr/sbin/glexec and /etc/glexec.conf aside and puts them back afterwards. CI's machine is
fresh. Accounts: gxdpilot (47700), gxdpool001-003 (47701-47703), group gxdpool (47700).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from fixtures.credentials import USER_DN
from fixtures.prereq import require, require_program, require_root

pytestmark = [pytest.mark.root, pytest.mark.installed, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PILOT, PILOT_UID = "gxdpilot", 47700
POOL = [(f"gxdpool{i:03d}", 47700 + i) for i in (1, 2, 3)]
POOL_GROUP, POOL_GID = "gxdpool", 47700
LIBEXEC = "/usr/lib/glexec-py/libexec"
MOVED_ASIDE = ("/usr/sbin/glexec", "/etc/glexec.conf")
# Trees that change under any running system (or belong to this test run), not to the package.
VOLATILE = ("/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/log", "/var/cache",
            "/var/lib/apt", "/var/spool", "/var/backups", "/work", "/root", "/home", "/opt",
            "/usr/local/libexec/glexec-py-tests")


def run(*argv: str, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
           "LC_ALL": "C.UTF-8", "HOME": "/root"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600,
                          stdin=subprocess.DEVNULL, **kwargs)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-2000:]}"
                             f"\n{proc.stderr[-2000:]}")
    return proc


def list_files() -> set[str]:
    found = set()
    for top, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in VOLATILE]
        found.update(os.path.join(top, name) for name in dirs + files)
    return found


def is_account_lock(path: str) -> bool:
    """Lock and temporary files of useradd/groupadd running elsewhere at the same moment."""
    name = os.path.basename(path)
    return os.path.dirname(path) == "/etc" and (
        name.endswith(".lock") or name.split(".")[-1].isdigit() or name.startswith(".pwd.lock"))


def remove_accounts() -> None:
    for name, _ in [(PILOT, PILOT_UID), *POOL]:
        subprocess.run(["userdel", name], capture_output=True)
    subprocess.run(["groupdel", POOL_GROUP], capture_output=True)


def create_accounts() -> None:
    remove_accounts()  # leftovers of an interrupted run
    run("groupadd", "-g", str(POOL_GID), POOL_GROUP)
    run("useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-u", str(PILOT_UID), PILOT)
    for name, uid in POOL:
        run("useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-u", str(uid), "-g",
            POOL_GROUP, name)


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    require_root()
    for tool in ("dpkg-deb", "dpkg-shlibdeps", "gcc", "apt-get", "lintian"):
        require_program(tool)
    out = tmp_path_factory.mktemp("deb")
    proc = run("bash", str(REPO / "packaging" / "build-deb.sh"), "--out", str(out))
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def package(deb, make_proxy, test_ca):
    """The package installed, a pool-account site configured; purged and checked at the end."""
    installed = run("dpkg-query", "-W", "-f=${Status}", "glexec-py", check=False).stdout
    require("installed" not in installed.split(), "glexec-py is installed as a package here; "
            "this test would purge it")
    create_accounts()
    aside = Path("/var/lib") / f"gxd-aside-{uuid.uuid4().hex[:8]}"
    aside.mkdir(mode=0o700)
    moved = []
    for path in MOVED_ASIDE:
        if os.path.lexists(path):
            os.rename(path, aside / Path(path).name)
            moved.append(path)
    site = Path("/run/glexec-py-tests") / f"gxd-site-{uuid.uuid4().hex[:8]}"
    state = {"site": site, "purged": False}
    try:
        state["before"] = list_files()
        state["aside"] = str(aside)
        run("apt-get", "install", "-y", "-q", "--no-install-recommends", str(deb))
        state["proxy"] = make_proxy("rfc", owner_uid=PILOT_UID)
        state["certdir"] = str(test_ca.certdir)
        yield state
    finally:
        if not state["purged"]:
            run("apt-get", "purge", "-y", "-q", "glexec-py", check=False)
        shutil.rmtree(site, ignore_errors=True)
        remove_accounts()
        for path in moved:
            os.rename(aside / Path(path).name, path)
        shutil.rmtree(aside, ignore_errors=True)


def write_site(state: dict, *, declare_only: bool = False, syslog_socket: str = "") -> None:
    """The README's quick-start, with the test CA and a site directory under /run."""
    site = state["site"]
    shutil.rmtree(site, ignore_errors=True)
    (site / "gridmapdir").mkdir(parents=True, mode=0o755)
    for name, _ in POOL:
        (site / "gridmapdir" / name).touch()
    mapping = PILOT if declare_only else ".gxdpool"
    (site / "grid-mapfile").write_text(f'"{USER_DN}" {mapping}\n')
    (site / "ban-mapfile").write_text("")
    example = "lcmaps-declare-only.db" if declare_only else "lcmaps-pool.db"
    policy = Path("/usr/share/glexec-py/examples/lcmaps", example).read_text()
    policy = (policy.replace("/etc/grid-security/certificates", state["certdir"])
              .replace("/etc/grid-security/", f"{site}/"))
    (site / "lcmaps-glexec.db").write_text(policy)
    log = (f"log_destination = syslog\nsyslog_socket = {syslog_socket}" if declare_only
           else f"log_destination = file\nlog_file = {site}/glexec.log")
    conf = (f"[glexec]\nuser_white_list = {PILOT}\n{log}\n"
            f"lcmaps_db_file = {site}/lcmaps-glexec.db\n"
            f"lcmaps_get_account_policy = glexec_get_account\n"
            f"x509_cert_dir = {state['certdir']}\n")
    # Written in place: the conffile keeps the package's root:glexec 0640 statoverride.
    with open("/etc/glexec.conf", "w") as f:
        f.write(conf)
    for path in site.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def as_pilot(state: dict, *argv: str) -> subprocess.CompletedProcess:
    return run("runuser", "-u", PILOT, "--", "env", f"GLEXEC_CLIENT_CERT={state['proxy']}",
               "GLEXEC_TARGET_PROXY=/dev/null", *argv, check=False, cwd="/")


def test_installed_files_owners_and_modes(package):
    launcher = os.stat("/usr/sbin/glexec")
    assert os.path.realpath("/usr/sbin/glexec") == f"{LIBEXEC}/glexec-setuid"
    assert (launcher.st_uid, launcher.st_gid) == (0, 0)
    assert stat.S_IMODE(launcher.st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(f"{LIBEXEC}/glexec-declare-only").st_mode) == 0o755
    glexec_group = grp.getgrnam("glexec")
    assert glexec_group.gr_gid < 1000  # a system group
    conf = os.stat("/etc/glexec.conf")
    assert (conf.st_uid, conf.st_gid, stat.S_IMODE(conf.st_mode)) == (0, glexec_group.gr_gid, 0o640)
    defaults = run("/usr/sbin/glexec", "-V").stdout
    assert 'GLEXEC_MODE="setuid"' in defaults
    assert 'GLEXEC_CONFIG_FILE="/etc/glexec.conf"' in defaults
    assert 'GLEXEC_SITE_PACKAGES="/usr/lib/glexec-py/lib/python3.11/site-packages"' in defaults
    assert list(Path("/usr/lib/glexec-py").rglob("glexec_py/__pycache__/main.*.pyc"))
    site = Path("/usr/lib/glexec-py/lib/python3.11/site-packages")
    bundle = list(site.glob("glexec_py/__pycache__/launcher-bundle.*.marshal"))  # postinst
    assert len(bundle) == 1 and bundle[0].stat().st_uid == 0
    waiter = (site / "glexec_py" / "launch" / "glexec-py-waiter").stat()  # shipped, built
    assert (waiter.st_uid, waiter.st_gid, stat.S_IMODE(waiter.st_mode)) == (0, 0, 0o755)
    for tool in ("glexec-policy", "glexec-gridmapdir", "glexec-install", "mkgltempdir",
                 "prune_userprocs", "glexec-sutest"):
        assert run(f"/usr/sbin/{tool}", "--help").stdout.startswith(f"usage: {tool}")
    assert os.readlink("/usr/sbin/glexec_wrapenv.pl") == "glexec_wrapenv"
    assert Path("/usr/share/man/man5/glexec.conf.5.gz").is_file()


def test_shipped_conf_is_the_generated_sample(package, deb):
    from glexec_py.config import render_sample

    text = subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -xOf - ./etc/glexec.conf",
                          shell=True, capture_output=True, text=True, check=True).stdout
    assert text == render_sample()


def test_whitelisted_pilot_runs_as_pool_account(package):
    write_site(package)
    assert run("glexec-policy", "check", str(package["site"] / "lcmaps-glexec.db")).returncode == 0
    proc = as_pilot(package, "/usr/sbin/glexec", "/usr/bin/id")
    assert proc.returncode == 0, proc
    pool_uids = {uid for _, uid in POOL}
    uid = int(proc.stdout.split("uid=")[1].split("(")[0])
    assert uid in pool_uids
    assert f"gid={POOL_GID}({POOL_GROUP})" in proc.stdout
    leased = run("glexec-gridmapdir", "list", str(package["site"] / "gridmapdir")).stdout
    assert pwd.getpwuid(uid).pw_name in leased
    # Not whitelisted: the pool account itself may not call glexec.
    other = run("runuser", "-u", POOL[2][0], "--", "env",
                f"GLEXEC_CLIENT_CERT={package['proxy']}", "/usr/sbin/glexec", "/usr/bin/id",
                check=False, cwd="/")
    assert other.returncode in (201, 203), other


def test_declare_only_through_update_alternatives(package, syslog_daemon):
    write_site(package, declare_only=True, syslog_socket=str(syslog_daemon.socket))
    run("usermod", "-a", "-G", "glexec", PILOT)  # the caller reads glexec.conf itself
    run("update-alternatives", "--set", "glexec", f"{LIBEXEC}/glexec-declare-only")
    try:
        assert 'GLEXEC_MODE="declare-only"' in run("/usr/sbin/glexec", "-V").stdout
        proc = as_pilot(package, "/usr/sbin/glexec", "/usr/bin/id", "-u")
        assert proc.returncode == 0, proc
        assert proc.stdout.strip() == str(PILOT_UID)
        assert "/usr/bin/id" in syslog_daemon.wait_for_text("/usr/bin/id")
    finally:
        run("update-alternatives", "--auto", "glexec")
        run("gpasswd", "-d", PILOT, "glexec", check=False)
    assert os.path.realpath("/usr/sbin/glexec") == f"{LIBEXEC}/glexec-setuid"


def test_purge_leaves_no_file(package):
    run("apt-get", "purge", "-y", "-q", "glexec-py")
    package["purged"] = True
    shutil.rmtree(package["site"], ignore_errors=True)
    left = sorted(path for path in list_files() - package["before"]
                  if not path.startswith(package["aside"]) and not is_account_lock(path))
    assert left == []
    for gone in ("/usr/sbin/glexec", "/usr/lib/glexec-py", "/etc/glexec.conf",
                 "/var/lib/glexec-py", "/var/lib/dpkg/alternatives/glexec"):
        assert not os.path.lexists(gone), gone
    with pytest.raises(KeyError):
        grp.getgrnam("glexec")  # created by the package, so removed by purge
    assert "/etc/glexec.conf" not in run("dpkg-statoverride", "--list").stdout


def test_lintian_findings_are_all_overridden(deb):
    proc = run("lintian", "--pedantic", "--info", "--allow-root", str(deb), check=False)
    findings = [line for line in proc.stdout.splitlines() if line[:2] in ("E:", "W:", "I:", "P:")]
    assert findings == [], proc.stdout
