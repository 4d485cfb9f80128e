"""Slurm driver: sbatch/scancel/scontrol suspend/sacct on a (single-node) Slurm cluster.

Runs as: root. Trusts: the Slurm commands on PATH. Hot path: no.

``start(config)`` reconfigures the project's own cluster with ``scripts/slurm-up.sh``
(``SLURM_UP_PROCTRACK=<config> SLURM_UP_DBD=1``) when a bring-up script is given; on a site's
cluster pass none and run the harness once per proctrack plugin the site uses.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time

from glexec_py.sutest.drivers import BatchDriver


def parse_slurm_duration(text: str) -> float | None:
    """'[D-][HH:]MM:SS[.mmm]' as printed by sacct, in seconds."""
    text = text.strip()
    if not text:
        return None
    days = 0
    if "-" in text:
        head, text = text.split("-", 1)
        days = int(head)
    parts = text.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return None
    seconds = 0.0
    for value in values:
        seconds = seconds * 60 + value
    return days * 86400 + seconds


class SlurmDriver(BatchDriver):
    name = "slurm"
    configs = ("cgroup", "linuxproc", "pgid")
    kill_timeout = 12.0  # KillWait=3 plus the step's clean-up
    suspend_settle = 3.5  # SIGTSTP, 2 s, then SIGSTOP

    def __init__(self, bring_up: str | None = None) -> None:
        self.bring_up = bring_up
        self.current = ""

    def start(self, config: str) -> None:
        if not self.bring_up:
            return
        env = {**os.environ, "SLURM_UP_PROCTRACK": config, "SLURM_UP_DBD": "1"}
        result = subprocess.run(["bash", self.bring_up], capture_output=True, text=True,
                                env=env, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"slurm bring-up failed: {result.stderr.strip()[-500:]}")
        self.current = config

    def submit(self, script: str, rundir: str, user: str | None = None) -> str:
        path = os.path.join(rundir, "job.sh")
        with open(path, "w") as fh:
            fh.write(script)
        os.chmod(path, 0o755)  # noqa: S103 - a job script: readable, not writable
        # root may submit on behalf of another account (the pilot): the job then runs as it.
        as_user = [f"--uid={user}", f"--gid={pwd.getpwnam(user).pw_gid}"] if user else []
        result = subprocess.run(["sbatch", "--parsable", "-J", "glexec-sutest", *as_user, "-o",
                                 os.path.join(rundir, "job.out"), "-D", rundir, path],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"sbatch failed: {result.stderr.strip()[-300:]}")
        return result.stdout.strip().split(";")[0]

    def kill(self, job: str) -> None:
        subprocess.run(["scancel", job], capture_output=True)

    def suspend(self, job: str) -> None:
        subprocess.run(["scontrol", "suspend", job], capture_output=True, check=True)

    def resume(self, job: str) -> None:
        subprocess.run(["scontrol", "resume", job], capture_output=True)

    def wait_finished(self, job: str, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True,
                                 text=True).stdout.strip()
            if not out:
                return True
            time.sleep(0.3)
        return False

    def accounting(self, job: str) -> float | None:
        """TotalCPU of the batch step once slurmdbd has its final record."""
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            out = subprocess.run(["sacct", "-n", "-P", "-j", job, "-o", "JobID,State,TotalCPU"],
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                jobid, state, total = (line.split("|") + ["", ""])[:3]
                if jobid == f"{job}.batch" and state and state not in ("RUNNING", "PENDING"):
                    return parse_slurm_duration(total)
            time.sleep(0.5)
        return None
