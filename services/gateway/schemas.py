"""The gateway's marshmallow schemas: what each route accepts and answers, and what the OpenAPI document shows.

Request schemas check the shape and the common vocabulary (shared.vocabulary.fields) so a client hears about a bad
country or a float amount before any service is bothered; the services validate again, because the rules are theirs.
Response schemas are applied on the way out, so a field a service adds (or keeps internally) never reaches a client
until it is declared here. Times and dates in responses stay strings: the services already send RFC 3339.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from shared.vocabulary import apikeys
from shared.vocabulary.fields import (
    DECIMAL_PATTERN,
    MONEY_AMOUNT_PATTERN,
    NON_NEGATIVE_DECIMAL_PATTERN,
    BoundedDateTime,
    BoundedDecimal,
    ClockTime,
    CountryCode,
    CurrencyCode,
    Cursor,
    LanguageCode,
    MoneyField,
    MoneySchema,
    Name,
    StartTime,
    TimeZone,
    WireDate,
    parse_decimal,
)
from shared.vocabulary.terms import CATEGORY_IDS, WEEKDAYS, Lane, Model, ProviderKind

MODELS = [m.value for m in Model]
KINDS = [k.value for k in ProviderKind]
SEGMENTS = [lane.value for lane in Lane]
AVAILABILITY = ["available", "limited", "unavailable"]
POSTING_STATUSES = ["draft", "open", "awarded", "cancelled"]
INVITATION_STATUSES = ["pending", "accepted", "declined", "closed"]
PROPOSAL_STATUSES = ["awaiting_client", "awaiting_provider", "agreed", "awarded", "closed"]
ENGAGEMENTS = ["hourly", "fixed", "retainer", "per_unit"]
SHORING = ["any", "onshore", "nearshore", "offshore"]
COVERAGE = ["business_hours", "extended", "24x7"]
SLA_DIRECTIONS = ["at_most", "at_least"]
SLA_WINDOWS = ["daily", "weekly", "monthly"]

MAX_PAGE = 100
# A firm's delivery centre id, as the providers service assigns and accepts it.
CENTRE_ID_PATTERN = r"^dc_[a-z0-9]{1,60}$"


def _text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


# Free text that says something: the services strip it, then want one character at least.
CONTENT_PATTERN = r"^[\s\S]*\S[\s\S]*$"


def _content(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=max_length),
                                   validate.Regexp(CONTENT_PATTERN, error="Say something (not only spaces).")],
                         **kwargs)


def _name(max_length: int, **kwargs) -> fields.String:
    """A name or title (``shared.vocabulary.fields.Name``): one line, no control or bidi formatting characters."""
    return Name(validate=validate.Length(min=1, max=max_length), **kwargs)


def _distinct(values: list) -> None:
    if len(values) != len(set(values)):
        raise ValidationError("Each value may appear only once.")


def _set_of(inner: fields.Field, min_items: int = 0, max_items: int | None = None, **kwargs) -> fields.List:
    """A list whose items are distinct (``uniqueItems``), as the services want their lists of names and codes."""
    return fields.List(inner, validate=[validate.Length(min=min_items, max=max_items), _distinct],
                       metadata={"uniqueItems": True, **kwargs.pop("metadata", {})}, **kwargs)


def _one_of(choices: list[str], **kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf(choices), **kwargs)


def _timestamp(**kwargs) -> fields.String:
    """An RFC 3339 time within the platform's range (``shared.vocabulary.fields``); sent on in UTC."""
    return BoundedDateTime(**kwargs)


def _date(**kwargs) -> fields.String:
    """An ISO date within the platform's range (``shared.vocabulary.fields``)."""
    return WireDate(**kwargs)


class DecimalString(fields.String):
    """A decimal number sent as a string (``"99.5"``): like money, never a float, so nothing is rounded."""

    def __init__(self, *args, **kwargs):
        kwargs["metadata"] = {"pattern": DECIMAL_PATTERN, **kwargs.get("metadata", {})}
        super().__init__(*args, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return format(parse_decimal(super()._deserialize(value, attr, data, **kwargs)), "f")


class Strict(Schema):
    """Unknown fields are an error: a misspelt field silently ignored is a bug the client never sees.

    In a JSON body a whole number must be a JSON integer and a flag a JSON boolean, as the services require: 37.5
    hours a week is refused, not cut to 37, and "yes" is not true. Query strings are text, so query schemas
    (``json_types = False``) keep marshmallow's parsing of "7" and "true".
    """

    json_types = True

    class Meta:
        unknown = RAISE

    @pre_load
    def _json_types(self, data, **kwargs):
        if not self.json_types or not isinstance(data, dict):
            return data
        errors: dict[str, list[str]] = {}
        for name, field in self.load_fields.items():
            key = field.data_key or name
            if key not in data or data[key] is None:
                continue
            values = (data[key].values() if isinstance(field, fields.Dict) and isinstance(data[key], dict)
                      else [data[key]])
            inner = field.value_field if isinstance(field, fields.Dict) else field
            if isinstance(inner, fields.Integer) and not all(type(v) is int for v in values):
                errors[key] = ["A whole number (a JSON integer)."]
            elif isinstance(inner, fields.Boolean) and not all(isinstance(v, bool) for v in values):
                errors[key] = ["true or false."]
        if errors:
            raise ValidationError(errors)
        return data


class OneOrBatch(Strict):
    """One item's fields, or a batch of items under one field (``batch_field``), never both: ``one`` is the schema of a
    single item, whose rules apply to the fields sent alone. The OpenAPI document states it as ``oneOf``."""

    one: type[Schema]
    batch_field = "batch"

    @validates_schema(pass_original=True)
    def _one_or_batch(self, data: dict, original: dict, **kwargs) -> None:
        batch_key = self.fields[self.batch_field].data_key or self.batch_field
        if self.batch_field in data:
            mixed = sorted(set(original) - {batch_key})
            if mixed:
                raise ValidationError({name: [f"Send one item's fields or `{batch_key}`, not both."]
                                       for name in mixed})
            return
        errors = self.one().validate(original)
        if errors:
            raise ValidationError(errors)


class ByKind(Strict):
    """A rule across fields: per value of the field ``kind_field``, the fields it requires (``requires``), and
    fields that belong to one value only (``belongs``: field -> value). The OpenAPI document states it as one
    ``oneOf`` branch per value."""

    kind_field = "kind"
    requires: dict[str, tuple[str, ...]] = {}
    belongs: dict[str, str] = {}

    @validates_schema
    def _fits_its_kind(self, data: dict, **kwargs) -> None:
        kind = data.get(self.kind_field)
        if kind not in self.requires:
            return
        errors = {name: [f"Required for {kind}."] for name in self.requires[kind] if data.get(name) is None}
        errors.update({name: [f"Not part of {kind}."] for name, owner in self.belongs.items()
                       if owner != kind and name in data})
        if errors:
            raise ValidationError(errors)


class DependentRequired(Strict):
    """Fields that need others (``dependent``: name -> the names it needs), as JSON Schema's ``dependentRequired``
    says it; the OpenAPI document states it with ``anyOf`` (3.0 has no such keyword), and describes a query with
    such a rule as one object parameter (``style: form``), whose properties are the query's parameters."""

    dependent: dict[str, tuple[str, ...]] = {}

    @validates_schema
    def _dependent_required(self, data: dict, **kwargs) -> None:
        errors = {needed: [f"Required with {name}."] for name, needs in self.dependent.items() if name in data
                  for needed in needs if needed not in data}
        if errors:
            raise ValidationError(errors)


class NotEmpty(Strict):
    """A body that must say something: one field at least (``minProperties: 1`` in the document)."""

    @validates_schema(pass_original=True)
    def _not_empty(self, data: dict, original: dict, **kwargs) -> None:
        if not original:
            raise ValidationError(f"Give one of {', '.join(self.fields)} at least.", "_schema")


class AnyOf(Strict):
    """One of the fields ``any_of`` at least is given and says something (not null, not an empty list): ``anyOf``
    in the document."""

    any_of: tuple[str, ...] = ()

    @validates_schema
    def _any_of(self, data: dict, **kwargs) -> None:
        if not any(data.get(name) not in (None, [], {}) for name in self.any_of):
            raise ValidationError(f"Give one of {', '.join(self.any_of)} at least.", "_schema")


# --- common ------------------------------------------------------------------------------------------------------


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"example": "validation_failed"})
    message = fields.String(required=True)
    details = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata={"description": "Per field, the list of messages (422), or what the error concerns."},
    )


