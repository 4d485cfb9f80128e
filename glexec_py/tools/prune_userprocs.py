"""Kill stray processes of mapped accounts that no batch job owns any more: prune_userprocs.

Runs as: root, from the batch system's epilogue (``prune_userprocs -a -k 9``) or by hand.
Trusts: /proc (kernel-provided, but every field a user controls, such as the command name, is
parsed defensively) and its configuration file, which must pass the whole-path trust check
because it decides what root kills. Hot path: no.

Why: a payload can double-fork, re-parent to init and outlive its job, escaping the batch
system's accounting (EGI-SVG-2011-1474). Nikhef's original tool found such processes by
ancestry: anything with a uid above 99 that is neither in the process tree of a running batch
job nor in an ssh session is a stray. This is the same rule, race-safe.

Rule. A process is killed when all of these hold:

* its real uid is above ``--min-uid`` (default 99, the original's; system accounts are never
  touched), and so is its effective uid (a setuid-root program is left alone);
* it belongs to a selected user (``-a``: every account above the minimum; otherwise the users
  named on the command line) and not to an ``--exempt-user``;
* its command name (``comm``) is not an ``--exempt-command`` (default ``systemd`` and
  ``(sd-pam)``, the per-user service manager);
* it is not a zombie (nothing left to kill) and not this program;
* none of its ancestors is a registered batch daemon: a process whose ``comm`` is in
  ``--daemon`` (default ``pbs_mom slurmstepd sge_shepherd condor_starter``) *and whose real uid
  is 0 or at most the minimum uid* (any user can name a process ``slurmstepd``; only root or a
  system account can own one), or a pid given with ``--daemon-pid`` (e.g. from ``momctl``);
* unless ``--kill-ssh-sessions``: none of its ancestors is a root-owned ``sshd`` or
  ``sshd-session`` (interactive logins and MPI ranks started over ssh, which the original spared).

Race safety. Each victim is opened with ``pidfd_open`` and its /proc entry re-read through the
pid: only if the start time and uid still match the scan is the signal sent with
``pidfd_send_signal``, so a pid recycled between scan and kill is never hit. A round first stops
every victim (SIGSTOP) so a forking process cannot outrun the kills, then sends ``-k`` (default
SIGKILL; SIGCONT follows a catchable signal so it is delivered); rounds repeat (``--rounds``)
until one finds nothing new.

``-n`` prints what would be killed and sends nothing. Real kills are logged to syslog
(``authpriv``) and, with ``-v``, printed. Exit status: 0 done (also when there was nothing to
do), 1 some process could not be signalled, 2 usage or configuration error.

Configuration (``-c FILE``, default /etc/glexec-py/prune_userprocs.conf when it exists):
``key = value`` lines, ``#`` comments; keys ``daemons``, ``daemon_pids``, ``exempt_users``,
``exempt_commands`` (space- or comma-separated lists, added to the defaults and to the command
line's), ``min_uid``, ``signal``, ``kill_ssh_sessions`` (yes/no). The command line wins for
scalars.
"""

from __future__ import annotations

import argparse
import os
import pwd
import signal
import sys
import syslog
import time

from glexec_py.errors import SiteError

PROG = "prune_userprocs"
DEFAULT_CONFIG = "/etc/glexec-py/prune_userprocs.conf"
DEFAULT_DAEMONS = ("pbs_mom", "slurmstepd", "sge_shepherd", "condor_starter")
DEFAULT_EXEMPT_COMMANDS = ("systemd", "(sd-pam)")
SSH_DAEMONS = ("sshd", "sshd-session")
DEFAULT_MIN_UID = 99
TASK_COMM_LEN = 15  # the kernel keeps this many bytes of a command name
PF_KTHREAD = 0x00200000
EXIT_PARTIAL = 1
EXIT_USAGE = 2


class ProcInfo:
    """One process as read from /proc at scan time."""

    __slots__ = ("pid", "comm", "state", "ppid", "flags", "starttime", "ruid", "euid")

    def __init__(self, pid: int, comm: str, state: str, ppid: int, flags: int,
                 starttime: int, ruid: int, euid: int) -> None:
        self.pid = pid
        self.comm = comm
        self.state = state
        self.ppid = ppid
        self.flags = flags
        self.starttime = starttime
        self.ruid = ruid
        self.euid = euid

    def identity(self) -> tuple[int, int, int]:
        return (self.pid, self.starttime, self.ruid)


