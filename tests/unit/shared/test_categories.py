"""The category taxonomy covers what businesses outsource, and every category of earlier releases still means one."""

from shared.vocabulary.terms import CATEGORIES, LEGACY_CATEGORIES, TAXONOMY, canonical_category, category_aliases

ASKED = {"design_creative", "marketing", "sales", "legal", "hr_recruiting", "finance_accounting", "engineering",
         "software_development", "it_support", "data_entry", "customer_support", "research_analytics", "translation",
         "administrative_support"}


def test_the_taxonomy_covers_what_businesses_outsource_each_with_a_label_and_a_default_assessment():
    assert ASKED <= set(TAXONOMY)
    for label, default, why in TAXONOMY.values():
        assert label and default and why


def test_every_legacy_category_is_still_accepted_and_belongs_to_a_taxonomy_category():
    for legacy, (successor, _) in LEGACY_CATEGORIES.items():
        assert legacy in CATEGORIES and successor in TAXONOMY
        assert canonical_category(legacy) == successor
    assert canonical_category("helpdesk") == canonical_category("infrastructure_management") == "it_support"
    assert set(category_aliases("it_support")) == {"it_support", "helpdesk", "infrastructure_management"}
    assert category_aliases("sales") == ("sales",)
