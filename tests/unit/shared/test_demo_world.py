"""The demo's world is what the gateway accepts, and as varied as the demo says: checked without a stack, so a
schema change that would break `make demo` shows up here first."""

from datetime import date

from services.gateway import schemas
from shared.tools.demo import world
from shared.vocabulary.terms import FIRM_MODELS, INDIVIDUAL_MODELS


def test_every_client_provider_and_posting_of_the_demo_passes_the_gateways_validation():
    for tenant in world.clients("demo 2026-12-06 01:00:00").values():
        assert schemas.TenantCreateSchema().validate(tenant) == {}
    for provider in world.providers():
        assert schemas.ProviderRegistrationSchema().validate(provider) == {}, provider["display_name"]
    start = date(2026, 12, 14)
    for posting in (world.small_business_posting(start), world.enterprise_posting(start)):
        assert schemas.PostingDraftSchema().validate(posting) == {}, posting["title"]


def test_the_world_has_both_segments_individuals_in_several_countries_and_firms_on_several_continents():
    assert {c["segment"] for c in world.clients("x").values()} == {"smb", "enterprise"}
    providers = world.providers()
    individuals = [p for p in providers if p["kind"] == "individual"]
    firms = [p for p in providers if p["kind"] == "firm"]
    assert {m for p in individuals for m in p["models"]} == set(INDIVIDUAL_MODELS)
    assert len({p["country"] for p in individuals}) >= 5
    assert {m for p in firms for m in p["models"]} == set(FIRM_MODELS)
    continents = {c["time_zone"].split("/")[0] for p in firms for c in p["delivery_centres"]}
    assert {"Europe", "Asia", "America", "Africa"} <= continents
    assert world.CHOSEN in {p["display_name"] for p in individuals}


def test_last_weeks_monday_is_a_monday_of_a_week_that_is_over():
    for today in (date(2026, 12, 6), date(2026, 12, 7), date(2026, 12, 13)):
        monday = world.last_weeks_monday(today)
        assert monday.weekday() == 0 and 7 <= (today - monday).days <= 13
