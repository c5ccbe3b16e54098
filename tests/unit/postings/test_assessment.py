"""Core / non-core / borderline: the tenant's core competencies first, then the category's default."""

import pytest

from services.postings import domain
from shared.vocabulary.errors import Conflict
from shared.vocabulary.terms import CoreAssessment


def assess(title="Monthly reporting", category="administrative_support", skills=(), competencies=()):
    return domain.assess(
        title=title, category=category, required_skills=skills, core_competencies=competencies
    )


def test_a_category_the_tenant_declared_core_makes_the_posting_core():
    result = assess(category="digital_marketing", competencies=["digital_marketing"])
    assert result.classification is CoreAssessment.CORE
    assert result.reason == "Core work: its category, Digital marketing, is one of your core competencies."


def test_a_free_text_competency_in_the_title_makes_the_posting_core():
    result = assess(title="Dental Care appointment reminders", competencies=["dental care"])
    assert result.classification is CoreAssessment.CORE
    assert result.reason == "Core work: the title mentions your core competency “dental care”."


def test_a_free_text_competency_in_a_required_skill_makes_the_posting_core():
    result = assess(skills=["orthodontic dental care coding"], competencies=["dental care"])
    assert result.classification is CoreAssessment.CORE
    assert result.reason == (
        "Core work: the required skill “orthodontic dental care coding” "
        "matches your core competency “dental care”."
    )


def test_every_match_is_named_in_the_reason():
    result = assess(
        title="Dental care marketing",
        category="digital_marketing",
        skills=["dental care"],
        competencies=["digital_marketing", "dental care"],
    )
    assert result.reason == (
        "Core work: its category, Digital marketing, is one of your core competencies; "
        "the title mentions your core competency “dental care”; "
        "the required skill “dental care” matches your core competency “dental care”."
    )


@pytest.mark.parametrize("title", ["Careers page upkeep", "Dentalcare invoices", "Dental-caregiver rota"])
def test_a_competency_matches_only_whole_words(title):
    assert assess(title=title, competencies=["care"]).classification is CoreAssessment.NON_CORE


def test_a_competency_matches_across_extra_spaces_and_any_case():
    assert (
        assess(title="DENTAL   care triage", competencies=["dental care"]).classification
        is CoreAssessment.CORE
    )


def test_a_competency_with_regex_characters_is_matched_literally():
    assert assess(title="C++ code reviews", competencies=["c++"]).classification is CoreAssessment.CORE
    assert assess(title="Cxx code reviews", competencies=["c++"]).classification is CoreAssessment.NON_CORE


def test_a_category_competency_is_core_by_its_category_and_borderline_by_the_meaning_of_a_title_elsewhere():
    result = assess(
        title="digital_marketing report", category="data_entry", competencies=["digital_marketing"]
    )
    assert result.classification is CoreAssessment.BORDERLINE
    assert ("the title means your core competency “Digital marketing (a category)” (“marketing”, “digital”), though "
            "you chose Data entry") in result.reason
    assert assess(title="Invoice typing", category="data_entry",
                  competencies=["digital_marketing"]).classification is CoreAssessment.NON_CORE


# (title, competency): a paraphrase in words the client did not use, in a category the client did not list
PARAPHRASES = [
    ("Orthodontic treatment planning", "dental care"),
    ("Teeth care coordinator", "dental care"),
    ("Oral health therapy follow-ups", "dental care"),
    ("Talent acquisition coordinator", "recruiting"),
    ("Hiring pipeline for engineers", "recruitment"),
    ("Build our mobile app", "software development"),
    ("Accounts payable reconciliation", "book keeping"),
    ("Client service desk", "customer support"),
    ("Develop new menu recipes", "recipe development"),
    ("Localization of our product manuals", "manual translation"),
]
# near misses: a shared generic word, a longer word that starts the same, a brand that looks alike
NEAR_MISSES = [
    ("Customer care inbox", "dental care"),
    ("Careers page upkeep", "care"),
    ("Dentsply invoice entry", "dental care"),
    ("Management reporting pack", "project management"),
    ("Translator invoices filing", "patient care"),
    ("Recipe card typing", "software development"),
]


@pytest.mark.parametrize(("title", "competency"), PARAPHRASES, ids=[p[0] for p in PARAPHRASES])
def test_a_paraphrase_of_a_core_competency_is_core_and_needs_the_explicit_confirmation(title, competency):
    result = assess(title=title, category="administrative_support", competencies=[competency])
    assert result.classification is CoreAssessment.CORE, result.reason
    assert f"the title means your core competency “{competency}”" in result.reason
    with pytest.raises(Conflict):
        domain.confirm_assessment(result, confirm_core=False)


@pytest.mark.parametrize(("title", "competency"), NEAR_MISSES, ids=[p[0] for p in NEAR_MISSES])
def test_a_near_miss_keeps_the_categorys_default(title, competency):
    assert assess(title=title, competencies=[competency]).classification is CoreAssessment.NON_CORE


def test_a_title_that_carries_only_part_of_a_competency_is_borderline_without_a_confirmation():
    result = assess(title="Dental appointment reminders", competencies=["dental care"])
    assert result.classification is CoreAssessment.BORDERLINE
    assert result.reason.startswith("Possibly core: the title touches your core competency “dental care” (“dental”)")
    assert domain.confirm_assessment(result, confirm_core=False) is result


def test_the_description_is_not_searched():
    assert (
        domain.assess_posting(
            {
                "title": "Inbox help",
                "category": "scheduling",
                "required_skills": [],
                "description": "dental care",
            },
            {"core_competencies": ["dental care"]},
        ).classification
        is CoreAssessment.NON_CORE
    )


def test_without_a_match_a_non_core_category_keeps_its_default_and_says_why():
    result = assess(category="data_entry", competencies=["dental care"])
    assert result.classification is CoreAssessment.NON_CORE
    assert result.reason == (
        "Data entry is non-core by default (rule-based, repeatable transactional work), "
        "and none of your core competencies appear in this posting."
    )


def test_without_a_match_a_borderline_category_stays_borderline():
    result = assess(category="research_analytics")
    assert result.classification is CoreAssessment.BORDERLINE
    assert result.reason == (
        "Research and analytics is borderline by default (insight work can carry competitive knowledge), "
        "and none of your core competencies appear in this posting."
    )


def test_a_draft_already_shows_its_assessment_unconfirmed(tenant):
    from .builders import make_posting

    posting = make_posting(tenant, category="digital_marketing")
    assert posting["assessment"]["classification"] == "core"
    assert posting["assessment"]["confirmed_core"] is False


def test_competencies_are_trimmed_deduplicated_and_category_ids_canonical():
    assert domain.normalise_competencies([" Dental  care ", "dental care", "Digital_Marketing"]) == [
        "Dental care",
        "digital_marketing",
    ]


def test_a_legacy_category_competency_covers_postings_in_its_taxonomy_category():
    result = assess(title="Quarterly campaign", category="marketing", competencies=["digital_marketing"])
    assert result.classification is CoreAssessment.CORE
    assert result.reason == "Core work: its category, Marketing, is one of your core competencies."
