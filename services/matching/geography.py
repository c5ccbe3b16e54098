"""Where and when people work: shoring classes from real region data, and weekly hours as bit masks.

Shoring classes (the rule, and the region data it uses) live in ``shared.vocabulary.shoring``: billing derives them too.

Weekly hours: a week is ``SLOTS`` half-hour slots starting Monday 00:00 UTC of the reference week; a schedule is
the int whose bit ``i`` is set when slot ``i`` is worked. Local clock times are converted with ``zoneinfo`` on the
dates of the reference week, so each time zone's offset (and DST, if it is in force then) is the real one. Times
are rounded to the half hour (zones such as Asia/Kathmandu, +05:45, lose at most 15 minutes per edge).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.vocabulary.shoring import (  # noqa: F401  (matching's names for them)
    NEARSHORE_MAX_GAP_HOURS,
    REFERENCE_MONDAY,
    SHORING_ORDER,
    are_neighbours,
    region_of,
    shoring_class,
    time_zone_gap_hours,
    utc_offset_hours,
)
from shared.vocabulary.terms import WEEKDAYS

SLOT_MINUTES = 30
SLOTS = 7 * 24 * 60 // SLOT_MINUTES
WORDS = (SLOTS + 63) // 64
FULL_WEEK = (1 << SLOTS) - 1

# The client's business hours, in its own time zone.
BUSINESS_DAYS = ("mon", "tue", "wed", "thu", "fri")
BUSINESS_START, BUSINESS_END = "09:00", "17:00"
# "extended" coverage: the client's weekdays from early morning to late evening.
EXTENDED_START, EXTENDED_END = "07:00", "21:00"

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEK_START_UTC = datetime.combine(REFERENCE_MONDAY, time(0), tzinfo=UTC)

Shift = tuple[tuple[str, ...], str, str]  # (days, "HH:MM" start, "HH:MM" end); start > end crosses midnight


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _slot_of(moment: datetime) -> int:
    minutes = (moment - _WEEK_START_UTC).total_seconds() / 60
    return int(round(minutes / SLOT_MINUTES))


@functools.cache
def schedule_mask(time_zone: str, shifts: tuple[Shift, ...]) -> int:
    """The reference week's worked half-hour slots (UTC) of ``shifts`` kept in ``time_zone``."""
    zone = ZoneInfo(time_zone)
    mask = 0
    for days, start, end in shifts:
        start_minutes, end_minutes = _minutes(start), _minutes(end)
        if end_minutes <= start_minutes:  # a night shift ends on the next day
            end_minutes += 24 * 60
        for day in days:
            local_day = REFERENCE_MONDAY + timedelta(days=WEEKDAYS.index(day))
            local_start = datetime.combine(local_day, time(0), tzinfo=zone) + timedelta(minutes=start_minutes)
            local_end = datetime.combine(local_day, time(0), tzinfo=zone) + timedelta(minutes=end_minutes)
            first, last = _slot_of(local_start), _slot_of(local_end)
            for slot in range(first, last):
                # The schedule repeats weekly: hours that fall before Monday 00:00 UTC or after Sunday 24:00 UTC
                # belong to the neighbouring weeks, i.e. to the other end of this one.
                mask |= 1 << (slot % SLOTS)
    return mask


BusinessHours = tuple[tuple[str, ...], str, str]  # (days, "HH:MM" start, "HH:MM" end) in the client's zone
DEFAULT_BUSINESS_HOURS: BusinessHours = (BUSINESS_DAYS, BUSINESS_START, BUSINESS_END)


def business_hours_mask(time_zone: str, business_hours: BusinessHours = DEFAULT_BUSINESS_HOURS) -> int:
    return schedule_mask(time_zone, (business_hours,))


def business_day_hours(business_hours: BusinessHours) -> float:
    """The length of one business day in hours (09:00–17:00: 8)."""
    _, start, end = business_hours
    minutes = _minutes(end) - _minutes(start)
    return (minutes if minutes > 0 else minutes + 24 * 60) / 60


@functools.cache
def describe_hours(business_hours: BusinessHours) -> str:
    """As a person writes them: "Mon–Fri 09:00–17:00", "Sun–Thu 08:00–16:00", "Mon–Wed, Fri 10:00–18:00"."""
    days, start, end = business_hours
    runs: list[list[int]] = []
    for index in sorted(WEEKDAYS.index(day) for day in days):
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][-1] == len(WEEKDAYS) - 1:  # Sun–Thu: the week wraps
        runs[0] = runs.pop() + runs[0]
    names = []
    for run in runs:
        if len(run) > 2:
            names.append(f"{_DAY_NAMES[run[0]]}–{_DAY_NAMES[run[-1]]}")
        else:
            names.extend(_DAY_NAMES[index] for index in run)
    return f"{', '.join(names)} {start}–{end}"


def extended_hours_mask(time_zone: str, days: tuple[str, ...] = BUSINESS_DAYS) -> int:
    """The client's business days (``days``) from early morning to late evening."""
    return schedule_mask(time_zone, ((days, EXTENDED_START, EXTENDED_END),))


def hours(mask: int) -> float:
    return mask.bit_count() * SLOT_MINUTES / 60


def words(mask: int) -> tuple[int, ...]:
    """The mask as ``WORDS`` unsigned 64-bit words, lowest slots first (for numpy)."""
    return tuple((mask >> (64 * i)) & 0xFFFFFFFFFFFFFFFF for i in range(WORDS))




def _clock(half_hours: int) -> str:
    return f"{half_hours // 2:02d}:{30 * (half_hours % 2):02d}"


@functools.cache
def _local_slots(time_zone: str) -> tuple[tuple[int, ...], ...]:
    """Per local day of the reference week (Mon..Sun): the week slot (UTC) of each local half hour."""
    zone = ZoneInfo(time_zone)
    days = []
    for day in range(7):
        midnight = datetime.combine(REFERENCE_MONDAY + timedelta(days=day), time(0), tzinfo=zone)
        days.append(tuple(_slot_of(midnight + timedelta(minutes=SLOT_MINUTES * i)) % SLOTS
                          for i in range(24 * 60 // SLOT_MINUTES)))
    return tuple(days)


def describe_week(mask: int, time_zone: str) -> str:
    """The hours of ``mask`` in ``time_zone``'s local time, days with the same hours grouped: "Mon–Fri
    07:00–21:00; Sat–Sun 10:00–14:00" ("none" for an empty mask)."""
    per_day = []
    for slots in _local_slots(time_zone):
        spans, start = [], None
        for i, slot in enumerate((*slots, None)):
            worked = slot is not None and (mask >> slot) & 1
            if worked and start is None:
                start = i
            elif not worked and start is not None:
                spans.append(f"{_clock(start)}–{_clock(i) if i < len(slots) else '24:00'}")
                start = None
        per_day.append(", ".join(spans))
    groups: list[tuple[int, int, str]] = []
    for day, spans in enumerate(per_day):
        if groups and groups[-1][2] == spans and groups[-1][1] == day - 1:
            groups[-1] = (groups[-1][0], day, spans)
        else:
            groups.append((day, day, spans))
    parts = [f"{_DAY_NAMES[first]}{'–' + _DAY_NAMES[last] if last > first else ''} {spans}"
             for first, last, spans in groups if spans]
    return "; ".join(parts) or "none"
