"""The rules of a provider profile, as pure functions over its loaded form (no I/O, no clock).

A profile here is a dict as ``schemas.load_registration`` produces it: rates are ``Money``, ``available_from``
is a ``date``, timestamps are timezone-aware UTC ``datetime``s. Each check returns marshmallow-shaped errors
(``{field: [messages]}``, nested for nested fields) so a caller sees schema errors and rule errors alike.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shared.vocabulary.errors import Conflict, ValidationFailed
from shared.vocabulary.money import Money
from shared.vocabulary.terms import FIRM_MODELS, INDIVIDUAL_MODELS, ProviderKind, lane_of

Errors = dict[str, Any]

# Fields a caller may never set through ``update``: identity, the operator's verdict, bookkeeping, and
# availability, which has its own entrypoint and event.
IMMUTABLE_ON_UPDATE = ("id", "kind", "verified", "verified_at", "availability", "created_at", "updated_at",
                       "version")

# The part of a profile that says how much work a provider can take on now. Matching keeps load and capacity
# from these, so a change to any of them is announced as an availability change.
AVAILABILITY_FIELDS = ("availability", "capacity_hours_per_week", "delivery_centres")

AVAILABLE_STATUSES = ("available", "limited")


def new_provider_id() -> str:
    return f"prv_{uuid.uuid4().hex}"


def new_centre_id() -> str:
    return f"dc_{uuid.uuid4().hex}"


def lane_for(kind: str) -> str:
    """A provider's own lane: the platform's lane rule (``shared.vocabulary.lane_of``) for its kind."""
    return lane_of(provider_kind=kind).value


def to_millis(moment: datetime) -> datetime:
    """MongoDB keeps milliseconds: truncate first, so what is returned equals what a later read gives."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# -- profile rules -------------------------------------------------------------------------------------------


def _add(errors: Errors, path: tuple, message: str) -> None:
    node = errors
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node.setdefault(path[-1], []).append(message)


def kind_errors(profile: dict) -> Errors:
    """Individuals work their own hours; firms work in delivery centres, whose seats and shifts are their
    capacity."""
    errors: Errors = {}
    models = profile.get("models") or []
    if profile["kind"] == ProviderKind.INDIVIDUAL:
        allowed = INDIVIDUAL_MODELS
        if profile.get("working_hours") is None:
            _add(errors, ("working_hours",), "Required for an individual.")
        if profile.get("capacity_hours_per_week") is None:
            _add(errors, ("capacity_hours_per_week",), "Required for an individual.")
        if profile.get("delivery_centres"):
            _add(errors, ("delivery_centres",), "An individual has no delivery centres.")
    else:
        allowed = FIRM_MODELS
        if not profile.get("delivery_centres"):
            _add(errors, ("delivery_centres",), "A firm needs at least one delivery centre.")
        if profile.get("working_hours") is not None:
            _add(errors, ("working_hours",), "A firm's hours are the shifts of its delivery centres.")
        if profile.get("capacity_hours_per_week") is not None:
            _add(errors, ("capacity_hours_per_week",), "A firm's capacity is its seats and shifts.")
    wrong = [m for m in models if m not in allowed]
    if wrong:
        names = ", ".join(sorted(str(m) for m in allowed))
        _add(errors, ("models",), f"A {profile['kind']} offers only {names}; not {', '.join(wrong)}.")
    return errors


def priced(profile: dict) -> dict:
    """``profile`` with each rate given as an amount alone (a ``Decimal``) in the profile's currency: one currency
    per provider, which matching compares with a posting's budget and search filters rates by."""
    rates = profile.get("rates")
    if not rates:
        return profile

    def price(value: Any) -> Any:
        return Money(value, profile["currency"]) if isinstance(value, Decimal) else value

    return {**profile, "rates": {
        **{name: price(value) for name, value in rates.items() if name != "per_unit"},
        **({"per_unit": [{**item, "price": price(item["price"])} for item in rates["per_unit"]]}
           if "per_unit" in rates else {}),
    }}