def parse_stat(text: bytes) -> tuple[str, str, int, int, int] | None:
    """(comm, state, ppid, flags, starttime) from /proc/PID/stat, or None if malformed.

    The command name is user-chosen and may contain spaces and parentheses, so it runs from the
    first ``(`` to the *last* ``)``; the numeric fields follow (CVE-2017-1000367 was a parser
    that split at the first space).
    """
    start = text.find(b"(")
    end = text.rfind(b")")
    if start < 0 or end < start:
        return None
    fields = text[end + 1:].split()
    # fields[0] is field 3 (state); ppid is field 4, flags 9, starttime 22.
    if len(fields) < 20:
        return None
    try:
        ppid, flags, starttime = int(fields[1]), int(fields[6]), int(fields[19])
    except ValueError:
        return None
    comm = text[start + 1:end].decode("utf-8", "backslashreplace")
    return comm, fields[0].decode("ascii", "replace"), ppid, flags, starttime


def parse_uids(status: bytes) -> tuple[int, int] | None:
    """(real, effective) uid from /proc/PID/status, or None if absent."""
    for line in status.splitlines():
        if line.startswith(b"Uid:"):
            parts = line.split()
            if len(parts) >= 3:
                try:
                    return int(parts[1]), int(parts[2])
                except ValueError:
                    return None
    return None


