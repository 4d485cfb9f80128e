"""``external``: any executable as a plugin, speaking JSON on stdin/stdout, run unprivileged.

Runs as: root, which forks the filter as ``-user`` (default: the ``glexec`` service account, else
``nobody``) with an empty environment, cwd ``/`` and no supplementary groups. Trusts: the
executable only after its whole path passed ``glexec_py.trust``; its output only after schema
validation. Hot path: yes when named (``json`` and ``subprocess`` are imported only then).

Protocol (schema 1). stdin: ``{"schema": 1, "plugin": NAME, "request": {...}, "creds": {...}}``
with the JSON-representable request fields and the credential store. stdout: one object
``{"result": "ok" | "fail", "reason": "...", "set": {FIELD: VALUE, ...}}``; ``set`` may only
name fields listed in ``-may-set`` (uid/pgid/sgid lists of ints, dn/pool_index strings, fqans
list of strings) and *replaces* those fields. Exit 0 with that object = its result; exit 1 =
failure (fall through); anything else (other exit codes, signals, timeout, invalid JSON, a field
outside ``-may-set``, more than 64 KiB) is an error (202).
"""

from __future__ import annotations

from glexec_py.errors import SiteError
from glexec_py.plugin_api import (
    CRED_FIELDS,
    Option,
    Plugin,
    PolicyConfigError,
    Result,
    parse_options,
)

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request

SCHEMA = 1
MAX_OUTPUT = 64 << 10
JSON_REQUEST_FIELDS = ("caller_uid", "caller_gid", "caller_name", "caller_groups", "dn", "fqans",
                       "command", "cwd", "requested_username", "requested_uid", "mode",
                       "invoker_pid", "launcher_pid", "now")
SETTABLE = ("dn", "uid", "pgid", "sgid", "pool_index", "fqans")


def request_document(name: str, request: Request, creds: CredentialView) -> dict[str, object]:
    req = {}
    for field in JSON_REQUEST_FIELDS:
        value = getattr(request, field)
        if isinstance(value, (tuple, list)):
            value = [v if isinstance(v, (int, float, str)) else str(v) for v in value]
        elif value is not None and not isinstance(value, (int, float, str, bool)):
            value = str(value)
        req[field] = value
    store = {"dn": creds.dn, "uid": list(creds.uid), "pgid": list(creds.pgid),
             "sgid": list(creds.sgid), "pool_index": creds.pool_index,
             "fqans": list(creds.fqans),
             "vo_mappings": [list(m) for m in creds.vo_mappings]}
    return {"schema": SCHEMA, "plugin": name, "request": req, "creds": store}


def _valid_value(field: str, value: object) -> bool:
    if field in ("dn", "pool_index"):
        return isinstance(value, str) and "\0" not in value
    if field == "fqans":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return (isinstance(value, list) and all(type(v) is int and 0 <= v <= 0xFFFFFFFE
                                            for v in value))


def parse_reply(data: bytes, may_set: frozenset[str], name: str) -> Result:
    import json

    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: "[[[[..."
        raise SiteError(f"external filter {name}: output is not one JSON object")
    if not isinstance(doc, dict) or doc.get("result") not in ("ok", "fail"):
        raise SiteError(f"external filter {name}: output needs \"result\": \"ok\" or \"fail\"")
    extra = set(doc) - {"result", "reason", "set"}
    if extra:
        raise SiteError(f"external filter {name}: unknown keys {sorted(extra)}")
    reason = doc.get("reason", "")
    if not isinstance(reason, str):
        raise SiteError(f"external filter {name}: reason must be a string")
    changes = doc.get("set", {})
    if not isinstance(changes, dict):
        raise SiteError(f"external filter {name}: \"set\" must be an object")
    for field, value in changes.items():
        if field not in may_set:
            raise SiteError(f"external filter {name}: may not set {field!r}")
        if not _valid_value(field, value):
            raise SiteError(f"external filter {name}: invalid value for {field!r}")
    if doc["result"] == "fail":
        return Result.failure(reason or f"external filter {name} refused")
    updates = {k: (tuple(v) if isinstance(v, list) else v) for k, v in changes.items()}
    return Result.success(replace=tuple(updates), **updates)


class ExternalPlugin(Plugin):
    name = "external"
    lcmaps_names = ("lcmaps_external.mod",)
    summary = "runs a site program as a filter: context as JSON in, (changed) context out"
    options = (
        Option("-exec", "path", None, "the filter program (trust-checked like config)"),
        Option("-timeout", "int", 10, "seconds before the filter is killed (error 202)"),
        Option("-user", "str", None, "account the filter runs as (default glexec, else nobody)"),
        Option("-may-set", "str", "", "comma-separated credential fields the filter may set"),
    )
    reads = frozenset({"caller_uid", "caller_gid", "caller_name", "caller_groups", "dn",
                       "fqans", "command", "cwd", "requested_username", "requested_uid", "mode",
                       "invoker_pid", "launcher_pid", "now"})
    sets = frozenset({"dn", "uid", "pgid", "sgid", "pool_index", "fqans"})

    def configure(self, args: Sequence[str]) -> None:
        import os
        import pwd

        from glexec_py.trust import read_trusted_file

        opts = parse_options(self.options, args, self.name)
        if not opts["-exec"]:
            raise PolicyConfigError("external: -exec is required")
        self.program = str(opts["-exec"])
        read_trusted_file(self.program, max_size=256 << 20, what="external filter")
        if not os.access(self.program, os.X_OK):
            raise PolicyConfigError(f"external: {self.program} is not executable")
        self.timeout = int(opts["-timeout"])
        if not 0 < self.timeout <= 300:
            raise PolicyConfigError("external: -timeout must be 1-300 seconds")
        user = opts["-user"]
        if user is None:
            try:
                user = pwd.getpwnam("glexec").pw_name
            except KeyError:
                user = "nobody"
        try:
            pw = pwd.getpwnam(str(user))
        except KeyError:
            raise PolicyConfigError(f"external: no such account {user!r}")
        if pw.pw_uid == 0 or pw.pw_gid == 0:
            raise PolicyConfigError("external: filters never run as root")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        fields = [f.strip() for f in str(opts["-may-set"]).split(",") if f.strip()]
        bad = [f for f in fields if f not in SETTABLE or f not in CRED_FIELDS]
        if bad:
            raise PolicyConfigError(f"external: -may-set names unknown fields {bad}")
        self.may_set = frozenset(fields)

    def run(self, request: Request, creds: CredentialView) -> Result:
        import json
        import subprocess

        doc = json.dumps(request_document(self.name, request, creds)).encode()
        try:
            proc = subprocess.run([self.program], input=doc, capture_output=True,
                                  timeout=self.timeout, env={}, cwd="/", user=self.uid,
                                  group=self.gid, extra_groups=[], close_fds=True,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise SiteError(f"external filter {self.program} timed out after "
                            f"{self.timeout} s")
        except OSError as e:
            raise SiteError(f"external filter {self.program} cannot run: {e.strerror}")
        if proc.returncode == 1:
            return Result.failure(f"external filter {self.program} exited 1")
        if proc.returncode != 0:
            raise SiteError(f"external filter {self.program} failed with status "
                            f"{proc.returncode}")
        if len(proc.stdout) > MAX_OUTPUT:
            raise SiteError(f"external filter {self.program}: output larger than 64 KiB")
        return parse_reply(proc.stdout, self.may_set, self.program)
