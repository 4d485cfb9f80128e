"""The performance benchmark: glexec-py against the C tools and real LCMAPS, in one run.

Run as root with Debian's python3 (stdlib only): ``bash bench/run.sh [--runs N] [--quick]``.
Sets up everything under /run/glexec-py-bench and /usr/local/libexec/glexec-py-bench (accounts
``gxh*`` with uids 48100-48199, a test CA made by scripts/make-test-ca.sh, proxies made by
grid-proxy-init and voms-proxy-fake, glexec-py launchers installed with glexec-install from
the product environment ``--prefix`` (bench/run.sh: /opt/glexec-py-bench, built from git HEAD),
a setuid gLExec-equivalent driver on Debian's liblcmaps0, a sudoers drop-in)
and removes all of it at the end, also after a failure.

Every figure is the wall time of a whole process started from the pilot account (setpriv and
runuser need root, so they run as root), measured by one harness that interleaves the
competitors round by round (a load spike hits all of them alike), after warm-up rounds.
"""

from __future__ import annotations

import argparse
import datetime
import grp
import os
import platform
import pwd
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCT = Path("/opt/glexec-py-bench")  # --prefix; bench/run.sh builds it from git HEAD
BASE = Path("/run/glexec-py-bench")
BIN = Path("/usr/local/libexec/glexec-py-bench")
SUDOERS = Path("/etc/sudoers.d/gxh-bench")
PREFIX = "gxh"
PILOT, USER = "gxhpilot", "gxhuser"
PILOT_UID, USER_UID, POOL_GID, VO_GID = 48100, 48101, 48110, 48150
POOL = [f"gxhpool{i:03d}" for i in range(1, 41)]       # uids 48110-48149
VOPOOL = [f"gxhvo{i:03d}" for i in range(1, 11)]        # uids 48150-48159
SCALE_FREE, SCALE_MINE = "gxhsc00000", "gxhsc00001"    # uids 48160, 48161: the only real ones
SCALE_SIZES = (10, 1000, 10000)
USER_DN = "/DC=org/DC=example/O=glexec-py demo/CN=Demo User"
FQAN = "/atlas/Role=pilot/Capability=NULL"
DEVNULL = os.open(os.devnull, os.O_RDWR)

LCMAPS_DB = """\
# glexec-py benchmark policy; read by glexec-py and by liblcmaps0 alike
path = /usr/lib/lcmaps
verifyproxy = "lcmaps_verify_proxy.mod -certdir {certdir}"
poolaccount = "lcmaps_poolaccount.mod -gridmap {d}/grid-mapfile -gridmapdir {gmd}"
vomsgroup = "lcmaps_voms_localgroup.mod -groupmapfile {d}/groupmapfile -mapmin 0"
vomspool = "lcmaps_voms_poolaccount.mod -gridmap {d}/grid-mapfile -gridmapdir {gmd}-voms"
good = "lcmaps_dummy_good.mod"

glexec_get_account:
verifyproxy -> poolaccount
poolaccount -> good

glexec_voms:
verifyproxy -> vomsgroup
vomsgroup -> vomspool
vomspool -> good
"""


def sh(*argv: str, **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, **kw)


# -- set-up ----------------------------------------------------------------------------------

def remove_accounts() -> None:
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(PREFIX) and 48100 <= entry.pw_uid < 48200:
            subprocess.run(["pkill", "-KILL", "-u", str(entry.pw_uid)], capture_output=True)
            subprocess.run(["userdel", "-f", entry.pw_name], capture_output=True)
    for entry in grp.getgrall():
        if entry.gr_name.startswith(PREFIX) and 48100 <= entry.gr_gid < 48200:
            subprocess.run(["groupdel", entry.gr_name], capture_output=True)


def create_accounts() -> None:
    remove_accounts()
    sh("groupadd", "-g", str(PILOT_UID), PILOT)
    sh("groupadd", "-g", str(POOL_GID), "gxhpool")
    sh("groupadd", "-g", str(VO_GID), "gxhvo")
    sh("useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-u", str(PILOT_UID), "-g",
       str(PILOT_UID), PILOT)
    sh("useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-u", str(USER_UID), "-g",
       str(POOL_GID), USER)
    names = [(n, 48110 + i, POOL_GID) for i, n in enumerate(POOL)]
    names += [(n, 48150 + i, VO_GID) for i, n in enumerate(VOPOOL)]
    names += [(SCALE_FREE, 48160, POOL_GID), (SCALE_MINE, 48161, POOL_GID)]
    for name, uid, gid in names:
        sh("useradd", "-M", "-N", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", "-u",
           str(uid), "-g", str(gid), name)


