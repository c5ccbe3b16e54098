"""The providers service's edges: marshmallow schemas for what callers send, and the wire form it answers.

Schemas check shape and vocabulary; the rules that relate fields to each other (kind, currency, at least one
rate) are in ``domain``. Every failure becomes ``ValidationFailed`` with marshmallow's
``{field: [messages]}``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from marshmallow import RAISE, ValidationError, fields, post_load, pre_load, validate

from shared.vocabulary import paging
from shared.vocabulary.fields import (
    BoundedDate,
    ClockTime,
    CountryCode,
    CurrencyCode,
    LanguageCode,
    MoneyField,
    Name,
    StartTime,
    StrictSchema,
    TimeZone,
    load_validated,
)
from shared.vocabulary.terms import CATEGORY_IDS, WEEKDAYS, Model, ProviderKind
from shared.vocabulary.times import rfc3339

from . import domain

_CENTRE_ID = re.compile(r"^dc_[a-z0-9]{1,60}$")


def _unique(values: list) -> None:
    if len(values) != len(set(values)):
        raise ValidationError("Each value may appear only once.")


def _text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


class Trimmed(fields.String):
    """A string stripped of surrounding whitespace before its length is checked."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class Days(fields.List):
    """Weekdays, stored in week order so the same days always compare equal."""

    def __init__(self, **kwargs):
        super().__init__(fields.String(validate=validate.OneOf(WEEKDAYS)),
                         validate=[validate.Length(min=1), _unique], **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return sorted(super()._deserialize(value, attr, data, **kwargs), key=WEEKDAYS.index)


class SkillSchema(StrictSchema):
    name = Trimmed(required=True, validate=validate.Length(min=1, max=60))
    level = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=5))

    @post_load
    def lower_case(self, data: dict, **kwargs) -> dict:
        return dict(data, name=data["name"].lower())


class HoursSchema(StrictSchema):
    days = Days(required=True)
    start = StartTime(required=True)
    end = ClockTime(required=True)


class ShiftSchema(HoursSchema):
    name = _text(60, required=True)


class DeliveryCentreSchema(StrictSchema):
    id = fields.String(validate=validate.Regexp(_CENTRE_ID, error="Not a delivery centre id (dc_…)."))
    name = Name(required=True, validate=validate.Length(min=1, max=120))
    country = CountryCode(required=True)
    time_zone = TimeZone(required=True)
    seats = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100_000))
    shifts = fields.List(fields.Nested(ShiftSchema), required=True, validate=validate.Length(min=1, max=10))


class RatePrice(MoneyField):
    """A rate: money, or its amount alone (``{"amount": "40.00"}``, as the public API sends it), loaded as a
    ``Decimal`` that ``domain.priced`` puts in the profile's currency."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, dict) and set(value) == {"amount"}:
            return super()._deserialize({**value, "currency": "USD"}, attr, data, **kwargs).amount
        return super()._deserialize(value, attr, data, **kwargs)


class PerUnitRateSchema(StrictSchema):
    unit = Trimmed(required=True, validate=validate.Length(min=1, max=40))
    price = RatePrice(required=True)


class RatesSchema(StrictSchema):
    hourly = RatePrice(load_default=None, allow_none=True)
    monthly_retainer = RatePrice(load_default=None, allow_none=True)
    per_unit = fields.List(fields.Nested(PerUnitRateSchema), load_default=list,
                           validate=validate.Length(max=50))


class AvailabilitySchema(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(["available", "limited", "unavailable"]))
    available_from = BoundedDate(load_default=None, allow_none=True)


class ProfileSchema(StrictSchema):
    """What ``register`` accepts: a whole profile without id, verification, timestamps or version."""

    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in ProviderKind]))
    display_name = Name(required=True, validate=validate.Length(min=1, max=120))
    headline = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    models = fields.List(fields.String(validate=validate.OneOf([m.value for m in Model])), required=True,
                         validate=[validate.Length(min=1), _unique])
    categories = fields.List(fields.String(validate=validate.OneOf(CATEGORY_IDS)), required=True,
                             validate=[validate.Length(min=1), _unique])
    skills = fields.List(fields.Nested(SkillSchema), load_default=list, validate=validate.Length(max=100))
    languages = fields.List(LanguageCode(), required=True, validate=[validate.Length(min=1, max=20), _unique])
    country = CountryCode(required=True)
    time_zone = TimeZone(required=True)
    working_hours = fields.Nested(HoursSchema, load_default=None, allow_none=True)
    delivery_centres = fields.List(fields.Nested(DeliveryCentreSchema), load_default=list,
                                   validate=validate.Length(max=50))
    currency = CurrencyCode(required=True)
    rates = fields.Nested(RatesSchema, required=True)
    capacity_hours_per_week = fields.Integer(load_default=None, allow_none=True, strict=True,
                                             validate=validate.Range(min=1, max=168))
    availability = fields.Nested(AvailabilitySchema)
    certifications = fields.List(Trimmed(validate=validate.Length(min=1, max=120)), load_default=list,
                                 validate=[validate.Length(max=50), _unique])
    nda_willing = fields.Boolean(load_default=False)
    # What an invoice names the provider by (it is the supplier): optional, shown on invoices when given.
    legal_name = Trimmed(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))
    address = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=500))
    tax_id = Trimmed(load_default=None, allow_none=True, validate=validate.Length(min=1, max=50))
    payment_instructions = fields.String(load_default=None, allow_none=True,
                                         validate=validate.Length(min=1, max=1000))

    @post_load
    def distinct_skills(self, data: dict, **kwargs) -> dict:
        names = [s["name"] for s in data.get("skills") or []]
        if len(names) != len(set(names)):
            raise ValidationError({"skills": ["Each skill may appear only once."]})
        return data


class ChangesSchema(ProfileSchema):
    """What ``update`` accepts: any subset of the profile's editable fields."""

    class Meta:
        unknown = RAISE
        exclude = ("kind", "availability")

    @pre_load
    def refuse_immutable(self, data: Any, **kwargs) -> Any:
        if isinstance(data, dict):
            fixed = {k: ["Cannot be changed with update."] for k in data if k in domain.IMMUTABLE_ON_UPDATE}
            if "availability" in fixed:
                fixed["availability"] = ["Use set_availability."]
            if fixed:
                raise ValidationError(fixed)
        return data


