"""Torque-rules driver: pbs_mom's documented job handling applied to real processes.

Runs as: root (it plays pbs_mom). Trusts: /proc. Hot path: no.

Torque is not packaged for Debian (only ``slurm-wlm-torque``, qsub/qdel wrappers on Slurm), so
this driver does what pbs_mom does to a job's processes, by the rules of its source
(batch-interop.md A.3), and nothing else:

* start: the job shell is started in a new session (``start_exec.c``: ``setsid()``), with the
  job owner's groups (``init_groups``) and uid; that session id identifies the job's tasks.
* kill (``qdel``; ``mom_mach.c`` ``kill_task``): signal every process whose session id is the
  job's, or that descends from the job's top task (``ProcIsChild``): SIGTERM, then SIGKILL
  after ``kill_delay`` (2 s, Torque's default).
* suspend (``requests.c`` ``resume_suspend``): SIGTSTP to the top task only, ``sleep(5)``, then
  SIGSTOP to every task as above; resume = SIGCONT to every task.
* end of job: when the top task exits, what is left of the session is SIGKILLed.
* accounting (``cput_sum`` over ``injob()`` processes): CPU (user+system, including reaped
  children) of the processes in the job's session, sampled while the job runs, and the top
  task's own rusage when it is reaped; processes outside the session are not counted.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import threading
import time

from glexec_py.sutest.drivers import BatchDriver

KILL_DELAY = 2.0
SUSPEND_SLEEP = 5.0
POLL_INTERVAL = 0.25
_TICK = os.sysconf("SC_CLK_TCK")


def read_stat(pid: int) -> tuple[int, int, float] | None:
    """(ppid, session id, CPU seconds incl. reaped children) of a live process, else None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    cpu = sum(int(v) for v in fields[11:15]) / _TICK  # utime stime cutime cstime
    return int(fields[1]), int(fields[3]), cpu


def job_tasks(top: int, session: int) -> dict[int, float]:
    """pid -> CPU of every process of the job: the session's, or descendants of ``top``."""
    table: dict[int, tuple[int, int, float]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            entry = read_stat(int(name))
            if entry is not None:
                table[int(name)] = entry
    tasks: dict[int, float] = {}
    for pid, (_ppid, sid, cpu) in table.items():
        if sid == session:
            tasks[pid] = cpu
            continue
        seen, cursor = set(), pid
        while cursor > 1 and cursor not in seen:
            seen.add(cursor)
            if cursor == top:
                tasks[pid] = cpu
                break
            cursor = table[cursor][0] if cursor in table else 0
    return tasks


def session_cpu(session: int) -> float:
    """injob(): only processes of the job's session are accounted."""
    total = 0.0
    for name in os.listdir("/proc"):
        if name.isdigit():
            entry = read_stat(int(name))
            if entry is not None and entry[1] == session:
                total += entry[2]
    return total


class _Job:
    __slots__ = ("top", "done", "cpu", "status", "thread")

    def __init__(self, top: int) -> None:
        self.top = top
        self.done = threading.Event()
        self.cpu = 0.0
        self.status: int | None = None
        self.thread: threading.Thread | None = None


class TorqueRulesDriver(BatchDriver):
    name = "torque-rules"
    configs = ()
    kill_timeout = KILL_DELAY + 3.0
    suspend_settle = 1.0  # suspend() itself waits the 5 s between TSTP and STOP

    def __init__(self) -> None:
        self.jobs: dict[str, _Job] = {}

    def start(self, config: str) -> None:
        """Nothing to bring up: this driver is the mom."""

    def submit(self, script: str, rundir: str, user: str | None = None) -> str:
        path = os.path.join(rundir, "job.sh")
        with open(path, "w") as fh:
            fh.write(script)
        os.chmod(path, 0o755)  # noqa: S103 - a job script: readable, not writable
        ids: dict[str, object] = {}
        if user:
            entry = pwd.getpwnam(user)
            groups = os.getgrouplist(user, entry.pw_gid)
            ids = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": groups}
        out = open(os.path.join(rundir, "job.out"), "ab")  # noqa: SIM115 - handed to the job
        try:
            proc = subprocess.Popen(["/bin/sh", path], cwd=rundir, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, env={"PATH": "/usr/bin:/bin"},
                                    **ids)
        finally:
            out.close()
        job = _Job(proc.pid)
        proc.returncode = 0  # this driver reaps it with wait4; keep Popen from trying
        job.thread = threading.Thread(target=self._watch, args=(job,), daemon=True)
        job.thread.start()
        self.jobs[str(proc.pid)] = job
        return str(proc.pid)

    def _watch(self, job: _Job) -> None:
        while True:
            job.cpu = max(job.cpu, session_cpu(job.top))
            pid, status, usage = os.wait4(job.top, os.WNOHANG)
            if pid == job.top:
                job.status = status
                job.cpu = max(job.cpu, usage.ru_utime + usage.ru_stime)
                break
            time.sleep(POLL_INTERVAL)
        # The top task is gone: kill what is left of the job's session.
        self._signal(job, 9)
        job.done.set()

    def _signal(self, job: _Job, signo: int) -> None:
        for pid in job_tasks(job.top, job.top):  # setsid() made the top task's pid the sid
            try:
                os.kill(pid, signo)
            except OSError:
                pass

    def kill(self, job: str) -> None:
        record = self.jobs[job]
        self._signal(record, 15)

        def later() -> None:
            if not record.done.wait(KILL_DELAY):
                self._signal(record, 9)
        threading.Thread(target=later, daemon=True).start()

    def suspend(self, job: str) -> None:
        record = self.jobs[job]
        try:
            os.kill(record.top, 20)  # SIGTSTP to the top task only
        except OSError:
            pass
        time.sleep(SUSPEND_SLEEP)
        self._signal(record, 19)

    def resume(self, job: str) -> None:
        self._signal(self.jobs[job], 18)

    def wait_finished(self, job: str, timeout: float = 60.0) -> bool:
        return self.jobs[job].done.wait(timeout)

    def accounting(self, job: str) -> float | None:
        record = self.jobs[job]
        return record.cpu if record.done.is_set() else None