class PageQuerySchema(Strict):
    json_types = False

    limit = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE), metadata={"description": "1-100, default 20."})
    cursor = fields.String(validate=validate.Length(min=1, max=512), metadata={"description": "Opaque cursor."})


# --- tenants -----------------------------------------------------------------------------------------------------


class BusinessHoursSchema(Strict):
    days = fields.List(_one_of(list(WEEKDAYS)), required=True, validate=validate.Length(min=1, max=7),
                       metadata={"uniqueItems": True})
    start = StartTime(required=True)
    end = ClockTime(required=True, metadata={"description": "start > end crosses midnight"})


class TenantCreateSchema(Strict):
    name = _name(200, required=True)
    country = CountryCode(required=True)
    time_zone = TimeZone(required=True)
    segment = _one_of(SEGMENTS, required=True)
    core_competencies = fields.List(_name(80), validate=validate.Length(max=30))
    business_hours = fields.Nested(BusinessHoursSchema, metadata={
        "description": "When the client works, in its time zone (default 09:00-17:00 Mon-Fri); its postings' "
                       "overlap rule and explanations use it unless a posting sets its own."})
    legal_name = _text(200, allow_none=True, metadata={"description": "The registered name invoices bill."})
    address = _text(500, allow_none=True, metadata={"description": "Billing address, lines separated by newlines."})
    tax_id = _text(50, allow_none=True, metadata={"description": "VAT / GST id; invoices name it."})


class TenantSchema(Schema):
    id = fields.String(required=True, metadata={"example": "ten_0f8fad5bd9cb469fa16570867728950e"})
    name = fields.String(required=True)
    country = fields.String(required=True)
    time_zone = fields.String(required=True)
    segment = _one_of(SEGMENTS, required=True)
    core_competencies = fields.List(fields.String(), required=True)
    business_hours = fields.Nested(BusinessHoursSchema, metadata={
        "description": "The client's business hours (absent on tenants registered before them: 09:00-17:00 Mon-Fri)"})
    created_at = _timestamp(required=True)
    legal_name = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    tax_id = fields.String(allow_none=True)


class TenantCreatedSchema(Schema):
    tenant = fields.Nested(TenantSchema, required=True)
    api_key = fields.String(required=True, metadata={"description": "The client key; shown once, never again."})


# --- providers ---------------------------------------------------------------------------------------------------


class SkillSchema(Strict):
    name = _name(60, required=True)
    level = fields.Integer(required=True, validate=validate.Range(min=1, max=5))


class WorkingHoursSchema(Strict):
    days = _set_of(_one_of(list(WEEKDAYS)), 1, 7, required=True)
    start = StartTime(required=True)
    end = ClockTime(required=True)


class ShiftSchema(Strict):
    name = _name(60, required=True)
    days = _set_of(_one_of(list(WEEKDAYS)), 1, 7, required=True)
    start = StartTime(required=True, metadata={"description": "A shift may cross midnight: start > end."})
    end = ClockTime(required=True)


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


class PositiveMoneySchema(MoneySchema):
    amount = BoundedDecimal(required=True, as_string=True, places=None, allow_nan=False,
                            metadata={"type": "string", "pattern": POSITIVE_MONEY_PATTERN,
                                      "description": "A decimal string more than zero, never a JSON number."})


class PositiveMoney(MoneyField):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.nested = PositiveMoneySchema

    def _deserialize(self, value, attr, data, **kwargs):
        money = super()._deserialize(value, attr, data, **kwargs)
        if money.amount <= 0:
            raise ValidationError({"amount": ["Must be more than zero."]})
        return money


class UnitPriceSchema(Strict):
    unit = _content(40, required=True)
    price = PositiveMoney(required=True)


class RatesSchema(AnyOf):
    """At least one rate, each more than zero and in the provider's currency (the providers service checks that)."""

    any_of = ("hourly", "monthly_retainer", "per_unit")

    hourly = PositiveMoney(allow_none=True)
    monthly_retainer = PositiveMoney(allow_none=True)
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


class ProviderRegistrationSchema(ProviderChangesSchema):
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


# --- postings ----------------------------------------------------------------------------------------------------


class SkillRequirementSchema(Strict):
    name = _name(60, required=True)
    min_level = fields.Integer(required=True, validate=validate.Range(min=1, max=5))


class EngagementSchema(Strict):
    type = _one_of(ENGAGEMENTS, required=True)
    unit = _name(40, allow_none=True, metadata={"description": "Per-unit work only, and then required."})

    @validates_schema
    def unit_only_for_per_unit_work(self, data: dict, **kwargs) -> None:
        if (data.get("type") == "per_unit") != (data.get("unit") is not None):
            raise ValidationError("Per-unit work names its unit; other work has none.", "unit")


class ShoringSchema(Strict):
    preference = _one_of(SHORING, required=True, metadata={
        "description": "The class the score favours; `any` for none."})
    required = fields.Boolean(metadata={
        "description": "Without `accepted`: true accepts only the preferred class, false or left out every class. "
                       "With `accepted`: true or left out; false only when every class is accepted."})
    accepted = fields.List(_one_of(["onshore", "nearshore", "offshore"]), validate=validate.Length(min=1, max=3),
                           metadata={"description": "The classes a provider may be in, e.g. [onshore, nearshore] "
                                                    "for 'never offshore'."})


class SlaRequirementSchema(Strict):
    metric = _name(60, required=True)
    target = DecimalString(required=True, metadata={"example": "60"})
    direction = _one_of(SLA_DIRECTIONS, required=True)
    window = _one_of(SLA_WINDOWS, required=True)


