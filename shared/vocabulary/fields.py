"""marshmallow at a service's edges: the strict base schema, loading into ``ValidationFailed``, and fields for the
common vocabulary (money, countries, time zones, languages, clock times)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import pycountry
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.vocabulary.errors import ValidationFailed
from shared.vocabulary.money import Money, is_currency
from shared.vocabulary.times import rfc3339

_ZONES = frozenset(available_timezones())
K = TypeVar("K", bound=str)


class StrictSchema(Schema):
    """Refuses unknown fields."""

    class Meta:
        unknown = RAISE


def load_validated(schema: Schema, payload: Any, message: str) -> Any:
    """``schema.load(payload)``; a ``ValidationError`` leaves as ``ValidationFailed(message)`` with marshmallow's
    messages as details."""
    try:
        return schema.load(payload)
    except ValidationError as err:
        raise ValidationFailed(message, details=err.messages) from err


def _described(kwargs: dict, **properties) -> dict:
    """Field arguments whose metadata carries ``properties`` for API descriptions (the field's own win)."""
    return {**kwargs, "metadata": {**properties, **kwargs.get("metadata", {})}}


# What the vocabulary fields accept, listed for API descriptions (a client may send lower case too).
COUNTRY_CODES = sorted(country.alpha_2 for country in pycountry.countries)
LANGUAGE_CODES = sorted(language.alpha_2 for language in pycountry.languages if hasattr(language, "alpha_2"))
CURRENCY_CODES = sorted(currency.alpha_3 for currency in pycountry.currencies)
TIME_ZONES = sorted(_ZONES - {"Factory", "localtime"})


class CountryCode(fields.String):
    """ISO 3166-1 alpha-2 country code, upper case."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_described(kwargs, enum=COUNTRY_CODES))

    def _deserialize(self, value, attr, data, **kwargs):
        code = super()._deserialize(value, attr, data, **kwargs).upper()
        if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
            raise ValidationError(f"{value!r} is not an ISO 3166-1 alpha-2 country code.")
        return code


class TimeZone(fields.String):
    """IANA time zone name, checked against the tz database (tzdata)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_described(kwargs, enum=TIME_ZONES))

    def _deserialize(self, value, attr, data, **kwargs):
        name = super()._deserialize(value, attr, data, **kwargs)
        if name not in _ZONES:
            raise ValidationError(f"{value!r} is not an IANA time zone.")
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError(f"{value!r} is not an IANA time zone.") from exc
        return name


class LanguageCode(fields.String):
    """ISO 639-1 two-letter language code, lower case."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_described(kwargs, enum=LANGUAGE_CODES))

    def _deserialize(self, value, attr, data, **kwargs):
        code = super()._deserialize(value, attr, data, **kwargs).lower()
        if len(code) != 2 or pycountry.languages.get(alpha_2=code) is None:
            raise ValidationError(f"{value!r} is not an ISO 639-1 language code.")
        return code


class CurrencyCode(fields.String):
    """ISO 4217 currency code, upper case."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_described(kwargs, enum=CURRENCY_CODES))

    def _deserialize(self, value, attr, data, **kwargs):
        code = super()._deserialize(value, attr, data, **kwargs).upper()
        if not is_currency(code):
            raise ValidationError(f"{value!r} is not an ISO 4217 currency code.")
        return code


_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
_START = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ClockTime(fields.String):
    """A wall-clock time ``HH:MM`` (``24:00`` allowed as an end of day)."""

    clock = _CLOCK

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_described(kwargs, pattern=self.clock.pattern))

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if text == "24:00" and not self.clock.match(text):
            raise ValidationError("A day cannot start at 24:00.")
        if not self.clock.match(text):
            raise ValidationError(f"{value!r} is not a time of day HH:MM.")
        return text


class StartTime(ClockTime):
    """The time a day or a shift starts, ``HH:MM``: ``24:00`` ends a day, it never starts one."""

    clock = _START


def id_pattern(prefix: str) -> str:
    """The ids ``shared.vocabulary.stored.new_id(prefix)`` makes: ``<prefix>_`` and 32 lower-case hexadecimal digits."""
    return rf"^{prefix}_[0-9a-f]{{32}}$"


def page_after(cursor: Any, prefix: str) -> str | None:
    """The id a page's ``cursor`` continues after (a cursor is the last id of the page before: ``<prefix>_…``);
    None when it is not such an id."""
    return cursor if isinstance(cursor, str) and re.fullmatch(id_pattern(prefix), cursor) else None


class Cursor(fields.String):
    """Where a list continues: the ``next_cursor`` of the page before, the last id of that page (``<prefix>_…``)."""

    def __init__(self, prefix: str, **kwargs):
        self.prefix = prefix
        super().__init__(**_described(kwargs, pattern=id_pattern(prefix),
                                      description="The `next_cursor` of the page before."))

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if page_after(text, self.prefix) is None:
            raise ValidationError("Not a cursor this API issued.")
        return text


