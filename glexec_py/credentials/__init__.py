"""The credential layer's public API: verify a proxy file and say who it proves the caller is.

Runs as: root (on bytes read with the caller's rights). Trusts: the CA directory and the
vomsdir after their trust checks; nothing in the proxy. Hot path: yes (this module imports no
``cryptography``; :func:`load_and_verify` verifies usual RSA chains without it and imports it,
inside, only for what its fast path hands over).

``load_and_verify`` is the essential check the launcher always runs before any policy; the
``verify_proxy`` plugin re-applies a site's own options to its result with
:func:`apply_options` (pure, no cryptography) or re-verifies against its own CA directory.

Safe defaults of :class:`VerifyOptions` (and why):

* ``limited='allow'``: LCMAPS verify-proxy's default; ``limited`` in the result lets a policy
  tell, and ``'disallow'``/``'require'`` refuse.
* ``max_proxy_level_ttl={}``, ``max_voms_ttl=None``: no lifetime caps (verify-proxy's default).
* ``min_key_bits=1024``: RSA/DSA keys of the EEC and every proxy below this are refused (203).
  verify-proxy only warns (<2048 EEC, <1024 proxy); 1024 refuses nothing real grid tools make
  today and stops toy keys. EC keys are not compared with it (their sizes are not comparable).
* ``refused_signature_hashes={'md2','md4','md5'}``: verify-proxy fails MD2/MD4 and warns on
  MD5/SHA-1; MD5 is refused here because collisions are practical. Certificates and CRLs
  *signed* with SHA-1 are refused whatever this option says (a known difference from OpenSSL
  and verify-proxy, which accept them): cryptography 50 no longer verifies such signatures, and
  the fast path hands them to it to keep one verdict (IGTF CAs sign with SHA-2 since 2016).
  VOMS AC signatures with SHA-1 are accepted; add ``'sha1'`` to refuse those too.
* ``crl_policy='if-present'``: a CA without a CRL file is accepted, a present CRL must verify and
  must not be expired, and a revoked certificate is refused — verify-proxy's behaviour (it
  tolerates a missing CRL but refuses an expired one). ``'require'`` also refuses a CA without a
  valid CRL, for sites whose fetch-crl is reliable.
* ``enforce_namespaces=False``: the original never checked them; when on, the issuing CA's
  ``<hash>.namespaces`` (preferred) or ``<hash>.signing_policy`` must permit the EEC subject, and
  a CA with neither file refuses.
"""

from __future__ import annotations

import time

from glexec_py.credentials.vomsinfo import VomsInfo
from glexec_py.errors import AuthorizationError, ClientError, SiteError

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["VerifiedCredential", "VerifyOptions", "VomsInfo", "apply_options",
           "load_and_verify"]

PROXY_KINDS = ("rfc3820", "rfc3820-limited", "rfc3820-independent", "draft", "draft-limited",
               "draft-independent", "legacy", "legacy-limited")
CRL_POLICIES = ("if-present", "require")
LIMITED_POLICIES = ("allow", "disallow", "require")


class VerifyOptions:
    """Verification options (LCMAPS verify-proxy's, plus glexec-py's); defaults in the module doc.

    ``max_proxy_level_ttl`` maps a level to seconds: 0 is the first delegation (the proxy the EEC
    signed), 1 the next, ..., and ``'L'`` the leaf proxy whatever its level.
    """

    __slots__ = ("limited", "max_proxy_level_ttl", "max_voms_ttl", "min_key_bits",
                 "refused_signature_hashes", "crl_policy", "enforce_namespaces")

    def __init__(self, *, limited: str = "allow",
                 max_proxy_level_ttl: Mapping[int | str, float] | None = None,
                 max_voms_ttl: float | None = None, min_key_bits: int = 1024,
                 refused_signature_hashes: Iterable[str] = ("md2", "md4", "md5"),
                 crl_policy: str = "if-present", enforce_namespaces: bool = False) -> None:
        if limited not in LIMITED_POLICIES:
            raise ValueError(f"limited must be one of {', '.join(LIMITED_POLICIES)}")
        if crl_policy not in CRL_POLICIES:
            raise ValueError(f"crl_policy must be one of {', '.join(CRL_POLICIES)}")
        levels = dict(max_proxy_level_ttl or {})
        for level in levels:
            if level != "L" and not (isinstance(level, int) and level >= 0):
                raise ValueError(f"proxy level must be an integer >= 0 or 'L', not {level!r}")
        self.limited = limited
        self.max_proxy_level_ttl = levels
        self.max_voms_ttl = max_voms_ttl
        self.min_key_bits = int(min_key_bits)
        self.refused_signature_hashes = frozenset(h.lower() for h in refused_signature_hashes)
        self.crl_policy = crl_policy
        self.enforce_namespaces = bool(enforce_namespaces)


