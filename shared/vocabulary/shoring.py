"""Shoring classes: onshore, nearshore, offshore, derived from the client's and the provider's country and time zone
(never typed in by hand). Matching ranks by them; billing reports spend by them.

The rule (documented in docs/design/matching.md):

- **onshore**: client and provider (or delivery centre) are in the same country;
- **nearshore**: different countries that are *related* — in the same UN M.49 region (Americas, Europe, Africa,
  Asia, Oceania) or sharing a land border — and whose UTC offsets differ by at most ``NEARSHORE_MAX_GAP_HOURS``
  in the reference week;
- **offshore**: everything else.

M.49 regions and land borders come from the ``countryinfo`` package (its per-country data carries ``region``,
``subregion`` and ``borders``). The region level, not the sub-region, is used on purpose: sub-regions would make
Germany–Spain or United States–Colombia offshore, which nobody in the trade calls them; the time-zone cap keeps
"same region" honest for wide regions (United States–Argentina is nearshore, Portugal–Russia's Far East is not).
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from countryinfo import CountryInfo
from countryinfo.exceptions import CountryNotFoundError

from shared.vocabulary.terms import Shoring

# A northern-winter week (Monday 2027-01-04): one fixed week keeps every computation reproducible. DST elsewhere
# in the year moves an overlap by at most an hour; the minimum-overlap check is per business day, so it tolerates it.
REFERENCE_MONDAY = date(2027, 1, 4)
NEARSHORE_MAX_GAP_HOURS = 3.0


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
