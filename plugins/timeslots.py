"""``timeslots`` (LCAS ``lcas_timeslots.mod``): allow only inside configured wall-clock slots.

Runs as: root. Trusts: the slot file after ``glexec_py.trust``. Hot path: yes (when named).

Each non-comment line has six fields ``min hour mday month year wday``, each ``*`` (whole range),
``v`` (exactly v), ``v-`` (v up to the maximum) or ``a-b`` (a wrap-around range such as ``5-3`` is
allowed; wday 0 = Sunday). A time is inside a line when its hour:minute lies between
``hour1:min1`` and ``hour2:min2``, its date between ``year1-month1-mday1`` and
``year2-month2-mday2``, and its weekday between ``wday1`` and ``wday2``. Any matching line allows;
``* * * * * *`` is always open. Local time of ``request.now``.
"""

from __future__ import annotations

import time

from glexec_py.plugins.userban import file_argument

from glexec_py.plugin_api import Option, Plugin, PolicyConfigError, Result

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import CredentialView, Request

# (min, max) of min, hour, mday, month, year, wday
FIELD_LIMITS = ((0, 59), (0, 23), (1, 31), (1, 12), (1970, 9999), (0, 6))


def parse_field(text: str, limits: tuple[int, int], where: str) -> tuple[int, int]:
    low, high = limits
    if text == "*":
        return low, high
    first, sep, second = text.partition("-")
    try:
        a = int(first)
        b = (int(second) if second else high) if sep else a
    except ValueError:
        raise PolicyConfigError(f"{where}: bad time field {text!r}")
    if not (low <= a <= high and low <= b <= high):
        raise PolicyConfigError(f"{where}: {text!r} outside {low}-{high}")
    return a, b


def parse_slots(data: bytes, path: str) -> list[tuple[tuple[int, int], ...]]:
    slots = []
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise PolicyConfigError(f"{path}: not ASCII")
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 6:
            raise PolicyConfigError(f"{path}:{lineno}: six fields needed, found {len(fields)}")
        slots.append(tuple(parse_field(f, lim, f"{path}:{lineno}")
                           for f, lim in zip(fields, FIELD_LIMITS, strict=True)))
    return slots


def _within(value: object, start: object, end: object) -> bool:
    if start <= end:
        return start <= value <= end
    return value >= start or value <= end  # wrap-around


def in_slot(slot: tuple[tuple[int, int], ...], t: time.struct_time) -> bool:
    (m1, m2), (h1, h2), (d1, d2), (mo1, mo2), (y1, y2), (w1, w2) = slot
    wday = (t.tm_wday + 1) % 7  # struct_time: Monday = 0; LCAS: Sunday = 0
    return (_within(t.tm_hour * 60 + t.tm_min, h1 * 60 + m1, h2 * 60 + m2)
            and _within((t.tm_year, t.tm_mon, t.tm_mday), (y1, mo1, d1), (y2, mo2, d2))
            and _within(wday, w1, w2))


class TimeslotsPlugin(Plugin):
    name = "timeslots"
    lcmaps_names = ("lcas_timeslots.mod",)
    summary = "allows only inside wall-clock time slots (LCAS)"
    options = (Option("-timeslots", "path", None, "the slot file"),)
    reads = frozenset({"now"})

    def configure(self, args: Sequence[str]) -> None:
        from glexec_py.trust import read_trusted_file

        self.path = file_argument(self, args, "-timeslots")
        self.slots = parse_slots(read_trusted_file(self.path, what="timeslots file"), self.path)

    def run(self, request: Request, creds: CredentialView) -> Result:
        now = request.now if isinstance(request.now, (int, float)) else time.time()
        t = time.localtime(now)
        if any(in_slot(slot, t) for slot in self.slots):
            return Result.success()
        return Result.failure(f"outside the time slots of {self.path}")