class VerifiedCredential:
    """What a verified proxy proves. Immutable by convention; plain slots for speed.

    ``dn``/``issuer_dn``: EEC subject and issuer (slash form); ``chain_subjects``: leaf first,
    up to the last certificate of the presented path (CAs from the file included, the
    CA-directory anchor excluded); ``proxy_kinds``: from the first
    delegation down to the leaf; ``not_before``/``not_after``: tightest window over the presented
    chain (ACs not included); ``fqans``: verified FQANs in AC order, primary first;
    ``key_bits``: size of the leaf's public key; ``proxy_lifetimes``: (not_before, not_after)
    per proxy, first delegation first; ``signature_hashes``: hash names of the EEC and proxies,
    leaf first; ``rsa_bits_min``: smallest RSA/DSA key among EEC and proxies (None if none);
    ``voms_rejected``: why ACs were ignored (for the log); ``certdir``/``vomsdir``/``verified_at``:
    the inputs of the verification.
    """

    __slots__ = ("dn", "issuer_dn", "eec_serial", "chain_subjects", "proxy_kinds", "limited",
                 "not_before", "not_after", "fqans", "voms", "has_key", "pem", "key_bits",
                 "proxy_lifetimes", "signature_hashes", "rsa_bits_min", "voms_rejected",
                 "certdir", "vomsdir", "verified_at")

    def __init__(self, **fields: object) -> None:
        for name in self.__slots__:
            setattr(self, name, fields[name])

    def __repr__(self) -> str:
        return (f"VerifiedCredential(dn={self.dn!r}, proxy_kinds={self.proxy_kinds!r}, "
                f"fqans={self.fqans!r})")


ENGINES = ("auto", "fast", "cryptography")


def load_and_verify(pem: bytes, *, certdir: str, vomsdir: str | None,
                    require_key: bool = True, options: VerifyOptions | None = None,
                    now: float | None = None, depends: list | None = None,
                    engine: str = "auto") -> VerifiedCredential:
    """Verify the proxy file ``pem`` against ``certdir`` (and its ACs against ``vomsdir``).

    ``depends``, if given, receives ``(files, window, cacheable)``: every trusted file the
    verdict depended on (with the identity of the version read, or None if probed and absent)
    and the window in which all certificates and CRLs used are valid (credentials/cache.py).

    ``engine``: ``'auto'`` first tries the cryptography-free path (certparse + pkcs1: RSA
    PKCS#1 v1.5 with SHA-1/SHA-2, the usual extensions) and hands the whole proxy to
    cryptography when that path cannot settle it (any other algorithm or construct, and every
    signature it refuses); ``'fast'`` raises der.NotOnFastPath instead of handing over;
    ``'cryptography'`` never uses the fast path. Verdicts are the same by design (tests compare
    them); only the cost differs (``import cryptography.x509`` alone is ~40 ms).

    Raises ClientError (201) for unusable input, AuthorizationError (203) for a chain that does
    not prove an identity or breaks an option, SiteError (202) for an untrusted certdir/vomsdir.
    """
    from glexec_py.credentials import pem as pem_mod
    from glexec_py.credentials.der import NotOnFastPath

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}")
    options = options or VerifyOptions()
    now = time.time() if now is None else float(now)
    bundle = pem_mod.split_pem(pem)
    if engine != "cryptography":
        try:
            return _verify_bundle(pem, bundle, certdir, vomsdir, require_key, options, now,
                                  depends, fast=True)
        except NotOnFastPath:
            if engine == "fast":
                raise
    return _verify_bundle(pem, bundle, certdir, vomsdir, require_key, options, now, depends,
                          fast=False)


def _verify_bundle(pem: bytes, bundle: object, certdir: str, vomsdir: str | None,
                   require_key: bool, options: VerifyOptions, now: float,
                   depends: list | None, *, fast: bool) -> VerifiedCredential:
    from glexec_py.credentials import chain, voms
    from glexec_py.credentials.der import NotOnFastPath
    from glexec_py.credentials.trustdir import TrustDir

    certs = chain.load_certificates(bundle.certificates, fast=fast)
    has_key = bundle.key_pem is not None
    if has_key:
        if fast:
            _check_key_fast(bundle.key_pem, certs[0])
        else:
            _check_key(bundle.key_pem, certs[0])
    elif require_key:
        raise ClientError("proxy file holds no private key")
    with TrustDir(certdir, fast=fast) as trust:
        try:
            result = chain.verify_chain(certs, trust, options, now)
            fqan_sources, rejected = ([], [])
            if vomsdir is not None:
                fqan_sources, rejected = voms.extract_and_verify(
                    result.path, result.eec_index, vomsdir, trust, options, now)
        except (ClientError, AuthorizationError, SiteError, NotOnFastPath):
            raise
        except Exception as exc:  # hostile input must end in a clean refusal, not a traceback
            raise AuthorizationError(f"proxy chain could not be verified ({type(exc).__name__}:"
                                     f" {chain._short(exc)})")
        eec = result.eec
        proxies = result.proxies
        namespace_ok = None
        if options.enforce_namespaces:
            from glexec_py.credentials.namespaces import check_namespace

            namespace_ok = check_namespace(trust, result.path[result.eec_index:], eec.dn)
        if depends is not None:
            depends.append((tuple(trust.consulted), tuple(trust.window), trust.cacheable))
    presented = result.path
    cred = VerifiedCredential(
        dn=eec.dn,
        issuer_dn=_render(eec.issuer_der),
        eec_serial=eec.serial,
        chain_subjects=tuple(info.dn for info in presented),
        proxy_kinds=tuple(p.kind for p in proxies),
        limited=any(p.kind.endswith("-limited") for p in proxies),
        not_before=max(info.not_before for info in presented),
        not_after=min(info.not_after for info in presented),
        fqans=tuple(f for info in fqan_sources for f in info.fqans),
        voms=tuple(fqan_sources),
        has_key=has_key,
        pem=pem,
        key_bits=result.leaf_key_bits,
        proxy_lifetimes=tuple((p.not_before, p.not_after) for p in proxies),
        signature_hashes=result.signature_hashes,
        rsa_bits_min=result.rsa_bits_min,
        voms_rejected=tuple(rejected),
        certdir=certdir,
        vomsdir=vomsdir,
        verified_at=now,
    )
    apply_options(cred, options, require_key=require_key)
    if namespace_ok is not None and not namespace_ok[0]:
        raise AuthorizationError(namespace_ok[1])
    return cred


