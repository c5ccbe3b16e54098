"""Providers: registration, profile changes, availability, verification and search."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, post_load, validate

from services.gateway.schemas.common import (
    AVAILABILITY,
    CENTRE_ID_PATTERN,
    KINDS,
    MODELS,
    AnyOf,
    ByKind,
    DependentRequired,
    NotEmpty,
    PageQuerySchema,
    Strict,
    _content,
    _date,
    _name,
    _one_of,
    _set_of,
    _text,
    _timestamp,
)
from shared.vocabulary.fields import (
    MONEY_AMOUNT_PATTERN,
    BoundedDecimal,
    ClockTime,
    CountryCode,
    CurrencyCode,
    Cursor,
    LanguageCode,
    MoneyField,
    StartTime,
    TimeZone,
)
from shared.vocabulary.terms import CATEGORY_IDS, FIRM_MODELS, INDIVIDUAL_MODELS, WEEKDAYS

# --- providers ---------------------------------------------------------------------------------------------------


class SkillSchema(Strict):
    name = _name(60, required=True)
    level = fields.Integer(required=True, validate=validate.Range(min=1, max=5))


# An end before its start is on the next day; an end equal to its start is 24 hours later (round the clock).
_END = "Before `start`: the next day; equal to `start`: 24 hours later."


class WorkingHoursSchema(Strict):
    days = _set_of(_one_of(list(WEEKDAYS)), 1, 7, required=True)
    start = StartTime(required=True)
    end = ClockTime(required=True, metadata={"description": _END})


class ShiftSchema(Strict):
    name = _name(60, required=True)
    days = _set_of(_one_of(list(WEEKDAYS)), 1, 7, required=True)
    start = StartTime(required=True, metadata={"description": "A shift may cross midnight: start > end."})
    end = ClockTime(required=True, metadata={"description": _END})


class DeliveryCentreSchema(Strict):
    id = fields.String(validate=validate.Regexp(CENTRE_ID_PATTERN, error="Not a delivery centre id (dc_...)."),
                       metadata={"description": "dc_...; assigned by the service when absent."})
    name = _name(120, required=True)
    country = CountryCode(required=True)
    time_zone = TimeZone(required=True)
    seats = fields.Integer(required=True, validate=validate.Range(min=1, max=100_000))
    shifts = fields.List(fields.Nested(ShiftSchema), required=True, validate=validate.Length(min=1, max=10))


# A price that must be more than zero (a provider's rates): at most 15 digits and 4 decimal places, as money.
POSITIVE_MONEY_PATTERN = (r"^([1-9][0-9]{0,14}(\.[0-9]{1,4})?|0\.([1-9][0-9]{0,3}|0[1-9][0-9]{0,2}|00[1-9][0-9]?"
                          r"|000[1-9]))$")


class RateSchema(Strict):
    amount = BoundedDecimal(required=True, as_string=True, places=None, allow_nan=False,
                            metadata={"type": "string", "pattern": POSITIVE_MONEY_PATTERN,
                                      "description": "A decimal string more than zero, never a JSON number."})


class Rate(fields.Nested):
    """A rate's amount, in the profile's `currency`: one currency per provider, so that rates compare."""

    def __init__(self, **kwargs):
        super().__init__(RateSchema, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, dict) and isinstance(value.get("amount"), float):
            raise ValidationError({"amount": ["Send the amount as a decimal string, not a float."]})
        rate = super()._deserialize(value, attr, data, **kwargs)
        if rate["amount"] <= 0:
            raise ValidationError({"amount": ["Must be more than zero."]})
        return rate


class UnitPriceSchema(Strict):
    unit = _content(40, required=True)
    price = Rate(required=True)


class RatesSchema(AnyOf):
    """At least one rate, each more than zero, each an amount in the provider's `currency` (sent without one)."""

    any_of = ("hourly", "monthly_retainer", "per_unit")

    hourly = Rate(allow_none=True)
    monthly_retainer = Rate(allow_none=True)
    per_unit = fields.List(fields.Nested(UnitPriceSchema), validate=validate.Length(max=50))