class Env:
    """Paths of one benchmark run."""

    def __init__(self) -> None:
        self.root = BASE / f"run-{os.getpid()}"
        self.ca = self.root / "ca"
        self.site = self.root / "site"
        self.pilot_dir = self.root / "pilot"
        self.certdir = self.ca / "certificates"
        self.vomsdir = self.ca / "vomsdir"
        self.gmd = self.site / "gridmapdir"
        self.proxy = self.pilot_dir / "proxy.pem"
        self.voms_proxy = self.pilot_dir / "voms.pem"
        self.new_proxy = self.pilot_dir / "new.pem"
        self.new_voms = self.pilot_dir / "newvoms.pem"
        self.spare = self.pilot_dir / "spare"
        self.launchers: dict[str, Path] = {}
        self.syslogd = 0


def make_dirs(env: Env) -> None:
    BASE.mkdir(mode=0o755, exist_ok=True)
    os.chmod(BASE, 0o755)  # noqa: S103 - trust checks need a root-owned 0755 path
    env.root.mkdir(mode=0o755)
    env.site.mkdir(mode=0o755)
    (env.site / "log").mkdir(mode=0o755)
    env.pilot_dir.mkdir(mode=0o700)
    env.spare.mkdir(mode=0o700)
    os.chown(env.pilot_dir, PILOT_UID, PILOT_UID)
    os.chown(env.spare, PILOT_UID, PILOT_UID)
    BIN.mkdir(mode=0o755, parents=True, exist_ok=True)


def pilot_file(path: Path, data: bytes) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chown(tmp, PILOT_UID, PILOT_UID)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def grid_proxy(env: Env, cert: Path, key: Path, bits: str = "2048") -> bytes:
    out = env.root / "gpi.pem"
    sh("grid-proxy-init", "-q", "-rfc", "-bits", bits, "-cert", str(cert), "-key", str(key),
       "-out", str(out), "-valid", "12:00", env={"PATH": "/usr/bin:/bin",
                                                  "X509_CERT_DIR": str(env.certdir)})
    data = out.read_bytes()
    out.unlink()
    return data


def voms_proxy(env: Env) -> bytes:
    out = env.root / "vpf.pem"
    sh("voms-proxy-fake", "-rfc", "-cert", str(env.ca / "user/usercert.pem"), "-key",
       str(env.ca / "user/userkey.pem"), "-hostcert", str(env.ca / "voms/hostcert.pem"),
       "-hostkey", str(env.ca / "voms/hostkey.pem"), "-voms", "atlas", "-uri",
       "voms.example.org:15001", "-fqan", FQAN, "-hours", "12", "-vomslife", "12",
       "-out", str(out), env={"PATH": "/usr/bin:/bin", "HOME": str(env.root),
                              "X509_CERT_DIR": str(env.certdir)})
    data = out.read_bytes()
    out.unlink()
    return data


def make_user_cert(env: Env, cn: str) -> tuple[Path, Path]:
    """One more end-entity certificate from the test CA (for distinct DNs)."""
    d = env.ca / "extra" / cn.replace(" ", "_")
    d.mkdir(parents=True, mode=0o755)
    key, req, cert = d / "userkey.pem", d / "req.pem", d / "usercert.pem"
    sh("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
       "-out", str(req), "-subj", f"/DC=org/DC=example/O=glexec-py demo/CN={cn}")
    sh("openssl", "ca", "-batch", "-config", str(env.ca / "ca/openssl.cnf"), "-extensions",
       "usr", "-days", "30", "-in", str(req), "-out", str(cert))
    os.chmod(key, 0o600)
    return cert, key


def write_site_file(path: Path, text: str) -> Path:
    path.write_text(text)
    os.chmod(path, 0o644)
    return path


def build_gridmapdir(path: Path, accounts: list[str]) -> None:
    path.mkdir(mode=0o755)
    for name in accounts:
        (path / name).touch(mode=0o644)