def rate_errors(profile: dict, *, amounts: bool = True, currency: bool = True) -> Errors:
    """At least one rate, each positive (``amounts``) and in the provider's currency (``currency``), so rates
    compare across providers."""
    errors: Errors = {}
    own = profile["currency"]
    rates = profile.get("rates") or {}

    def check(path: tuple, price: Money) -> None:
        if currency and price.currency != own:
            _add(errors, path, f"Must be in {own}, the provider's currency; got {price.currency}.")
        if amounts and price.amount <= 0:
            _add(errors, path, "Must be greater than zero.")

    for name in ("hourly", "monthly_retainer"):
        if rates.get(name) is not None:
            check(("rates", name), rates[name])
    units: set[str] = set()
    for index, item in enumerate(rates.get("per_unit") or []):
        check(("rates", "per_unit", index, "price"), item["price"])
        unit = item["unit"].strip().lower()  # matching compares units so: "Ticket" and "ticket" are one unit
        if amounts and unit in units:
            _add(errors, ("rates", "per_unit", index, "unit"), f"Unit {item['unit']!r} is priced twice.")
        units.add(unit)
    if amounts and not has_rate(rates):
        _add(errors, ("rates",), "Give at least one rate: hourly, monthly_retainer or per_unit.")
    return errors


def has_rate(rates: dict) -> bool:
    return bool(rates.get("hourly") or rates.get("monthly_retainer") or rates.get("per_unit"))


def schedule_errors(profile: dict) -> Errors:
    """Each delivery centre named once (and its id given once). Hours and shifts need no rule of their own: an end
    before its start ends the next day, an end equal to its start 24 hours later, as matching reads them."""
    errors: Errors = {}
    names: set[str] = set()
    ids: set[str] = set()
    for index, centre in enumerate(profile.get("delivery_centres") or []):
        key = centre["name"].casefold()
        if key in names:
            _add(errors, ("delivery_centres", index, "name"), f"Centre {centre['name']!r} is listed twice.")
        names.add(key)
        if centre.get("id"):
            if centre["id"] in ids:
                _add(errors, ("delivery_centres", index, "id"), f"Centre id {centre['id']!r} appears twice.")
            ids.add(centre["id"])
    return errors


def _merge(target: Errors, extra: Errors) -> Errors:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif isinstance(value, list) and isinstance(target.get(key), list):
            target[key].extend(value)
        else:
            target[key] = value
    return target


def profile_errors(profile: dict) -> Errors:
    errors: Errors = {}
    for check in (kind_errors, rate_errors, schedule_errors):
        _merge(errors, check(profile))
    return errors


def require_valid(profile: dict) -> None:
    errors = profile_errors(profile)
    if errors:
        raise ValidationFailed("The provider profile breaks the profile rules.", details=errors)


def require_valid_change(proposed: dict, changes: dict) -> None:
    """The profile an update makes must keep the rules. What the change breaks on its own is invalid (422); what
    breaks only against the stored profile conflicts with it (409): a kind's rules (the kind never changes), rates
    in another currency than the one stored (unless the change sends both)."""
    both = {"currency", "rates"} <= set(changes)
    invalid = _merge(schedule_errors(proposed), rate_errors(proposed, currency=both))
    if invalid:
        raise ValidationFailed("The provider profile breaks the profile rules.", details=invalid)
    conflicting = _merge(kind_errors(proposed), {} if both else rate_errors(proposed, amounts=False))
    if conflicting:
        raise Conflict("The change does not fit the provider as it is.", details=conflicting)


# -- building and changing profiles --------------------------------------------------------------------------


def assign_centre_ids(centres: Iterable[dict], existing: Iterable[dict] = (),
                      new_id: Callable[[], str] = new_centre_id) -> list[dict]:
    """Give each centre an id: its own, else that of an existing centre of the same name, else a new one.

    Matching by name keeps ids (and so seat changes and matching's projection) stable when a client resends
    its centres without ids.
    """
    by_name = {c["name"].casefold(): c["id"] for c in existing}
    result = []
    for centre in centres:
        centre = dict(centre)
        if not centre.get("id"):
            centre["id"] = by_name.get(centre["name"].casefold()) or new_id()
        result.append(centre)
    return result


