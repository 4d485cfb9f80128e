"""Batch drivers for the sutest harness and the loop that fills the matrix with them.

Runs as: root. Trusts: the batch system under test. Hot path: no.

A driver knows one batch system: ``configs`` (e.g. Slurm's proctrack plugins), ``start(config)``
(bring up or reconfigure), ``submit(script, rundir, user) -> job``, ``kill``/``suspend``/``resume``,
``wait_finished(job)`` and ``accounting(job) -> CPU seconds``. ``run_matrix`` applies the three
experiments of the matrix to it, for one or more launcher columns at once: one job per launcher
holding every shape for kill, one for suspend/resume, and one job per launcher and shape for
accounting (the jobs of an experiment run side by side).
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

    def submit(self, script: str, rundir: str, user: str | None = None) -> str:
        """Queue ``script`` as ``user`` (None: root) with ``rundir`` as its working directory."""
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


def run_matrix(driver: BatchDriver, config: str, launchers: Launcher | list[Launcher],
               shapes: list[str] | None = None, actions: tuple[str, ...] = (
                   "kill", "suspend", "account")) -> list[Cell]:
    """Fill the matrix for every launcher; the launchers' jobs of one experiment run together."""
    launchers = [launchers] if isinstance(launchers, Launcher) else list(launchers)
    shapes = list(shapes or SHAPES)
    system = driver.system(config)
    cells: list[Cell] = []

    def cell(launcher: Launcher, shape: str, action: str, observed: bool | None,
             detail: str) -> None:
        cells.append(Cell(system, launcher.name, shape, action,
                          expected_for(system, launcher.name, shape, action), observed, detail))

    def submit_all(tag: str, mode: str) -> list[tuple[Launcher, str, str]]:
        jobs = []
        for launcher in launchers:
            rundir = make_rundir(f"{tag}-{launcher.name}")
            script = job_script(launcher, rundir, shapes, mode, False)
            jobs.append((launcher, driver.submit(script, rundir, launcher.user), rundir))
        return jobs

    if "kill" in actions:
        jobs = submit_all("kill", "sleep:600")
        markers = [_markers(rundir, shapes) for _l, _j, rundir in jobs]
        for _launcher, _job, rundir in jobs:
            _kill_launchers_first(rundir, shapes)
        for _launcher, job, _rundir in jobs:
            driver.kill(job)
        for (launcher, _job, _rundir), found in zip(jobs, markers, strict=True):
            for shape in shapes:
                pid = found[shape]
                if pid is None:
                    cell(launcher, shape, "kill", None, "marker never started")
                    continue
                gone = wait_gone(pid, driver.kill_timeout)
                cell(launcher, shape, "kill", gone, "gone" if gone else f"pid {pid} survived")
        for (_launcher, job, rundir), found in zip(jobs, markers, strict=True):
            _clean(found)
            driver.wait_finished(job)
            shutil.rmtree(rundir, ignore_errors=True)

    if "suspend" in actions:
        jobs = submit_all("suspend", "sleep:600")
        markers = [_markers(rundir, shapes) for _l, _j, rundir in jobs]
        for _launcher, _job, rundir in jobs:
            _kill_launchers_first(rundir, shapes)
        for _launcher, job, _rundir in jobs:
            driver.suspend(job)
        time.sleep(driver.suspend_settle)
        stopped = [{s: proc_state(p) if p else None for s, p in found.items()}
                   for found in markers]
        for _launcher, job, _rundir in jobs:
            driver.resume(job)
        time.sleep(1.0)
        resumed = [{s: proc_state(p) if p else None for s, p in found.items()}
                   for found in markers]
        for (launcher, _job, _rundir), before, after in zip(jobs, stopped, resumed, strict=True):
            for shape in shapes:
                state = before[shape]
                if state is None:
                    cell(launcher, shape, "suspend", None, "marker not running")
                    cell(launcher, shape, "resume", None, "")
                    continue
                caught = state in ("T", "D", "t")
                cell(launcher, shape, "suspend", caught, f"State {state}")
                again = after[shape]
                cell(launcher, shape, "resume", (again in ("R", "S")) if caught else None,
                     f"State {again}" if caught else "was not suspended")
        for _launcher, job, _rundir in jobs:
            driver.kill(job)
        time.sleep(0.5)
        for (_launcher, job, rundir), found in zip(jobs, markers, strict=True):
            _clean(found)
            driver.wait_finished(job)
            shutil.rmtree(rundir, ignore_errors=True)

    if "account" in actions:
        burners = []
        for launcher in launchers:
            for shape in shapes:
                rundir = make_rundir(f"account-{launcher.name}-{shape}")
                script = job_script(launcher, rundir, [shape], f"burn:{BURN_SECONDS}", True)
                burners.append((launcher, shape, driver.submit(script, rundir, launcher.user),
                                rundir))
        found = [read_pid(rundir, shape + ".pid", 40.0) for _l, shape, _j, rundir in burners]
        for _launcher, shape, _job, rundir in burners:
            _kill_launchers_first(rundir, [shape])
        for launcher, shape, job, rundir in burners:
            finished = driver.wait_finished(job, timeout=90.0)
            cpu = driver.accounting(job) if finished else None
            if cpu is None:
                cell(launcher, shape, "account", None, "no accounting record")
            else:
                cell(launcher, shape, "account", cpu >= BURN_SECONDS * 0.5,
                     f"CPU {cpu:.2f} s of {BURN_SECONDS:.0f} s burnt")
            shutil.rmtree(rundir, ignore_errors=True)
        for pid in found:
            kill_quietly(pid)
    return cells