class ConfidentialitySchema(Strict):
    confidential = fields.Boolean(required=True)
    nda_required = fields.Boolean(required=True)


class PostingChangesSchema(Strict):
    """Any part of a posting; only title, category and model are needed to create a draft."""

    title = _name(200)
    description = fields.String(validate=validate.Length(max=10_000))
    category = _one_of(list(CATEGORY_IDS))
    model = _one_of(MODELS)
    required_skills = fields.List(fields.Nested(SkillRequirementSchema), validate=validate.Length(max=30))
    nice_to_have_skills = fields.List(fields.Nested(SkillRequirementSchema), validate=validate.Length(max=30))
    languages = fields.List(LanguageCode(), validate=validate.Length(max=10))
    engagement = fields.Nested(EngagementSchema, allow_none=True)
    budget = MoneyField(allow_none=True)
    hours_per_week = fields.Integer(validate=validate.Range(min=1, max=168), allow_none=True, metadata={
        "description": "Hours a week per seat."})
    seats = fields.Integer(validate=validate.Range(min=1, max=1000), metadata={
        "description": "People working at once (default 1); a 3-seat 24/7 desk is seats 3 × hours_per_week 168. "
                       "Capacity and billing limits count seats × hours_per_week."})
    start_date = _date(allow_none=True)
    duration_weeks = fields.Integer(validate=validate.Range(min=1, max=520), allow_none=True)
    shoring = fields.Nested(ShoringSchema)
    min_overlap_hours = fields.Integer(validate=validate.Range(min=0, max=24))
    coverage = _one_of(COVERAGE)
    sla_requirements = fields.List(fields.Nested(SlaRequirementSchema), validate=validate.Length(max=20))
    confidentiality = fields.Nested(ConfidentialitySchema)
    business_hours = fields.Nested(BusinessHoursSchema, allow_none=True, metadata={
        "description": "This posting's business hours for the overlap rule; null: the client's own."})


class PostingDraftSchema(PostingChangesSchema):
    title = _name(200, required=True)
    category = _one_of(list(CATEGORY_IDS), required=True)
    model = _one_of(MODELS, required=True)


class PublishSchema(Strict):
    confirm_core = fields.Boolean(
        metadata={"description": "Required when the posting is assessed as core to the client's business."}
    )


class CancelSchema(Strict):
    reason = _text(500, required=True)


class PostingListQuerySchema(PageQuerySchema):
    status = _one_of(POSTING_STATUSES)
    cursor = Cursor("pst")


class SkillRequirementOutSchema(Schema):
    name = fields.String()
    min_level = fields.Integer()


class EngagementOutSchema(Schema):
    type = fields.String()
    unit = fields.String(allow_none=True)


class ShoringOutSchema(Schema):
    preference = fields.String()
    required = fields.Boolean(metadata={"description": "Whether `accepted` leaves out a class."})
    accepted = fields.List(fields.String(), metadata={
        "description": "The shoring classes a provider may be in (absent on postings written before it)."})


class SlaRequirementOutSchema(Schema):
    metric = fields.String()
    target = fields.String()
    direction = fields.String()
    window = fields.String()


class ConfidentialityOutSchema(Schema):
    confidential = fields.Boolean()
    nda_required = fields.Boolean()


class AssessmentSchema(Schema):
    classification = _one_of(["core", "non_core", "borderline"])
    reason = fields.String()
    confirmed_core = fields.Boolean()


class ClientLocationSchema(Schema):
    country = fields.String()
    time_zone = fields.String()
    business_hours = fields.Nested(BusinessHoursSchema, metadata={
        "description": "The client's business hours when the posting was created"})


class PostingSchema(Schema):
    id = fields.String(required=True, metadata={"example": "pst_7c9e6679742540de944be07fc1f90ae7"})
    tenant_id = fields.String(required=True)
    status = _one_of(POSTING_STATUSES, required=True)
    title = fields.String(required=True)
    description = fields.String(allow_none=True)
    category = fields.String(required=True)
    model = fields.String(required=True)
    required_skills = fields.List(fields.Nested(SkillRequirementOutSchema))
    nice_to_have_skills = fields.List(fields.Nested(SkillRequirementOutSchema))
    languages = fields.List(fields.String())
    engagement = fields.Nested(EngagementOutSchema, allow_none=True)
    budget = MoneyField(allow_none=True)
    hours_per_week = fields.Integer(allow_none=True, metadata={"description": "Hours a week per seat."})
    seats = fields.Integer(metadata={"description": "People working at once (absent on postings written before "
                                                    "seats existed: 1)."})
    start_date = _date(allow_none=True)
    duration_weeks = fields.Integer(allow_none=True)
    shoring = fields.Nested(ShoringOutSchema, allow_none=True)
    min_overlap_hours = fields.Integer(allow_none=True)
    coverage = fields.String(allow_none=True)
    sla_requirements = fields.List(fields.Nested(SlaRequirementOutSchema))
    confidentiality = fields.Nested(ConfidentialityOutSchema, allow_none=True)
    business_hours = fields.Nested(BusinessHoursSchema, allow_none=True, metadata={
        "description": "The posting's own business hours; null: the client's (client.business_hours)"})
    assessment = fields.Nested(AssessmentSchema, allow_none=True)
    client = fields.Nested(ClientLocationSchema, allow_none=True)
    created_at = _timestamp(required=True)
    updated_at = _timestamp(required=True)
    published_at = _timestamp(allow_none=True)
    cancelled_at = _timestamp(allow_none=True)
    cancellation_reason = fields.String(allow_none=True)
    awarded_at = _timestamp(allow_none=True)
    awarded_proposal_id = fields.String(allow_none=True)
    version = fields.Integer(required=True)


