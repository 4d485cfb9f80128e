"""Batch drivers for the sutest harness and the loop that fills the matrix with them.

Runs as: root. Trusts: the batch system under test. Hot path: no.

A driver knows one batch system: ``configs`` (e.g. Slurm's proctrack plugins), ``start(config)``
(bring up or reconfigure), ``submit(script, rundir) -> job``, ``kill``/``suspend``/``resume``,
``wait_finished(job)`` and ``accounting(job) -> CPU seconds``. ``run_matrix`` applies the three
experiments of the matrix to it: one job holding every shape for kill, one for suspend/resume,
and one job per shape for accounting (they run side by side).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid

from glexec_py.sutest.matrix import (
    BURN_SECONDS,
    Cell,
    Launcher,
    expected_for,
    job_script,
    kill_quietly,
    proc_state,
    read_pid,
    wait_gone,
)
from glexec_py.sutest.shapes import SHAPES

RUN_BASE = "/var/tmp/glexec-sutest"


class BatchDriver:
    name = ""
    configs: tuple[str, ...] = ()
    kill_timeout = 10.0
    suspend_settle = 3.5

    def system(self, config: str) -> str:
        return f"{self.name}-{config}" if config else self.name

    def start(self, config: str) -> None:
        raise NotImplementedError

    def submit(self, script: str, rundir: str) -> str:
        raise NotImplementedError

    def kill(self, job: str) -> None:
        raise NotImplementedError

    def suspend(self, job: str) -> None:
        raise NotImplementedError

    def resume(self, job: str) -> None:
        raise NotImplementedError

    def wait_finished(self, job: str, timeout: float = 60.0) -> bool:
        raise NotImplementedError

    def accounting(self, job: str) -> float | None:
        raise NotImplementedError

    def stop(self) -> None:
        """Release what ``start`` set up for this harness run (not the batch system itself)."""


def make_rundir(tag: str) -> str:
    os.makedirs(RUN_BASE, mode=0o755, exist_ok=True)
    path = os.path.join(RUN_BASE, f"{tag}-{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    # The payload (another uid) writes its marker files here; sticky, like /tmp.
    os.chmod(path, 0o1777)  # noqa: S103
    return path


def _markers(rundir: str, shapes: list[str], timeout: float = 40.0) -> dict[str, int | None]:
    return {shape: read_pid(rundir, shape + ".pid", timeout) for shape in shapes}


def _kill_launchers_first(rundir: str, shapes: list[str]) -> None:
    if "launcher_killed" in shapes:
        kill_quietly(read_pid(rundir, "launcher_killed.launcher", 5.0))
        time.sleep(0.3)


def _clean(markers: dict[str, int | None]) -> None:
    for pid in markers.values():
        kill_quietly(pid)


def run_matrix(driver: BatchDriver, config: str, launcher: Launcher,
               shapes: list[str] | None = None, actions: tuple[str, ...] = (
                   "kill", "suspend", "account")) -> list[Cell]:
    shapes = list(shapes or SHAPES)
    system = driver.system(config)
    cells: list[Cell] = []

    def cell(shape: str, action: str, observed: bool | None, detail: str) -> None:
        cells.append(Cell(system, launcher.name, shape, action,
                          expected_for(system, launcher.name, shape, action), observed, detail))

    if "kill" in actions:
        rundir = make_rundir("kill")
        job = driver.submit(job_script(launcher, rundir, shapes, "sleep:600", False), rundir)
        markers = _markers(rundir, shapes)
        _kill_launchers_first(rundir, shapes)
        driver.kill(job)
        for shape in shapes:
            pid = markers[shape]
            if pid is None:
                cell(shape, "kill", None, "marker never started")
                continue
            gone = wait_gone(pid, driver.kill_timeout)
            cell(shape, "kill", gone, "gone" if gone else f"pid {pid} survived")
        _clean(markers)
        driver.wait_finished(job)
        shutil.rmtree(rundir, ignore_errors=True)

    if "suspend" in actions:
        rundir = make_rundir("suspend")
        job = driver.submit(job_script(launcher, rundir, shapes, "sleep:600", False), rundir)
        markers = _markers(rundir, shapes)
        _kill_launchers_first(rundir, shapes)
        driver.suspend(job)
        time.sleep(driver.suspend_settle)
        stopped = {s: proc_state(p) if p else None for s, p in markers.items()}
        driver.resume(job)
        time.sleep(1.0)
        resumed = {s: proc_state(p) if p else None for s, p in markers.items()}
        for shape in shapes:
            state = stopped[shape]
            if state is None:
                cell(shape, "suspend", None, "marker not running")
                cell(shape, "resume", None, "")
                continue
            caught = state in ("T", "D", "t")
            cell(shape, "suspend", caught, f"State {state}")
            again = resumed[shape]
            cell(shape, "resume", (again in ("R", "S")) if caught else None,
                 f"State {again}" if caught else "was not suspended")
        driver.kill(job)
        time.sleep(0.5)
        _clean(markers)
        driver.wait_finished(job)
        shutil.rmtree(rundir, ignore_errors=True)

    if "account" in actions:
        jobs = {}
        for shape in shapes:
            rundir = make_rundir(f"account-{shape}")
            script = job_script(launcher, rundir, [shape], f"burn:{BURN_SECONDS}", True)
            jobs[shape] = (driver.submit(script, rundir), rundir)
        markers = {shape: read_pid(rundir, shape + ".pid", 40.0)
                   for shape, (_job, rundir) in jobs.items()}
        for shape, (_job, rundir) in jobs.items():
            _kill_launchers_first(rundir, [shape])
        for shape, (job, rundir) in jobs.items():
            finished = driver.wait_finished(job, timeout=90.0)
            cpu = driver.accounting(job) if finished else None
            if cpu is None:
                cell(shape, "account", None, "no accounting record")
            else:
                cell(shape, "account", cpu >= BURN_SECONDS * 0.5,
                     f"CPU {cpu:.2f} s of {BURN_SECONDS:.0f} s burnt")
            shutil.rmtree(rundir, ignore_errors=True)
        _clean(markers)
    return cells