def write_policy(d: Path, env: Env, gmd: Path, mapfile: str) -> Path:
    write_site_file(d / "grid-mapfile", mapfile)
    write_site_file(d / "groupmapfile", '"/atlas/*" gxhvo\n')
    if not os.path.exists(f"{gmd}-voms"):
        build_gridmapdir(Path(f"{gmd}-voms"), VOPOOL)
    return write_site_file(d / "lcmaps.db", LCMAPS_DB.format(certdir=env.certdir, d=d, gmd=gmd))


def glexec_conf(env: Env, d: Path, name: str, policy: str = "glexec_get_account",
                **extra: str) -> Path:
    settings = {
        "user_white_list": PILOT, "linger": "no", "log_destination": "file",
        "log_file": str(env.site / "log" / "glexec.log"), "lcmaps_db_file": str(d / "lcmaps.db"),
        "lcmaps_get_account_policy": policy, "x509_cert_dir": str(env.certdir),
        "x509_voms_dir": str(env.vomsdir), "min_target_uid": "1000",
    }
    settings.update(extra)
    text = "[glexec]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())
    return write_site_file(env.site / f"glexec-{name}.conf", text)


def install_launcher(env: Env, name: str, conf: Path, declare_only: bool = False) -> Path:
    path = BIN / f"glexec-{name}-{os.getpid()}"
    cmd = [str(PRODUCT / "bin" / "glexec-install"), "--quiet", "--bin", str(path),
           "--config", str(conf)]
    if declare_only:
        cmd.append("--declare-only")
    sh(*cmd)
    env.launchers[name] = path
    return path


def build_driver(env: Env, d: Path, tag: str) -> Path:
    """The setuid gLExec-equivalent driver on liblcmaps0, with ``d``'s lcmaps.db compiled in."""
    out = BIN / f"lcmaps-driver-{tag}-{os.getpid()}"
    defs = {"DB_FILE": d / "lcmaps.db", "LOG_FILE": env.site / "log" / f"lcmaps-{tag}.log",
            "CERT_DIR": env.certdir, "VOMS_DIR": env.vomsdir}
    sh("gcc", "-O2", "-Wall", "-o", str(out), str(REPO / "bench" / "lcmaps_driver.c"),
       *[f'-D{k}="{v}"' for k, v in defs.items()], "-llcmaps")
    os.chmod(out, 0o4755)  # noqa: S103 - the driver is setuid root, as gLExec is
    env.launchers[f"driver-{tag}"] = out
    return out


def start_syslog(env: Env) -> None:
    """Declare-only mode logs to syslog; without a daemon on /dev/log start a private one."""
    if os.path.exists("/dev/log"):
        return
    d = env.root / "syslog"
    (d / "work").mkdir(parents=True, mode=0o700)
    conf = d / "rsyslog.conf"
    conf.write_text(f'global(workDirectory="{d}/work")\n'
                    'module(load="imuxsock" SysSock.Name="/dev/log")\n'
                    f'*.* action(type="omfile" file="{d}/messages")\n')
    sh("rsyslogd", "-f", str(conf), "-i", str(d / "pid"))
    import socket

    for _ in range(200):
        if (d / "pid").exists():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                    s.connect("/dev/log")
                    s.send(b"<13>glexec-py-bench: ready")
                break
            except OSError:
                pass
        time.sleep(0.05)
    env.syslogd = int((d / "pid").read_text().split()[0])


def set_up(env: Env, quick: bool) -> None:
    create_accounts()
    make_dirs(env)
    sh(str(REPO / "scripts" / "make-test-ca.sh"), str(env.ca))
    pilot_file(env.proxy, grid_proxy(env, env.ca / "user/usercert.pem",
                                     env.ca / "user/userkey.pem"))
    pilot_file(env.voms_proxy, voms_proxy(env))
    mapfile = f'"{USER_DN}" .gxhpool\n"/atlas/*" .gxhvo\n'
    build_gridmapdir(env.gmd, POOL[:10])
    write_policy(env.site, env, env.gmd, mapfile)
    install_launcher(env, "main", glexec_conf(env, env.site, "main"))
    install_launcher(env, "voms", glexec_conf(env, env.site, "voms", "glexec_voms"))
    install_launcher(env, "linger", glexec_conf(env, env.site, "linger", linger="yes",
                                                cleanup_grace="1"))
    install_launcher(env, "declare", glexec_conf(env, env.site, "declare",
                                                 log_destination="syslog"), declare_only=True)
    build_driver(env, env.site, "main")
    start_syslog(env)
    SUDOERS.write_text(f"{PILOT} ALL=({USER}) NOPASSWD: /bin/true\n")
    os.chmod(SUDOERS, 0o440)