# Every decimal a client sends fits these bounds (money, rates, SLA targets, measurements: a trillion, to six
# places). Past them ("1e7000", forty digits) a value is refused here, rather than overflowing the database's
# Decimal128 (34 digits) or growing a thousand-fold when written out in full.
MAX_INTEGER_DIGITS = 15
MAX_DECIMAL_PLACES = 6


def check_decimal_bounds(number: Decimal) -> Decimal:
    """``number`` when it is finite and within the bounds above; else a ``ValidationError`` saying which."""
    if not number.is_finite():
        raise ValidationError("Must be a finite number.")
    if number.adjusted() >= MAX_INTEGER_DIGITS and not number.is_zero():
        raise ValidationError(f"At most {MAX_INTEGER_DIGITS} digits before the decimal point.")
    if -number.as_tuple().exponent > MAX_DECIMAL_PLACES:
        raise ValidationError(f"At most {MAX_DECIMAL_PLACES} decimal places.")
    return number


# A decimal string within the bounds, as API descriptions give it (the parser also takes an exponent or spaces).
DECIMAL_PATTERN = f"^-?[0-9]{{1,{MAX_INTEGER_DIGITS}}}(\\.[0-9]{{1,{MAX_DECIMAL_PLACES}}})?$"
NON_NEGATIVE_DECIMAL_PATTERN = DECIMAL_PATTERN.replace("^-?", "^")
# Money: never negative where the description uses it, at most 4 places.
MONEY_AMOUNT_PATTERN = f"^[0-9]{{1,{MAX_INTEGER_DIGITS}}}(\\.[0-9]{{1,4}})?$"


def parse_decimal(value: Any) -> Decimal:
    """A decimal sent as a string (``"60"``, ``"99.5"``), within bounds; JSON numbers are refused, as for money."""
    if not isinstance(value, str):
        raise ValidationError("Send the number as a decimal string.")
    try:
        number = Decimal(value.strip())
    except InvalidOperation as exc:
        raise ValidationError(f"{value!r} is not a decimal number.") from exc
    return check_decimal_bounds(number)


class BoundedDecimal(fields.Decimal):
    """marshmallow's Decimal, within ``check_decimal_bounds``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and len(value) > 64:  # no bounded number is written longer
            raise ValidationError("Not a number of a sensible size.")
        return check_decimal_bounds(super()._deserialize(value, attr, data, **kwargs))


class MoneySchema(Schema):
    amount = BoundedDecimal(required=True, as_string=True, places=None, allow_nan=False,
                            metadata={"type": "string", "pattern": MONEY_AMOUNT_PATTERN,
                                      "description": "A decimal string, never a JSON number."})
    currency = CurrencyCode(required=True)


class MoneyField(fields.Nested):
    """``{"amount": "12.50", "currency": "EUR"}`` <-> ``Money``; a float amount is refused."""

    def __init__(self, *, non_negative: bool = True, **kwargs):
        super().__init__(MoneySchema, **kwargs)
        self.non_negative = non_negative

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, dict) and isinstance(value.get("amount"), float):
            raise ValidationError({"amount": ["Send the amount as a decimal string, not a float."]})
        loaded = super()._deserialize(value, attr, data, **kwargs)
        amount: Decimal = loaded["amount"]
        if self.non_negative and amount < 0:
            raise ValidationError({"amount": ["Must not be negative."]})
        if amount.as_tuple().exponent < -4:
            raise ValidationError({"amount": ["At most 4 decimal places."]})
        return Money(amount, loaded["currency"])

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if isinstance(value, dict):
            value = Money.parse(value)
        return value.to_wire()


NonEmptyString = validate.Length(min=1)


# Every date and time the platform accepts, on every route and inbound command, lies in these years: a contract's
# end, an SLA window or a billing period computed from one never leaves Python's calendar (9999-12-31 plus a day is
# an OverflowError), and nothing dated before the epoch is real work.
FIRST_YEAR, LAST_YEAR = 1970, 2999
_OUT_OF_RANGE = f"Between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31."
# The range as a pattern on the year, for API descriptions (next to ``format: date`` / ``date-time``).
YEAR_PATTERN = "^(19[7-9][0-9]|2[0-9]{3})-"


def check_in_range(moment: date) -> date:
    """``moment`` (a date or a datetime) when its year is within the range above; else a ``ValidationError``."""
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValidationError(_OUT_OF_RANGE)
    return moment


def _range_metadata(kwargs: dict, string_format: str | None = None) -> dict:
    """Field arguments whose metadata describes the range (and the format of a date kept as a string)."""
    described = {"format": string_format} if string_format else {}
    return {**kwargs, "metadata": {**described, "pattern": YEAR_PATTERN, **kwargs.get("metadata", {})}}


class BoundedDate(fields.Date):
    """An ISO date (``2027-01-04``) within the platform's range, loaded as a ``date``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_range_metadata(kwargs))

    def _deserialize(self, value, attr, data, **kwargs):
        return check_in_range(super()._deserialize(value, attr, data, **kwargs))


