"""mkgltempdir's own logic, with a stand-in ``glexec`` that runs the command as the caller.

The stand-in only records its arguments and the parent directory's mode at call time, then
execs the command unchanged; it is acceptable for these tests only, which check what
mkgltempdir asks glexec to do and what it does around that call. The same tool with a real uid
switch (setpriv) and through the real installed launcher is tested in
tests/root/test_tools_mkgltempdir.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

MKGLTEMPDIR = [sys.executable, "-m", "glexec_py.tools.mkgltempdir"]

FAKE_GLEXEC = """#!/bin/sh
# args, one per line, then the mode of the directory the target works in
{{ for a in "$@"; do printf '%s\\n' "$a"; done; echo --; }} >> '{log}'
stat -c %a "$(dirname "$5")" >> '{log}' 2>/dev/null
if [ -n "$FAKE_GLEXEC_STATUS" ]; then echo "fake glexec refuses" >&2; exit "$FAKE_GLEXEC_STATUS"; fi
echo "payload stdout goes to stderr"
exec "$@"
"""


@pytest.fixture
def glexec(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "glexec.log"
    script = tmp_path / "fake-glexec"
    script.write_text(FAKE_GLEXEC.format(log=log))
    script.chmod(0o755)
    return script, log


def run(glexec: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": "/usr/bin:/bin", **(env or {})}
    return subprocess.run([*MKGLTEMPDIR, "--glexec", str(glexec), *args], env=full_env,
                          capture_output=True, text=True, timeout=30)


def mode_of(path: Path | str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_creates_directory_and_prints_only_its_path(glexec: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    fake, log = glexec
    base = tmp_path / "work"
    base.mkdir()
    result = run(fake, str(base))
    assert result.returncode == 0, result.stderr
    target = Path(result.stdout.rstrip("\n"))
    assert result.stdout == f"{target}\n"
    assert "payload stdout goes to stderr" in result.stderr
    assert target.is_dir() and not target.is_symlink()
    assert mode_of(target) == 0o700
    assert target.parent.parent == base and target.parent.name.startswith("mkgltempdir.")
    assert mode_of(target.parent) == 0o755
    call, window_mode = log.read_text().split("--\n")
    assert call.splitlines() == [os.path.realpath("/bin/sh"), "-c",
                                 'umask 077 && mkdir -m "$2" -- "$1"', "mkgltempdir",
                                 str(target), "700"]
    assert window_mode.strip() == "1733", "sticky and not listable while the target works"


def test_modes_and_default_base_from_tmpdir(glexec: tuple[Path, Path], tmp_path: Path) -> None:
    fake, _ = glexec
    result = run(fake, "-t", "777", "-m", "0750", env={"TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    target = Path(result.stdout.strip())
    assert target.parent.parent == tmp_path
    assert (mode_of(target), mode_of(target.parent)) == (0o777, 0o750)
    result = run(fake, "-t", "1777", str(tmp_path))
    assert mode_of(result.stdout.strip()) == 0o1777


def test_hostile_directory_name_is_not_interpreted(glexec: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    fake, _ = glexec
    base = tmp_path / "a b'$(touch PWNED)\"; touch PWNED2"
    base.mkdir()
    result = run(fake, str(base))
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_dir()
    assert not list(tmp_path.rglob("PWNED*")) and not Path("PWNED").exists()


@pytest.mark.parametrize("status", ["201", "203"])
def test_glexec_failure_status_is_passed_on_and_nothing_is_left(
        glexec: tuple[Path, Path], tmp_path: Path, status: str) -> None:
    fake, _ = glexec
    result = run(fake, str(tmp_path), env={"FAKE_GLEXEC_STATUS": status})
    assert result.returncode == int(status)
    assert result.stdout == ""
    assert "fake glexec refuses" in result.stderr
    assert f"failed with exit status {status}" in result.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("mkgltempdir.")]


def test_remove_empty_and_forced(glexec: tuple[Path, Path], tmp_path: Path) -> None:
    fake, log = glexec
    target = Path(run(fake, str(tmp_path)).stdout.strip())
    (target / "sub").mkdir()
    (target / "sub" / "file").write_text("x")
    result = run(fake, "-r", str(target))
    assert result.returncode == 1
    assert "rmdir" in result.stderr and target.is_dir()
    log.write_text("")
    result = run(fake, "-r", str(target), "-f")
    assert result.returncode == 0, result.stderr
    assert not target.parent.exists()
    call, window_mode = log.read_text().split("--\n")
    assert call.splitlines()[2:] == ['rm -rf -- "$1"', "mkgltempdir", str(target)]
    assert window_mode.strip() == "1733", "the target needs write access to unlink its entry"


def test_remove_refuses_paths_not_made_by_it(glexec: tuple[Path, Path], tmp_path: Path) -> None:
    fake, log = glexec
    victim = tmp_path / "precious"
    victim.mkdir()
    result = run(fake, "-r", str(victim), "-f")
    assert result.returncode == 1 and "it was not made by mkgltempdir" in result.stderr
    target = Path(run(fake, str(tmp_path)).stdout.strip())
    link = target.parent / "link"
    link.symlink_to(victim)
    log.write_text("")
    result = run(fake, "-r", str(link), "-f")
    assert result.returncode == 1 and "not a directory" in result.stderr
    assert victim.is_dir() and log.read_text() == "", "glexec was never called"


@pytest.mark.parametrize("args, message", [
    (["-t", "4777"], "target mode 4777 sets bits outside 1777"),
    (["-t", "rwx"], "target mode 'rwx' is not an octal mode"),
    (["-m", "0777"], "parent mode 0777 sets bits outside 0755"),
    (["-f"], "-f only applies to -r"),
    (["-r", "/x", "/y"], "-r takes the directory to remove"),
])
def test_usage_errors(glexec: tuple[Path, Path], args: list[str], message: str) -> None:
    result = run(glexec[0], *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"mkgltempdir: {message}")


def test_missing_glexec_is_reported(tmp_path: Path) -> None:
    result = subprocess.run([*MKGLTEMPDIR, "--glexec", "/nonexistent/glexec", str(tmp_path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr == ("mkgltempdir: cannot find an executable glexec (tried "
                             "/nonexistent/glexec); use --glexec PATH\n")
    assert not list(tmp_path.iterdir())


def test_search_order_uses_osg_glexec_location(glexec: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    fake, log = glexec
    result = subprocess.run([*MKGLTEMPDIR, str(tmp_path)], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "OSG_GLEXEC_LOCATION": str(fake)},
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert log.read_text().startswith(os.path.realpath("/bin/sh"))
