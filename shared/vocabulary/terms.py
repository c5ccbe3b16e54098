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


# category -> (label, default assessment, why): the taxonomy of what businesses outsource. Transactional,
# rule-based work is non-core for almost every business; judgement-heavy knowledge work is borderline by default,
# because it is often close to what differentiates a business.
TAXONOMY: dict[str, tuple[str, CoreAssessment, str]] = {
    "administrative_support": (
        "Administrative support",
        CoreAssessment.NON_CORE,
        "routine administration and scheduling support the business but rarely differentiate it",
    ),
    "data_entry": ("Data entry", CoreAssessment.NON_CORE, "rule-based, repeatable transactional work"),
    "customer_support": (
        "Customer support",
        CoreAssessment.NON_CORE,
        "first-line inquiries follow scripts and knowledge bases",
    ),
    "it_support": (
        "IT support",
        CoreAssessment.NON_CORE,
        "helpdesk and running infrastructure are commodity services for most businesses",
    ),
    "hr_recruiting": (
        "HR and recruiting",
        CoreAssessment.NON_CORE,
        "payroll, records and sourcing candidates are process work; who to hire stays with the client",
    ),
    "finance_accounting": (
        "Finance and accounting",
        CoreAssessment.BORDERLINE,
        "bookkeeping is routine but financial control stays close to management",
    ),
    "translation": ("Translation", CoreAssessment.NON_CORE, "language work to a given text and glossary"),
    "research_analytics": (
        "Research and analytics",
        CoreAssessment.BORDERLINE,
        "insight work can carry competitive knowledge",
    ),
    "marketing": (
        "Marketing",
        CoreAssessment.BORDERLINE,
        "execution is outsourceable, brand and positioning are often core",
    ),
    "sales": (
        "Sales",
        CoreAssessment.BORDERLINE,
        "lead generation is outsourceable, customer relationships are often core",
    ),
    "design_creative": (
        "Design and creative",
        CoreAssessment.BORDERLINE,
        "production design is outsourceable, a brand's identity is often core",
    ),
    "legal": (
        "Legal",
        CoreAssessment.BORDERLINE,
        "routine contracts and compliance are outsourceable, legal strategy stays with management",
    ),
    "engineering": (
        "Engineering",
        CoreAssessment.BORDERLINE,
        "drafting and analysis are outsourceable, product engineering is core for engineering businesses",
    ),
    "software_development": (
        "Software development",
        CoreAssessment.BORDERLINE,
        "product engineering is core for software businesses, non-core for most others",
    ),
}

# The categories of earlier releases, still accepted and found in stored data, and the taxonomy category each now
# belongs to. Rules compare categories by ``canonical_category``: a provider serving ``helpdesk`` serves
# ``it_support`` postings, and the reverse.
LEGACY_CATEGORIES: dict[str, tuple[str, tuple[str, CoreAssessment, str]]] = {
    "scheduling": ("administrative_support", (
        "Scheduling", CoreAssessment.NON_CORE, "calendar and logistics coordination is routine work")),
    "customer_inquiries": ("customer_support", (
        "Basic customer inquiries", CoreAssessment.NON_CORE,
        "first-line inquiries follow scripts and knowledge bases")),
    "bookkeeping": ("finance_accounting", (
        "Bookkeeping", CoreAssessment.NON_CORE, "standardised, regulated transactional work")),
    "helpdesk": ("it_support", (
        "IT helpdesk", CoreAssessment.NON_CORE, "first- and second-line support is a commodity service")),
    "infrastructure_management": ("it_support", (
        "Infrastructure management", CoreAssessment.NON_CORE,
        "running infrastructure is rarely what a business sells")),
    "hr_administration": ("hr_recruiting", (
        "HR administration", CoreAssessment.NON_CORE, "payroll and records are process work")),
    "digital_marketing": ("marketing", (
        "Digital marketing", CoreAssessment.BORDERLINE,
        "execution is outsourceable, brand and positioning are often core")),
}