class WireDate(fields.String):
    """An ISO date within the platform's range, kept as its ``YYYY-MM-DD`` string."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_range_metadata(kwargs, "date"))

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise ValidationError("Not a date YYYY-MM-DD.") from exc
        return check_in_range(day).isoformat()


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def parse_rfc3339(value: Any) -> datetime:
    """An RFC 3339 time with its offset (``2027-01-04T09:00:00Z``) within the platform's range, as UTC."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValidationError("Not an RFC 3339 time with its offset (2027-01-04T09:00:00Z).")
    text = value.upper().replace("Z", "+00:00")
    whole, dot, rest = text.partition(".")
    if dot:  # Python reads at most microseconds: cut the digits past six, keep the offset
        digits = re.match(r"\d+", rest).group(0)
        text = f"{whole}.{digits[:6]}{rest[len(digits):]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError("Not an RFC 3339 time with its offset (2027-01-04T09:00:00Z).") from exc
    check_in_range(moment)
    try:
        utc = moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValidationError(_OUT_OF_RANGE) from exc
    return check_in_range(utc)


class BoundedDateTime(fields.String):
    """An RFC 3339 time within the platform's range, loaded as an aware UTC ``datetime``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_range_metadata(kwargs, "date-time"))

    def _deserialize(self, value, attr, data, **kwargs):
        return parse_rfc3339(super()._deserialize(value, attr, data, **kwargs))

    def _serialize(self, value, attr, obj, **kwargs):
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return super()._serialize(value, attr, obj, **kwargs)


# Control characters (C0, DEL, C1) and the bidirectional formatting characters that make a name display otherwise
# than it reads (``U+202E`` turns "invoice\u202Efdp.exe" into "invoiceexe.pdf"): never part of a name or a title.
_NOT_IN_NAMES = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_NAME_FORBIDDEN = re.compile(f"[{_NOT_IN_NAMES}]")
# The same rule as a JSON Schema pattern, for API descriptions: one visible character at least, none of the above.
NAME_PATTERN = f"^[^{_NOT_IN_NAMES}]*[^\\s{_NOT_IN_NAMES}][^{_NOT_IN_NAMES}]*$"


class Name(fields.String):
    """A name or title: one line, stripped of surrounding whitespace, without control or bidi formatting
    characters."""

    def __init__(self, *args, **kwargs):
        kwargs["metadata"] = {"pattern": NAME_PATTERN, **kwargs.get("metadata", {})}
        super().__init__(*args, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if _NAME_FORBIDDEN.search(text):
            raise ValidationError("No control or bidirectional formatting characters in a name or title.")
        return text


def jsonable(value: Any) -> Any:
    """The wire form of a Python value: times as RFC 3339 UTC, dates as ISO dates, decimals as plain decimal
    strings (no exponent), containers element by element, everything else as it is."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


_PARTY_ID = {"client": "tenant_id", "provider": "provider_id"}


@lru_cache
def _party_schema(kinds: tuple[str, ...]) -> Schema:
    return StrictSchema.from_dict({
        "kind": fields.String(required=True, validate=validate.OneOf(kinds)),
        **{key: fields.String(validate=validate.Length(min=1, max=64)) for key in _PARTY_ID.values()},
    }, name="PartySchema")()


def load_party(party: Any, kinds: Iterable[K], message: str, *, problem: str | None = None) -> tuple[K, str | None]:
    """Who acts: ``{"kind": "client", "tenant_id": ...}``, ``{"kind": "provider", "provider_id": ...}`` or, where
    ``kinds`` has it, ``{"kind": "operator"}`` (no id). The kind comes back as the member of ``kinds`` (a service's
    ``Party`` enum, or plain strings). Anything else is refused with ``message`` and marshmallow's details, or with
    ``problem`` as the one detail when given."""
    members = {str(kind): kind for kind in kinds}
    try:
        loaded = _party_schema(tuple(members)).load(party)
    except ValidationError as exc:
        raise ValidationFailed(message, details={"party": [problem]} if problem else exc.messages) from exc
    kind = members[loaded["kind"]]
    party_id = loaded.get(_PARTY_ID.get(loaded["kind"], ""))
    if loaded["kind"] in _PARTY_ID and not party_id:
        raise ValidationFailed(message, details={"party": [problem or "Missing its id."]})
    return kind, party_id
