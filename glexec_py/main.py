"""The pipeline, in order, and the only place that turns failures into exit codes.

Runs as: root (setuid mode) or the caller (declare-only mode). Trusts: the front end's arguments
(caller ids from the kernel, compiled-in paths). Hot path: yes.

Order is the security design (sudo's): protect (bootstrap) -> read the site's trusted files ->
open the log (an unusable log stops everything) -> caller -> credentials -> policy -> target ->
record the decision -> act. Every step is a function of the earlier steps' results; every
failure is a GlexecError with a one-line message, printed once on stderr and logged once.
"""

from __future__ import annotations

import os
import sys

from glexec_py import __version__
from glexec_py.errors import (
    EXIT_SYSTEM,
    AuthorizationError,
    ClientError,
    GlexecError,
    SiteError,
)

TYPE_CHECKING = False  # "import typing" costs ~10 ms of start-up (it imports re)
if TYPE_CHECKING:
    from glexec_py.caller import CallerIdentity
    from glexec_py.config import SiteConfig
    from glexec_py.identity import TargetIdentity
    from glexec_py.log import Logger

MODE_SETUID = "setuid"
MODE_DECLARE = "declare-only"


class Installed:
    """What the front end was built with (printed by -V)."""

    __slots__ = ("config_file", "mode", "python", "bootstrap", "site_packages")

    def __init__(self, config_file: str, mode: str, python: str = "", bootstrap: str = "",
                 site_packages: str = "") -> None:
        self.config_file = config_file
        self.mode = mode
        self.python = python
        self.bootstrap = bootstrap
        self.site_packages = site_packages


def _say(text: str, stream: int = 2) -> None:
    data = (text.rstrip("\n") + "\n").encode("utf-8", "backslashreplace")
    try:
        os.write(stream, data)
    except OSError:
        pass


def print_defaults(installed: Installed) -> None:
    """``glexec -V``: the compiled-in settings and every glexec.conf default."""
    from glexec_py.config import KEYS

    lines = [
        f'GLEXEC_VERSION="{__version__}"',
        f'GLEXEC_CONFIG_FILE="{installed.config_file}"',
        f'GLEXEC_MODE="{installed.mode}"',
        f'GLEXEC_PYTHON="{installed.python}"',
        f'GLEXEC_BOOTSTRAP="{installed.bootstrap}"',
        f'GLEXEC_SITE_PACKAGES="{installed.site_packages}"',
    ]
    lines += [f'{key.name}="{key.default}"' for key in KEYS if key.kind != "compat"]
    _say("\n".join(lines), 1)


def _quote(value: str) -> str:
    from glexec_py.log import escape

    return f'"{escape(value)}"'


def decision_record(caller: CallerIdentity, target: TargetIdentity, command: tuple[str, ...],
                    dn: str, fqans: tuple[str, ...], declare_only: bool) -> str:
    """gLExec's success line, then glexec-py's additions (ids, groups, DN, FQANs)."""
    arrow = "->would map to " if declare_only else "->"
    line = (f"real_user({caller.name}),real_group({caller.group}){arrow}"
            f"mapped_user({target.name}),mapped_group({target.group}) "
            f"cwd: {_quote(caller.cwd)} cmd: {_quote(command[0]) if command else '(none)'}")
    if len(command) > 1:
        line += " args: " + " ".join(_quote(arg) for arg in command[1:])
    line += (f" uid: {target.uid} gid: {target.gid} groups: "
             f"{','.join(map(str, target.groups))} dn: {_quote(dn)}")
    if fqans:
        line += " fqan: " + _quote(fqans[0])
    if declare_only:
        line = "declare-only (no identity switch): " + line
    return line


def completion_record(done: object, target: TargetIdentity, status: int) -> str:
    wait_status = done.status
    if os.WIFSIGNALED(wait_status):
        how = f"killed by signal {os.WTERMSIG(wait_status)}"
    else:
        how = f"exited with status {os.WEXITSTATUS(wait_status)}"
    return (f"payload pid {done.pid} of {target.name}(uid {target.uid}) {how}; glexec exit "
            f"status {status}; CPU user {done.utime:.3f} s system {done.stime:.3f} s; wall "
            f"{done.ended - done.started:.3f} s; leftovers terminated: {len(done.leftovers)} "
            f"(tracking: {done.tracking or 'none'})"
            + ("; the calling pilot died, payload stopped" if done.pilot_died else ""))


def _open_logger(site: SiteConfig) -> Logger:
    from glexec_py.log import Logger

    return Logger(destination=site.log_destination, facility=site.syslog_facility,
                  level=site.log_level, path=site.log_file, socket_path=site.syslog_socket)