def tear_down(env: Env) -> None:
    if env.syslogd:
        try:
            os.kill(env.syslogd, 15)
        except ProcessLookupError:
            pass
        for _ in range(100):
            if not os.path.exists(f"/proc/{env.syslogd}"):
                break
            time.sleep(0.05)
        try:
            os.unlink("/dev/log")
        except FileNotFoundError:
            pass
    for path in env.launchers.values():
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    try:
        SUDOERS.unlink()
    except FileNotFoundError:
        pass
    for name in [*POOL, *VOPOOL, SCALE_FREE, SCALE_MINE, USER]:
        try:
            os.unlink(f"/tmp/x509up_u{pwd.getpwnam(name).pw_uid}")
        except (KeyError, FileNotFoundError):
            pass
    remove_accounts()
    shutil.rmtree(env.root, ignore_errors=True)


# -- the harness -----------------------------------------------------------------------------

class Case:
    """One command to time: who runs it, with what, what to do (untimed) before each run."""

    def __init__(self, label: str, argv: list[str], *, user: str | None = PILOT,
                 env: dict[str, str] | None = None, prepare=None, expect: int = 0,
                 group: str = "main") -> None:
        self.label = label
        self.argv = argv
        self.user = user
        self.env = {"PATH": "/usr/bin:/bin", **(env or {})}
        self.prepare = prepare
        self.expect = expect
        self.group = group
        self.samples: list[float] = []
        self.maxrss: list[int] = []
        self.failures: list[str] = []


def spawn(case: Case) -> tuple[int, float, int]:
    """Start ``case`` once; (exit status, seconds, peak RSS in KiB of the process)."""
    kwargs: dict[str, object] = {}
    if case.user is not None:
        pw = pwd.getpwnam(case.user)
        kwargs = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [pw.pw_gid]}
    start = time.perf_counter()
    proc = subprocess.Popen(case.argv, env=case.env, stdin=DEVNULL, stdout=DEVNULL,
                            stderr=DEVNULL, cwd="/", **kwargs)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, elapsed, usage.ru_maxrss


def measure(cases: list[Case], runs: int, warmup: int) -> None:
    """Interleave: every round runs each case once, in a fresh random order."""
    for rnd in range(warmup + runs):
        order = list(cases)
        random.shuffle(order)
        for case in order:
            if case.prepare:
                case.prepare()
            code, seconds, rss = spawn(case)
            if code != case.expect:
                case.failures.append(f"exit {code}")
                continue
            if rnd >= warmup:
                case.samples.append(seconds * 1000)
                case.maxrss.append(rss)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# -- the scenarios ---------------------------------------------------------------------------