class AvailabilityChangesSchema(StrictSchema):
    availability = fields.Nested(AvailabilitySchema)
    capacity_hours_per_week = fields.Integer(strict=True, validate=validate.Range(min=1, max=168))
    # Any key: one that names none of the provider's centres is refused against the stored profile (409).
    centre_seats = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(strict=True, validate=validate.Range(min=1, max=100_000)),
        validate=validate.Length(min=1),
    )

    @post_load
    def something(self, data: dict, **kwargs) -> dict:
        if not data:
            raise ValidationError("Give availability, capacity_hours_per_week or centre_seats.", "_schema")
        return data


class SearchFiltersSchema(StrictSchema):
    kind = fields.String(validate=validate.OneOf([k.value for k in ProviderKind]))
    model = fields.String(validate=validate.OneOf([m.value for m in Model]))
    category = fields.String(validate=validate.OneOf(CATEGORY_IDS))
    country = CountryCode()
    language = LanguageCode()
    skill = Trimmed(validate=validate.Length(min=1, max=60))
    min_skill_level = fields.Integer(validate=validate.Range(min=1, max=5))
    verified = fields.Boolean()
    available = fields.Boolean()
    max_hourly_rate = MoneyField()

    @post_load
    def skill_level_needs_skill(self, data: dict, **kwargs) -> dict:
        if "min_skill_level" in data and "skill" not in data:
            raise ValidationError({"min_skill_level": ["Give the skill it applies to."]})
        if "skill" in data:
            data["skill"] = data["skill"].lower()
        return data


class VerificationSchema(StrictSchema):
    verified_by = Trimmed(required=True, validate=validate.Length(min=1, max=120))
    note = fields.String(allow_none=True, validate=validate.Length(max=1000))


def load_registration(profile: Any) -> dict:
    return load_validated(ProfileSchema(), profile, "The provider profile is not valid.")


# A change names only the fields it changes; those it names are checked as a profile's (nested ones whole).
_EDITABLE = tuple(ChangesSchema().fields)


def load_changes(changes: Any) -> dict:
    return load_validated(ChangesSchema(partial=_EDITABLE), changes, "The profile change is not valid.")


def load_availability_changes(changes: Any) -> dict:
    return load_validated(AvailabilityChangesSchema(), changes, "The availability change is not valid.")


def load_search(filters: Any) -> dict:
    return load_validated(SearchFiltersSchema(), filters if filters is not None else {},
                          "The search filter is not valid.")


def load_page(limit: Any, cursor: Any) -> tuple[int, str | None]:
    """The page size and the provider id to continue after (the cursor is the last id of the page before)."""
    _, limit, after = paging.load_page(None, limit, cursor, prefix="prv")
    return limit, after


def load_verification(verified_by: Any, note: Any) -> dict:
    return load_validated(VerificationSchema(), {"verified_by": verified_by, "note": note},
                          "The verification is not valid.")


# -- wire form -----------------------------------------------------------------------------------------------


def _date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def availability_to_wire(availability: dict) -> dict:
    return {"status": availability["status"], "available_from": _date(availability.get("available_from"))}


LEGAL_FIELDS = ("legal_name", "address", "tax_id", "payment_instructions")


def to_wire(profile: dict) -> dict:
    """The provider as ``get`` returns it and events carry it (JSON: money as strings, times RFC 3339 UTC)."""
    rates = profile["rates"]
    hours = profile.get("working_hours")
    return {
        "id": profile["id"],
        "kind": profile["kind"],
        "display_name": profile["display_name"],
        "headline": profile.get("headline"),
        "models": list(profile["models"]),
        "categories": list(profile["categories"]),
        "skills": [{"name": s["name"], "level": s["level"]} for s in profile.get("skills") or []],
        "languages": list(profile["languages"]),
        "country": profile["country"],
        "time_zone": profile["time_zone"],
        "working_hours": None if hours is None else {"days": list(hours["days"]), "start": hours["start"],
                                                     "end": hours["end"]},
        "delivery_centres": [
            {
                "id": c["id"], "name": c["name"], "country": c["country"], "time_zone": c["time_zone"],
                "seats": c["seats"],
                "shifts": [{"name": s["name"], "days": list(s["days"]), "start": s["start"], "end": s["end"]}
                           for s in c["shifts"]],
            }
            for c in profile.get("delivery_centres") or []
        ],
        "currency": profile["currency"],
        "rates": RatesSchema().dump({"hourly": rates.get("hourly"), "monthly_retainer": rates.get("monthly_retainer"),
                                     "per_unit": rates.get("per_unit") or []}),
        "capacity_hours_per_week": profile.get("capacity_hours_per_week"),
        "availability": availability_to_wire(profile["availability"]),
        "certifications": list(profile.get("certifications") or []),
        "nda_willing": profile["nda_willing"],
        **{key: profile.get(key) for key in LEGAL_FIELDS},
        "verified": profile["verified"],
        "verified_at": rfc3339(profile["verified_at"]) if profile.get("verified_at") else None,
        "created_at": rfc3339(profile["created_at"]),
        "updated_at": rfc3339(profile["updated_at"]),
        "version": profile["version"],
    }
