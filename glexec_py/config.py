"""glexec.conf: the original INI format and keys, strict validation, trust-checked reading.

Runs as: root. Trusts: glexec.conf only after ``trust.py`` accepted it and every directory above.
Hot path: yes (hand-written parser; configparser costs ~10 ms of start-up).

The key table below is the single source for parsing, defaults, ``glexec -V``, the sample
``etc/glexec.conf`` and the glexec.conf(5) man page. Anything not in it (an unknown section or key,
a duplicate, a bad value) is a site error (202): a typo in a security policy must not silently
fall back to a default.
"""

from __future__ import annotations

from glexec_py.errors import SiteError

DEFAULT_CONFIG_FILE = "/etc/glexec.conf"
MAX_CONFIG_SIZE = 256 * 1024

SYSLOG_FACILITIES = (
    "LOG_AUTH", "LOG_AUTHPRIV", "LOG_DAEMON", "LOG_USER", "LOG_LOCAL0", "LOG_LOCAL1", "LOG_LOCAL2",
    "LOG_LOCAL3", "LOG_LOCAL4", "LOG_LOCAL5", "LOG_LOCAL6", "LOG_LOCAL7",
)
LOCK_MECHANISMS = ("flock", "fcntl", "disabled")

# Group names never acceptable as a payload's supplementary group by default: membership in any
# of them is equivalent to, or one step from, root.
DEFAULT_FORBIDDEN_GROUPS = "root, wheel, sudo, adm, shadow, disk, kmem, docker, lxd, libvirt"


class ConfKey:
    """One glexec.conf key: its value kind, default (as written in the file) and meaning."""

    __slots__ = ("name", "kind", "default", "help", "choices", "origin")

    def __init__(self, name: str, kind: str, default: str, help: str,
                 choices: tuple[str, ...] = (), origin: str = "gLExec") -> None:
        self.name = name
        self.kind = kind          # bool, int, str, path, list, colonlist, choice, ranges, compat
        self.default = default
        self.help = help
        self.choices = choices
        self.origin = origin      # "gLExec" for original keys, "glexec-py" for extensions


