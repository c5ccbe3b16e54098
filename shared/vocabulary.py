"""The platform's common vocabulary: outsourcing models, work categories, shoring classes, lanes.

Category defaults for the core/non-core assessment live here because every service speaks of categories; the
assessment itself belongs to the postings service.
"""

from __future__ import annotations

from enum import StrEnum


class Model(StrEnum):
    BPO = "bpo"
    ITO = "ito"
    KPO = "kpo"
    VIRTUAL_ASSISTANT = "virtual_assistant"
    FREELANCE = "freelance"


FIRM_MODELS = frozenset({Model.BPO, Model.ITO, Model.KPO})
INDIVIDUAL_MODELS = frozenset({Model.VIRTUAL_ASSISTANT, Model.FREELANCE})


class CoreAssessment(StrEnum):
    CORE = "core"
    NON_CORE = "non_core"
    BORDERLINE = "borderline"


# category -> (label, default assessment, why).  Transactional, rule-based work is non-core for almost every
# business; judgement-heavy knowledge work is borderline by default, because it is often close to what
# differentiates a business.
CATEGORIES: dict[str, tuple[str, CoreAssessment, str]] = {
    "administrative_support": (
        "Administrative support",
        CoreAssessment.NON_CORE,
        "routine administration supports the business but rarely differentiates it",
    ),
    "data_entry": ("Data entry", CoreAssessment.NON_CORE, "rule-based, repeatable transactional work"),
    "scheduling": ("Scheduling", CoreAssessment.NON_CORE, "calendar and logistics coordination is routine work"),
    "customer_inquiries": (
        "Basic customer inquiries",
        CoreAssessment.NON_CORE,
        "first-line inquiries follow scripts and knowledge bases",
    ),
    "bookkeeping": ("Bookkeeping", CoreAssessment.NON_CORE, "standardised, regulated transactional work"),
    "helpdesk": ("IT helpdesk", CoreAssessment.NON_CORE, "first- and second-line support is a commodity service"),
    "infrastructure_management": (
        "Infrastructure management",
        CoreAssessment.NON_CORE,
        "running infrastructure is rarely what a business sells",
    ),
    "hr_administration": ("HR administration", CoreAssessment.NON_CORE, "payroll and records are process work"),
    "finance_accounting": (
        "Finance and accounting",
        CoreAssessment.BORDERLINE,
        "reporting is routine but financial control stays close to management",
    ),
    "research_analytics": (
        "Research and analytics",
        CoreAssessment.BORDERLINE,
        "insight work can carry competitive knowledge",
    ),
    "digital_marketing": (
        "Digital marketing",
        CoreAssessment.BORDERLINE,
        "execution is outsourceable, brand and positioning are often core",
    ),
    "software_development": (
        "Software development",
        CoreAssessment.BORDERLINE,
        "product engineering is core for software businesses, non-core for most others",
    ),
}

CATEGORY_IDS = tuple(CATEGORIES)


class Shoring(StrEnum):
    ONSHORE = "onshore"
    NEARSHORE = "nearshore"
    OFFSHORE = "offshore"


class Lane(StrEnum):
    """Workload lane carried by every event and command, so consumers can run per lane."""

    ENTERPRISE = "enterprise"
    SMB = "smb"


class ProviderKind(StrEnum):
    INDIVIDUAL = "individual"
    FIRM = "firm"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# A client's business hours unless it says otherwise (its tenant default, or a posting's own).
DEFAULT_BUSINESS_HOURS = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