# Every category a posting, profile or estimate may name: the taxonomy's, then the legacy ones.
CATEGORIES: dict[str, tuple[str, CoreAssessment, str]] = {
    **TAXONOMY, **{legacy: meaning for legacy, (_, meaning) in LEGACY_CATEGORIES.items()},
}
TAXONOMY_IDS = tuple(TAXONOMY)


def canonical_category(category: str) -> str:
    """The taxonomy category a category id belongs to (itself, or a legacy id's successor)."""
    legacy = LEGACY_CATEGORIES.get(category)
    return legacy[0] if legacy else category


def category_aliases(category: str) -> tuple[str, ...]:
    """Every id that ``canonical_category`` maps to the same taxonomy category as ``category``."""
    canonical = canonical_category(category)
    return (canonical, *(old for old, (new, _) in LEGACY_CATEGORIES.items() if new == canonical))


CATEGORY_IDS = tuple(CATEGORIES)


class Shoring(StrEnum):
    ONSHORE = "onshore"
    NEARSHORE = "nearshore"
    OFFSHORE = "offshore"


class Lane(StrEnum):
    """Workload lane carried by every event and command: each lane has its own queues and consumers, so large work
    and small work scale independently and a flood in one does not slow the other (docs/architecture.md, Lanes)."""

    ENTERPRISE = "enterprise"  # large work: enterprise organisations; BPO, ITO and KPO firms
    SMB = "smb"  # small work: small businesses; virtual assistants and freelancers


class ProviderKind(StrEnum):
    INDIVIDUAL = "individual"
    FIRM = "firm"


LANES = tuple(Lane)
# The lane of a message that names none (or one this release does not know), and of work that belongs to nobody.
DEFAULT_LANE = Lane.SMB
# A client organisation's segment (postings' tenants) is the size of its work: the segments are the lanes' names.
SEGMENTS = tuple(lane.value for lane in Lane)


def lane_of(*, segment: str | None = None, provider_kind: str | None = None) -> Lane:
    """THE lane rule: the lane of an event or command is the lane of the work it belongs to.

    - Work of a client organisation (its tenant record, postings, proposals, shortlists, contracts, SLAs, invoices,
      payments, and the commands its systems send): the client's ``segment`` (enterprise or smb). Events about
      a contract or an invoice carry the lane their contract was created in, which came from the award's client.
    - Work that is a provider's alone (its profile, and the commands its systems send): by ``provider_kind``, a
      firm (BPO/ITO/KPO) is large work, an individual (virtual assistant, freelancer) small work.
    - Anything else: ``DEFAULT_LANE``.

    A provider's profile events concern every lane (matching ranks a provider for postings of both lanes): the
    catalog marks them ``every_lane`` and the topology delivers a copy to each lane's queue
    (``shared.runtime.topology``); their envelope still carries the provider's own lane from this rule.
    """
    if segment is not None:
        if segment not in SEGMENTS:
            raise ValueError(f"unknown segment {segment!r}; one of {', '.join(SEGMENTS)}")
        return Lane(segment)
    if provider_kind is not None:
        if provider_kind not in tuple(ProviderKind):
            raise ValueError(f"unknown provider kind {provider_kind!r}")
        return Lane.ENTERPRISE if provider_kind == ProviderKind.FIRM else Lane.SMB
    return DEFAULT_LANE


def known_lanes(names) -> tuple[Lane, ...]:
    """``names`` (``--lane`` values, a config list or a comma-separated string) as lanes, in the lanes' order; all
    lanes when empty. An unknown name is a ValueError."""
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",")]
    wanted = {name for name in (names or ()) if name}
    unknown = wanted - set(SEGMENTS)
    if unknown:
        raise ValueError(f"unknown lane(s) {', '.join(sorted(unknown))}; choose from {', '.join(SEGMENTS)}")
    return tuple(lane for lane in Lane if not wanted or lane in wanted)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# A client's business hours unless it says otherwise (its tenant default, or a posting's own).
# What a client scores a provider on in a performance review, each 1-5 (one criterion at least per review).
REVIEW_CRITERIA = ("quality", "timeliness", "communication", "value")

DEFAULT_BUSINESS_HOURS = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
