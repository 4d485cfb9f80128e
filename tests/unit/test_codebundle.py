"""The launcher's module bundle: built from a site's sources, served only while they are unchanged.

A copy of this checkout's package is installed into a root-owned temporary "site-packages"; a
fresh ``python -I -S -B`` (the launcher's flags) then imports the launcher's main module from it
and reports which loader served each module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.prereq import require

from glexec_py.codebundle import (
    SKIPPED_PACKAGES,
    _split,
    build_bundle,
    bundle_is_current,
    bundle_path,
)

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys
site = sys.argv[1]
sys.path[:] = [p for p in sys.path if p.startswith(sys.base_prefix)] + [site]
from glexec_py.codebundle import install_finder
installed = install_finder(site)
import glexec_py.main, glexec_py.errors, glexec_py.plugins.poolaccount
loaders = {name: type(module.__spec__.loader).__name__ for name, module in sys.modules.items()
           if name.startswith("glexec_py.") or name == "__future__"}
print(json.dumps({"installed": installed, "loaders": loaders,
                  "marker": getattr(glexec_py.errors, "MARKER", None)}))
"""


@pytest.fixture
def site(trusted_tmp) -> str:
    require(os.geteuid() == 0, "the bundle is only trusted when root owns it")
    root = trusted_tmp / "site-packages"
    shutil.copytree(REPO / "glexec_py", root / "glexec_py",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "plugins", root / "glexec_py" / "plugins",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return str(root)


def probe(site: str) -> dict:
    out = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", PROBE, site],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_bundle_serves_the_launcher_modules_and_skips_the_cold_packages(site):
    path, count = build_bundle(site)
    assert path == bundle_path(site) and os.stat(path).st_mode & 0o777 == 0o644
    assert bundle_is_current(site)
    result = probe(site)
    assert result["installed"] is True
    loaders = result["loaders"]
    assert loaders["glexec_py.main"] == "BundleFinder"
    assert loaders["glexec_py.plugins.poolaccount"] == "BundleFinder"
    assert loaders["__future__"] == "BundleFinder"
    # codebundle itself is imported before its finder exists
    assert loaders["glexec_py.codebundle"] == "SourceFileLoader"
    with open(path, "rb") as handle:
        table, _blob = _split(memoryview(handle.read()))
    assert len(table) == count and "glexec_py.main" in table
    assert not [name for name in table if name.startswith(SKIPPED_PACKAGES)]


def test_a_changed_source_is_loaded_from_the_source_not_from_the_bundle(site):
    build_bundle(site)
    errors = Path(site, "glexec_py", "errors.py")
    errors.write_text(errors.read_text() + "\nMARKER = 'edited after the bundle'\n")
    assert not bundle_is_current(site)
    result = probe(site)
    assert result["marker"] == "edited after the bundle"
    assert result["loaders"]["glexec_py.errors"] == "SourceFileLoader"
    assert result["loaders"]["glexec_py.main"] == "BundleFinder"
    build_bundle(site)
    assert bundle_is_current(site)


@pytest.mark.parametrize("spoil", ["group-writable", "not-root", "garbage", "empty"])
def test_an_untrusted_or_broken_bundle_is_ignored(site, spoil):
    path = build_bundle(site)[0]
    if spoil == "group-writable":
        os.chmod(path, 0o664)
    elif spoil == "not-root":
        os.chown(path, 65534, 65534)
    elif spoil == "garbage":
        Path(path).write_bytes(b"glexec-py launcher bundle 2\n\xff\xff\xff\xffnot marshal")
    else:
        Path(path).write_bytes(b"")
    result = probe(site)
    assert result["installed"] is False
    assert result["loaders"]["glexec_py.main"] == "SourceFileLoader"
