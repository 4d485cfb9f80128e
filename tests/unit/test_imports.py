"""The launcher's warm path imports only the allowlisted modules (tests/data/hot_path_modules.txt).

A repeated glexec call must stay import-light (architecture §2.10): ``cryptography`` alone costs
60-80 ms, ``typing``/``re``/``enum``/``dataclasses`` 5-20 ms each. This runs the installed
product's pipeline exactly as the front end starts it (``python -I -S -B``, sys.path pinned to
the launcher's site-packages, _prctl loaded by the bootstrap, the caller environment sealed in a
memfd on fd 3) as root for the unprivileged pilot, twice: the first call fills the caches, the
second is the warm path. At the payload's execve the runner prints ``sys.modules`` on stderr
and stops; the modules beyond a bare ``python -I -S -B`` must all be on the allowlist.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.prereq import require

PRODUCT_PYTHON = "/opt/glexec-py/bin/python"
ALLOWLIST = Path(__file__).resolve().parents[1] / "data" / "hot_path_modules.txt"
NEVER = ("cryptography", "yaml", "re", "typing", "logging", "subprocess", "json", "argparse",
         "dataclasses", "enum", "socket", "signal", "inspect", "ctypes", "configparser",
         "importlib.metadata", "hashlib", "glexec_py.tools", "glexec_py.sutest", "fnmatch")

RUNNER = r"""
import os, sys
site, config, uid, gid, proxy = sys.argv[1:6]
sys.path[:] = [p for p in sys.path if p.startswith(sys.base_prefix)] + [site]
import _prctl  # what bootstrap.py loads before main
_prctl.prctl(_prctl.PR_SET_DUMPABLE, 0)
from glexec_py.codebundle import install_finder  # and the finder of the module bundle
if not install_finder(site):
    sys.exit("runner: the product environment has no trusted, current module bundle")
import fcntl
fd = os.memfd_create("glexec-caller-env", os.MFD_ALLOW_SEALING)
os.write(fd, b"PATH=/usr/bin:/bin\0GLEXEC_CLIENT_CERT=" + proxy.encode() + b"\0")
fcntl.fcntl(fd, 1033, 0xF)  # F_ADD_SEALS: write, shrink, grow, seal
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
def stop_before_exec(path, argv, env):
    # by now the process is the target and every fd but 0-2 is closed: report on stderr
    os.write(2, ("\nMODULES " + " ".join(sorted(sys.modules)) + "\n").encode())
    os._exit(0)
os.execve = stop_before_exec
os.chdir("/")
from glexec_py.main import Installed, run
code = run(["/bin/true"], caller_uid=int(uid), caller_gid=int(gid), invoker_pid=os.getppid(),
           installed=Installed(config, "setuid", sys.executable, "", site), cwd="/")
sys.stderr.write(f"runner: launcher returned {code} instead of exec'ing\n")
sys.exit(3)
"""


def read_allowlist() -> dict[str, float]:
    allowed = {}
    for number, line in enumerate(ALLOWLIST.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, cost = line.split()[0], line.split()[1:]
        assert len(cost) == 1, f"{ALLOWLIST}:{number}: 'module cost_ms' expected"
        allowed[name] = float(cost[0])
    return allowed


def test_allowlist_is_documented_and_excludes_the_heavy_modules():
    allowed = read_allowlist()
    assert len(allowed) > 20
    for heavy in NEVER:
        assert heavy not in allowed
        assert not any(name.startswith(heavy + ".") for name in allowed)


@pytest.fixture(scope="module")
def warm_modules(site_factory, accounts, make_proxy) -> set[str]:
    require(Path(PRODUCT_PYTHON).exists(), "needs the product environment /opt/glexec-py")
    site = site_factory(conf={"linger": "no"})
    proxy = make_proxy("rfc", owner_uid=accounts.pilot.uid)
    sitepkgs = subprocess.run(
        [PRODUCT_PYTHON, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip()
    argv = [PRODUCT_PYTHON, "-I", "-S", "-B", "-c", RUNNER, sitepkgs, str(site.conf_path),
            str(accounts.pilot.uid), str(accounts.pilot.gid), str(proxy)]
    for _ in range(2):  # the first call fills the caches; the second is the warm path
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("MODULES ")]
    assert len(lines) == 1, proc.stderr
    loaded = set(lines[0].split()[1:])
    bare = subprocess.run([PRODUCT_PYTHON, "-I", "-S", "-B", "-c",
                           "import sys; print('\\n'.join(sys.modules))"],
                          capture_output=True, text=True, check=True).stdout.split()
    return loaded - set(bare)


@pytest.mark.root
@pytest.mark.installed
def test_warm_path_imports_only_the_allowlist(warm_modules):
    allowed = read_allowlist()
    unexpected = sorted(m for m in warm_modules if m not in allowed)
    assert not unexpected, (
        f"modules on the launcher's warm path that are not in {ALLOWLIST.name}: {unexpected} "
        f"(import them inside the function that needs them, or add them with their cost)")
    assert "glexec_py.main" in warm_modules and "glexec_py.credentials.cache" in warm_modules


@pytest.mark.root
@pytest.mark.installed
def test_warm_path_loads_no_heavy_module(warm_modules):
    heavy = sorted(m for m in warm_modules
                   if any(m == h or m.startswith(h + ".") for h in NEVER))
    assert heavy == []
    assert sys.version_info >= (3, 11)
