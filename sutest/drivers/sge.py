"""Grid Engine driver: qsub/qdel/qmod -sj/qacct on a (single-node) Grid Engine cell.

Runs as: root (a Grid Engine manager); jobs are submitted as the given account, since the
cell refuses jobs of uids below ``min_uid`` (root's among them). Trusts: the Grid Engine
commands on PATH. Hot path: no.

Grid Engine finds a job's processes by the additional group id it gives the job (``gid_range``,
``ENABLE_ADDGRP_KILL``) and by the job's process group: ``qdel`` and ``qmod -sj`` reach every
process that kept the gid; ``qacct`` reports the wait chain's rusage plus the online usage
collected for processes with that gid.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

from glexec_py.sutest.drivers import BatchDriver

SGE_ENV = {"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}


def parse_qacct_cpu(text: str) -> float | None:
    """The ``cpu`` field of ``qacct -j`` output, in seconds."""
    match = re.search(r"^cpu\s+([0-9.]+)", text, re.MULTILINE)
    return float(match.group(1)) if match else None


class SgeDriver(BatchDriver):
    name = "sge"
    configs = ()
    kill_timeout = 12.0
    suspend_settle = 2.0

    def __init__(self, bring_up: str | None = None) -> None:
        self.bring_up = bring_up
        self.env = {**os.environ, **SGE_ENV}

    def _run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, **kwargs)

    def start(self, config: str) -> None:
        if not self.bring_up:
            return
        result = self._run(["bash", self.bring_up], timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"sge bring-up failed: {result.stderr.strip()[-500:]}")

    def submit(self, script: str, rundir: str, user: str | None = None) -> str:
        path = os.path.join(rundir, "job.sh")
        with open(path, "w") as fh:
            fh.write(script)
        os.chmod(path, 0o755)  # noqa: S103 - a job script: readable, not writable
        as_user = ["runuser", "-u", user, "--", "env", *(f"{k}={v}" for k, v in SGE_ENV.items())
                   ] if user else []
        result = self._run([*as_user, "qsub", "-terse", "-cwd", "-j", "y", "-o", "job.out",
                            "-N", "glexec-sutest", "-S", "/bin/sh", path], cwd=rundir)
        if result.returncode != 0:
            raise RuntimeError(f"qsub failed: {result.stderr.strip()[-300:]}")
        return result.stdout.strip().split(".")[0]

    def kill(self, job: str) -> None:
        self._run(["qdel", job])

    def suspend(self, job: str) -> None:
        self._run(["qmod", "-sj", job])

    def resume(self, job: str) -> None:
        self._run(["qmod", "-usj", job])

    def wait_finished(self, job: str, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._run(["qstat", "-j", job]).returncode != 0:
                return True
            time.sleep(0.5)
        return False

    def accounting(self, job: str) -> float | None:
        """qacct's cpu once the execd has reported the finished job (a few seconds later)."""
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            cpu = parse_qacct_cpu(self._run(["qacct", "-j", job]).stdout)
            if cpu is not None:
                return cpu
            time.sleep(1.0)
        return None