KEYS: tuple[ConfKey, ...] = (
    ConfKey("linger", "bool", "yes",
            "yes: fork, run the payload as a child, wait for it, forward signals, log a completion "
            "record and clean up what it left; no: exec the payload in place of glexec."),
    ConfKey("user_white_list", "list", "",
            "Accounts allowed to call glexec. An entry starting with '.' is a pool-account prefix "
            "('.pilot' allows pilot001, pilot002, ...). Empty: nobody may call."),
    ConfKey("group_white_list", "list", "",
            "Groups whose members may call glexec (the caller's real gid or one of its "
            "supplementary groups)."),
    ConfKey("omission_private_key_white_list", "list", "",
            "Callers allowed to present a certificate chain without its private key."),
    ConfKey("preserve_env_variables", "list", "",
            "Further environment variables passed to the payload besides GLEXEC_*; 'no' or empty "
            "for none; NAME* keeps every variable starting with NAME (e.g. SLURM_*). MALLOC_* "
            "can never be preserved."),
    ConfKey("create_target_proxy", "bool", "yes",
            "Copy the source proxy to the target proxy location for the payload."),
    ConfKey("log_destination", "choice", "syslog", "Where records go.", ("syslog", "file")),
    ConfKey("log_file", "path", "/var/log/glexec/glexec.log",
            "Log file when log_destination = file (its directory must be trusted)."),
    ConfKey("log_level", "int", "3",
            "0 nothing, 1 errors, 2 +warnings, 3 +notices (decisions, completion records), "
            "4 +info, 5 debug."),
    ConfKey("silent_logging", "bool", "no",
            "yes: warnings go to the log only, never to the caller's stderr (the one-line "
            "error message of a failure is always printed)."),
    ConfKey("syslog_facility", "choice", "LOG_DAEMON", "Syslog facility.", SYSLOG_FACILITIES),
    ConfKey("syslog_socket", "path", "/dev/log",
            "The syslog daemon's datagram socket (records are sent there directly, so a missing "
            "daemon is noticed and the call fails closed).", origin="glexec-py"),
    ConfKey("lcmaps_db_file", "path", "/etc/lcmaps/lcmaps-glexec.db",
            "Mapping policy: an lcmaps.db file or its YAML form (.yaml/.yml)."),
    ConfKey("lcmaps_get_account_policy", "colonlist", "",
            "Colon-separated policy names tried (in file order) for mapping; empty: every "
            "policy in the file."),
    ConfKey("lcmaps_verify_account_policy", "colonlist", "",
            "Policy names for the deprecated 'glexec <uid> <gid> cmd' verify form."),
    ConfKey("use_lcas", "bool", "no", "Run the LCAS authorization file before mapping."),
    ConfKey("lcas_db_file", "path", "/etc/lcas/lcas-glexec.db", "LCAS authorization file."),
    ConfKey("epilogue", "path", "",
            "Trusted executable run after the payload (linger mode only), with stdio on "
            "/dev/null and GLEXEC_EPILOG_* variables."),
    ConfKey("epilogue_user", "str", "root", "Account the epilogue runs as."),
    ConfKey("epilogue_group", "str", "", "Group the epilogue runs as (default: the user's)."),
    ConfKey("epilogue_timeout", "int", "300",
            "Seconds before the epilogue is sent SIGTERM, then SIGKILL."),
    ConfKey("target_lock_mechanism", "choice", "flock",
            "Lock taken while writing the target proxy.", LOCK_MECHANISMS),
    ConfKey("lock_mechanism", "choice", "",
            "Deprecated spelling of target_lock_mechanism.", LOCK_MECHANISMS),
    ConfKey("input_lock_mechanism", "choice", "flock",
            "Read lock taken on the client certificate and source proxy while reading them.",
            LOCK_MECHANISMS),
    ConfKey("prohibit_exec_via_symlink", "bool", "no",
            "Refuse (201) a command path whose last component is a symbolic link."),
    ConfKey("user_identity_switch_by", "choice", "glexec",
            "Accepted for compatibility; glexec-py always switches identity itself, after the "
            "policy (posix_enf only checks limits).", ("glexec", "lcmaps")),
    ConfKey("lcmaps_log_file", "compat", "",
            "Accepted for compatibility: policy decisions are logged through log_destination."),
    ConfKey("lcmaps_debug_level", "compat", "", "Accepted for compatibility (no effect)."),
    ConfKey("lcmaps_log_level", "compat", "", "Accepted for compatibility (no effect)."),
    ConfKey("lcas_log_file", "compat", "", "Accepted for compatibility (no effect)."),
    ConfKey("lcas_debug_level", "compat", "", "Accepted for compatibility (no effect)."),
    ConfKey("lcas_log_level", "compat", "", "Accepted for compatibility (no effect)."),
    ConfKey("lcmaps_voms_verification", "compat", "",
            "Accepted for compatibility: VOMS attributes are always verified."),
    ConfKey("pedantic_security_checks", "compat", "",
            "Accepted for compatibility: glexec-py's checks are always the strict ones."),
    # glexec-py extensions
    ConfKey("x509_cert_dir", "path", "/etc/grid-security/certificates",
            "Trusted CA directory (<hash>.0 anchors, <hash>.r0 CRLs).", origin="glexec-py"),
    ConfKey("x509_voms_dir", "path", "/etc/grid-security/vomsdir",
            "VOMS server trust (<vo>/<host>.lsc files).", origin="glexec-py"),
    ConfKey("min_target_uid", "int", "1000",
            "Lowest uid a payload may run as (system accounts below it are refused).",
            origin="glexec-py"),
    ConfKey("min_target_gid", "int", "100",
            "Lowest primary gid a payload may run with.", origin="glexec-py"),
    ConfKey("max_target_groups", "int", "32",
            "Most supplementary groups a payload may get.", origin="glexec-py"),
    ConfKey("forbidden_target_groups", "list", DEFAULT_FORBIDDEN_GROUPS,
            "Groups (names or numbers) a payload must never be a member of; a name matches the "
            "name the group database gives a mapped gid.",
            origin="glexec-py"),
    ConfKey("tracking_gid_ranges", "ranges", "",
            "Supplementary gids of the caller kept across the switch so the batch system keeps "
            "tracking the payload, e.g. '65000-65049, 20000-20999' (Grid Engine gid_range, "
            "HTCondor tracking gids).", origin="glexec-py"),
    ConfKey("allow_self_mapping", "bool", "yes",
            "Allow a mapping to the caller's own account (the payload then runs as the "
            "caller, no privilege is gained).", origin="glexec-py"),
    ConfKey("payload_path", "str", "/usr/local/bin:/usr/bin:/bin",
            "PATH given to the payload; also used to find a command named without a '/'.",
            origin="glexec-py"),
    ConfKey("process_tracking", "choice", "auto",
            "Linger mode: how processes the payload left behind are found and terminated.",
            ("auto", "cgroup-v2", "cgroup-v1", "proc-events", "descendants"),
            origin="glexec-py"),
    ConfKey("cleanup_grace", "int", "2",
            "Seconds between SIGTERM and SIGKILL when terminating what the payload left.",
            origin="glexec-py"),
    ConfKey("log_fallback", "choice", "fail",
            "What to do when the log cannot be written before the payload starts: fail (202).",
            ("fail",), origin="glexec-py"),
)