class ProviderChangesSchema(Strict):
    """What a provider (or an operator) may change: not kind, id, verification or availability."""

    display_name = _name(120)
    headline = fields.String(validate=validate.Length(max=200), allow_none=True)
    models = _set_of(_one_of(MODELS), 1)
    categories = _set_of(_one_of(list(CATEGORY_IDS)), 1)
    skills = fields.List(fields.Nested(SkillSchema), validate=validate.Length(max=100))
    languages = _set_of(LanguageCode(), 1, 20)
    country = CountryCode()
    time_zone = TimeZone()
    working_hours = fields.Nested(WorkingHoursSchema, allow_none=True)
    delivery_centres = fields.List(fields.Nested(DeliveryCentreSchema), validate=validate.Length(max=50))
    currency = CurrencyCode()
    rates = fields.Nested(RatesSchema)
    capacity_hours_per_week = fields.Integer(validate=validate.Range(min=1, max=168), allow_none=True)
    certifications = _set_of(_name(120), max_items=50)
    nda_willing = fields.Boolean()
    legal_name = _content(200, allow_none=True, metadata={"description": "The registered name its invoices carry."})
    address = _text(500, allow_none=True, metadata={"description": "Address on its invoices, lines separated by "
                                                                   "newlines."})
    tax_id = _content(50, allow_none=True, metadata={"description": "VAT / GST id on its invoices."})
    payment_instructions = _text(1000, allow_none=True, metadata={
        "description": "How clients pay its invoices (bank, IBAN/BIC, reference); printed on them."})


class ProviderRegistrationSchema(ByKind, ProviderChangesSchema):
    """An individual works its own hours (``working_hours``, ``capacity_hours_per_week``); a firm works in delivery
    centres (one at least), whose seats and shifts are its capacity. Each kind offers its own models."""

    requires = {"individual": ("working_hours", "capacity_hours_per_week"), "firm": ("delivery_centres",)}
    belongs = {"working_hours": "individual", "capacity_hours_per_week": "individual", "delivery_centres": "firm"}
    others_may_be_empty = True
    choices = {"models": {"individual": tuple(sorted(INDIVIDUAL_MODELS)), "firm": tuple(sorted(FIRM_MODELS))}}

    kind = _one_of(KINDS, required=True)
    display_name = _name(120, required=True)
    models = _set_of(_one_of(MODELS), 1, required=True)
    categories = _set_of(_one_of(list(CATEGORY_IDS)), 1, required=True)
    languages = _set_of(LanguageCode(), 1, 20, required=True)
    country = CountryCode(required=True)
    time_zone = TimeZone(required=True)
    currency = CurrencyCode(required=True)
    rates = fields.Nested(RatesSchema, required=True)


class AvailabilitySchema(Strict):
    status = _one_of(AVAILABILITY, required=True)
    available_from = _date(allow_none=True)


class AvailabilityChangeSchema(NotEmpty):
    availability = fields.Nested(AvailabilitySchema)
    capacity_hours_per_week = fields.Integer(
        validate=validate.Range(min=1, max=168), metadata={"description": "Individuals only (a firm's: 409)."}
    )
    centre_seats = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(validate=validate.Range(min=1, max=100_000)),
        validate=validate.Length(min=1),
        metadata={"description": "Firms only: seats per delivery centre id, each one of the provider's own centres "
                                 "(else 409, as for an individual).", "minProperties": 1},
    )


class VerifySchema(Strict):
    note = fields.String(validate=validate.Length(max=500), allow_none=True)