def apply_options(cred: VerifiedCredential, options: VerifyOptions, *,
                  require_key: bool = True, only_lifetimes: bool = False) -> None:
    """Re-apply option checks to an already verified credential (pure: no file, no crypto).

    Raises AuthorizationError (203) with the reason. ``only_lifetimes`` is verify-proxy's
    ``--only-enforce-lifetime-checks``.
    """
    if not only_lifetimes:
        if require_key and not cred.has_key:
            raise AuthorizationError("proxy has no private key and its absence is not allowed")
        if options.limited == "disallow" and cred.limited:
            raise AuthorizationError("limited proxy not allowed")
        if options.limited == "require" and not (
                cred.proxy_kinds and cred.proxy_kinds[-1].endswith("-limited")):
            raise AuthorizationError("a limited proxy is required")
        for name in cred.signature_hashes:
            if name.startswith("unsupported:") or name in options.refused_signature_hashes:
                raise AuthorizationError(f"signature algorithm {name} refused in the chain")
        if cred.rsa_bits_min is not None and cred.rsa_bits_min < options.min_key_bits:
            raise AuthorizationError(f"key of {cred.rsa_bits_min} bits in the chain is below "
                                     f"the minimum of {options.min_key_bits}")
    levels = options.max_proxy_level_ttl
    count = len(cred.proxy_lifetimes)
    for level, (not_before, not_after) in enumerate(cred.proxy_lifetimes):
        for key in (level, "L") if level == count - 1 else (level,):
            limit = levels.get(key)
            if limit is not None and not_after - not_before > limit:
                # imported here: the chain module (and the DER reader with it) is not needed
                # by a cache hit that passes, which is what almost every call is
                from glexec_py.credentials.chain import format_time

                raise AuthorizationError(
                    f"proxy lifetime at level {key} is {_span(not_after - not_before)}, above "
                    f"the maximum {_span(limit)} (valid until {format_time(not_after)})")
    if options.max_voms_ttl is not None:
        for info in cred.voms:
            if info.not_after - info.not_before > options.max_voms_ttl:
                raise AuthorizationError(
                    f"VOMS AC of {info.vo} lives {_span(info.not_after - info.not_before)}, "
                    f"above the maximum {_span(options.max_voms_ttl)}")


def _span(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    return f"{days}-{rest // 3600:02d}:{rest % 3600 // 60:02d}"


def _render(name_der: bytes) -> str:
    from glexec_py.credentials.dn import AmbiguousNameError, render_name_der

    try:
        return render_name_der(name_der)
    except AmbiguousNameError as exc:
        raise AuthorizationError(f"issuer name cannot be named unambiguously: {exc}")


def _check_key_fast(key_pem: bytes, leaf: object) -> None:
    """The RSA key pair check on (n, e); a mismatch or any other key goes to :func:`_check_key`
    (through der.NotOnFastPath) so that its wording stays cryptography's."""
    from glexec_py.credentials.der import NotOnFastPath
    from glexec_py.credentials.pkcs1 import read_private_key

    if leaf.cert.rsa_key is None or read_private_key(key_pem) != leaf.cert.rsa_key:
        raise NotOnFastPath("private key not matched on the fast path")


def _check_key(key_pem: bytes, leaf: object) -> None:
    from cryptography.hazmat.primitives import serialization

    try:
        # Only the public half is compared (as OpenSSL's X509_check_private_key does), so the
        # slow RSA consistency check buys nothing here.
        key = serialization.load_pem_private_key(key_pem, password=None,
                                                 unsafe_skip_rsa_key_validation=True)
    except TypeError:
        raise ClientError("proxy private key is encrypted")
    except Exception as exc:
        raise ClientError(f"proxy private key is unreadable ({type(exc).__name__})")
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    try:
        mine = key.public_key().public_bytes(enc, fmt)
        theirs = leaf.cert.public_key().public_bytes(enc, fmt)
    except Exception as exc:
        raise ClientError(f"proxy key or certificate key is unusable ({type(exc).__name__})")
    if mine != theirs:
        raise ClientError("private key does not match the proxy certificate")