KEY_BY_NAME = {k.name: k for k in KEYS}
_TRUE = ("yes", "true", "on", "1")
_FALSE = ("no", "false", "off", "0")


class SiteConfig:
    """The parsed glexec.conf: one attribute per key, typed (lists as tuples, bools as bool)."""

    __slots__ = tuple(k.name for k in KEYS) + ("path", "identity")

    def __init__(self, values: dict[str, object], path: str, identity: tuple | None) -> None:
        for key in KEYS:
            object.__setattr__(self, key.name, values[key.name])
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "identity", identity)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SiteConfig is read-only")


def _split_list(value: str) -> tuple[str, ...]:
    items = [item.strip() for item in value.replace("\t", " ").replace(",", " ").split(" ")]
    return tuple(item for item in items if item)


def _parse_ranges(value: str, where: str) -> tuple[tuple[int, int], ...]:
    ranges = []
    for item in _split_list(value):
        low, sep, high = item.partition("-")
        try:
            lo = int(low)
            hi = int(high) if sep else lo
        except ValueError:
            raise SiteError(f"{where}: bad gid range {item!r}") from None
        if not 0 < lo <= hi < 4294967295:
            raise SiteError(f"{where}: bad gid range {item!r}")
        ranges.append((lo, hi))
    return tuple(ranges)