class ProviderSearchQuerySchema(DependentRequired, PageQuerySchema):
    dependent = {"max_hourly_rate": ("currency",), "currency": ("max_hourly_rate",), "min_skill_level": ("skill",)}

    kind = _one_of(KINDS)
    model = _one_of(MODELS)
    category = _one_of(list(CATEGORY_IDS))
    country = CountryCode()
    language = LanguageCode()
    skill = _name(60)
    min_skill_level = fields.Integer(validate=validate.Range(min=1, max=5), metadata={"description": "Needs `skill`."})
    verified = fields.Boolean()
    available = fields.Boolean()
    max_hourly_rate = fields.String(validate=validate.Regexp(MONEY_AMOUNT_PATTERN, error="A decimal string, at most "
                                                             "4 decimal places."),
                                    metadata={"description": "Decimal string; needs `currency`."})
    currency = CurrencyCode(metadata={"description": "Currency of `max_hourly_rate`; needs it."})
    cursor = Cursor("prv")

    @post_load
    def _rate_as_money(self, data: dict, **kwargs) -> dict:
        """The providers service takes the rate as money, like every amount on the wire."""
        if "max_hourly_rate" in data:
            data["max_hourly_rate"] = {"amount": data["max_hourly_rate"], "currency": data.pop("currency")}
        return data


# Responses: shapes of what the providers service answers.


class SkillOutSchema(Schema):
    name = fields.String()
    level = fields.Integer()


class WorkingHoursOutSchema(Schema):
    days = fields.List(fields.String())
    start = fields.String()
    end = fields.String()


class ShiftOutSchema(Schema):
    name = fields.String()
    days = fields.List(fields.String())
    start = fields.String()
    end = fields.String()


class DeliveryCentreOutSchema(Schema):
    id = fields.String()
    name = fields.String()
    country = fields.String()
    time_zone = fields.String()
    seats = fields.Integer()
    shifts = fields.List(fields.Nested(ShiftOutSchema))


class UnitPriceOutSchema(Schema):
    unit = fields.String()
    price = MoneyField()


class RatesOutSchema(Schema):
    hourly = MoneyField(allow_none=True)
    monthly_retainer = MoneyField(allow_none=True)
    per_unit = fields.List(fields.Nested(UnitPriceOutSchema))


class AvailabilityOutSchema(Schema):
    status = _one_of(AVAILABILITY)
    available_from = _date(allow_none=True)


class ProviderSchema(Schema):
    id = fields.String(required=True, metadata={"example": "prv_9b2f3c1d4e5f40718293a4b5c6d7e8f9"})
    kind = _one_of(KINDS, required=True)
    display_name = fields.String(required=True)
    headline = fields.String(allow_none=True)
    models = fields.List(fields.String(), required=True)
    categories = fields.List(fields.String(), required=True)
    skills = fields.List(fields.Nested(SkillOutSchema), required=True)
    languages = fields.List(fields.String(), required=True)
    country = fields.String(required=True)
    time_zone = fields.String(required=True)
    working_hours = fields.Nested(WorkingHoursOutSchema, allow_none=True)
    delivery_centres = fields.List(fields.Nested(DeliveryCentreOutSchema))
    currency = fields.String(required=True)
    rates = fields.Nested(RatesOutSchema, required=True)
    capacity_hours_per_week = fields.Integer(allow_none=True)
    availability = fields.Nested(AvailabilityOutSchema)
    certifications = fields.List(fields.String())
    nda_willing = fields.Boolean()
    legal_name = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    tax_id = fields.String(allow_none=True)
    payment_instructions = fields.String(allow_none=True)
    verified = fields.Boolean(required=True)
    verified_at = _timestamp(allow_none=True)
    created_at = _timestamp(required=True)
    updated_at = _timestamp(required=True)
    version = fields.Integer(required=True)


class ProviderRegisteredSchema(Schema):
    provider = fields.Nested(ProviderSchema, required=True)
    api_key = fields.String(required=True, metadata={"description": "The provider's key; shown once, never again."})


class ProviderPageSchema(Schema):
    items = fields.List(fields.Nested(ProviderSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
