"""Shared fixtures of the adversarial suite: a pool-account site and a way to run as the pilot.

The default attack site maps the test DN to the suite's own pool (``.gxapool``), so any
wrongful success would be visible as a lease in the gridmapdir and a process of a pool uid,
which the snapshots catch.
"""

from __future__ import annotations

import os

import pytest
from fixtures.credentials import USER_DN


@pytest.fixture(scope="module")
def attack_site(site_factory, attack_accounts):
    """``attack_site(conf=..., to="pool"|"user")``: a site mapping the test DN to the suite's
    own pool (``.gxapool``) or its own single target account (gxauser)."""

    def make(*, conf: dict[str, str] | None = None, to: str = "pool"):
        mapping = ".gxapool" if to == "pool" else attack_accounts.user.name
        return site_factory(conf=conf, mapfile=f'"{USER_DN}" {mapping}\n',
                            pool=[a.name for a in attack_accounts.pool])

    return make


@pytest.fixture(scope="module")
def pool_site(attack_site):
    return attack_site()


@pytest.fixture(scope="module")
def target_site(attack_site):
    return attack_site(to="user")


@pytest.fixture
def pilot_env(proxy) -> dict[str, str]:
    return {"GLEXEC_CLIENT_CERT": str(proxy)}


@pytest.fixture
def raw_run():
    """``raw_run(site, account, argv, envp)``, see :func:`run_raw`."""
    return run_raw


def run_raw(site, account, argv: list[bytes] | None, envp: list[bytes]):
    """Exec the launcher as ``account`` with exactly these argv/envp byte strings.

    What subprocess cannot express: an empty argv, a variable given twice, entries without '=',
    raw non-UTF-8 bytes. Returns the same RunResult as ``Site.run``.
    """
    import ctypes
    import tempfile

    from fixtures.site import RunResult

    before = len(site.log_text())
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                os.chdir("/")
                os.setgroups(account.groups)
                os.setresgid(account.gid, account.gid, account.gid)
                os.setresuid(account.uid, account.uid, account.uid)
                libc = ctypes.CDLL(None, use_errno=True)
                args = (ctypes.c_char_p * ((len(argv) if argv else 0) + 1))(*(argv or []), None)
                env = (ctypes.c_char_p * (len(envp) + 1))(*envp, None)
                libc.execve(str(site.bin).encode(), args, env)
            finally:
                os._exit(99)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        records = site.log_text()[before:].splitlines()
        return RunResult(os.waitstatus_to_exitcode(status), out.read().decode(errors="replace"),
                         err.read().decode(errors="replace"), records)