class PostingPageSchema(Schema):
    items = fields.List(fields.Nested(PostingSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


# --- invitations and proposals -------------------------------------------------------------------------------------


class InvitationCreateSchema(Strict):
    provider_id = fields.String(required=True, validate=[validate.Length(min=1, max=100), validate.Regexp("^prv_")],
                                metadata={"description": "A provider on the posting's current shortlist."})


class DeclineSchema(Strict):
    reason = fields.String(validate=validate.Length(max=500), allow_none=True)


class TermsSchema(Strict):
    price = MoneyField(required=True, metadata={
        "description": "In the posting's currency; means what the posting's budget means (hourly rate, total "
        "fixed price, retainer per month, price per unit)."})
    hours_per_week = fields.Integer(validate=validate.Range(min=1, max=168), allow_none=True,
                                    metadata={"description": "Required for hourly and retainer work."})
    available_from = _date(required=True)


class OfferSchema(Strict):
    terms = fields.Nested(TermsSchema, required=True)
    note = fields.String(validate=validate.Length(max=2000), allow_none=True)


class AwardSchema(Strict):
    proposal_id = fields.String(required=True, validate=[validate.Length(min=1, max=100), validate.Regexp("^prp_")])


class InvitationListQuerySchema(PageQuerySchema):
    status = _one_of(INVITATION_STATUSES)
    cursor = Cursor("inv")


class TermsOutSchema(Schema):
    price = MoneyField()
    hours_per_week = fields.Integer(allow_none=True)
    available_from = _date()


class NegotiationStepSchema(Schema):
    step = fields.Integer()
    action = _one_of(["proposed", "countered", "accepted"])
    by = _one_of(["provider", "client"])
    actor = fields.String()
    at = _timestamp()
    terms = fields.Nested(TermsOutSchema)
    note = fields.String(allow_none=True)


class ProposalSchema(Schema):
    id = fields.String(required=True, metadata={"example": "prp_7d8e9f0a1b2c43d4e5f6a7b8c9d0e1f2"})
    posting_id = fields.String(required=True)
    tenant_id = fields.String(required=True)
    invitation_id = fields.String(required=True)
    provider_id = fields.String(required=True)
    centre_id = fields.String(allow_none=True)
    engagement = fields.Nested(EngagementOutSchema, allow_none=True)
    status = _one_of(PROPOSAL_STATUSES, required=True)
    terms = fields.Nested(TermsOutSchema, required=True, metadata={"description": "The terms on the table."})
    history = fields.List(fields.Nested(NegotiationStepSchema), required=True)
    agreed_at = _timestamp(allow_none=True)
    closed_reason = fields.String(allow_none=True)
    created_at = _timestamp(required=True)
    updated_at = _timestamp(required=True)
    version = fields.Integer(required=True)


class ProposalListSchema(Schema):
    items = fields.List(fields.Nested(ProposalSchema), required=True)


class PostingSummarySchema(Schema):
    title = fields.String()
    category = fields.String()
    model = fields.String()
    engagement = fields.Nested(EngagementOutSchema, allow_none=True)
    budget = MoneyField(allow_none=True)
    hours_per_week = fields.Integer(allow_none=True, metadata={"description": "Hours a week per seat."})
    seats = fields.Integer(metadata={"description": "People working at once (absent on older invitations: 1)."})
    start_date = _date(allow_none=True)
    duration_weeks = fields.Integer(allow_none=True)
    confidentiality = fields.Nested(ConfidentialityOutSchema)


class InvitationSchema(Schema):
    id = fields.String(required=True, metadata={"example": "inv_1c2d3e4f5a6b47c8d9e0f1a2b3c4d5e6"})
    posting_id = fields.String(required=True)
    tenant_id = fields.String(required=True)
    provider_id = fields.String(required=True)
    centre_id = fields.String(allow_none=True)
    status = _one_of(INVITATION_STATUSES, required=True)
    shortlist_version = fields.Integer()
    rank = fields.Integer()
    posting = fields.Nested(PostingSummarySchema, metadata={"description": "The posting as it was when invited."})
    decline_reason = fields.String(allow_none=True)
    proposal_id = fields.String(allow_none=True)
    invited_at = _timestamp(required=True)
    responded_at = _timestamp(allow_none=True)
    version = fields.Integer(required=True)


class InvitationPageSchema(Schema):
    items = fields.List(fields.Nested(InvitationSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


# --- shortlists (matching) ------------------------------------------------------------------------------------------


class OtherCentreSchema(Schema):
    centre_id = fields.String(required=True)
    score = fields.String(required=True, metadata={"example": "0.7810"})
    breakdown = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class CandidateSchema(Schema):
    provider_id = fields.String(required=True)
    centre_id = fields.String(allow_none=True, required=True,
                              metadata={"description": "The firm's delivery centre ranked; null for an individual."})
    rank = fields.Integer(required=True)
    score = fields.String(required=True, metadata={"example": "0.8123", "description": "4-decimal string in [0, 1]"})
    breakdown = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                            metadata={"description": "Soft component -> decimal string (required_skills, "
                                      "nice_to_have_skills, rate, overlap, track_record, load, shoring, "
                                      "new_provider_boost)."})
    reasons = fields.List(fields.String(), required=True)
    other_centres = fields.List(fields.Nested(OtherCentreSchema), metadata={
        "description": "A firm takes one place, ranked by its best centre; its other eligible centres, best first "
                       "(absent when there are none)."})


class ShortlistBodySchema(Schema):
    version = fields.Integer(required=True)
    computed_at = _timestamp(required=True)
    candidates = fields.List(fields.Nested(CandidateSchema), required=True)


class ShortlistSchema(Schema):
    posting_id = fields.String(required=True)
    tenant_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "open, awarded, cancelled or closed; only "
                                                    "open postings are re-ranked"})
    eligible = fields.Integer(required=True, metadata={"description": "Candidates passing every hard constraint"})
    top_k = fields.Integer(required=True)
    shortlist = fields.Nested(ShortlistBodySchema, required=True)


class ExclusionSchema(Schema):
    constraint = _one_of(["model_not_served", "category_not_served", "not_verified", "unavailable", "no_nda",
                          "languages_missing", "insufficient_capacity", "coverage_not_met", "shoring_mismatch",
                          "insufficient_overlap"], required=True)
    reason = fields.String(required=True)


class ExplainedRowSchema(Schema):
    centre_id = fields.String(allow_none=True, required=True)
    centre_name = fields.String(allow_none=True)
    status = _one_of(["shortlisted", "listed_under_firm", "below_cut", "excluded"], required=True, metadata={
        "description": "listed_under_firm: an eligible centre of a firm another of whose centres ranks it"})
    excluded_by = fields.List(fields.Nested(ExclusionSchema))
    score = fields.String()
    rank = fields.Integer(allow_none=True, metadata={"description": "The place this row gives its provider among "
                                                     "every eligible provider (a firm ranked by its best centre)"})
    below_cut_by = fields.String(metadata={"description": "Score missing to reach the last shortlisted"})
    breakdown = fields.Dict(keys=fields.String(), values=fields.String())
    reasons = fields.List(fields.String())


class ExplanationSchema(Schema):
    posting_id = fields.String(required=True)
    provider_id = fields.String(required=True)
    status = _one_of(["shortlisted", "below_cut", "excluded", "unknown"], required=True)
    summary = fields.String(required=True)
    shortlist_version = fields.Integer(allow_none=True, metadata={
        "description": "The stored shortlist this explanation agrees with; null while it is being re-ranked"})
    shortlist_pending = fields.Boolean(metadata={
        "description": "True when the stored shortlist does not show this ranking yet (a change is being re-ranked)"})
    cut_score = fields.String(allow_none=True, metadata={"description": "Score of the last shortlisted candidate "
                                                         "when the shortlist is full"})
    top_k = fields.Integer()
    eligible = fields.Integer()
    rows = fields.List(fields.Nested(ExplainedRowSchema), required=True,
                       metadata={"description": "The provider, or each of its delivery centres"})


# --- API keys ------------------------------------------------------------------------------------------------------

KEY_STATUSES = ["active", "expiring", "expired", "revoked"]


class TenantKeyCreateSchema(Strict):
    role = _one_of(list(apikeys.CLIENT_ROLES), required=True, metadata={
        "description": "owner: everything a client may do, its keys and its audit trail; manager: the client's "
                       "work (postings, negotiation), not keys or audit; finance: invoices and reports only."})
    label = _name(80, metadata={"description": "Your name for the key (who or what uses it)."})


class ProviderKeyCreateSchema(Strict):
    label = _name(80, metadata={"description": "Your name for the key (who or what uses it)."})


class KeyRotateSchema(Strict):
    grace_seconds = fields.Integer(
        strict=True, validate=validate.Range(min=0, max=apikeys.MAX_GRACE_SECONDS),
        metadata={"description": "How long the old key keeps working (0: refused at once). Default: the "
                                 "`TASKLINKR_KEY_ROTATION_GRACE_SECONDS` setting (24 hours); at most 30 days."},
    )


class KeySchema(Schema):
    id = fields.String(required=True, metadata={"example": "key_1b4e28ba2fa1453ab9c2e0d1f6a7c8d9"})
    role = _one_of([*apikeys.CLIENT_ROLES, apikeys.PROVIDER_ROLE], required=True)
    label = fields.String(allow_none=True)
    status = _one_of(KEY_STATUSES, required=True, metadata={
        "description": "expiring: rotated, works until `expires_at`; expired and revoked keys are refused."})
    created_at = _timestamp(required=True)
    expires_at = _timestamp(allow_none=True)
    revoked_at = _timestamp(allow_none=True)
    replaced_by = fields.String(allow_none=True, metadata={"description": "The key that rotation issued for it."})
    replaces = fields.String(allow_none=True, metadata={"description": "The key this one was rotated from."})


class KeyListSchema(Schema):
    items = fields.List(fields.Nested(KeySchema), required=True)


class KeyIssuedSchema(Schema):
    key = fields.Nested(KeySchema, required=True)
    api_key = fields.String(required=True, metadata={"description": "The new key; shown once, never again."})


# --- audit trail ---------------------------------------------------------------------------------------------------

AUDIT_OUTCOMES = ["succeeded", "failed", "unknown"]


class AuditQuerySchema(PageQuerySchema):
    cursor = fields.String(validate=validate.Regexp(r"^[0-9a-f]{24}$", error="Not a cursor this API issued."),
                           metadata={"description": "The `next_cursor` of the page before."})
    operation = _text(80, metadata={"description": "The route's operation id, e.g. `publish_posting`."})
    key_id = _text(80, metadata={"description": "Requests made with this key."})
    actor = _text(120, metadata={"description": "`operator`, `client:<tenant_id>` or `provider:<provider_id>`."})
    resource_id = _text(120, metadata={"description": "Requests that named or created this resource."})
    correlation_id = _text(128)
    outcome = _one_of(AUDIT_OUTCOMES)
    since = BoundedDateTime(metadata={"description": "At or after this time (RFC 3339)."})
    until = BoundedDateTime(metadata={"description": "Before this time (RFC 3339)."})


class OperatorAuditQuerySchema(AuditQuerySchema):
    tenant_id = _text(80, metadata={"description": "Requests by or about this client organisation."})


class AuditPrincipalSchema(Schema):
    # unverified: an inbound message without a tenant's or provider's broker-validated user_id; system: the
    # platform itself (the tenant sweep removing what a tenant's broker user declared).
    kind = _one_of(["operator", "client", "provider", "unverified", "system"], required=True)
    role = fields.String(allow_none=True)
    tenant_id = fields.String(allow_none=True)
    provider_id = fields.String(allow_none=True)


class AuditRecordSchema(Schema):
    id = fields.String(required=True)
    at = _timestamp(required=True, metadata={"description": "When it arrived (UTC)."})
    finished_at = _timestamp(allow_none=True)
    actor = fields.String(required=True)
    principal = fields.Nested(AuditPrincipalSchema, required=True)
    key_id = fields.String(allow_none=True, metadata={"description": "The key's id; never the key."})
    tenant_id = fields.String(allow_none=True, metadata={"description": "The client organisation concerned."})
    operation = fields.String(required=True)
    method = fields.String(required=True)
    path = fields.String(required=True)
    resource_ids = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    status = fields.Integer(allow_none=True, metadata={"description": "The HTTP status answered; null: unknown."})
    outcome = _one_of(AUDIT_OUTCOMES, required=True, metadata={
        "description": "unknown: the request was passed on but its answer could not be recorded."})
    error = fields.String(allow_none=True)
    correlation_id = fields.String(required=True)


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditRecordSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


# --- operations ----------------------------------------------------------------------------------------------------


class ComponentHealthSchema(Schema):
    status = _one_of(["ok", "degraded", "unavailable"], required=True)
    database = fields.String(metadata={"description": "ok | unavailable | unknown"})
    error = fields.String()


class HealthSchema(Schema):
    status = _one_of(["ok", "degraded"], required=True)
    broker = fields.Nested(ComponentHealthSchema, required=True)
    gateway = fields.Nested(ComponentHealthSchema, required=True,
                            metadata={"description": "The gateway's own (audit) database: writes answer 503 "
                                                     "while it is unavailable."})
    services = fields.Dict(keys=fields.String(), values=fields.Nested(ComponentHealthSchema), required=True)


class ServiceBacklogSchema(Schema):
    status = _one_of(["ok", "degraded", "unavailable"], required=True)
    outbox_backlog = fields.Integer(allow_none=True, required=True, metadata={
        "description": "Events committed and not yet confirmed by the broker; null: the service did not say."})
    dead_letters = fields.Integer(allow_none=True, required=True, metadata={
        "description": "Messages parked in its dead-letter queue; null: the broker has no such queue (yet)."})


class BacklogSchema(Schema):
    services = fields.Dict(keys=fields.String(), values=fields.Nested(ServiceBacklogSchema), required=True)


# --- contracts (contracting) ---------------------------------------------------------------------------------------
# The gateway checks the shape of each request; contracting checks the content (nested terms, SLAs, governance)
# and answers 422 with the field's messages.


class ContractListQuerySchema(PageQuerySchema):
    status = _one_of(["draft", "pending_signatures", "active", "completion_pending", "completed", "terminated"])
    cursor = Cursor("ctr")


def _non_negative_decimal(**kwargs) -> fields.String:
    return DecimalString(validate=validate.Regexp(NON_NEGATIVE_DECIMAL_PATTERN, error="Must not be negative."),
                         metadata={"pattern": NON_NEGATIVE_DECIMAL_PATTERN, **kwargs.pop("metadata", {})}, **kwargs)


class ContractTermsChangesSchema(Strict):
    unit = _content(40, allow_none=True)
    price = MoneyField()
    hours_per_week = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=168))
    seats = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=10000))
    billing_cycle = _one_of(["weekly", "monthly"])
    payment_due_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=120))


