"""privsep.run_with_caller_rights: the caller's rights inside, root again (verified) after.

Each case runs in a forked child of the test process, so a failure to get root back ends that
child (exit 202 by design) and not pytest. Facts asserted from the kernel: the effective ids
and groups inside, an EACCES on a root-only file, all three uids/gids and the group list after.
"""

from __future__ import annotations

import os

import pytest

from glexec_py.errors import ClientError, SiteError
from glexec_py.privsep import run_with_caller_rights

pytestmark = pytest.mark.root


def in_child(check) -> int:
    """Run ``check()`` in a fork; its exit status (0 = every assertion held)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            check()
            code = 0
        except BaseException as exc:  # noqa: BLE001 - report and leave the fork for good
            os.write(2, f"child: {type(exc).__name__}: {exc}\n".encode())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture
def root_only_file(trusted_tmp):
    path = trusted_tmp / "root-only"
    path.write_bytes(b"secret")
    path.chmod(0o600)
    return str(path)


def test_work_runs_with_the_callers_ids_and_root_comes_back(accounts, root_only_file):
    pilot = accounts.pilot

    def check() -> None:
        groups_before = os.getgroups()

        def work() -> tuple[int, int, list[int], str]:
            try:
                os.open(root_only_file, os.O_RDONLY)
                opened = "opened"
            except PermissionError:
                opened = "EACCES"
            return os.geteuid(), os.getegid(), sorted(os.getgroups()), opened

        inside = run_with_caller_rights(pilot.uid, pilot.gid, (pilot.gid,), work)
        assert inside == (pilot.uid, pilot.gid, [pilot.gid], "EACCES"), inside
        assert os.getresuid() == (0, 0, 0) and os.getresgid() == (0, 0, 0)
        assert os.getgroups() == groups_before
        with open(root_only_file, "rb") as handle:  # root's rights are back
            assert handle.read() == b"secret"

    assert in_child(check) == 0


def test_an_error_inside_still_restores_root(accounts):
    pilot = accounts.pilot

    def check() -> None:
        def work() -> bytes:
            raise ClientError("proxy unreadable")

        with pytest.raises(ClientError):
            run_with_caller_rights(pilot.uid, pilot.gid, (pilot.gid,), work)
        assert os.getresuid() == (0, 0, 0) and os.getresgid() == (0, 0, 0)

    assert in_child(check) == 0


def test_a_root_caller_reads_as_root_and_an_unprivileged_process_only_as_itself(accounts):
    pilot = accounts.pilot
    assert run_with_caller_rights(0, 0, (0,), os.geteuid) == 0

    def check() -> None:
        os.setgroups([pilot.gid])
        os.setresgid(pilot.gid, pilot.gid, pilot.gid)
        os.setresuid(pilot.uid, pilot.uid, pilot.uid)  # declare-only: the launcher is the caller
        assert run_with_caller_rights(pilot.uid, pilot.gid, (pilot.gid,), os.geteuid) == pilot.uid
        with pytest.raises(SiteError):
            run_with_caller_rights(accounts.pilot2.uid, pilot.gid, (pilot.gid,), os.geteuid)

    assert in_child(check) == 0


def test_ids_that_cannot_be_taken_are_refused_before_any_switch():
    def check() -> None:
        with pytest.raises(SiteError):
            run_with_caller_rights(4294967295, 0, (), os.geteuid)
        assert os.getresuid() == (0, 0, 0)

    assert in_child(check) == 0
