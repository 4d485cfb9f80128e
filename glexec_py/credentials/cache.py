"""Verified-chain cache: a repeated call with the very same proxy bytes skips cryptography.

Runs as: root (setuid mode only; a launcher running as the caller neither reads nor writes it).
Trusts: its own directory /run/glexec-py/verified and entries in it only when root-owned, the
directory 0700 and each entry 0600, read through ``glexec_py.trust``. Hot path: yes (this module
imports no cryptography; a miss calls ``load_and_verify``, which does only when its
cryptography-free path hands a proxy over).

``import cryptography.x509`` alone costs 60-80 ms, several times a whole gLExec call on the C
LCMAPS stack, and pilots present the same proxy for many calls. An entry records the verdict for
exactly one byte string (the whole proxy file, private key included, compared byte for byte),
one certdir and one vomsdir, and is used only while everything the verdict depended on is
unchanged and valid:

* every trusted file the verification read (CA certificates, CRLs, policy files, .lsc files)
  still has the identity (dev, inode, size, mtime_ns, ctime_ns) of the version read, and still
  passes the whole-path trust check; every file probed and found absent (a CRL that did not
  exist yet) is still absent, so a new or replaced CRL is seen on the very next call;
* the time is inside the window where every certificate of the chain and of the VOMS server
  chain, every CA anchor, every CRL (nextUpdate) and every AC used is valid, and the entry is
  younger than :data:`MAX_AGE`;
* certdir (and vomsdir, for a proxy with ACs) still pass the trust walk.

Only successes are stored, never a refusal, and never a verdict that rejected an AC or scanned a
vomsdir without .lsc files (their result could change without a recorded file changing). On a
hit the caller-dependent checks of ``load_and_verify`` (private key required, the site options)
run again. Any problem with the cache is a miss, never an error and never a wider decision.
"""

from __future__ import annotations

import marshal
import os
import time

from glexec_py.cachedir import CacheDir
from glexec_py.credentials import VerifiedCredential, VerifyOptions, VomsInfo, load_and_verify
from glexec_py.errors import ClientError, GlexecError

FORMAT = 1
MAX_AGE = 3600.0       # defence in depth: re-verify at least hourly whatever the windows say
# beyond max_entries, a store first removes entries older than MAX_AGE
CACHE = CacheDir("verified", what="cache directory", max_entry_size=1 << 20, max_entries=512,
                 max_age=MAX_AGE)
CACHE_DIR = CACHE.path

_CRED_FIELDS = ("dn", "issuer_dn", "eec_serial", "chain_subjects", "proxy_kinds", "limited",
                "not_before", "not_after", "fqans", "has_key", "pem", "key_bits",
                "proxy_lifetimes", "signature_hashes", "rsa_bits_min", "voms_rejected",
                "certdir", "vomsdir", "verified_at")


def verify_proxy_cached(pem: bytes, *, certdir: str, vomsdir: str | None,
                        require_key: bool = True) -> VerifiedCredential:
    """``load_and_verify`` with the site's default options, through the cache when root."""
    if os.geteuid() != 0:
        return load_and_verify(pem, certdir=certdir, vomsdir=vomsdir, require_key=require_key)
    now = time.time()
    name = entry_name(pem, certdir, vomsdir)
    cred = lookup_entry(name, pem, certdir, vomsdir, now)
    if cred is not None:
        from glexec_py.credentials import apply_options

        if not cred.has_key and require_key:
            raise ClientError("proxy file holds no private key")
        apply_options(cred, VerifyOptions(), require_key=require_key)
        return cred
    depends: list = []
    cred = load_and_verify(pem, certdir=certdir, vomsdir=vomsdir, require_key=require_key,
                           now=now, depends=depends)
    if depends:
        store_entry(name, cred, depends[0], now)
    return cred


def entry_name(pem: bytes, certdir: str, vomsdir: str | None) -> str:
    import _sha256  # the C core of hashlib.sha256, without hashlib's OpenSSL start-up

    h = _sha256.sha256(pem)
    h.update(b"\0" + certdir.encode("utf-8", "surrogateescape") + b"\0"
             + (vomsdir or "").encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def lookup_entry(name: str, pem: bytes, certdir: str, vomsdir: str | None,
                 now: float) -> VerifiedCredential | None:
    try:
        entry = _read_entry(name)
        if entry is None or not _is_current(entry, pem, certdir, vomsdir, now):
            return None
        return _credential(entry)
    except (GlexecError, OSError, ValueError, TypeError, KeyError, IndexError, EOFError):
        return None


def _read_entry(name: str) -> dict | None:
    data = CACHE.read(name)
    if data is None:
        return None
    entry = marshal.loads(data)  # noqa: S302 - root-owned 0600 entry in a 0700 root dir
    return entry if isinstance(entry, dict) and entry.get("format") == FORMAT else None


def _is_current(entry: dict, pem: bytes, certdir: str, vomsdir: str | None,
                now: float) -> bool:
    from glexec_py.trust import identify_trusted_path, open_trusted_dir

    if entry["pem"] != pem or entry["certdir"] != certdir or entry["vomsdir"] != vomsdir:
        return False
    if not (entry["valid_from"] <= now < entry["valid_until"]):
        return False
    if not (entry["stored_at"] <= now < entry["stored_at"] + MAX_AGE):
        return False
    # the same directory trust walks the uncached verification does
    os.close(open_trusted_dir(certdir, what="CA directory"))
    if entry["voms"] and vomsdir is not None:
        os.close(open_trusted_dir(vomsdir, what="vomsdir"))
    for path, identity in entry["files"]:
        if identity is None:
            try:
                os.lstat(path)
            except FileNotFoundError:
                continue
            return False
        if identify_trusted_path(path, what="file").as_tuple() != tuple(identity):
            return False
    return True


def _credential(entry: dict) -> VerifiedCredential:
    fields = dict(zip(_CRED_FIELDS, entry["cred"], strict=True))
    fields["voms"] = tuple(VomsInfo(*v) for v in entry["voms"])
    return VerifiedCredential(**fields)


def store_entry(name: str, cred: VerifiedCredential, depends: tuple, now: float) -> None:
    """Record a successful verdict (best effort: a cache that cannot be written is no cache)."""
    files, window, cacheable = depends
    if not cacheable or cred.voms_rejected:
        return
    valid_from = max([window[0], cred.not_before] + [v.not_before for v in cred.voms])
    valid_until = min([window[1], cred.not_after] + [v.not_after for v in cred.voms])
    if not valid_from <= now < valid_until:
        return
    entry = {
        "format": FORMAT, "pem": cred.pem, "certdir": cred.certdir, "vomsdir": cred.vomsdir,
        "valid_from": valid_from, "valid_until": valid_until, "stored_at": now,
        "files": tuple(files),
        "cred": tuple(getattr(cred, f) for f in _CRED_FIELDS),
        "voms": tuple((v.vo, v.uri, v.issuer_dn, tuple(v.fqans), v.not_before, v.not_after)
                      for v in cred.voms),
    }
    try:
        data = marshal.dumps(entry)
    except ValueError:
        return
    CACHE.write(name, data)
