"""A poison message in each platform service: an event that passes its contract but makes the service's real handler
raise every time is retried through ``TASKLINKR_RETRY_DELAYS``, then parked in ``dlq.<service>`` with its error,
while every other message of the same queue is applied.

Postings consumes only shortlists (``matches.proposed.v1``, ``shortlist.updated.v1``), which it stores as they come
or ignores when older: no contract-valid shortlist makes its handler raise, so it has no case here. Providers and
the gateway consume no events. The shared mechanism (and a hanging handler cut off by its deadline) is proven on the
fault rig's ledger consumer: ``tests/faults/test_delivery_faults.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from services.billing.service import BillingService
from services.contracting.service import ContractingService
from services.matching.service import MatchingService
from shared.runtime.inbox import APPLIED_EVENTS, applied_claims, claim_id
from shared.runtime.messaging import ATTEMPTS_HEADER
from tests.integration.billing import feeds
from tests.integration.contracting import awards
from tests.support.kit import dead_letters
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

RETRY_DELAYS = (0.1, 0.2)
GOOD_EVENTS = 4


@dataclass(frozen=True)
class Case:
    service: type
    handler: str
    prepare: Callable  # (amqp_uri, database) -> the good events of the queue, ready to publish
    poison: Callable  # () -> the contract-valid event the handler refuses every time
    error: str  # what the parked message's error says


def _billing_amendments(amqp_uri, database) -> list[dict]:
    """Amendments of contracts billing holds accounts for (their activations applied first)."""
    start = datetime.now(UTC).date().replace(day=1)
    wires = [feeds.contract(tenant_id=feeds.hex_id("ten"), provider_id=feeds.hex_id("prv"), engagement="hourly",
                            price="20.00", start=start) for _ in range(GOOD_EVENTS)]
    for wire in wires:
        feeds.publish(amqp_uri, feeds.contract_activated(wire))
    assert wait_for(lambda: database.accounts.count_documents({"_id": {"$in": [w["id"] for w in wires]}})
                    == GOOD_EVENTS)
    return [feeds.contract_amended(wire, hours_per_week=30) for wire in wires]


def _billing_poison() -> dict:
    """An amendment of a contract billing never saw activated: 'No billing account ... yet', every time."""
    wire = feeds.contract(tenant_id=feeds.hex_id("ten"), provider_id=feeds.hex_id("prv"), engagement="hourly",
                          price="20.00", start=datetime.now(UTC).date().replace(day=1))
    return feeds.contract_amended(wire, hours_per_week=30)


def _awards(amqp_uri, database) -> list[dict]:
    return [awards.award_event(start=datetime.now(UTC).date() + timedelta(days=7)) for _ in range(GOOD_EVENTS)]


def _award_poison() -> dict:
    """An award starting in the last week of 9999: its end date (start + 26 weeks) is past the calendar."""
    return awards.award_event(start=date(9999, 12, 27), duration_weeks=26)


def _registrations(amqp_uri, database) -> list[dict]:
    return [feeds.provider_registered(feeds.hex_id("prv"), "PL", "Europe/Warsaw") for _ in range(GOOD_EVENTS)]


def _registration_poison() -> dict:
    """A provider whose time zone (any non-empty string by the contract) no time-zone database knows."""
    return feeds.provider_registered(feeds.hex_id("prv"), "PL", "Mars/Olympus_Mons")


CASES = {
    "billing": Case(BillingService, "on_contract_amended", _billing_amendments, _billing_poison, "Conflict"),
    "contracting": Case(ContractingService, "on_posting_awarded", _awards, _award_poison, "OverflowError"),
    "matching": Case(MatchingService, "on_provider_registered", _registrations, _registration_poison,
                     "ZoneInfoNotFoundError"),
}


def applied(database, consumer: str, events: list[dict]) -> set[str]:
    ids = {claim_id(consumer, event["id"]): event["id"] for event in events}
    return {ids[claim] for claim in applied_claims(database[APPLIED_EVENTS], ids)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_poison_event_is_parked_after_its_retries_while_the_rest_of_its_queue_is_applied(
        name, container_factory, service_config, amqp_uri, database):
    case = CASES[name]
    config = {**service_config, "RETRY_DELAYS_SECONDS": ",".join(map(str, RETRY_DELAYS))}
    container_factory(case.service, config).start()
    consumer = f"{name}.{case.handler}"
    good = case.prepare(amqp_uri, database)
    poison = case.poison()

    # The poison first: every good event of its queue waits behind it, and behind each of its retries.
    feeds.publish(amqp_uri, poison)
    for event in good:
        feeds.publish(amqp_uri, event)

    parked: list[tuple[dict, dict]] = []

    def poison_parked() -> bool:
        parked.extend((json.loads(body), headers) for body, headers in dead_letters(amqp_uri, name))
        return any(body.get("id") == poison["id"] for body, _ in parked)

    assert wait_for(lambda: applied(database, consumer, good) == {e["id"] for e in good}, timeout=30)
    assert wait_for(poison_parked, timeout=30)
    headers = next(headers for body, headers in parked if body.get("id") == poison["id"])
    # Tried once and after each retry delay, then parked with the handler's own error.
    assert headers[ATTEMPTS_HEADER] == len(RETRY_DELAYS) + 1
    assert headers["x-tasklinkr-consumer"] == consumer
    assert case.error in headers["x-tasklinkr-error"]
    assert applied(database, consumer, [poison]) == set()