def main_cases(env: Env) -> list[Case]:
    glexec = env.launchers
    proxy_env = {"GLEXEC_CLIENT_CERT": str(env.proxy)}
    voms_env = {"GLEXEC_CLIENT_CERT": str(env.voms_proxy)}
    spares = sorted(env.spare.iterdir())
    voms_spares = [p for p in spares if p.name.startswith("voms")]
    rfc_spares = [p for p in spares if p.name.startswith("rfc")]

    def rotate(kind: list[Path], dest: Path):
        used = [0]

        def prepare() -> None:
            # a proxy never presented before: the chain cache cannot know these bytes
            src = kind[used[0] % len(kind)]
            used[0] += 1
            shutil.copyfile(src, dest)
            os.chown(dest, PILOT_UID, PILOT_UID)
            os.chmod(dest, 0o600)
        return prepare

    user = pwd.getpwnam(USER)
    cases = [
        Case("/bin/true (harness floor)", ["/bin/true"]),
        Case("python3 -I -S -c pass", ["/usr/bin/python3", "-I", "-S", "-c", "pass"]),
        Case("python3 -I -c pass", ["/usr/bin/python3", "-I", "-c", "pass"]),
        Case("setpriv (root -> user)", ["/usr/bin/setpriv", f"--reuid={user.pw_uid}",
                                        f"--regid={user.pw_gid}", "--clear-groups",
                                        "/bin/true"], user=None),
        Case("runuser -u (root -> user)", ["/usr/sbin/runuser", "-u", USER, "--", "/bin/true"],
             user=None),
        Case("sudo -u (pilot -> user)", ["/usr/bin/sudo", "-n", "-u", USER, "/bin/true"]),
        Case("verify-proxy-tool (proxy)", ["/usr/bin/verify-proxy-tool", "-q", str(env.proxy)],
             env={"X509_CERT_DIR": str(env.certdir)}),
        Case("verify-proxy-tool (VOMS proxy)", ["/usr/bin/verify-proxy-tool", "-q",
                                                str(env.voms_proxy)],
             env={"X509_CERT_DIR": str(env.certdir), "X509_VOMS_DIR": str(env.vomsdir)}),
        Case("LCMAPS driver: repeated call", [str(glexec["driver-main"]), "glexec_get_account",
                                              "/bin/true"], env=proxy_env),
        Case("LCMAPS driver: VOMS proxy, VOMS pool", [str(glexec["driver-main"]), "glexec_voms",
                                                      "/bin/true"], env=voms_env),
        Case("(a) glexec-py: repeated call", [str(glexec["main"]), "/bin/true"], env=proxy_env),
        Case("(b) glexec-py: new proxy", [str(glexec["main"]), "/bin/true"],
             env={"GLEXEC_CLIENT_CERT": str(env.new_proxy)},
             prepare=rotate(rfc_spares, env.new_proxy)),
        Case("(c) glexec-py: VOMS proxy, VOMS pool", [str(glexec["voms"]), "/bin/true"],
             env=voms_env),
        Case("(c') glexec-py: new VOMS proxy", [str(glexec["voms"]), "/bin/true"],
             env={"GLEXEC_CLIENT_CERT": str(env.new_voms)},
             prepare=rotate(voms_spares, env.new_voms)),
        Case("(d) glexec-py: declare-only", [str(glexec["declare"]), "/bin/true"],
             env=proxy_env),
        Case("(e) glexec-py: linger = yes", [str(glexec["linger"]), "/bin/true"],
             env=proxy_env),
    ]
    return cases


def make_spares(env: Env, count: int) -> None:
    """Fresh proxies for the new-proxy cases: grid-proxy-init and voms-proxy-fake, one each."""
    for i in range(count):
        pilot_file(env.spare / f"rfc{i:03d}.pem", grid_proxy(
            env, env.ca / "user/usercert.pem", env.ca / "user/userkey.pem"))
        pilot_file(env.spare / f"voms{i:03d}.pem", voms_proxy(env))


# -- pool scaling ----------------------------------------------------------------------------