def _verify_credentials(site: SiteConfig, files: object, caller: CallerIdentity) -> object:
    from glexec_py.caller import is_listed
    from glexec_py.credentials.cache import verify_proxy_cached

    require_key = not is_listed(caller, site.omission_private_key_white_list)
    cred = verify_proxy_cached(files.client, certdir=site.x509_cert_dir,
                               vomsdir=site.x509_voms_dir, require_key=require_key)
    if files.source != files.client:
        from glexec_py.credentials.dn import dn_key

        source = verify_proxy_cached(files.source, certdir=site.x509_cert_dir,
                                     vomsdir=site.x509_voms_dir, require_key=False)
        if dn_key(source.dn) != dn_key(cred.dn):
            raise ClientError("GLEXEC_SOURCE_PROXY belongs to another identity than "
                              "GLEXEC_CLIENT_CERT")
    return cred


def run(argv: list[str], *, caller_uid: int, caller_gid: int, invoker_pid: int,
        installed: Installed, env_fd: int = 3, umask: int = 0o022, cwd: str = "") -> int:
    """Run one glexec invocation; return the process exit status (unless it execs in place)."""
    logger: Logger | None = None
    context = ""
    try:
        from glexec_py.cli import USAGE, parse_args

        inv = parse_args(argv)
        if inv.action == "help":
            _say(USAGE, 1)
            return 0
        if inv.action == "version":
            _say(f"glexec-py {__version__} (gLExec-compatible launcher, "
                 f"{installed.mode} mode)", 1)
            return 0
        if inv.action == "defaults":
            if caller_uid != 0:
                raise ClientError("-V is only available to root")
            print_defaults(installed)
            return 0
        if inv.config_path and caller_uid != 0:
            raise ClientError("--config is only available to root")
        from glexec_py.config import load_config

        site = load_config(inv.config_path or installed.config_file)
        logger = _open_logger(site)
        return _run_pipeline(inv, site, logger, caller_uid=caller_uid, caller_gid=caller_gid,
                             invoker_pid=invoker_pid, installed=installed, env_fd=env_fd,
                             umask=umask, cwd=cwd)
    except GlexecError as exc:
        return _report_failure(exc, logger, context)
    except MemoryError:
        return _report_failure(SiteError("out of memory"), logger, context)
    except Exception as exc:  # noqa: BLE001 - one line for the caller, the traceback to the log
        import traceback

        detail = "".join(traceback.format_exception(exc)).replace("\n", " | ")
        return _report_failure(SiteError("internal error, see the log", detail=detail), logger,
                               context)


def _report_failure(exc: GlexecError, logger: Logger | None, context: str) -> int:
    from glexec_py.log import escape

    # Messages quote caller-supplied paths, names and commands: escaped like the log, so a
    # newline or terminal escape in GLEXEC_CLIENT_CERT cannot forge a second stderr line.
    _say(f"glexec: {escape(exc.message, 2000)}")
    record = f"error {exc.exit_code}: {escape(exc.message, 2000)}"
    if exc.detail:
        record += f" ({escape(exc.detail, 6000)})"
    if logger is None:
        try:
            from glexec_py.log import Logger

            logger = Logger(destination="syslog")
        except GlexecError:
            return exc.exit_code
    try:
        logger.error(record)
    except GlexecError:
        pass
    return exc.exit_code