class SlaCreditSchema(Strict):
    percent = _non_negative_decimal(required=True)
    cap = MoneyField(required=True, allow_none=True)


class ContractSlaSchema(Strict):
    id = fields.String(allow_none=True, metadata={"description": "An SLA of the contract to change; absent: a new "
                                                                 "one."})
    metric = _content(60, required=True)
    target = _non_negative_decimal(required=True)
    direction = _one_of(SLA_DIRECTIONS, required=True)
    window = _one_of(SLA_WINDOWS, required=True)
    aggregation = _one_of(["average", "sum", "min", "max"], metadata={"description": "Default average."})
    credit = fields.Nested(SlaCreditSchema, metadata={"description": "The service credit of a breached window."})


class MilestoneInSchema(Strict):
    title = _name(200, required=True)
    due_date = _date(required=True, allow_none=True)
    amount = MoneyField(required=True)


class EscalationLevelSchema(Strict):
    level = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=5))
    client_contact = _content(200, required=True)
    provider_contact = _content(200, required=True)
    response_hours = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=720))


class GovernancePlanSchema(Strict):
    reporting_cadence = _one_of(["weekly", "monthly"], required=True)
    review_cadence = _one_of(["weekly", "monthly", "quarterly"], required=True)
    escalation_levels = fields.List(fields.Nested(EscalationLevelSchema), required=True,
                                    validate=validate.Length(min=1, max=5))