def convert_value(key: ConfKey, raw: str, where: str) -> object:
    """Turn the text of one key into its typed value, or raise SiteError naming the line."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    kind = key.kind
    if kind == "bool":
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise SiteError(f"{where}: {key.name} must be yes or no, not {value!r}")
    if kind == "int":
        try:
            number = int(value)
        except ValueError:
            raise SiteError(f"{where}: {key.name} must be a number, not {value!r}") from None
        if number < 0 or (key.name == "log_level" and number > 5):
            raise SiteError(f"{where}: {key.name} out of range: {number}")
        return number
    if kind == "choice":
        if value == "" and key.default == "":
            return ""
        if value not in key.choices:
            raise SiteError(f"{where}: {key.name} must be one of {', '.join(key.choices)}, "
                            f"not {value!r}")
        return value
    if kind == "path":
        if value and not value.startswith("/"):
            raise SiteError(f"{where}: {key.name} must be an absolute path, not {value!r}")
        return value
    if kind == "list":
        items = _split_list(value)
        if key.name == "preserve_env_variables":
            if items in ((), ("no",)):
                return ()
            for item in items:
                # "MALLOC*" or "MAL*" would cover MALLOC_* as surely as naming it
                covers = item.endswith("*") and "MALLOC_".startswith(item[:-1].upper())
                if item.upper().startswith("MALLOC_") or covers:
                    raise SiteError(f"{where}: {item} may never be preserved (MALLOC_*)")
                stem = item[:-1] if item.endswith("*") else item  # NAME* keeps a prefix
                if not stem or not stem.replace("_", "").isalnum() or not stem.isascii():
                    raise SiteError(f"{where}: bad variable name {item!r}")
        return items
    if kind == "colonlist":
        return tuple(p.strip() for p in value.split(":") if p.strip())
    if kind == "ranges":
        return _parse_ranges(value, where)
    return value  # str, compat


def parse_config(text: str, path: str = DEFAULT_CONFIG_FILE,
                 identity: tuple | None = None) -> SiteConfig:
    """Parse glexec.conf text strictly; only the [glexec] section exists."""
    values: dict[str, object] = {}
    section = None
    seen_glexec = False
    for number, line in enumerate(text.split("\n"), 1):
        where = f"{path}:{number}"
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("["):
            if not stripped.endswith("]"):
                raise SiteError(f"{where}: malformed section header")
            section = stripped[1:-1].strip()
            if section != "glexec":
                raise SiteError(f"{where}: unknown section [{section}]")
            if seen_glexec:
                raise SiteError(f"{where}: section [glexec] given twice")
            seen_glexec = True
            continue
        name, sep, raw = stripped.partition("=")
        name = name.strip()
        if not sep:
            raise SiteError(f"{where}: expected 'key = value'")
        if section is None:
            raise SiteError(f"{where}: key {name!r} outside the [glexec] section")
        key = KEY_BY_NAME.get(name)
        if key is None:
            raise SiteError(f"{where}: unknown key {name!r}")
        if name in values:
            raise SiteError(f"{where}: key {name!r} given twice")
        values[name] = convert_value(key, raw, where)
    if not seen_glexec:
        raise SiteError(f"{path}: no [glexec] section")
    if "lock_mechanism" in values and "target_lock_mechanism" in values:
        raise SiteError(f"{path}: both lock_mechanism and target_lock_mechanism are set")
    for key in KEYS:
        if key.name not in values:
            values[key.name] = convert_value(key, key.default, f"{path}: default")
    if values["lock_mechanism"]:
        values["target_lock_mechanism"] = values["lock_mechanism"]
    if values["log_destination"] == "file" and not values["log_file"]:
        raise SiteError(f"{path}: log_destination = file needs log_file")
    return SiteConfig(values, path, identity)


def load_config(path: str) -> SiteConfig:
    """Read glexec.conf through the whole-path trust check and parse it."""
    from glexec_py.trust import read_trusted_file_with_identity

    data, ident = read_trusted_file_with_identity(path, max_size=MAX_CONFIG_SIZE,
                                                  what="configuration file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SiteError(f"configuration file {path}: not valid UTF-8") from None
    if "\0" in text:
        raise SiteError(f"configuration file {path}: contains a NUL byte")
    return parse_config(text, path, ident.as_tuple())


def render_sample() -> str:
    """The documented sample glexec.conf (every key with its default), as shipped in etc/."""
    lines = ["# glexec.conf - glexec-py configuration (every key, with its default).",
             "# Generated from glexec_py/config.py; see glexec.conf(5).", "", "[glexec]"]
    for key in KEYS:
        if key.kind == "compat" or key.name == "lock_mechanism":
            continue
        lines.append("")
        words = key.help.split()
        line = "#"
        for word in words:
            if len(line) + len(word) > 95:
                lines.append(line)
                line = "#"
            line += " " + word
        lines.append(line)
        if key.choices:
            lines.append("# one of: " + ", ".join(key.choices))
        if key.origin != "gLExec":
            lines.append("# (glexec-py extension)")
        lines.append(f"{key.name} = {key.default}")
    return "\n".join(lines) + "\n"
