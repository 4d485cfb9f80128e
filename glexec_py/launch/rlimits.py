"""Give the payload back the caller's resource limits, which the root side raised for itself.

Runs as: the target account, in the payload child just before exec. Trusts: the
GLEXEC_CALLER_RLIMITS value in the launcher's own environment, which the front end wrote from
getrlimit(2) (the caller's environment never reaches this process's environ). Hot path: yes.

The front end raises CPU, FSIZE, DATA, STACK, NOFILE and AS and zeroes CORE for the root side, so
the pilot cannot starve the launcher into losing a log record or the clean-up of leftovers. The
batch system's limits are the payload's, though: they are put back here, exactly.
"""

from __future__ import annotations

import os
import resource

from glexec_py.errors import SiteError

VARIABLE = "GLEXEC_CALLER_RLIMITS"


def parse_limits(text: str) -> list[tuple[int, int, int]]:
    """``"res:soft:hard,..."`` (``inf`` for unlimited) -> [(resource, soft, hard), ...]."""
    limits = []
    for item in text.split(","):
        parts = item.split(":")
        if len(parts) != 3 or not parts[0].isdigit():
            raise SiteError(f"malformed {VARIABLE} from the front end")
        values = []
        for part in parts[1:]:
            if part == "inf":
                values.append(resource.RLIM_INFINITY)
            elif part.isdigit():
                values.append(int(part))
            else:
                raise SiteError(f"malformed {VARIABLE} from the front end")
        limits.append((int(parts[0]), values[0], values[1]))
    return limits


def restore_caller_limits() -> None:
    """Set every limit the front end recorded back to the caller's value (lowering only)."""
    text = os.environ.get(VARIABLE)
    if not text:
        return  # declare-only mode, or a front end that changed nothing
    for which, soft, hard in parse_limits(text):
        try:
            resource.setrlimit(which, (soft, hard))
        except (OSError, ValueError) as exc:
            raise SiteError(f"cannot restore the caller's resource limit {which}: {exc}") from None
