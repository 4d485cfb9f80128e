"""Optional namespace enforcement: may the EEC's CA issue this subject?

Runs as: root. Trusts: the CA directory's policy files (trust-checked by TrustDir). Hot path: no
(only with ``enforce_namespaces``, which the original verify-proxy never did).

``<hash>.namespaces`` (EUGridPMA format, preferred when present):
``TO Issuer "<CA DN>" PERMIT|DENY Subject "<regex>"`` (``SELF`` for the CA itself; ``\\``
continues a line; ``#`` comments); the subject must fully match a PERMIT of this CA and no DENY.
``<hash>.signing_policy`` (Globus): ``cond_subjects globus '"<glob>" "<glob>"'`` after the
``access_id_CA X509 '<CA DN>'`` line; ``*`` matches anything. Matching ignores case.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from glexec_py.credentials.chain import CertInfo
    from glexec_py.credentials.trustdir import TrustDir


def check_namespace(trust: TrustDir, upper_path: list[CertInfo], eec_dn: str) -> tuple[bool, str]:
    """(allowed, reason) for the EEC ``upper_path[0]`` under the CA that issued it."""
    from glexec_py.credentials.dn import dn_key, render_name_der

    eec = upper_path[0]
    ca_dn = render_name_der(eec.issuer_der)
    namespaces, signing_policy = trust.policy_files(eec.issuer_der)
    if namespaces is not None:
        verdict = _match_namespaces(namespaces.decode("utf-8", "replace"), ca_dn, eec_dn, dn_key)
        if verdict is not None:
            return verdict
    if signing_policy is not None:
        verdict = _match_signing_policy(signing_policy.decode("utf-8", "replace"), ca_dn, eec_dn,
                                        dn_key)
        if verdict is not None:
            return verdict
    return False, f"no namespace policy of CA {ca_dn} permits {eec_dn}"


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def _match_namespaces(text: str, ca_dn: str, eec_dn: str, dn_key) -> tuple[bool, str] | None:
    import re
    import shlex

    permitted = False
    seen = False
    for line in _logical_lines(text):
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if len(words) != 6 or words[0].upper() != "TO" or words[1].lower() != "issuer" or \
                words[4].lower() != "subject":
            continue
        issuer = words[2]
        if issuer != "SELF" and dn_key(issuer) != dn_key(ca_dn):
            continue
        seen = True
        try:
            matched = re.fullmatch(words[5], eec_dn, re.IGNORECASE) is not None
        except re.error:
            continue
        if matched and words[3].upper() == "DENY":
            return False, f"namespace of CA {ca_dn} denies {eec_dn}"
        if matched and words[3].upper() == "PERMIT":
            permitted = True
    if not seen:
        return None
    if permitted:
        return True, ""
    return False, f"namespace of CA {ca_dn} does not permit {eec_dn}"


def _match_signing_policy(text: str, ca_dn: str, eec_dn: str, dn_key) -> tuple[bool, str] | None:
    import fnmatch
    import shlex

    current_ca = None
    for line in _logical_lines(text):
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if len(words) >= 3 and words[0] == "access_id_CA":
            current_ca = words[2]
        elif len(words) >= 3 and words[0] == "cond_subjects" and current_ca is not None:
            if dn_key(current_ca) != dn_key(ca_dn):
                continue
            patterns = shlex.split(words[2])
            for pattern in patterns:
                regex = fnmatch.translate(pattern.replace("[", "[[]"))
                import re

                if re.fullmatch(regex, eec_dn, re.IGNORECASE):
                    return True, ""
            return False, f"signing policy of CA {ca_dn} does not permit {eec_dn}"
    return None
