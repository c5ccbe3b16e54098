"""Core / non-core / borderline: the tenant's core competencies first, then the category's default."""

import pytest

from services.postings import domain
from shared.vocabulary import CoreAssessment


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


def test_a_category_competency_does_not_match_other_categories_or_text():
    result = assess(
        title="digital_marketing report", category="data_entry", competencies=["digital_marketing"]
    )
    assert result.classification is CoreAssessment.NON_CORE


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