class ResponsibilitiesSchema(Strict):
    client = fields.List(_content(500), required=True, validate=validate.Length(max=30))
    provider = fields.List(_content(500), required=True, validate=validate.Length(max=30))


class ContractConfidentialitySchema(Strict):
    nda_terms = fields.String(allow_none=True, validate=validate.Length(max=10000))


class ContractChangesSchema(Strict):
    title = _name(200)
    scope = fields.String(validate=validate.Length(max=10000))
    responsibilities = fields.Nested(ResponsibilitiesSchema)
    deliverables = fields.List(_content(500), validate=validate.Length(max=50))
    milestones = fields.List(fields.Nested(MilestoneInSchema), validate=validate.Length(max=50))
    terms = fields.Nested(ContractTermsChangesSchema)
    confidentiality = fields.Nested(ContractConfidentialitySchema)
    start_date = _date()
    end_date = _date(allow_none=True)
    termination_notice_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))
    slas = fields.List(fields.Nested(ContractSlaSchema), validate=validate.Length(max=20))
    governance = fields.Nested(GovernancePlanSchema)


class TermsHashSchema(Strict):
    terms_hash = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"),
                               metadata={"description": "The terms_hash of the terms you read and agree to."})


class AmendmentChangesSchema(Strict):
    hours_per_week = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=168))
    seats = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=10000))
    price = MoneyField()
    end_date = _date(allow_none=True)
    slas = fields.List(fields.Nested(ContractSlaSchema), validate=validate.Length(max=20))


class AmendmentCreateSchema(Strict):
    changes = fields.Nested(AmendmentChangesSchema, required=True)
    reason = _content(2000, required=True)
    effective_date = _date(metadata={
        "description": "The day the amended terms take effect: today or later (never earlier work); default the day "
                       "both parties signed. Billing prices work and SLA credits by the terms of its day."})


class MeasurementInSchema(Strict):
    key = _text(100, metadata={"description": "Idempotency key of this measurement."})
    sla_id = _text(64, required=True)
    value = DecimalString(required=True, validate=validate.Regexp(NON_NEGATIVE_DECIMAL_PATTERN,
                                                                  error="Must not be negative."),
                          metadata={"pattern": NON_NEGATIVE_DECIMAL_PATTERN})
    measured_at = _timestamp(required=True)
    units = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000_000),
                           metadata={"description": "Billable units it covers (per_unit work)."})


class MeasurementsSchema(OneOrBatch):
    one = MeasurementInSchema
    batch_field = "measurements"

    key = _text(100)
    sla_id = _text(64)
    value = DecimalString(validate=validate.Regexp(NON_NEGATIVE_DECIMAL_PATTERN, error="Must not be negative."),
                          metadata={"pattern": NON_NEGATIVE_DECIMAL_PATTERN})
    measured_at = _timestamp()
    units = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000_000))
    measurements = fields.List(fields.Nested(MeasurementInSchema), validate=validate.Length(min=1, max=500),
                               metadata={"description": "A batch; or send one measurement's fields alone."})


class MeasurementsRecordedSchema(Schema):
    contract_id = fields.String()
    recorded = fields.Integer()
    late = fields.Integer(metadata={"description": "Recorded for a window already evaluated: flagged, not counted."})
    duplicate = fields.Integer(metadata={"description": "Keys seen before with the same content."})
    measurements = fields.List(fields.Dict())


class SlaWindowCloseSchema(Strict):
    start = _timestamp(required=True, metadata={"description": "The window's start (as the governance summary "
                                                               "shows it)."})


class SlaWindowClosureSchema(Schema):
    contract_id = fields.String()
    sla_id = fields.String()
    window = fields.Dict(metadata={"description": "start, end"})
    confirmed_by = fields.Dict(keys=fields.String(), values=fields.String(),
                               metadata={"description": "client / provider: when each confirmed."})
    closed_at = fields.String(allow_none=True, metadata={"description": "When the second party confirmed."})
    evaluation = fields.Dict(allow_none=True, metadata={"description": "The window's outcome once evaluated, as "
                                                                       "in sla.met.v1 / sla.breached.v1."})


class ReviewCreateSchema(Strict):
    scores = fields.Dict(keys=_name(40), values=fields.Integer(strict=True, validate=validate.Range(min=1, max=5)),
                         required=True, validate=validate.Length(min=1, max=10),
                         metadata={"description": "Named scores 1-5 (names of 1-40 characters, one score at least, at "
                                                  "most ten), e.g. quality, timeliness, communication.",
                                   "minProperties": 1, "maxProperties": 10})
    notes = fields.String(allow_none=True, validate=validate.Length(max=5000))


class ReviewSchema(Schema):
    id = fields.String()
    contract_id = fields.String()
    due_date = _date(allow_none=True)
    scores = fields.Dict()
    overall = fields.String()
    notes = fields.String(allow_none=True)
    recorded_at = _timestamp()


class IssueCreateSchema(Strict):
    title = _name(200, required=True)
    description = fields.String(validate=validate.Length(max=5000))
    severity = _one_of(["low", "medium", "high", "critical"], required=True)
    owner = _one_of(["client", "provider"], required=True, metadata={"description": "The side that must act."})
    due_at = _timestamp(required=True)


class IssueResolveSchema(Strict):
    resolution = _text(5000, required=True)


class IssueSchema(Schema):
    id = fields.String()
    contract_id = fields.String()
    raised_by = fields.String()
    title = fields.String()
    description = fields.String()
    severity = fields.String()
    owner = fields.String()
    due_at = _timestamp()
    level = fields.Integer(metadata={"description": "Escalation level of the governance plan it has reached."})
    status = fields.String()
    raised_at = _timestamp()
    escalations = fields.List(fields.Dict())
    escalation_due_at = _timestamp(allow_none=True)
    resolution = fields.String(allow_none=True)
    resolved_at = _timestamp(allow_none=True)
    resolved_by = fields.String(allow_none=True)