def _run_pipeline(inv: object, site: SiteConfig, logger: Logger, *, caller_uid: int,
                  caller_gid: int, invoker_pid: int, installed: Installed, env_fd: int,
                  umask: int, cwd: str) -> int:
    from glexec_py.caller import check_whitelist, identify_caller
    from glexec_py.environment import build_payload_env, check_glexec_values, read_caller_env
    from glexec_py.identity import resolve_target
    from glexec_py.launch.plan import LaunchPlan
    from glexec_py.launch.target_proxy import check_target_proxy_path, default_target_proxy
    from glexec_py.plugin_api import Request
    from glexec_py.policy import evaluate
    from glexec_py.proxy_input import read_proxy_files

    declare_only = installed.mode == MODE_DECLARE
    caller = identify_caller(caller_uid, caller_gid, invoker_pid=invoker_pid, cwd=cwd)
    caller_env = read_caller_env(env_fd)
    check_whitelist(caller, site.user_white_list, site.group_white_list)
    check_glexec_values(caller_env)
    files = read_proxy_files(caller_env, caller_uid=caller.uid, caller_gid=caller.gid,
                             caller_groups=caller.groups, lock=site.input_lock_mechanism)
    cred = _verify_credentials(site, files, caller)
    verify_mode = inv.requested_uid is not None
    request = Request(
        caller_uid=caller.uid, caller_gid=caller.gid, caller_name=caller.name,
        caller_groups=caller.groups, dn=cred.dn, fqans=cred.fqans, voms=cred.voms,
        credential=cred, command=inv.command, cwd=caller.cwd,
        requested_uid=inv.requested_uid, requested_username=None,
        mode="verify" if verify_mode else "run", invoker_pid=invoker_pid,
        launcher_pid=os.getpid(), now=None)
    names = site.lcmaps_verify_account_policy if verify_mode else site.lcmaps_get_account_policy
    mapping = evaluate(request, lcmaps_db_file=site.lcmaps_db_file, policy_names=names,
                       use_lcas=site.use_lcas, lcas_db_file=site.lcas_db_file,
                       mode=request.mode)
    if verify_mode and (mapping.uid, mapping.pgid) != (inv.requested_uid, inv.requested_gid):
        raise AuthorizationError(f"requested uid {inv.requested_uid} gid {inv.requested_gid} "
                                 f"is not the account the policy maps to")
    target = resolve_target(uid=mapping.uid, gid=mapping.pgid, sgids=tuple(mapping.sgids),
                            site=site, caller_uid=caller.uid, caller_groups=caller.groups)
    proxy_path = ""
    proxy_data = None
    if declare_only:
        payload_proxy = files.source_path
    else:
        if site.create_target_proxy:
            proxy_path = check_target_proxy_path(caller_env.get("GLEXEC_TARGET_PROXY")
                                                 or default_target_proxy(target.uid))
            proxy_data = files.source
        payload_proxy = proxy_path
    payload_env = build_payload_env(
        caller_env, preserve=site.preserve_env_variables,
        home=caller.home if declare_only else target.home,
        user=caller.name if declare_only else target.name,
        path=site.payload_path, proxy=payload_proxy)
    logger.notice(decision_record(caller, target, inv.command, cred.dn, cred.fqans,
                                  declare_only))
    for line in mapping.cred_final:
        logger.notice(f"lcmaps: {line}")  # the original's "glexec: lcmaps: LCMAPS CRED FINAL"
    plan = LaunchPlan(
        command=inv.command, uid=caller.uid if declare_only else target.uid,
        gid=caller.gid if declare_only else target.gid, groups=target.groups,
        switch=not declare_only, env=payload_env, cwd=caller.cwd, umask=umask,
        proxy_path=proxy_path, proxy_data=proxy_data, lock=site.target_lock_mechanism,
        no_symlink=site.prohibit_exec_via_symlink, linger=site.linger,
        grace=site.cleanup_grace, epilogue=site.epilogue, epilogue_user=site.epilogue_user,
        epilogue_group=site.epilogue_group, epilogue_timeout=site.epilogue_timeout,
        invoker_pid=invoker_pid, tracking=site.process_tracking)
    if inv.action == "refresh":
        return _refresh_proxy(plan, logger)
    if not site.linger:
        from glexec_py.launch.child import exec_payload

        exec_payload(plan)
        raise SiteError("exec returned")  # exec_payload only returns by raising
    return _linger(plan, site, logger, target, cred)


def _refresh_proxy(plan: object, logger: Logger) -> int:
    """DIRAC's proxy refresh: authorize, write the target proxy, run nothing."""
    if plan.proxy_data is None or not plan.switch:
        logger.notice("no command: authorization only, no target proxy written")
        return 0
    from glexec_py.launch.child import become_target

    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        code = 0
        try:
            become_target(plan)
        except GlexecError as exc:
            code = exc.exit_code
            os.write(wfd, exc.message.encode("utf-8", "replace")[:4000])
        except BaseException:  # noqa: BLE001
            code = EXIT_SYSTEM
        os._exit(code)
    os.close(wfd)
    message = os.read(rfd, 4096).decode("utf-8", "replace")
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else EXIT_SYSTEM
    if code == 201:
        raise ClientError(message)
    if code:
        raise SiteError(message or "target proxy refresh failed")
    logger.notice(f"no command: target proxy {plan.proxy_path} refreshed")
    return 0


def _linger(plan: object, site: SiteConfig, logger: Logger, target: TargetIdentity,
            cred: object) -> int:
    import gc

    from glexec_py.launch.child import exec_payload
    from glexec_py.launch.linger import finish_call, finish_record, run_lingering
    from glexec_py.launch.tracking import format_glexec_mon

    gc.enable()  # bootstrap turned it off for the short call; this process lives with the job
    me = os.getpid()

    def started(pid: int) -> None:
        voms = cred.voms[0] if cred.voms else None
        for line in format_glexec_mon(me, pid, target_uid=target.uid, dn=cred.dn,
                                      vo=voms.vo if voms else None,
                                      issuer=voms.issuer_dn if voms else None,
                                      fqans=cred.fqans):
            logger.notice_line(line)

    def start_child(parent: int) -> None:
        exec_payload(plan, parent_pid=parent)

    finish = finish_record(plan, target.name, target.uid)
    done = run_lingering(plan, on_started=started, start_child=start_child, logger=logger,
                         finish=finish)
    return finish_call(done, finish, logger)


def main_from_frontend(argv: list[str], *, cwd: str) -> int:
    """Entry from bootstrap: ``uid gid invoker umask config mode python site -- args...``."""
    try:
        sep = argv.index("--")
        uid, gid, invoker, umask, config_file, mode, python, site = argv[:sep]
        args = argv[sep + 1:]
        installed = Installed(config_file, mode, python, os.path.abspath(sys.argv[0]), site)
        return run(args, caller_uid=int(uid), caller_gid=int(gid), invoker_pid=int(invoker),
                   installed=installed, umask=int(umask, 8), cwd=cwd)
    except ValueError:
        _say("glexec: launcher front end passed malformed arguments")
        return EXIT_SYSTEM