def scaling_cases(env: Env) -> list[Case]:
    """Gridmapdirs of N pool names, all but one leased: one per implementation and scenario
    (a shared directory would let each implementation's leases disturb the other's)."""
    from_lease = "%2fdc%3dorg%2fdc%3dexample%2fo%3dglexec%2dpy%20demo%2fcn%3ddemo%20user"
    cases = []
    proxy_env = {"GLEXEC_CLIENT_CERT": str(env.proxy)}
    for n in SCALE_SIZES:
        for scenario in ("existing", "new", "exhausted"):
            for impl in ("glexec-py", "LCMAPS"):
                # existing and exhausted differ in the third letter
                tag = f"s{n}{scenario[:3]}{'py' if impl == 'glexec-py' else 'lc'}"
                d = env.root / f"scale-{tag}"
                d.mkdir(mode=0o755)
                gmd = d / "gridmapdir"
                names = [SCALE_FREE, SCALE_MINE] + [f"gxhsc{i:05d}" for i in range(2, n)]
                build_gridmapdir(gmd, names)
                for i, name in enumerate(names[2:]):  # leased to other identities
                    os.link(gmd / name, gmd / f"%2fdc%3dorg%2fcn%3dother{i}")
                if scenario == "existing":
                    os.link(gmd / SCALE_MINE, gmd / from_lease)
                elif scenario == "exhausted":
                    os.link(gmd / SCALE_MINE, gmd / "%2fdc%3dorg%2fcn%3dsomeoneelse")
                    os.link(gmd / SCALE_FREE, gmd / "%2fdc%3dorg%2fcn%3dyetanother")
                else:
                    os.link(gmd / SCALE_MINE, gmd / "%2fdc%3dorg%2fcn%3dsomeoneelse")
                write_policy(d, env, gmd, f'"{USER_DN}" .gxhsc\n')

                def unlink(gmd: Path = gmd) -> None:
                    # how LCMAPS sites release: remove the lease file
                    try:
                        os.unlink(gmd / from_lease)
                    except FileNotFoundError:
                        pass

                def release(gmd: Path = gmd) -> None:
                    # how glexec-py sites release: its admin tool (keeps the lease index exact)
                    sh(str(PRODUCT / "bin" / "glexec-gridmapdir"), "release", str(gmd),
                       SCALE_FREE)

                if impl == "glexec-py":
                    argv = [str(install_launcher(env, tag, glexec_conf(env, d, tag))),
                            "/bin/true"]
                    prepare = release
                else:
                    argv = [str(build_driver(env, d, tag)), "glexec_get_account", "/bin/true"]
                    prepare = unlink
                # the driver fails with its own 203 on an exhausted pool, like gLExec
                cases.append(Case(f"{impl} {scenario} lease, {n} accounts", argv, env=proxy_env,
                                  prepare=prepare if scenario == "new" else None,
                                  expect=203 if scenario == "exhausted" else 0,
                                  group=f"{impl}:{scenario}:{n}"))
    return cases


# -- memory ----------------------------------------------------------------------------------

def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def lingering_rss(env: Env, repeats: int = 5) -> tuple[float, float, float]:
    """RSS of the lingering launcher while its payload sleeps, and of bare interpreters."""
    pw = pwd.getpwnam(PILOT)
    kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [pw.pw_gid]}

    def sample(argv: list[str], extra_env: dict[str, str]) -> float:
        values = []
        for _ in range(repeats):
            proc = subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin", **extra_env},
                                    stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL, cwd="/", **kw)
            time.sleep(0.8)
            values.append(rss_kib(proc.pid))
            proc.wait()
        return statistics.median(values) / 1024

    linger = sample([str(env.launchers["linger"]), "/bin/sleep", "1.2"],
                    {"GLEXEC_CLIENT_CERT": str(env.proxy)})
    bare_s = sample(["/usr/bin/python3", "-I", "-S", "-c", "import time; time.sleep(1.2)"], {})
    bare = sample(["/usr/bin/python3", "-I", "-c", "import time; time.sleep(1.2)"], {})
    return linger, bare_s, bare


# -- concurrency -----------------------------------------------------------------------------