class RatingCreateSchema(Strict):
    score = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(allow_none=True, validate=validate.Length(max=2000))


class TerminationCreateSchema(Strict):
    reason = _text(2000, required=True)
    notice_days = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0, max=365),
                                 metadata={"description": "At least the contract's termination_notice_days."})


class RatingAnswerSchema(Strict):
    text = _text(2000, required=True)


class ContractSchema(Schema):
    id = fields.String()
    tenant_id = fields.String()
    provider_id = fields.String()
    centre_id = fields.String(allow_none=True)
    posting_id = fields.String()
    proposal_id = fields.String()
    status = fields.String()
    version = fields.Integer(metadata={"description": "Terms version: each signed amendment adds one."})
    title = fields.String()
    scope = fields.String()
    category = fields.String()
    model = fields.String()
    responsibilities = fields.Dict()
    deliverables = fields.List(fields.String())
    milestones = fields.List(fields.Dict())
    terms = fields.Dict()
    confidentiality = fields.Dict()
    start_date = _date()
    end_date = _date(allow_none=True)
    termination_notice_days = fields.Integer()
    slas = fields.List(fields.Dict())
    governance = fields.Dict()
    terms_hash = fields.String(metadata={"description": "SHA-256 of the canonical JSON of the signable terms."})
    signatures = fields.List(fields.Dict())
    lane = fields.String()
    created_at = _timestamp()
    updated_at = _timestamp()
    activated_at = _timestamp(allow_none=True)
    completed_at = _timestamp(allow_none=True)
    terminated_at = _timestamp(allow_none=True)
    history = fields.List(fields.Dict(), metadata={
        "description": "Every terms version and who agreed to it; an amendment withdrawn or declined stays here "
                       "(outcome, ended_by, ended_at, what it proposed)."})
    amendments = fields.List(fields.Dict())
    pending_amendment = fields.Dict(allow_none=True)
    ratings = fields.Dict()
    termination = fields.Dict(allow_none=True)


class ContractPageSchema(Schema):
    items = fields.List(fields.Nested(ContractSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class GovernanceSummarySchema(Schema):
    contract_id = fields.String()
    status = fields.String()
    version = fields.Integer()
    sla_compliance = fields.List(fields.Dict(), metadata={"description": "Per SLA: windows met and breached, "
                                                                         "credits, each window's outcome."})
    late_measurements = fields.Integer()
    reviews = fields.Dict(metadata={"description": "recorded, last, next_due, overdue"})
    issues = fields.Dict(metadata={"description": "open, resolved, items"})


# --- billing -------------------------------------------------------------------------------------------------------
# Billing checks each item against the contract (dates, capacity, kind) and answers 422 with the reason per key.


class AmountSchema(Schema):
    amount = fields.String(required=True, metadata={"description": "Decimal string.", "example": "1234.50"})
    currency = fields.String(required=True, metadata={"example": "EUR"})


def _amount(**kwargs) -> fields.Nested:
    return fields.Nested(AmountSchema, **kwargs)


# A positive quantity with at most two decimals, at most 100000 (hours, units), as billing takes it.
QUANTITY_PATTERN = r"^([1-9][0-9]{0,4}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?)|100000(\.00?)?)$"


def _quantity(**kwargs) -> fields.String:
    return DecimalString(validate=validate.Regexp(QUANTITY_PATTERN, error="A positive number with at most two "
                                                  "decimals, at most 100000."),
                         metadata={"pattern": QUANTITY_PATTERN, **kwargs.pop("metadata", {})}, **kwargs)


class BillableItemInSchema(ByKind):
    requires = {"time": ("hours", "description"), "usage": ("units", "description"), "milestone": ("milestone",)}
    belongs = {"hours": "time", "units": "usage", "milestone": "milestone"}

    kind = _one_of(list(requires), required=True)
    key = _text(100, metadata={"description": "Idempotency key of this item."})
    date = _date(required=True)
    hours = _quantity(metadata={"description": "time: hours worked that day, as a decimal string."})
    units = _quantity(metadata={"description": "usage: units (tickets, documents, calls)."})
    milestone = fields.Integer(strict=True, validate=validate.Range(min=0, max=49),
                               metadata={"description": "milestone: its index in the contract."})
    description = _text(500, metadata={"description": "What was done (time and usage)."})


class BillableItemsSchema(OneOrBatch):
    one = BillableItemInSchema

    kind = _one_of(list(BillableItemInSchema.requires))
    key = _text(100)
    date = _date()
    hours = _quantity()
    units = _quantity()
    milestone = fields.Integer(strict=True, validate=validate.Range(min=0, max=49))
    description = _text(500)
    # Kept under another attribute: a dict's own ``items`` method would stand in for a missing batch on dump.
    batch = fields.List(fields.Nested(BillableItemInSchema), validate=validate.Length(min=1, max=500),
                        data_key="items", metadata={"description": "A batch; or send one item's fields alone."})


class BillableItemSchema(Schema):
    id = fields.String()
    contract_id = fields.String()
    kind = fields.String()
    key = fields.String()
    date = _date()
    hours = fields.String(allow_none=True)
    units = fields.String(allow_none=True)
    milestone = fields.Integer(allow_none=True)
    description = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "submitted, approved or rejected."})
    reason = fields.String(allow_none=True, metadata={"description": "Why it was rejected."})
    submitted_at = _timestamp()
    reviewed_at = _timestamp(allow_none=True)
    billing_period = fields.Dict(allow_none=True, metadata={"description": "{start, end}: the invoice that bills "
                                                                           "it (approved items)."})
    outcome = fields.String(metadata={"description": "recorded or duplicate (on submission)."})


class BillableItemsRecordedSchema(Schema):
    contract_id = fields.String()
    recorded = fields.Integer()
    duplicate = fields.Integer(metadata={"description": "Keys seen before with the same content: not counted again."})
    items = fields.List(fields.Nested(BillableItemSchema))


class BillableItemQuerySchema(PageQuerySchema):
    status = _one_of(["submitted", "approved", "rejected"])
    cursor = Cursor("itm")


