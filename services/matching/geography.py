"""Where and when people work: shoring classes from real region data, and weekly hours as bit masks.

Shoring (documented rule, see README "Matching"):

- **onshore**: client and provider (or delivery centre) are in the same country;
- **nearshore**: different countries that are *related* — in the same UN M.49 region (Americas, Europe, Africa,
  Asia, Oceania) or sharing a land border — and whose UTC offsets differ by at most ``NEARSHORE_MAX_GAP_HOURS``
  in the reference week;
- **offshore**: everything else.

M.49 regions and land borders come from the ``countryinfo`` package (its per-country data carries ``region``,
``subregion`` and ``borders``). The region level, not the sub-region, is used on purpose: sub-regions would make
Germany–Spain or United States–Colombia offshore, which nobody in the trade calls them; the time-zone cap keeps
"same region" honest for wide regions (United States–Argentina is nearshore, Portugal–Russia's Far East is not).

Weekly hours: a week is ``SLOTS`` half-hour slots starting Monday 00:00 UTC of the reference week; a schedule is
the int whose bit ``i`` is set when slot ``i`` is worked. Local clock times are converted with ``zoneinfo`` on the
dates of the reference week, so each time zone's offset (and DST, if it is in force then) is the real one. Times
are rounded to the half hour (zones such as Asia/Kathmandu, +05:45, lose at most 15 minutes per edge).
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from countryinfo import CountryInfo
from countryinfo.exceptions import CountryNotFoundError

from shared.vocabulary import WEEKDAYS, Shoring

# A northern-winter week (Monday 2027-01-04): one fixed week keeps every computation reproducible. DST elsewhere
# in the year moves an overlap by at most an hour; the minimum-overlap check is per business day, so it tolerates it.
REFERENCE_MONDAY = date(2027, 1, 4)
SLOT_MINUTES = 30
SLOTS = 7 * 24 * 60 // SLOT_MINUTES
WORDS = (SLOTS + 63) // 64
FULL_WEEK = (1 << SLOTS) - 1
NEARSHORE_MAX_GAP_HOURS = 3.0

# The client's business hours, in its own time zone.
BUSINESS_DAYS = ("mon", "tue", "wed", "thu", "fri")
BUSINESS_START, BUSINESS_END = "09:00", "17:00"
# "extended" coverage: the client's weekdays from early morning to late evening.
EXTENDED_START, EXTENDED_END = "07:00", "21:00"

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


def business_hours_mask(time_zone: str) -> int:
    return schedule_mask(time_zone, ((BUSINESS_DAYS, BUSINESS_START, BUSINESS_END),))


def extended_hours_mask(time_zone: str) -> int:
    return schedule_mask(time_zone, ((BUSINESS_DAYS, EXTENDED_START, EXTENDED_END),))


def hours(mask: int) -> float:
    return mask.bit_count() * SLOT_MINUTES / 60


def words(mask: int) -> tuple[int, ...]:
    """The mask as ``WORDS`` unsigned 64-bit words, lowest slots first (for numpy)."""
    return tuple((mask >> (64 * i)) & 0xFFFFFFFFFFFFFFFF for i in range(WORDS))


@functools.cache
def utc_offset_hours(time_zone: str) -> float:
    """The zone's UTC offset at noon on the reference Monday."""
    moment = datetime.combine(REFERENCE_MONDAY, time(12), tzinfo=ZoneInfo(time_zone))
    return moment.utcoffset().total_seconds() / 3600


def time_zone_gap_hours(zone_a: str, zone_b: str) -> float:
    gap = abs(utc_offset_hours(zone_a) - utc_offset_hours(zone_b)) % 24
    return min(gap, 24 - gap)


@functools.cache
def _country(alpha2: str) -> tuple[str | None, frozenset[str]]:
    """(M.49 region, alpha-2 codes of land neighbours); (None, ∅) for a code the data set does not know."""
    try:
        info = CountryInfo(alpha2).info()
    except (CountryNotFoundError, KeyError):
        return None, frozenset()
    neighbours = set()
    for alpha3 in info.get("borders") or ():
        try:
            neighbours.add(CountryInfo(alpha3).info()["ISO"]["alpha2"].upper())
        except (CountryNotFoundError, KeyError):
            continue
    return (info.get("region") or None), frozenset(neighbours)


def region_of(alpha2: str) -> str | None:
    return _country(alpha2.upper())[0]


def are_neighbours(a: str, b: str) -> bool:
    return b.upper() in _country(a.upper())[1] or a.upper() in _country(b.upper())[1]


@functools.cache
def shoring_class(client_country: str, client_zone: str, provider_country: str, provider_zone: str) -> Shoring:
    if client_country.upper() == provider_country.upper():
        return Shoring.ONSHORE
    region = region_of(client_country)
    related = (region is not None and region == region_of(provider_country)) or are_neighbours(
        client_country, provider_country
    )
    if related and time_zone_gap_hours(client_zone, provider_zone) <= NEARSHORE_MAX_GAP_HOURS:
        return Shoring.NEARSHORE
    return Shoring.OFFSHORE


SHORING_ORDER = (Shoring.ONSHORE, Shoring.NEARSHORE, Shoring.OFFSHORE)
