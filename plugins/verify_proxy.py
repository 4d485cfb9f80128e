"""``verify_proxy``: apply a site's verify-proxy options to the already verified proxy.

Runs as: root (the policy engine). Trusts: the credential the launcher verified, and its own
``-certdir`` after ``glexec_py.trust``. Hot path: yes when a policy names it (cryptography is
only imported when it must re-verify).

The launcher always runs ``credentials.load_and_verify`` with the site defaults before any
policy (essential check, not a plugin). This plugin is LCMAPS ``lcmaps_verify_proxy.mod`` for the
policy chain: with the original option spellings it adds limited-proxy rules, private-key
rules, per-level and VOMS lifetime caps, and glexec-py's key size, signature hash, CRL and
namespace options. Limited/key/lifetime/hash/key-size checks run on the verified facts without
any cryptography; a different ``-certdir``, ``--crl-policy`` or ``--enforce-namespaces`` makes it
verify the chain again against its own CA directory. A refusal is ``Result.failure`` with the
reason ("limited proxy not allowed", "proxy lifetime at level 0 is ..."); ``$X509_CERT_DIR`` is
deliberately not read (the caller controls the environment).
"""

from __future__ import annotations

import os
import time

from glexec_py.credentials import CRL_POLICIES, VerifyOptions, apply_options
from glexec_py.errors import GlexecError
from glexec_py.plugin_api import Option, Plugin, PolicyConfigError, Result, parse_options

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request

_LEVEL_TTL = "--max-proxy-level-ttl"


def parse_ttl(text: str, what: str) -> int:
    """verify-proxy's ``d-hh:mm`` (also ``hh:mm``, ``d-hh``) in seconds."""
    days = 0
    rest = text.strip()
    if "-" in rest:
        head, _, rest = rest.partition("-")
        if not head.isdigit():
            raise PolicyConfigError(f"verify_proxy: {what}: bad duration {text!r} (d-hh:mm)")
        days = int(head)
    hours, _, minutes = rest.partition(":")
    if not hours.isdigit() or (minutes and not minutes.isdigit()):
        raise PolicyConfigError(f"verify_proxy: {what}: bad duration {text!r} (d-hh:mm)")
    return days * 86400 + int(hours) * 3600 + int(minutes or 0) * 60