class BillableItemPageSchema(Schema):
    items = fields.List(fields.Nested(BillableItemSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class RejectionSchema(Strict):
    reason = _text(1000, required=True)


class InvoiceLineSchema(Schema):
    kind = fields.String(metadata={"description": "time, usage, milestone, retainer or sla_credit."})
    description = fields.String()
    date = _date(allow_none=True)
    quantity = fields.String()
    unit_price = _amount(allow_none=True, metadata={
        "description": "The price of the terms in force on the line's date (an amendment never reprices earlier "
                       "work)."})
    amount = _amount(metadata={"description": "Rounded once, half up, to the currency's minor unit."})
    source_id = fields.String(allow_none=True)
    unit = fields.String(allow_none=True, metadata={"description": "What the quantity counts: hours, days, the "
                                                                   "contract's unit of work."})
    basis = fields.String(metadata={"description": "A retainer line's proration: its days of the month's days."})


class PaymentSchema(Schema):
    id = fields.String()
    amount = _amount()
    reference = fields.String()
    received_at = _timestamp()
    recorded_at = _timestamp()
    to_credit_balance = _amount(metadata={
        "description": "What the payment paid beyond the invoice's balance: added to the account's credit balance "
                       "(negative: this invoice was paid from the credit balance)."})


class CreditNoteSchema(Schema):
    id = fields.String()
    number = fields.String(metadata={"example": "CN-000001"})
    invoice_id = fields.String()
    invoice_number = fields.String()
    contract_id = fields.String()
    amount = _amount()
    net = _amount(metadata={"description": "The net it corrects: pro rata of the invoice (an SLA credit: the "
                                           "credit itself)."})
    tax = _amount(metadata={"description": "The tax it corrects (amount - net)."})
    reason = fields.String()
    issued_at = _timestamp()


class RefundCreateSchema(Strict):
    amount = MoneyField(required=True)
    reference = _text(200, required=True, metadata={"description": "The refund's reference; its idempotency key."})


class RefundSchema(Schema):
    id = fields.String()
    contract_id = fields.String()
    tenant_id = fields.String()
    provider_id = fields.String()
    amount = _amount()
    reference = fields.String()
    recorded_at = _timestamp()
    outcome = fields.String(metadata={"description": "recorded or duplicate."})


class InvoiceSchema(Schema):
    id = fields.String()
    number = fields.String(metadata={"description": "Gapless in the issuer's (the provider's) series.",
                                     "example": "INV-000001"})
    tenant_id = fields.String()
    provider_id = fields.String()
    contract_id = fields.String()
    title = fields.String()
    category = fields.String()
    model = fields.String()
    shoring = fields.String(allow_none=True)
    currency = fields.String()
    period = fields.Dict(metadata={"description": "{start, end} (inclusive dates)."})
    issued_at = _timestamp()
    due_date = _date()
    due_at = _timestamp()
    lines = fields.List(fields.Nested(InvoiceLineSchema))
    charges = _amount()
    credits = _amount(metadata={"description": "SLA credits applied."})
    net = _amount()
    tax = fields.Dict(metadata={"description": "{country, name, rate (percent), amount, treatment (domestic, "
                                               "reverse_charge, outside_scope, not_in_table, unknown), note (the "
                                               "wording the invoice carries)}"})
    total = _amount()
    fixed = _amount(metadata={"description": "Retainer and milestones."})
    variable = _amount(metadata={"description": "Time and usage."})
    supplier = fields.Dict(metadata={
        "description": "The provider, who issues the invoice (the platform bills as its agent), as named when "
                       "issued: id, name, legal_name, address, tax_id, country, payment_instructions."})
    client = fields.Dict(metadata={"description": "The client organisation as named when issued: id, name, "
                                                  "legal_name, address, tax_id, country."})
    status = fields.String(metadata={"description": "issued, partially_paid, paid, overpaid, overdue or credited."})
    paid = _amount()
    credited = _amount(metadata={"description": "By credit notes."})
    balance = _amount(metadata={"description": "total - paid - credited; negative when overpaid."})
    overdue_at = _timestamp(allow_none=True)
    payments = fields.List(fields.Nested(PaymentSchema))
    credit_notes = fields.List(fields.Nested(CreditNoteSchema))
    outcome = fields.String(metadata={"description": "recorded or duplicate (on a payment)."})


class InvoiceSummarySchema(Schema):
    id = fields.String()
    number = fields.String()
    contract_id = fields.String()
    tenant_id = fields.String()
    provider_id = fields.String()
    title = fields.String()
    currency = fields.String()
    period = fields.Dict()
    issued_at = _timestamp()
    due_date = _date()
    total = _amount()
    paid = _amount()
    credited = _amount()
    balance = _amount()
    status = fields.String()


class InvoiceListQuerySchema(PageQuerySchema):
    status = _one_of(["issued", "partially_paid", "paid", "overpaid", "overdue", "credited"])
    cursor = Cursor("inv")
    contract_id = _text(64)


class InvoicePageSchema(Schema):
    items = fields.List(fields.Nested(InvoiceSummarySchema), required=True)
    next_cursor = fields.String(allow_none=True)


class PaymentCreateSchema(Strict):
    amount = MoneyField(required=True)
    reference = _text(200, required=True, metadata={"description": "The payment's reference; its idempotency key."})
    received_at = _timestamp(metadata={"description": "When the money arrived (not in the future); default now."})


class CreditNoteCreateSchema(Strict):
    amount = MoneyField(required=True)
    reason = _text(1000, required=True)


class BillingAccountSchema(Schema):
    contract_id = fields.String()
    tenant_id = fields.String()
    provider_id = fields.String()
    title = fields.String()
    status = fields.String()
    currency = fields.String()
    terms = fields.Dict()
    start_date = _date()
    end_date = _date(allow_none=True)
    invoiced_through = _date(allow_none=True)
    next_period_end = _date(allow_none=True, metadata={"description": "The next period invoiced ends then."})
    invoiced = _amount()
    paid = _amount()
    credited = _amount()
    balance = _amount()
    overdue = _amount()
    sla_credits_owed = _amount(metadata={
        "description": "SLA credits that no invoice or credit note could take (they exceeded what the contract's "
        "last invoices can still be credited): owed to the client as a refund."})
    credit_balance = _amount(metadata={
        "description": "Overpayments not yet used: the next invoice is paid from it first, or it is refunded."})
    sla_credits = fields.List(fields.Dict(), metadata={
        "description": "Every SLA credit from the moment its window is evaluated: sla_id, metric, window, owed, "
                       "remaining and state (awaiting_invoice, applied, settled_by_credit_note, owed)."})
    invoices = fields.List(fields.Dict(), metadata={"description": "Each invoice's number, status and balance."})


class InvoiceRunSchema(Strict):
    as_of = _date(metadata={"description": "Invoice periods that ended before this day; default today."})
    tenant_id = _text(64, metadata={"description": "One client organisation; default all."})


class InvoiceRunSummarySchema(Schema):
    as_of = _date()
    invoices_issued = fields.Integer()
    deferred_batches = fields.Integer(metadata={"description": "Batches another run was issuing at the same time."})


class CostReportQuerySchema(Strict):
    json_types = False

    start = _date(required=True, data_key="from")
    end = _date(required=True, data_key="to")


class CostReportSchema(Schema):
    start = _date(attribute="from", data_key="from")
    end = _date(attribute="to", data_key="to")
    months = fields.String()
    currencies = fields.List(fields.Dict(), metadata={
        "description": "Per currency: spend (net of SLA credits and credit notes, before tax), tax, total, fixed "
                       "and variable with their shares, credits, credit_notes (their net), spend by_category, "
                       "by_model, by_shoring and by_provider, and the saving per category against the in-house "
                       "monthly estimate over the months its invoices cover (months_compared)."})


class InHouseCostsSchema(Strict):
    monthly = fields.Dict(keys=_one_of(list(CATEGORY_IDS)), values=MoneyField(), required=True,
                          metadata={"description": "Per category, what the work would cost in-house a month."})
