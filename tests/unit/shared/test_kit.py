"""Pure parts of the platform kit: envelope, configuration, money and vocabulary fields, API keys."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from marshmallow import Schema, ValidationError

from shared.runtime import config, envelope
from shared.vocabulary import apikeys
from shared.vocabulary.fields import ClockTime, CountryCode, LanguageCode, MoneyField, TimeZone, parse_decimal
from shared.vocabulary.money import Money


def test_envelope_carries_cloudevents_attributes_tenant_lane_and_trace_ids():
    moment = datetime(2026, 11, 29, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    event = envelope.build(
        service="postings", routing_key="posting.published.v1", subject="pst_1", data={"x": 1}, lane="smb",
        tenant="ten_1", correlation_id="corr", causation_id="cause", time=moment,
    )
    assert event["type"] == "tasklinkr.postings.posting.published.v1"
    assert event["source"] == "/tasklinkr/postings"
    assert event["time"] == "2026-11-29T08:00:00.000Z"
    assert event["dataschema"] == "urn:tasklinkr:contracts-schema:events/postings/posting.published.v1"
    assert (event["tenantid"], event["lane"], event["correlationid"], event["causationid"]) == (
        "ten_1", "smb", "corr", "cause")
    assert envelope.routing_key_of(event) == "posting.published.v1"
    headers = envelope.amqp_headers(event)
    assert headers["lane"] == "smb" and headers["tenant"] == "ten_1"
    assert headers["nameko.correlation_id"] == "corr"


def test_an_event_without_its_own_trace_starts_one_at_itself():
    event = envelope.build(service="providers", routing_key="provider.registered.v1", subject="p", data={},
                           lane="smb")
    assert event["correlationid"] == event["causationid"] == event["id"]
    assert "tenantid" not in event


@pytest.mark.parametrize("bad", ["posting.published", "Posting.published.v1", "posting.published.v0", "a.b.c.v1"])
def test_event_types_must_follow_the_naming_convention(bad):
    with pytest.raises(ValueError):
        envelope.build(service="s", routing_key=bad, subject="x", data={}, lane="smb")


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        envelope.rfc3339(datetime(2026, 1, 1))


def test_environment_beats_yaml_file_beats_default_and_service_specific_beats_platform(tmp_path):
    path = tmp_path / "tasklinkr.yaml"
    path.write_text("amqp_uri: amqp://file/\nmax_workers: 7\nservices:\n  postings:\n    mongo_uri: mongodb://file-postings\n")
    env = {"TASKLINKR_CONFIG_FILE": str(path), "TASKLINKR_MONGO_URI": "mongodb://env-all"}
    assert config.get("amqp_uri", environ=env) == "amqp://file/"
    assert config.get("max_workers", "postings", environ=env) == 7
    assert config.get("mongo_uri", "providers", environ=env) == "mongodb://env-all"
    assert config.get("mongo_uri", "postings", environ=env) == "mongodb://env-all"
    env["TASKLINKR_POSTINGS_MONGO_URI"] = "mongodb://env-postings"
    assert config.get("mongo_uri", "postings", environ=env) == "mongodb://env-postings"
    assert config.get("mongo_database", "billing", environ=env) == "tasklinkr_billing"
    env["TASKLINKR_AMQP_URI"] = "amqp://env/"
    assert config.get("amqp_uri", environ=env) == "amqp://env/"


def test_every_setting_is_documented_in_the_configuration_reference():
    from pathlib import Path

    reference = (Path(config.__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    assert config.markdown_table() in reference, "regenerate the table in docs/configuration.md: python -c " \
        "'from shared.runtime.config import *; print(markdown_table())'"


def test_a_service_declares_its_own_settings_next_to_its_code_and_the_reader_finds_them():
    from services.matching import settings as matching_settings

    top_k = next(setting for setting in matching_settings.SETTINGS if setting.name == "matching_top_k")
    assert top_k in config.declared() and top_k not in config.SETTINGS
    assert config.get("matching_top_k", environ={}) == 10
    assert config.get("matching_top_k", environ={"TASKLINKR_MATCHING_TOP_K": "3"}) == 3
    # every service's nameko config carries every service's own settings: postings honours contracting's backdating
    assert config.nameko_config("postings", environ={"TASKLINKR_CONTRACTING_MAX_BACKDATE_DAYS": "7"})[
        "CONTRACTING_MAX_BACKDATE_DAYS"] == 7
    assert "`services/matching/settings.py`" in config.markdown_table()


def test_a_setting_declared_twice_is_refused(monkeypatch):
    from services.billing import settings as billing_settings

    monkeypatch.setattr(billing_settings, "SETTINGS", billing_settings.SETTINGS + (config.SETTINGS[1],))
    config.declared.cache_clear()
    try:
        with pytest.raises(ValueError, match="amqp_uri.*declared twice"):
            config.declared()
    finally:
        monkeypatch.undo()
        config.declared.cache_clear()


class _Sample(Schema):
    price = MoneyField(required=True)
    country = CountryCode()
    zone = TimeZone()
    language = LanguageCode()
    opens = ClockTime()


def test_money_is_decimal_with_an_iso_currency_and_floats_are_refused():
    loaded = _Sample().load({"price": {"amount": "12.50", "currency": "eur"}})
    assert loaded["price"] == Money(Decimal("12.50"), "EUR")
    assert _Sample().dump(loaded)["price"] == {"amount": "12.50", "currency": "EUR"}
    with pytest.raises(ValidationError) as float_error:
        _Sample().load({"price": {"amount": 12.5, "currency": "EUR"}})
    assert "amount" in float_error.value.messages["price"]
    with pytest.raises(ValidationError):
        _Sample().load({"price": {"amount": "1", "currency": "XXY"}})
    with pytest.raises(ValidationError):
        _Sample().load({"price": {"amount": "-1", "currency": "EUR"}})


@pytest.mark.parametrize("amount, why", [
    ("1e7000", "digits before"), ("1234567890123456789012345678901234567", "digits before"),
    ("0E-10000", "decimal places"), ("Infinity", "not permitted"), ("1" * 100, "sensible size"),
])
def test_an_amount_too_large_or_too_precise_to_be_money_is_refused_with_the_reason(amount, why):
    with pytest.raises(ValidationError) as refused:
        _Sample().load({"price": {"amount": amount, "currency": "EUR"}})
    assert why in str(refused.value.messages["price"]["amount"])


def test_decimal_strings_stay_within_the_bounds_every_service_stores():
    assert parse_decimal(" 999999999999999.999999 ") == Decimal("999999999999999.999999")
    for text, why in (("1e9999", "digits before"), ("1000000000000000", "digits before"),
                      ("0.0000001", "decimal places"), ("NaN", "finite"), ("x", "not a decimal")):
        with pytest.raises(ValidationError) as refused:
            parse_decimal(text)
        assert why in str(refused.value.messages), text
    with pytest.raises(ValidationError):
        parse_decimal(60)  # a JSON number


def test_money_round_trips_through_bson_exactly():
    money = Money(Decimal("1234.5678"), "USD")
    assert Money.from_bson(money.to_bson()) == money


@pytest.mark.parametrize(
    "field, good, bad",
    [("country", "ph", "XX"), ("zone", "Asia/Manila", "Mars/Base"), ("language", "EN", "zz"),
     ("opens", "24:00", "25:00")],
)
def test_vocabulary_fields_accept_real_codes_and_refuse_invented_ones(field, good, bad):
    assert _Sample().load({"price": {"amount": "1", "currency": "USD"}, field: good})[field]
    with pytest.raises(ValidationError) as error:
        _Sample().load({"price": {"amount": "1", "currency": "USD"}, field: bad})
    assert field in error.value.messages


def test_api_keys_are_random_kinded_and_stored_as_a_digest():
    key = apikeys.generate(apikeys.CLIENT)
    assert apikeys.kind_of(key) == apikeys.CLIENT
    assert apikeys.kind_of(apikeys.generate(apikeys.PROVIDER)) == apikeys.PROVIDER
    assert apikeys.generate(apikeys.CLIENT) != key
    assert apikeys.digest(key) != key and len(apikeys.digest(key)) == 64
    assert apikeys.kind_of("tlk_x_" + "a" * 40) is None
    assert apikeys.kind_of("Bearer nonsense") is None


def test_utc_now_is_timezone_aware():
    assert envelope.utc_now().tzinfo is UTC