class VerifyProxyPlugin(Plugin):
    name = "verify_proxy"
    lcmaps_names = ("lcmaps_verify_proxy.mod", "lcmaps_verify_proxy2.mod")
    summary = "apply verify-proxy options (limited, key, lifetimes, CRL, namespaces) to the proxy"
    reads = frozenset({"credential", "now"})
    sets = frozenset()
    options = (
        Option("-certdir", "path", None, "CA directory (default: the launcher's certdir)",
               aliases=("-cadir", "-capath", "--capath")),
        Option("--allow-limited-proxy", "flag", False, "accept limited proxies (default)"),
        Option("--disallow-limited-proxy", "flag", False, "refuse any limited proxy in the chain"),
        Option("--require-limited-proxy", "flag", False, "the leaf must be a limited proxy"),
        Option("--discard_private_key_absence", "flag", False, "accept a proxy without its key"),
        Option("--never_discard_private_key_absence", "flag", False,
               "always require the private key (default)"),
        Option(_LEVEL_TTL, "multi", (), "LEVEL d-hh:mm: maximum lifetime of proxies at LEVEL "
               "(0 = first delegation, L = leaf); written --max-proxy-level-ttl=LEVEL d-hh:mm "
               "or --max-proxy-level-ttl@LEVEL d-hh:mm"),
        Option("--max-voms-ttl", "str", None, "d-hh:mm: maximum lifetime of a VOMS AC"),
        Option("--only-enforce-lifetime-checks", "flag", False, "check lifetimes only"),
        Option("--min-key-bits", "int", None, "minimum RSA/DSA key size (default 1024)"),
        Option("--refuse-signature-hash", "multi", (),
               "hash name to refuse in signatures (repeatable; default md2 md4 md5)"),
        Option("--crl-policy", "choice", None, "if-present (default) or require",
               choices=CRL_POLICIES),
        Option("--enforce-namespaces", "flag", False,
               "the issuing CA's .namespaces/.signing_policy must permit the EEC subject"),
    )

    def __init__(self) -> None:
        self.certdir: str | None = None
        self.verify_options = VerifyOptions()
        self.require_key = True
        self.only_lifetimes = False
        self.reverify = False

    def configure(self, args: Sequence[str]) -> None:
        words = _join_level_ttl(list(args))
        values = parse_options(self.options, words, self.name)
        limited_flags = [flag for flag in ("--allow-limited-proxy", "--disallow-limited-proxy",
                                           "--require-limited-proxy") if values[flag]]
        if len(limited_flags) > 1:
            raise PolicyConfigError(f"verify_proxy: {' and '.join(limited_flags)} conflict")
        limited = limited_flags[0].split("-")[2] if limited_flags else "allow"
        if values["--discard_private_key_absence"] and \
                values["--never_discard_private_key_absence"]:
            raise PolicyConfigError("verify_proxy: --discard_private_key_absence and "
                                    "--never_discard_private_key_absence conflict")
        levels: dict[int | str, int] = {}
        for entry in values[_LEVEL_TTL]:
            level_text, _, span = str(entry).partition(" ")
            if level_text == "L":
                level: int | str = "L"
            elif level_text.isdigit():
                level = int(level_text)
            else:
                raise PolicyConfigError(f"verify_proxy: bad proxy level {level_text!r} "
                                        "(a number or L)")
            levels[level] = parse_ttl(span, _LEVEL_TTL)
        voms_ttl = values["--max-voms-ttl"]
        kwargs: dict[str, object] = {
            "limited": limited, "max_proxy_level_ttl": levels,
            "max_voms_ttl": parse_ttl(voms_ttl, "--max-voms-ttl") if voms_ttl else None,
            "enforce_namespaces": values["--enforce-namespaces"],
        }
        if values["--min-key-bits"] is not None:
            kwargs["min_key_bits"] = values["--min-key-bits"]
        if values["--refuse-signature-hash"]:
            kwargs["refused_signature_hashes"] = values["--refuse-signature-hash"]
        if values["--crl-policy"] is not None:
            kwargs["crl_policy"] = values["--crl-policy"]
        self.verify_options = VerifyOptions(**kwargs)
        self.require_key = not values["--discard_private_key_absence"]
        self.only_lifetimes = bool(values["--only-enforce-lifetime-checks"])
        self.certdir = values["-certdir"]
        if self.certdir is not None:
            from glexec_py.trust import open_trusted_dir

            try:
                os.close(open_trusted_dir(self.certdir, what="verify_proxy -certdir"))
            except GlexecError as exc:
                raise PolicyConfigError(exc.message)
        # Only a different CA directory, CRL policy or namespace enforcement can change the
        # chain verdict; the other options are pure checks on the verified facts. The same
        # -certdir as the launcher's therefore needs no second verification (and no crypto).
        self.reverify_options = (values["--crl-policy"] is not None
                                 or self.verify_options.enforce_namespaces)

    def run(self, request: Request, creds: CredentialView) -> Result:
        cred = request.credential
        if cred is None:
            return Result.failure("no verified proxy credential")
        try:
            reverify = self.reverify_options or (self.certdir is not None
                                                 and self.certdir != cred.certdir)
            if reverify and not self.only_lifetimes and \
                    (self.certdir or cred.certdir) is not None:
                from glexec_py.credentials import load_and_verify

                now = request.now if request.now is not None else time.time()
                load_and_verify(cred.pem, certdir=self.certdir or cred.certdir,
                                vomsdir=cred.vomsdir, require_key=self.require_key,
                                options=self.verify_options, now=now)
            else:
                apply_options(cred, self.verify_options, require_key=self.require_key,
                              only_lifetimes=self.only_lifetimes)
        except GlexecError as exc:
            return Result.failure(exc.message)
        return Result.success()


def _join_level_ttl(args: list[str]) -> list[str]:
    """Turn ``--max-proxy-level-ttl=L 1-00:00`` / ``...@L 1-00:00`` into one option value."""
    out: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        if word.startswith(_LEVEL_TTL) and len(word) > len(_LEVEL_TTL) and \
                word[len(_LEVEL_TTL)] in "=@":
            if index + 1 >= len(args):
                raise PolicyConfigError(f"verify_proxy: {word} needs a d-hh:mm value")
            out += [_LEVEL_TTL, f"{word[len(_LEVEL_TTL) + 1:]} {args[index + 1]}"]
            index += 2
            continue
        out.append(word)
        index += 1
    return out
