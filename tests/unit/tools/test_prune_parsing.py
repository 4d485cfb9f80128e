"""prune_userprocs: /proc parsing and the selection rule on hand-built process tables.

The real /proc, real accounts and real signals are exercised in
tests/root/test_tools_prune_userprocs.py; here the rule's corner cases (hostile command names,
parent loops from recycled pids, impostor daemons) are checked directly.
"""

from __future__ import annotations

import os

import pytest

from glexec_py.tools.prune_userprocs import (
    Policy,
    ProcInfo,
    parse_stat,
    parse_uids,
    read_process,
    select_strays,
)

TAIL = b" 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 123456 0 0"


def stat_line(comm: bytes, state: bytes = b"S", ppid: int = 1) -> bytes:
    # state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
    # cstime priority nice threads itrealvalue starttime ...
    return (b"42 (" + comm + b") " + state + b" " + str(ppid).encode() +
            b" 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0\n")


@pytest.mark.parametrize("comm", [b"sleep", b"a) b (c", b") R 1 2 3 4 5", b"", b"((sd-pam))"])
def test_parse_stat_takes_comm_up_to_last_paren(comm: bytes) -> None:
    parsed = parse_stat(stat_line(comm, ppid=777))
    assert parsed == (comm.decode(), "S", 777, 4194560, 98765)


@pytest.mark.parametrize("text", [b"", b"42 sleep S 1", b"42 (x) S 1 2 3", b"42 (x" + TAIL,
                                  b"42 (x) S one 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0"])
def test_parse_stat_rejects_malformed(text: bytes) -> None:
    assert parse_stat(text) is None


def test_parse_uids() -> None:
    assert parse_uids(b"Name:\tx\nUid:\t1000\t1001\t1002\t1003\nGid:\t5\t5\t5\t5\n") == (1000,
                                                                                     1001)
    assert parse_uids(b"Name:\tx\n") is None
    assert parse_uids(b"Uid:\tx\ty\n") is None


def test_read_process_of_self() -> None:
    me = read_process(os.getpid())
    assert me is not None
    assert (me.ruid, me.euid, me.ppid) == (os.getuid(), os.geteuid(), os.getppid())
    assert read_process(2**22 + 1) is None  # above pid_max: never exists


def proc(pid: int, ppid: int, uid: int, comm: str = "sleep", state: str = "S") -> ProcInfo:
    return ProcInfo(pid, comm, state, ppid, 0, 1000 + pid, uid, uid)


def policy(**overrides: object) -> Policy:
    settings: dict[str, object] = dict(
        min_uid=99, users=None, daemons={"slurmstepd"}, daemon_pids=set(), exempt_uids=set(),
        exempt_commands={"systemd"}, spare_ssh=True)
    settings.update(overrides)
    return Policy(**settings)  # type: ignore[arg-type]


def table(*procs: ProcInfo) -> dict[int, ProcInfo]:
    return {p.pid: p for p in procs}


def stray_pids(t: dict[int, ProcInfo], p: Policy) -> list[int]:
    return [s.pid for s in select_strays(t, p)]


def test_selection_rule() -> None:
    t = table(
        proc(1, 0, 0, "init"),
        proc(10, 1, 0, "slurmstepd"), proc(11, 10, 5000), proc(12, 11, 5000),  # a job
        proc(20, 1, 5000),                                                     # orphan
        proc(21, 1, 50),                                                       # system account
        proc(22, 1, 5000, state="Z"),                                          # zombie
        proc(30, 1, 5000, "slurmstepd"), proc(31, 30, 5000),                   # impostor daemon
        proc(40, 1, 0, "sshd"), proc(41, 40, 0, "sshd"), proc(42, 41, 6000),   # ssh login
        proc(43, 1, 6000, "sshd"), proc(44, 43, 6000),                         # user's own sshd
        proc(50, 1, 6000, "systemd"),                                          # user manager
        proc(60, 1, 7000),
    )
    assert stray_pids(t, policy()) == [20, 30, 31, 43, 44, 60]
    assert stray_pids(t, policy(spare_ssh=False)) == [20, 30, 31, 42, 43, 44, 60]
    assert stray_pids(t, policy(users=frozenset({6000}))) == [43, 44]
    assert stray_pids(t, policy(exempt_uids={5000, 6000})) == [60]
    assert stray_pids(t, policy(min_uid=6000)) == [60]
    assert stray_pids(t, policy(daemon_pids={30})) == [20, 43, 44, 60]


def test_setuid_program_is_left_alone() -> None:
    t = table(proc(1, 0, 0, "init"),
              ProcInfo(5, "passwd", "S", 1, 0, 9, 5000, 0))
    assert stray_pids(t, policy()) == []


def test_parent_loop_from_recycled_pids_terminates() -> None:
    t = table(proc(5, 6, 5000), proc(6, 5, 5000))
    assert stray_pids(t, policy()) == [5, 6]


def test_long_daemon_names_match_truncated_comm() -> None:
    t = table(proc(1, 0, 0, "init"), proc(10, 1, 0, "a_very_long_dae"), proc(11, 10, 5000))
    assert stray_pids(t, policy(daemons={"a_very_long_daemon_name"})) == []