def new_provider(fields: dict, *, provider_id: str, now: datetime,
                 new_id: Callable[[], str] = new_centre_id) -> dict:
    now = to_millis(now)
    profile = copy.deepcopy(fields)
    profile["delivery_centres"] = assign_centre_ids(profile.get("delivery_centres") or [], new_id=new_id)
    profile.setdefault("availability", {"status": "available", "available_from": None})
    profile.update(id=provider_id, verified=False, verified_at=None, created_at=now, updated_at=now,
                   version=1)
    return profile


def apply_changes(current: dict, changes: dict, new_id: Callable[[], str] = new_centre_id) -> dict:
    """The profile ``current`` would become; nested values (rates, hours, centres) are replaced whole."""
    proposed = copy.deepcopy(current)
    for name, value in changes.items():
        if name in IMMUTABLE_ON_UPDATE:
            raise ValidationFailed("The provider profile cannot be changed this way.",
                                   details={name: ["Cannot be changed with update."]})
        proposed[name] = copy.deepcopy(value)
    if "delivery_centres" in changes:
        proposed["delivery_centres"] = assign_centre_ids(changes["delivery_centres"] or [],
                                                         current.get("delivery_centres") or [], new_id)
    return proposed


def changed_fields(before: dict, after: dict) -> list[str]:
    """Names of the top-level fields whose values differ (money compares by value: 12.0 == 12.00)."""
    ignored = {"updated_at", "version"}
    names = (set(before) | set(after)) - ignored
    return sorted(n for n in names if before.get(n) != after.get(n))


def availability_view(profile: dict) -> dict:
    return {
        "availability": profile.get("availability"),
        "capacity_hours_per_week": profile.get("capacity_hours_per_week"),
        "delivery_centres": [{"id": c["id"], "seats": c["seats"]}
                             for c in profile.get("delivery_centres") or []],
    }


def is_availability_change(before: dict, after: dict) -> bool:
    """Status, start date, hours or seats moved, or centres came or went; a renamed centre is not one."""
    return availability_view(before) != availability_view(after)


def availability_errors(profile: dict, changes: dict) -> Errors:
    errors: Errors = {}
    if profile["kind"] == ProviderKind.FIRM and "capacity_hours_per_week" in changes:
        _add(errors, ("capacity_hours_per_week",), "A firm's capacity is set per centre with centre_seats.")
    if profile["kind"] == ProviderKind.INDIVIDUAL and "centre_seats" in changes:
        _add(errors, ("centre_seats",), "An individual has no delivery centres.")
    known = {c["id"] for c in profile.get("delivery_centres") or []}
    for centre_id in changes.get("centre_seats") or {}:
        if profile["kind"] == ProviderKind.FIRM and centre_id not in known:
            _add(errors, ("centre_seats", centre_id), "No delivery centre with this id.")
    return errors


def apply_availability(current: dict, changes: dict) -> dict:
    errors = availability_errors(current, changes)
    if errors:  # the provider as stored (its kind, its centres) refuses it, not the request's shape: 409
        raise Conflict("The availability change does not fit this provider.", details=errors)
    proposed = copy.deepcopy(current)
    if "availability" in changes:
        proposed["availability"] = dict(changes["availability"])
    if "capacity_hours_per_week" in changes:
        proposed["capacity_hours_per_week"] = changes["capacity_hours_per_week"]
    seats = changes.get("centre_seats") or {}
    for centre in proposed["delivery_centres"]:
        if centre["id"] in seats:
            centre["seats"] = seats[centre["id"]]
    return proposed


def stamped(profile: dict, *, previous_version: int, now: datetime) -> dict:
    """The next version of a changed profile."""
    return dict(profile, version=previous_version + 1, updated_at=to_millis(now))


def verified(profile: dict, *, now: datetime) -> dict:
    return stamped(dict(profile, verified=True, verified_at=to_millis(now)),
                   previous_version=profile["version"], now=now)


def is_available_on(availability: dict, day: date) -> bool:
    """Takes work on ``day``: not marked unavailable, and any announced start date has come."""
    if availability["status"] not in AVAILABLE_STATUSES:
        return False
    start = availability.get("available_from")
    return start is None or start <= day