def read_process(pid: int, proc: str = "/proc") -> ProcInfo | None:
    """Read one process; None when it vanished or its entries are unreadable."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as handle:
            stat_text = handle.read(4096)
        with open(f"{proc}/{pid}/status", "rb") as handle:
            status_text = handle.read(65536)
    except OSError:
        return None
    parsed = parse_stat(stat_text)
    uids = parse_uids(status_text)
    if parsed is None or uids is None:
        return None
    comm, state, ppid, flags, starttime = parsed
    return ProcInfo(pid, comm, state, ppid, flags, starttime, uids[0], uids[1])


def scan_processes(proc: str = "/proc") -> dict[int, ProcInfo]:
    table: dict[int, ProcInfo] = {}
    for name in os.listdir(proc):
        if name.isdigit():
            info = read_process(int(name), proc)
            if info is not None:
                table[info.pid] = info
    return table


class Policy:
    """What counts as a daemon, an exemption and a selected user."""

    __slots__ = ("min_uid", "users", "daemons", "daemon_pids", "exempt_uids",
                 "exempt_commands", "spare_ssh")

    def __init__(self, *, min_uid: int, users: frozenset[int] | None, daemons: set[str],
                 daemon_pids: set[int], exempt_uids: set[int], exempt_commands: set[str],
                 spare_ssh: bool) -> None:
        self.min_uid = min_uid
        self.users = users  # None: every account above min_uid
        self.daemons = {name[:TASK_COMM_LEN] for name in daemons}
        self.daemon_pids = daemon_pids
        self.exempt_uids = exempt_uids
        self.exempt_commands = {name[:TASK_COMM_LEN] for name in exempt_commands}
        self.spare_ssh = spare_ssh

    def is_system_owned(self, info: ProcInfo) -> bool:
        return info.ruid <= self.min_uid

    def is_daemon(self, info: ProcInfo) -> bool:
        if info.pid in self.daemon_pids:
            return True
        return info.comm in self.daemons and self.is_system_owned(info)

    def is_ssh(self, info: ProcInfo) -> bool:
        return info.comm in SSH_DAEMONS and info.ruid == 0


def find_protecting_ancestor(table: dict[int, ProcInfo], info: ProcInfo, policy: Policy
                             ) -> ProcInfo | None:
    """The batch daemon (or sshd, if spared) above ``info``, if any."""
    seen = {info.pid}
    pid = info.ppid
    while pid > 0 and pid not in seen:
        seen.add(pid)
        parent = table.get(pid)
        if parent is None:
            return None
        if policy.is_daemon(parent) or (policy.spare_ssh and policy.is_ssh(parent)):
            return parent
        pid = parent.ppid
    return None


def select_strays(table: dict[int, ProcInfo], policy: Policy) -> list[ProcInfo]:
    me = os.getpid()
    strays = []
    for info in table.values():
        if info.pid == me or info.state == "Z" or info.flags & PF_KTHREAD:
            continue
        if info.ruid <= policy.min_uid or info.euid <= policy.min_uid:
            continue
        if policy.users is not None and info.ruid not in policy.users:
            continue
        if info.ruid in policy.exempt_uids or info.comm in policy.exempt_commands:
            continue
        if policy.is_daemon(info):
            continue
        if find_protecting_ancestor(table, info, policy) is None:
            strays.append(info)
    strays.sort(key=lambda i: i.pid)
    return strays


def open_verified(info: ProcInfo, proc: str = "/proc") -> int | None:
    """A pidfd for exactly the process that was scanned, or None if it is gone or recycled."""
    try:
        fd = os.pidfd_open(info.pid)
    except OSError:
        return None
    now = read_process(info.pid, proc)
    if now is None or (now.starttime, now.ruid) != (info.starttime, info.ruid):
        os.close(fd)
        return None
    return fd


def send_signal(fd: int, signum: int) -> str:
    """'' on success, 'gone' if the process already exited, else the error text."""
    try:
        signal.pidfd_send_signal(fd, signum)
    except ProcessLookupError:
        return "gone"
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def describe(info: ProcInfo) -> str:
    try:
        user = pwd.getpwuid(info.ruid).pw_name
    except KeyError:
        user = "?"
    comm = info.comm.encode("unicode_escape").decode("ascii")
    return f"pid {info.pid} uid {info.ruid} ({user}) ppid {info.ppid} comm '{comm}'"


def prune_round(policy: Policy, signum: int, done: set[tuple[int, int, int]],
                report: list[str], failures: list[str]) -> int:
    """Stop then signal every stray not handled yet; return how many were newly handled."""
    strays = [s for s in select_strays(scan_processes(), policy) if s.identity() not in done]
    pinned = []
    for info in strays:
        fd = open_verified(info)
        if fd is None:
            continue
        pinned.append((info, fd))
        send_signal(fd, signal.SIGSTOP)  # freeze first so forking cannot outrun us
    name = signal.Signals(signum).name
    try:
        for info, fd in pinned:
            error = send_signal(fd, signum)
            if error and error != "gone":
                failures.append(f"{describe(info)}: {error}")
                continue
            if signum not in (signal.SIGKILL, signal.SIGSTOP):
                send_signal(fd, signal.SIGCONT)
            done.add(info.identity())
            line = f"killed {describe(info)} with {name}"
            report.append(line)
            syslog.syslog(syslog.LOG_AUTHPRIV | syslog.LOG_NOTICE, line)
    finally:
        for _, fd in pinned:
            os.close(fd)
    return len(pinned)


def parse_signal(value: str) -> int:
    text = value.strip().upper()
    if text.isdigit():
        number = int(text)
        try:
            signal.Signals(number)
        except ValueError:
            raise SiteError(f"unknown signal {value}") from None
        return number
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise SiteError(f"unknown signal {value}") from None


def resolve_user(value: str) -> int:
    if value.isdigit():
        return int(value)
    try:
        return pwd.getpwnam(value).pw_uid
    except KeyError:
        raise SiteError(f"no such user: {value}") from None


def read_config(path: str) -> dict[str, str]:
    """Parse the trusted ``key = value`` file; unknown keys are errors (typos must not pass)."""
    from glexec_py.trust import read_trusted_file

    known = {"daemons", "daemon_pids", "exempt_users", "exempt_commands", "min_uid", "signal",
             "kill_ssh_sessions"}
    data = read_trusted_file(path, max_size=1 << 20, what="prune_userprocs configuration")
    settings: dict[str, str] = {}
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, equals, value = line.partition("=")
        key = key.strip()
        if not equals or key not in known:
            raise SiteError(f"{path} line {number}: expected one of {', '.join(sorted(known))}"
                            f" = value")
        settings[key] = value.strip()
    return settings


def split_list(value: str) -> list[str]:
    return value.replace(",", " ").split()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Kill processes of mapped accounts that are not descendants of a "
        "registered batch daemon (nor, by default, in an ssh session).")
    parser.add_argument("users", nargs="*", metavar="USER", help="user names or uids to police")
    parser.add_argument("-a", "--all", action="store_true",
                        help="police every account above the minimum uid")
    parser.add_argument("-n", "--dry-run", action="store_true",
                        help="print what would be killed, send nothing")
    parser.add_argument("-k", "--signal", help="signal name or number (default KILL)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each kill")
    parser.add_argument("-c", "--config", help=f"configuration file (default {DEFAULT_CONFIG} "
                        "if it exists)")
    parser.add_argument("--min-uid", type=int,
                        help=f"never touch uids at or below this (default {DEFAULT_MIN_UID})")
    parser.add_argument("--daemon", action="append", default=[], metavar="NAME",
                        help="another batch daemon command name (repeatable)")
    parser.add_argument("--daemon-pid", action="append", default=[], type=int, metavar="PID",
                        help="a pid whose descendants are a live job (repeatable)")
    parser.add_argument("--exempt-user", action="append", default=[], metavar="USER")
    parser.add_argument("--exempt-command", action="append", default=[], metavar="NAME")
    parser.add_argument("--kill-ssh-sessions", action="store_true",
                        help="do not spare processes below a root-owned sshd")
    parser.add_argument("--rounds", type=int, default=5,
                        help="repeat scan-and-kill at most this often (default 5)")
    return parser


def build_policy(args: argparse.Namespace) -> tuple[Policy, int]:
    config_path = args.config or (DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None)
    settings = read_config(config_path) if config_path else {}
    if args.all == bool(args.users):
        raise SiteError("give either -a or a list of users")
    try:
        min_uid = (args.min_uid if args.min_uid is not None
                   else int(settings.get("min_uid", DEFAULT_MIN_UID)))
        daemon_pids = set(args.daemon_pid) | {int(p) for p in
                                              split_list(settings.get("daemon_pids", ""))}
    except ValueError:
        raise SiteError("min_uid and daemon_pids must be numbers") from None
    if min_uid < 0:
        raise SiteError("the minimum uid cannot be negative")
    kill_ssh = args.kill_ssh_sessions or settings.get("kill_ssh_sessions", "no").lower() in (
        "yes", "true", "1")
    signum = parse_signal(args.signal or settings.get("signal", "KILL"))
    policy = Policy(
        min_uid=min_uid,
        users=None if args.all else frozenset(resolve_user(u) for u in args.users),
        daemons=set(DEFAULT_DAEMONS) | set(args.daemon) | set(split_list(
            settings.get("daemons", ""))),
        daemon_pids=daemon_pids,
        exempt_uids={resolve_user(u) for u in args.exempt_user + split_list(
            settings.get("exempt_users", ""))},
        exempt_commands=set(DEFAULT_EXEMPT_COMMANDS) | set(args.exempt_command) | set(
            split_list(settings.get("exempt_commands", ""))),
        spare_ssh=not kill_ssh)
    return policy, signum


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        policy, signum = build_policy(args)
    except SiteError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return EXIT_USAGE
    if args.dry_run:
        for info in select_strays(scan_processes(), policy):
            print(f"would kill {describe(info)}")
        return 0
    syslog.openlog(PROG, syslog.LOG_PID, syslog.LOG_AUTHPRIV)
    done: set[tuple[int, int, int]] = set()
    report: list[str] = []
    failures: list[str] = []
    for _ in range(max(1, args.rounds)):
        if prune_round(policy, signum, done, report, failures) == 0:
            break
        time.sleep(0.05)  # let killed processes exit before the next scan
    if args.verbose:
        for line in report:
            print(line)
    for line in failures:
        sys.stderr.write(f"{PROG}: cannot signal {line}\n")
    return EXIT_PARTIAL if failures else 0


if __name__ == "__main__":
    sys.exit(main())