def concurrency(env: Env, launcher: Path, proxies: list[Path], total: int,
                gmd: Path) -> dict[str, object]:
    """``total`` calls started at once, cycling over ``proxies`` (distinct DNs)."""
    pw = pwd.getpwnam(PILOT)
    kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [pw.pw_gid]}
    procs = []
    barrier = time.perf_counter()
    for i in range(total):
        argv = [str(launcher), "/usr/bin/id", "-u"]
        if "lcmaps-driver" in launcher.name:
            argv.insert(1, "glexec_get_account")
        procs.append((time.perf_counter(), proxies[i % len(proxies)], subprocess.Popen(
            argv, env={"PATH": "/usr/bin:/bin",
                       "GLEXEC_CLIENT_CERT": str(proxies[i % len(proxies)])},
            stdin=DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/", **kw)))
    started = time.perf_counter() - barrier
    times, codes, uids_by_dn, errors = [], {}, {}, []
    for t0, proxy, proc in procs:
        out, err = proc.communicate()
        times.append((time.perf_counter() - t0) * 1000)
        codes[proc.returncode] = codes.get(proc.returncode, 0) + 1
        if proc.returncode == 0:
            uids_by_dn.setdefault(proxy.name, set()).add(out.decode().strip())
        else:
            errors.append(err.decode(errors="replace").strip())
    shared = [u for dn, us in uids_by_dn.items() for u in us
              if any(u in other for d2, other in uids_by_dn.items() if d2 != dn)]
    inconsistent = [dn for dn, us in uids_by_dn.items() if len(us) != 1]
    leases = {}
    for name in os.listdir(gmd):
        if name.startswith("%"):
            ino = os.lstat(gmd / name).st_ino
            leases.setdefault(ino, []).append(name)
    doubly = [v for v in leases.values() if len(v) > 1]
    return {"codes": codes, "median": statistics.median(times), "p99": percentile(times, 0.99),
            "spawn_s": started, "shared": sorted(set(shared)), "inconsistent": inconsistent,
            "doubly_leased": doubly, "errors": sorted(set(errors))[:5]}


def concurrency_setup(env: Env, dns: int) -> list[Path]:
    """``dns`` distinct identities (certificates from the test CA), one proxy each."""
    proxies = []
    for i in range(dns):
        cert, key = make_user_cert(env, f"Bench User {i:03d}")
        proxies.append(pilot_file(env.pilot_dir / f"cc{i:03d}.pem", grid_proxy(env, cert, key)))
    return proxies


def concurrency_site(env: Env, tag: str) -> tuple[Path, Path, Path]:
    d = env.root / f"cc-{tag}"
    d.mkdir(mode=0o755)
    gmd = d / "gridmapdir"
    build_gridmapdir(gmd, POOL)
    write_policy(d, env, gmd, '"/DC=org/DC=example/O=glexec-py demo/CN=Bench User*" .gxhpool\n')
    launcher = install_launcher(env, f"cc{tag}", glexec_conf(env, d, f"cc{tag}"))
    driver = build_driver(env, d, f"cc{tag}")
    return launcher, driver, gmd


# -- report ----------------------------------------------------------------------------------

def table(cases: list[Case], ref: dict[str, str]) -> list[str]:
    medians = {c.label: statistics.median(c.samples) for c in cases if c.samples}
    lines = ["| command | median ms | p10 ms | p90 ms | runs | peak RSS MiB | vs LCMAPS |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for c in cases:
        if not c.samples:
            lines.append(f"| {c.label} | failed: {', '.join(sorted(set(c.failures)))} |"
                         " | | | | |")
            continue
        ratio = ""
        if c.label in ref and ref[c.label] in medians:
            ratio = f"{medians[c.label] / medians[ref[c.label]]:.2f}x"
        fails = (f" ({len(c.failures)} failed: {', '.join(sorted(set(c.failures)))})"
                 if c.failures else "")
        lines.append(f"| {c.label}{fails} | {medians[c.label]:.1f} | "
                     f"{percentile(c.samples, 0.1):.1f} | {percentile(c.samples, 0.9):.1f} | "
                     f"{len(c.samples)} | {statistics.median(c.maxrss) / 1024:.1f} | {ratio} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="timed rounds (default 40)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="main table only (no scaling, memory, concurrency)")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--prefix", default="/opt/glexec-py-bench",
                        help="product environment whose glexec-install builds the launchers")
    parser.add_argument("--clean", action="store_true", help="remove what --keep left")
    parser.add_argument("--keep", action="store_true", help="leave the set-up for debugging")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: run as root", file=sys.stderr)
        return 1
    global PRODUCT
    PRODUCT = Path(args.prefix)
    env = Env()
    out: list[str] = []
    if args.clean:
        for path in BIN.glob("*"):
            path.unlink()
        for path in BASE.glob("run-*"):
            pidfile = path / "syslog" / "pid"
            if pidfile.exists():
                env.syslogd = int(pidfile.read_text().split()[0])
                tear_down(env)
            shutil.rmtree(path, ignore_errors=True)
        tear_down(env)
        return 0

    def say(line: str = "") -> None:
        print(line, flush=True)
        out.append(line)

    try:
        print("setting up (accounts, CA, proxies, launchers, LCMAPS driver) ...", flush=True)
        set_up(env, args.quick)
        make_spares(env, args.runs + args.warmup + 1)
        cases = main_cases(env)
        ref = {c.label: "LCMAPS driver: repeated call" for c in cases}
        ref["(c) glexec-py: VOMS proxy, VOMS pool"] = "LCMAPS driver: VOMS proxy, VOMS pool"
        ref["(c') glexec-py: new VOMS proxy"] = "LCMAPS driver: VOMS proxy, VOMS pool"
        ref["LCMAPS driver: repeated call"] = ""
        say(f"# glexec-py benchmark, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}")
        say(f"machine: {platform.node()}, {os.cpu_count()} cores, "
            f"{platform.platform()}, python {platform.python_version()}")
        say(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
            f"{os.getloadavg()[2]:.2f}")
        print(f"measuring {len(cases)} commands x {args.runs} interleaved rounds ...", flush=True)
        # Declare-only runs as the pilot and cannot create a pool lease (202 by design): the
        # privileged launcher takes the DN's lease first, as on a site where both are installed.
        prime = next(c for c in cases if c.label.startswith("(a)"))
        if spawn(prime)[0] != prime.expect:
            raise SystemExit("bench: the first privileged call failed; see the site's log")
        measure(cases, args.runs, args.warmup)
        say()
        say("## Whole calls (each a new process; ratios against the LCMAPS driver)")
        for line in table(cases, ref):
            say(line)
        if not args.quick:
            print("pool scaling ...", flush=True)
            scale = scaling_cases(env)
            measure(scale, max(30, args.runs // 2 + 10), 3)
            say()
            say("## Pool scaling (gridmapdir of N accounts, all but one leased; median ms)")
            say("| implementation, lease | " + " | ".join(f"{n}" for n in SCALE_SIZES)
                + f" | {SCALE_SIZES[-1]} / {SCALE_SIZES[0]} |")
            say("|---|" + "---:|" * (len(SCALE_SIZES) + 1))
            for impl in ("glexec-py", "LCMAPS"):
                for scenario in ("existing", "new", "exhausted"):
                    row = {}
                    for c in scale:
                        i, s, n = c.group.split(":")
                        if i == impl and s == scenario and c.samples:
                            row[int(n)] = statistics.median(c.samples)
                    cells = [f"{row[n]:.1f}" if n in row else "failed" for n in SCALE_SIZES]
                    ratio = (f"{row[SCALE_SIZES[-1]] / row[SCALE_SIZES[0]]:.2f}x"
                             if len(row) == len(SCALE_SIZES) else "")
                    say(f"| {impl}, {scenario} | " + " | ".join(cells) + f" | {ratio} |")
            print("memory ...", flush=True)
            linger, bare_s, bare = lingering_rss(env)
            peaks = {c.label: statistics.median(c.maxrss) / 1024 for c in cases if c.maxrss}
            say()
            say("## Memory (MiB)")
            say(f"- peak RSS of a call: (a) {peaks.get('(a) glexec-py: repeated call', 0):.1f},"
                f" (b) {peaks.get('(b) glexec-py: new proxy', 0):.1f}, LCMAPS driver "
                f"{peaks.get('LCMAPS driver: repeated call', 0):.1f}")
            say(f"- lingering parent while the payload runs: {linger:.1f} (bare "
                f"`python3 -I -S`: {bare_s:.1f}, `python3 -I`: {bare:.1f})")
            print("concurrency ...", flush=True)
            proxies = concurrency_setup(env, 20)
            say()
            say(f"## Concurrency ({args.concurrency} calls started at once, 20 DNs, "
                f"{len(POOL)} pool accounts)")
            say("| implementation | exit codes | median ms | p99 ms | p99/median | shared "
                "accounts | DNs with 2 accounts | doubly-leased accounts |")
            say("|---|---|---:|---:|---:|---|---|---|")
            for tag in ("py", "lc"):
                launcher, driver, gmd = concurrency_site(env, tag)
                res = concurrency(env, launcher if tag == "py" else driver, proxies,
                                  args.concurrency, gmd)
                codes = ", ".join(f"{k}: {v}" for k, v in sorted(res["codes"].items()))
                say(f"| {'glexec-py' if tag == 'py' else 'LCMAPS driver'} | {codes} | "
                    f"{res['median']:.0f} | {res['p99']:.0f} | "
                    f"{res['p99'] / res['median']:.1f} | {len(res['shared'])} | "
                    f"{len(res['inconsistent'])} | {len(res['doubly_leased'])} |")
                if res["errors"]:
                    say(f"  refusals ({tag}): {'; '.join(res['errors'])}")
        say()
        say(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
            f"{os.getloadavg()[2]:.2f}")
    finally:
        if args.keep:
            print(f"kept: {env.root} (remove with: python3 bench/run.py --clean)")
        else:
            tear_down(env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
