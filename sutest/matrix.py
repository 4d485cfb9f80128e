"""The sutest matrix: payload shapes x batch actions, expected versus observed, per batch system.

Runs as: root (the harness drives the batch system and inspects /proc). Trusts: the batch system
under test. Hot path: no.

Expected cells come from the batch systems' documented tracking keys (batch-interop.md A.3-A.6)
and the observations in B.2/B.3/B.6: ``True`` = the batch system catches the marker (kill: gone;
suspend: State T/D; resume: running again; account: CPU counted), ``False`` = it escapes by the
batch system's design (reported as the batch system's *limit*, not a launcher failure), ``None``
= not meaningful. The launcher's own contract (plain child, tracking gid kept, launcher stays
parent) must be caught everywhere.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field

from glexec_py.sutest.shapes import KEEPS_GIDS, PAYLOAD, SHAPES

ACTIONS = ("kill", "suspend", "resume", "account")
CONTRACT_SHAPES = ("plain",)
BURN_SECONDS = 3.0

_ALL = dict.fromkeys(SHAPES, True)


def _table(kill: dict[str, bool], account: dict[str, bool]) -> dict[str, dict[str, bool | None]]:
    # Suspend follows the same tracking key as kill; resume is checked only where suspend worked.
    return {shape: {"kill": kill[shape], "suspend": kill[shape],
                    "resume": True if kill[shape] else None, "account": account[shape]}
            for shape in SHAPES}


# What the batch system keys on, for a launcher that stays the parent but is *not* a subreaper
# (sutest, setpriv, sudo): processes that leave the key escape.
EXPECTED: dict[str, dict[str, dict[str, bool | None]]] = {
    # Step cgroup (freezer, cpuacct): nothing leaves it.
    "slurm-cgroup": _table(_ALL, _ALL),
    # Descendants of slurmstepd; CPU via the wait chain or by polling descendants.
    "slurm-linuxproc": _table(
        {**_ALL, "daemon": False, "orphan": False, "launcher_killed": False},
        {**_ALL, "daemon": False, "orphan": False, "launcher_killed": False}),
    # The job's process group. CPU only through the wait chain: observed here (22.05,
    # jobacct_gather/linux) an orphan that stays in the group is killed and suspended, but its
    # CPU is lost once it is reaped by init instead of by the job.
    "slurm-pgid": _table(
        {**_ALL, "setsid": False, "daemon": False},
        {**_ALL, "daemon": False, "orphan": False, "launcher_killed": False}),
    # pbs_mom: kill_task signals the job's session and the top task's descendants
    # (ProcIsChild); suspend = TSTP to the top task, 5 s, then STOP to the same tasks; CPU only
    # for session members (injob) and what the top task's wait chain reaped. A daemon leaves
    # both the session and the tree.
    "torque-rules": _table(
        {**_ALL, "daemon": False},
        {**_ALL, "daemon": False}),
    # Grid Engine with ENABLE_ADDGRP_KILL: the additional group id; a process that dropped it
    # and left the process group escapes.
    "sge": _table(
        {**_ALL},
        {**_ALL}),
}


@dataclass
class Cell:
    system: str
    launcher: str
    shape: str
    action: str
    expected: bool | None
    observed: bool | None
    detail: str = ""

    @property
    def verdict(self) -> str:
        if self.expected is None or self.observed is None:
            return "n/a"
        if self.observed == self.expected:
            return "pass" if self.observed else "limit"
        return "FAIL"


@dataclass
class MatrixResult:
    cells: list[Cell] = field(default_factory=list)
    meta: dict[str, object] = field(default_factory=dict)

    def failures(self) -> list[Cell]:
        return [c for c in self.cells if c.verdict == "FAIL"]

    def to_json(self) -> str:
        return json.dumps({"meta": self.meta,
                           "cells": [dict(asdict(c), verdict=c.verdict) for c in self.cells]},
                          indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MatrixResult:
        data = json.loads(text)
        cells = [Cell(**{k: v for k, v in c.items() if k != "verdict"}) for c in data["cells"]]
        return cls(cells, data.get("meta", {}))


def expected_for(system: str, launcher: str, shape: str, action: str) -> bool | None:
    value = EXPECTED[system][shape][action]
    if launcher != "glexec-py":
        return value
    if shape == "launcher_killed":
        # The payload's first process has PR_SET_PDEATHSIG = SIGKILL: it dies with a SIGKILLed
        # launcher, so there is nothing left to suspend or account.
        return True if action == "kill" else None
    # glexec-py lingers as the payload's root parent, is its child subreaper (a daemon or an
    # orphan re-parents to it, not to init) and terminates every leftover when it is told to
    # stop: kill catches every shape, and the launcher's wait chain reaps (and so accounts)
    # whatever re-parented to it.
    if system == "slurm-pgid" and shape in ("setsid", "daemon") and action == "kill":
        # Not judged: scancel TERMs the process group, the job shell dies at once and
        # slurmstepd SIGKILLs the group right after, so whether the lingering launcher still
        # reaches a process in its own session (outside the group) is a race with pgid
        # tracking; both outcomes were observed. linuxproc and cgroup catch it every time.
        return None
    if action in ("kill", "account"):
        return True
    if system in ("slurm-linuxproc", "torque-rules") and shape in ("daemon", "orphan"):
        # Re-parented to the launcher: still a descendant of slurmstepd / of the job's top task.
        return True
    return value


class Launcher:
    """How a job script starts one shape: ``argv_for_shape(shape, payload_args) -> words``.

    ``user`` is the account the job is submitted as (None: the driver's default, root for the
    sutest probe, which must start as root).
    """

    def __init__(self, name: str, argv_for_shape, user: str | None = None) -> None:
        self.name = name
        self.argv_for_shape = argv_for_shape
        self.user = user


def sutest_launcher(binary: str, user: str | None = None) -> Launcher:
    def argv(shape: str, payload: list[str]) -> list[str]:
        return [binary, *(["-k"] if KEEPS_GIDS[shape] else []), *payload]
    return Launcher("sutest", argv, user)


def glexec_launcher(glexec: str, proxy: str, pilot: str, glexec_dropping: str | None = None
                    ) -> Launcher:
    """The installed glexec-py launcher, called by the pilot account with the payload's proxy.

    ``glexec_dropping`` is a front end of a site whose ``tracking_gid_ranges`` does not cover
    the batch system's tracking gids (the ``gid_dropped`` shape); by default the same launcher.
    """
    def argv(shape: str, payload: list[str]) -> list[str]:
        binary = glexec if KEEPS_GIDS[shape] else (glexec_dropping or glexec)
        return ["/usr/bin/env", f"GLEXEC_CLIENT_CERT={proxy}", binary, *payload]
    return Launcher("glexec-py", argv, pilot)


def write_payload(rundir: str) -> str:
    path = os.path.join(rundir, "payload.py")
    with open(path, "w") as fh:
        fh.write(PAYLOAD)
    os.chmod(path, 0o644)
    return path


def shell_quote(word: str) -> str:
    return "'" + word.replace("'", "'\"'\"'") + "'"


def job_script(launcher: Launcher, rundir: str, shapes: list[str], mode: str,
               wait_done: bool, leave: bool = False) -> str:
    """A batch script that starts every shape under the launcher (``leave``: see shapes)."""
    payload = write_payload(rundir)
    lines = ["#!/bin/sh", f"cd {shell_quote(rundir)}"]
    for shape in shapes:
        argv = launcher.argv_for_shape(shape, ["/usr/bin/python3", "-I", payload, shape, rundir,
                                               shape, mode, *(["exit"] if leave else [])])
        lines.append(" ".join(shell_quote(w) for w in argv) + " &")
        lines.append(f"echo $! > {shell_quote(os.path.join(rundir, shape + '.launcher'))}")
    lines.append("wait")
    if wait_done:
        for shape in shapes:
            done = shell_quote(os.path.join(rundir, shape + ".done"))
            lines.append(f"n=0; while [ ! -e {done} ] && [ $n -lt 300 ]; do sleep 0.1; "
                         "n=$((n+1)); done")
    return "\n".join(lines) + "\n"


def read_pid(rundir: str, name: str, timeout: float = 30.0) -> int | None:
    path = os.path.join(rundir, name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as fh:
                text = fh.read().strip()
            if text.isdigit():
                return int(text)
        except OSError:
            pass
        time.sleep(0.1)
    return None


def proc_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    return None if state in ("Z", "X") else state


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc_state(pid) is None:
            return True
        time.sleep(0.1)
    return proc_state(pid) is None


def kill_quietly(pid: int | None, signo: int = 9) -> None:
    if pid:
        try:
            os.kill(pid, signo)
        except OSError:
            pass
