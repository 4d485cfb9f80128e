"""PanDA's calling pattern through the real installed launcher, as an unprivileged pilot.

``export GLEXEC_ENV=`glexec_wrapenv`; glexec glexec_unwrapenv -- 'cd <dir>; <payload> 2>&1;'``
with ``<dir>`` made by mkgltempdir: the payload runs as the mapped account, in that directory,
with the pilot's variables, while HOME, USER and X509_USER_PROXY stay as the launcher set them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.installed]

BASE = Path("/run/glexec-py-tests")
SCRIPT = """#!{python}
import sys
from glexec_py.tools.{module} import main
sys.exit(main())
"""


@pytest.fixture(scope="module")
def site(site_factory):
    return site_factory()


@pytest.fixture(scope="module")
def tools_bin() -> Path:
    """The commands as console scripts would install them, in a root-owned directory."""
    BASE.mkdir(mode=0o755, exist_ok=True)
    path = BASE / f"envwrap-bin-{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o755)
    for name, module in (("glexec_wrapenv", "wrapenv"), ("glexec_unwrapenv", "unwrapenv"),
                         ("mkgltempdir", "mkgltempdir")):
        (path / name).write_text(SCRIPT.format(python=sys.executable, module=module))
        (path / name).chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pilot_dir(accounts) -> Path:
    path = BASE / f"panda-{uuid.uuid4().hex[:10]}"
    path.mkdir(mode=0o755)
    os.chown(path, accounts.pilot.uid, accounts.pilot.gid)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_panda_pattern_delivers_pilot_environment(site, accounts, make_proxy, tools_bin,
                                                  pilot_dir):
    proxy = make_proxy("rfc", owner_uid=accounts.pilot.uid)
    payload = pilot_dir / "payload.sh"
    payload.write_text('echo "VAR=$PILOT_VAR|SPACES=$WITH_SPACES|PATHOK=$(command -v pilot-tool)'
                       '|HOME=$HOME|X509=$X509_USER_PROXY|UID=$(id -u)|PWD=$(pwd)"\n')
    payload.chmod(0o644)
    script = (
        f'dir=$({tools_bin}/mkgltempdir --glexec {site.bin} -t 777 "$PWD") || exit 90\n'
        f'export GLEXEC_TARGET_DIR="$dir"\n'
        f'export GLEXEC_ENV=`{tools_bin}/glexec_wrapenv`\n'
        f'{site.bin} {tools_bin}/glexec_unwrapenv -- "cd $dir; /bin/sh {payload} 2>&1;"\n'
        f'status=$?\n'
        f'{tools_bin}/mkgltempdir --glexec {site.bin} -r "$dir" -f || exit 91\n'
        f'exit $status\n')
    tool_dir = pilot_dir / "bin"
    tool_dir.mkdir(mode=0o755)
    (tool_dir / "pilot-tool").write_text("#!/bin/sh\n")
    (tool_dir / "pilot-tool").chmod(0o755)
    pilot = accounts.pilot
    result = subprocess.run(
        ["/bin/sh", "-c", script], cwd=pilot_dir, user=pilot.uid, group=pilot.gid,
        extra_groups=pilot.groups, capture_output=True, text=True, timeout=120,
        env={"PATH": f"{tool_dir}:/usr/bin:/bin", "GLEXEC_CLIENT_CERT": str(proxy),
             "PILOT_VAR": "from the pilot", "WITH_SPACES": "a  b=c", "HOME": "/pilot/home",
             "X509_USER_PROXY": "/pilot/proxy", "USER": pilot.name})
    assert result.returncode == 0, (result.stdout, result.stderr)
    fields = dict(f.split("=", 1) for f in result.stdout.strip().split("|"))
    assert fields["VAR"] == "from the pilot"
    assert fields["SPACES"] == "a  b=c"
    assert fields["PATHOK"] == f"{tool_dir}/pilot-tool", "the pilot's PATH is restored"
    assert fields["UID"] == str(accounts.mapped.uid)
    assert fields["HOME"] != "/pilot/home", "the launcher's HOME is kept"
    assert fields["X509"] != "/pilot/proxy", "the launcher's X509_USER_PROXY is kept"
    assert Path(fields["PWD"]).parent.name.startswith("mkgltempdir.")
    assert not Path(fields["PWD"]).exists(), "removed again by mkgltempdir -r -f"
    assert "Skipping HOME" in result.stderr and "Skipping X509_USER_PROXY" in result.stderr
