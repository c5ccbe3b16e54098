"""Invitations, proposals, negotiation and award over real RPC, a real broker and a real database.

Shortlists arrive as matching publishes them (its exchange, a valid envelope); every event postings emits is read
from its outbox, where it was written in the same transaction as the change, and checked against its contract.
"""


import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from services.matching.service import MatchingService
from services.postings.service import PostingsService
from shared.runtime import contracts
from shared.vocabulary.errors import Conflict, NotFound, ValidationFailed
from tests.integration.matching import events as matching_events
from tests.support.emitted import outbox
from tests.support.waiting import applied_by_any, wait_for
from tests.unit.matching import builders as matching_builders

from . import shortlists
from .test_postings_service import ACME, GLOBEX, INBOX_HELP

pytestmark = pytest.mark.integration

MARIA = "prv_" + "1" * 32
JOSE = "prv_" + "2" * 32
BPO_FIRM = "prv_" + "3" * 32
STRANGER = "prv_" + "9" * 32


@pytest.fixture
def postings(container_factory, service_config, amqp_uri):
    container_factory(PostingsService, service_config).start()
    with ServiceRpcProxy("postings", {"AMQP_URI": amqp_uri, "serializer": "json"}, timeout=20) as proxy:
        yield proxy


def client(tenant):
    return {"kind": "client", "tenant_id": tenant["id"]}


def provider(provider_id):
    return {"kind": "provider", "provider_id": provider_id}


def terms(amount="14.00", hours=20, available="2027-01-04"):
    return {"price": {"amount": amount, "currency": "USD"}, "hours_per_week": hours, "available_from": available}


def shortlisted_posting(postings, database, amqp_uri, tenant_fields=ACME, version=1):
    """An open posting whose shortlist (Maria, Jose, and a firm's centre) postings has received from matching."""
    tenant = postings.create_tenant(tenant_fields)["tenant"]
    posting = postings.publish_posting(tenant["id"], postings.create_posting(tenant["id"], INBOX_HELP)["id"])
    event = shortlists.shortlist_event(posting, version, [
        shortlists.candidate(MARIA, 1, "0.9100"),
        shortlists.candidate(JOSE, 2, "0.8400"),
        shortlists.candidate(BPO_FIRM, 3, "0.7000", centre_id="dc_manila"),
    ])
    assert contracts.errors(event) == []
    shortlists.publish(amqp_uri, event)
    assert wait_for(lambda: (database.shortlists.find_one({"_id": posting["id"]}) or {}).get("version") == version)
    return tenant, posting


def agreed_proposal(postings, tenant, posting, provider_id=MARIA):
    invitation = postings.invite_provider(tenant["id"], posting["id"], provider_id)
    postings.accept_invitation(provider_id, invitation["id"])
    proposal = postings.submit_proposal(provider_id, invitation["id"], terms("14.00"), "Ready in January")
    return postings.accept_proposal(client(tenant), proposal["id"])


def test_the_latest_shortlist_version_is_kept_and_an_older_one_arriving_late_is_ignored(
    postings, database, amqp_uri
):
    _, posting = shortlisted_posting(postings, database, amqp_uri, version=2)
    newer = shortlists.shortlist_event(posting, 3, [shortlists.candidate(JOSE, 1, "0.9500")],
                                       routing_key=shortlists.SHORTLIST_UPDATED)
    shortlists.publish(amqp_uri, newer)
    assert wait_for(lambda: database.shortlists.find_one({"_id": posting["id"]})["version"] == 3)
    late = shortlists.shortlist_event(posting, 1, [shortlists.candidate(STRANGER, 1, "0.9900")])
    shortlists.publish(amqp_uri, late)
    assert wait_for(lambda: applied_by_any(database, late["id"]))

    kept = database.shortlists.find_one({"_id": posting["id"]})
    assert kept["version"] == 3 and [c["provider_id"] for c in kept["candidates"]] == [JOSE]


def test_a_client_invites_shortlisted_providers_and_inviting_again_answers_the_same_invitation(
    postings, database, amqp_uri
):
    tenant, posting = shortlisted_posting(postings, database, amqp_uri)

    invitation = postings.invite_provider(tenant["id"], posting["id"], BPO_FIRM)
    again = postings.invite_provider(tenant["id"], posting["id"], BPO_FIRM)

    assert again == invitation
    assert (invitation["status"], invitation["centre_id"], invitation["rank"], invitation["shortlist_version"]) == (
        "pending", "dc_manila", 3, 1)
    assert invitation["posting"]["title"] == INBOX_HELP["title"]
    assert invitation["posting"]["budget"] == {"amount": "15.00", "currency": "USD"}
    assert database.invitations.count_documents({"posting_id": posting["id"]}) == 1


def test_a_provider_not_on_the_shortlist_or_a_posting_without_one_is_refused_with_the_reason(
    postings, database, amqp_uri
):
    tenant, posting = shortlisted_posting(postings, database, amqp_uri)
    with pytest.raises(ValidationFailed) as refused:
        postings.invite_provider(tenant["id"], posting["id"], STRANGER)
    assert refused.value.details == {"provider_id": ["Not on the current shortlist (version 1)."]}

    unranked = postings.publish_posting(tenant["id"], postings.create_posting(tenant["id"], INBOX_HELP)["id"])
    with pytest.raises(Conflict, match="no shortlist yet"):
        postings.invite_provider(tenant["id"], unranked["id"], MARIA)
    draft = postings.create_posting(tenant["id"], INBOX_HELP)
    with pytest.raises(Conflict, match="The posting is draft"):
        postings.invite_provider(tenant["id"], draft["id"], MARIA)
    assert database.invitations.count_documents({}) == 0


def test_a_provider_sees_its_invitations_and_accepts_one_and_declines_another_with_a_reason(
    postings, database, amqp_uri
):
    acme, first = shortlisted_posting(postings, database, amqp_uri)
    globex, second = shortlisted_posting(postings, database, amqp_uri, tenant_fields=GLOBEX)
    to_accept = postings.invite_provider(acme["id"], first["id"], MARIA)
    to_decline = postings.invite_provider(globex["id"], second["id"], MARIA)
    postings.invite_provider(acme["id"], first["id"], JOSE)

    inbox = postings.list_invitations(MARIA)
    assert [i["id"] for i in inbox["items"]] == sorted([to_accept["id"], to_decline["id"]])
    page = postings.list_invitations(MARIA, limit=1)
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = postings.list_invitations(MARIA, limit=1, cursor=page["next_cursor"])
    assert [i["id"] for i in page["items"] + rest["items"]] == [i["id"] for i in inbox["items"]]

    accepted = postings.accept_invitation(MARIA, to_accept["id"])
    declined = postings.decline_invitation(MARIA, to_decline["id"], "Fully booked until March")
    assert accepted["status"] == "accepted" and accepted["responded_at"]
    assert (declined["status"], declined["decline_reason"]) == ("declined", "Fully booked until March")
    assert postings.accept_invitation(MARIA, to_accept["id"]) == accepted  # a retry changes nothing
    with pytest.raises(Conflict, match="already declined"):
        postings.accept_invitation(MARIA, to_decline["id"])
    assert [i["id"] for i in postings.list_invitations(MARIA, status="pending")["items"]] == []


def test_propose_counter_accept_and_award_emits_a_valid_posting_awarded_with_what_contracting_needs(
    postings, database, amqp_uri
):
    tenant, posting = shortlisted_posting(postings, database, amqp_uri)
    invitation = postings.invite_provider(tenant["id"], posting["id"], MARIA)
    postings.accept_invitation(MARIA, invitation["id"])

    proposal = postings.submit_proposal(MARIA, invitation["id"], terms("14.00"), "Eight years with dental practices")
    countered = postings.counter_proposal(client(tenant), proposal["id"], terms("12.50"), "Year-one budget")
    recountered = postings.counter_proposal(provider(MARIA), proposal["id"], terms("13.25", available="2027-01-18"),
                                            "Meet in the middle")
    agreed = postings.accept_proposal(client(tenant), proposal["id"])
    awarded = postings.award_posting(tenant["id"], posting["id"], proposal["id"])

    assert (proposal["status"], countered["status"], recountered["status"], agreed["status"]) == (
        "awaiting_client", "awaiting_provider", "awaiting_client", "agreed")
    assert [(s["action"], s["by"], s["terms"]["price"]["amount"]) for s in agreed["history"]] == [
        ("proposed", "provider", "14.00"), ("countered", "client", "12.50"),
        ("countered", "provider", "13.25"), ("accepted", "client", "13.25"),
    ]
    assert agreed["history"][1]["actor"] == f"client:{tenant['id']}"
    assert (awarded["status"], awarded["awarded_proposal_id"]) == ("awarded", proposal["id"])
    assert postings.get_proposal(client(tenant), proposal["id"])["status"] == "awarded"

    submitted = outbox(database, "proposal.submitted.v1")
    assert [(e["data"]["kind"], e["data"]["step"], e["data"]["terms"]["price"]["amount"]) for e in submitted] == [
        ("initial", 1, "14.00"), ("counter", 3, "13.25")]
    assert {(e["subject"], e["tenantid"], e["lane"]) for e in submitted} == {(proposal["id"], tenant["id"], "smb")}

    [event] = outbox(database, "posting.awarded.v1")
    assert contracts.errors(event) == []
    assert (event["subject"], event["tenantid"], event["lane"]) == (posting["id"], tenant["id"], "smb")
    data = event["data"]
    assert data["posting"] == awarded
    assert data["client"] == {"tenant_id": tenant["id"], "name": ACME["name"], "country": "US",
                              "time_zone": "America/Chicago", "segment": "smb"}
    assert data["provider"] == {"provider_id": MARIA, "centre_id": None}
    # The provider is free only from the 18th, two weeks after the posting's wanted start.
    assert data["terms"] == {"engagement_type": "hourly", "unit": None,
                             "price": {"amount": "13.25", "currency": "USD"}, "hours_per_week": 20, "seats": 1,
                             "start_date": "2027-01-18", "duration_weeks": 26}
    assert data["sla_requirements"] == INBOX_HELP["sla_requirements"]
    assert data["confidentiality"] == {"confidential": True, "nda_required": True}
    assert data["proposal"]["proposal_id"] == proposal["id"] and len(data["proposal"]["history"]) == 4

    # Retried, the award answers the same posting and publishes nothing more; the posting is now settled.
    assert postings.award_posting(tenant["id"], posting["id"], proposal["id"]) == awarded
    assert len(outbox(database, "posting.awarded.v1")) == 1
    with pytest.raises(Conflict):
        postings.cancel_posting(tenant["id"], posting["id"], "Changed our mind")
    with pytest.raises(Conflict):
        postings.update_posting(tenant["id"], posting["id"], {"title": "Something else"})


def test_awarding_closes_the_other_negotiations_and_unanswered_invitations(postings, database, amqp_uri):
    tenant, posting = shortlisted_posting(postings, database, amqp_uri)
    winner = agreed_proposal(postings, tenant, posting, MARIA)
    runner_up = agreed_proposal(postings, tenant, posting, JOSE)
    unanswered = postings.invite_provider(tenant["id"], posting["id"], BPO_FIRM)

    postings.award_posting(tenant["id"], posting["id"], winner["id"])

    by_id = {p["id"]: p for p in postings.list_proposals(tenant["id"], posting["id"])["items"]}
    assert by_id[winner["id"]]["status"] == "awarded"
    assert by_id[runner_up["id"]]["status"] == "closed"
    assert by_id[runner_up["id"]]["closed_reason"] == "The client awarded the posting to another proposal."
    assert postings.get_invitation(BPO_FIRM, unanswered["id"])["status"] == "closed"
    with pytest.raises(Conflict, match="closed"):
        postings.counter_proposal(provider(JOSE), runner_up["id"], terms("11.00"))
    with pytest.raises(Conflict, match="already awarded"):
        postings.award_posting(tenant["id"], posting["id"], runner_up["id"])


def test_a_proposal_still_under_negotiation_cannot_be_awarded(postings, database, amqp_uri):
    tenant, posting = shortlisted_posting(postings, database, amqp_uri)
    invitation = postings.invite_provider(tenant["id"], posting["id"], MARIA)
    postings.accept_invitation(MARIA, invitation["id"])
    proposal = postings.submit_proposal(MARIA, invitation["id"], terms())
    with pytest.raises(Conflict, match="both sides have agreed"):
        postings.award_posting(tenant["id"], posting["id"], proposal["id"])
    assert postings.get_posting(tenant["id"], posting["id"])["status"] == "open"
    assert outbox(database, "posting.awarded.v1") == []


def test_the_engagement_or_currency_cannot_change_under_a_negotiation_and_other_edits_can(
        postings, database, amqp_uri):
    tenant, posting = shortlisted_posting(postings, database, amqp_uri)
    agreed = agreed_proposal(postings, tenant, posting)  # 14.00 USD an hour, agreed
    for changes in ({"engagement": {"type": "fixed", "unit": None}, "budget": {"amount": "9000", "currency": "USD"}},
                    {"budget": {"amount": "15.00", "currency": "EUR"}}):
        with pytest.raises(Conflict, match="being negotiated") as refused:
            postings.update_posting(tenant["id"], posting["id"], changes)
        assert agreed["id"] in str(refused.value.details)
    assert postings.update_posting(tenant["id"], posting["id"], {"title": "Inbox help"})["title"] == "Inbox help"
    awarded = postings.award_posting(tenant["id"], posting["id"], agreed["id"])
    assert awarded["status"] == "awarded"
    [event] = outbox(database, "posting.awarded.v1")
    assert event["data"]["terms"]["engagement_type"] == "hourly"
    assert event["data"]["terms"]["price"] == {"amount": "14.00", "currency": "USD"}


def test_out_of_turn_moves_are_refused_and_change_nothing(postings, database, amqp_uri):
    tenant, posting = shortlisted_posting(postings, database, amqp_uri)
    invitation = postings.invite_provider(tenant["id"], posting["id"], MARIA)
    with pytest.raises(Conflict, match="accept it before"):
        postings.submit_proposal(MARIA, invitation["id"], terms())
    postings.accept_invitation(MARIA, invitation["id"])
    proposal = postings.submit_proposal(MARIA, invitation["id"], terms())

    with pytest.raises(Conflict, match="It is the client's turn"):
        postings.counter_proposal(provider(MARIA), proposal["id"], terms("15.00"))
    with pytest.raises(Conflict, match="It is the client's turn"):
        postings.accept_proposal(provider(MARIA), proposal["id"])
    with pytest.raises(Conflict, match="counter it instead"):
        postings.submit_proposal(MARIA, invitation["id"], terms("13.00"))
    with pytest.raises(ValidationFailed) as refused:
        in_euros = {**terms(), "price": {"amount": "12", "currency": "EUR"}}
        postings.counter_proposal(client(tenant), proposal["id"], in_euros)
    assert refused.value.details == {"price": ["Quote in the posting's currency, USD."]}

    assert postings.get_proposal(client(tenant), proposal["id"]) == proposal
    assert len(outbox(database, "proposal.submitted.v1")) == 1


def test_another_tenant_or_another_provider_gets_not_found_everywhere(postings, database, amqp_uri):
    tenant, posting = shortlisted_posting(postings, database, amqp_uri)
    invitation = postings.invite_provider(tenant["id"], posting["id"], MARIA)
    postings.accept_invitation(MARIA, invitation["id"])
    proposal = postings.submit_proposal(MARIA, invitation["id"], terms())
    other_tenant = postings.create_tenant(GLOBEX)["tenant"]

    for attempt in (
        lambda: postings.invite_provider(other_tenant["id"], posting["id"], JOSE),
        lambda: postings.list_proposals(other_tenant["id"], posting["id"]),
        lambda: postings.get_proposal(client(other_tenant), proposal["id"]),
        lambda: postings.counter_proposal(client(other_tenant), proposal["id"], terms("9.00")),
        lambda: postings.accept_proposal(client(other_tenant), proposal["id"]),
        lambda: postings.award_posting(other_tenant["id"], posting["id"], proposal["id"]),
        lambda: postings.get_invitation(JOSE, invitation["id"]),
        lambda: postings.decline_invitation(JOSE, invitation["id"]),
        lambda: postings.submit_proposal(JOSE, invitation["id"], terms()),
        lambda: postings.get_proposal(provider(JOSE), proposal["id"]),
        lambda: postings.counter_proposal(provider(JOSE), proposal["id"], terms("9.00")),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert postings.list_invitations(JOSE)["items"] == []
    assert postings.get_proposal(client(tenant), proposal["id"]) == proposal


def test_cancelling_a_posting_closes_its_negotiations(postings, database, amqp_uri):
    tenant, posting = shortlisted_posting(postings, database, amqp_uri)
    proposal = agreed_proposal(postings, tenant, posting)
    postings.cancel_posting(tenant["id"], posting["id"], "Hired in-house after all")
    closed = postings.get_proposal(provider(MARIA), proposal["id"])
    assert (closed["status"], closed["closed_reason"]) == ("closed", "The client cancelled the posting.")


def test_a_proposal_for_more_hours_than_the_provider_has_free_is_refused_with_the_reason(
    container_factory, service_config, postings, database, amqp_uri
):
    """Matching owns providers' load; postings asks it (RPC) for the provider's free hours before taking terms."""
    container_factory(MatchingService, matching_config(service_config)).start()
    busy = matching_builders.profile(n=77, capacity_hours_per_week=12)  # 12 h a week, nothing committed yet
    matching_events.publish(amqp_uri, "providers", "provider.registered.v1",
                            {"provider": matching_events.profile_event(busy)}, busy["id"])
    with ServiceRpcProxy("matching", {"AMQP_URI": amqp_uri, "serializer": "json"}, timeout=20) as matching:
        assert wait_for(lambda: _free_hours(matching, busy["id"]) == 12.0, timeout=20)

    tenant = postings.create_tenant(ACME)["tenant"]
    posting = postings.publish_posting(tenant["id"], postings.create_posting(tenant["id"], INBOX_HELP)["id"])
    # Matching ranks the posting too, and its version 1 (without the busy provider, who has too few free hours)
    # may reach postings before or after this one: version 2 supersedes it whichever comes first.
    shortlists.publish(amqp_uri, shortlists.shortlist_event(posting, 2, [shortlists.candidate(busy["id"], 1,
                                                                                               "0.9000")]))
    assert wait_for(lambda: database.shortlists.find_one({"_id": posting["id"], "version": 2}) is not None)
    invitation = postings.invite_provider(tenant["id"], posting["id"], busy["id"])
    postings.accept_invitation(busy["id"], invitation["id"])

    with pytest.raises(ValidationFailed) as refused:
        postings.submit_proposal(busy["id"], invitation["id"], terms(hours=20))
    assert refused.value.details == {"hours_per_week": ["The provider has 12 free hours a week; these terms ask "
                                                        "for 20."]}
    assert database.proposals.count_documents({"invitation_id": invitation["id"]}) == 0
    proposal = postings.submit_proposal(busy["id"], invitation["id"], terms(hours=12))
    with pytest.raises(ValidationFailed, match="free hours"):  # nor can the client counter with more
        postings.counter_proposal(client(tenant), proposal["id"], terms(hours=16))


def matching_config(service_config):
    """Matching beside postings, with its own database as in production."""
    return {**service_config, "MONGO_DATABASE": service_config["MONGO_DATABASE"] + "_matching"}


def _free_hours(matching, provider_id):
    try:
        return matching.free_capacity(provider_id)["free_hours_per_week"]
    except NotFound:
        return None


def test_an_invitation_right_after_publication_never_meets_no_shortlist_yet_once_matching_shows_one(
    container_factory, service_config, postings, database, amqp_uri, monkeypatch
):
    """Postings' copy of a shortlist follows matching's events; held back here, as a slow consumer would, the
    invitation asks matching for the shortlist it shows and is taken."""
    container_factory(MatchingService, matching_config(service_config)).start()
    monkeypatch.setattr(PostingsService, "on_matches_proposed", lambda self, envelope: None)
    monkeypatch.setattr(PostingsService, "on_shortlist_updated", lambda self, envelope: None)
    ana = matching_builders.profile(n=78)
    matching_events.publish(amqp_uri, "providers", "provider.registered.v1",
                            {"provider": matching_events.profile_event(ana)}, ana["id"])
    with ServiceRpcProxy("matching", {"AMQP_URI": amqp_uri, "serializer": "json"}, timeout=20) as matching:
        assert wait_for(lambda: _free_hours(matching, ana["id"]) is not None, timeout=20)
        tenant = postings.create_tenant(ACME)["tenant"]
        posting = postings.publish_posting(tenant["id"], postings.create_posting(tenant["id"], INBOX_HELP)["id"])

        def shown():
            try:
                return matching.get_shortlist(tenant["id"], posting["id"])["shortlist"]
            except NotFound:
                return None

        assert wait_for(lambda: shown() is not None and ana["id"] in [c["provider_id"] for c in shown()["candidates"]],
                        timeout=20)
    assert database.shortlists.find_one({"_id": posting["id"]}) is None  # postings' copy has not caught up

    invitation = postings.invite_provider(tenant["id"], posting["id"], ana["id"])
    assert (invitation["status"], invitation["shortlist_version"]) == ("pending", shown_version(database, posting))


def shown_version(database, posting):
    return database.shortlists.find_one({"_id": posting["id"]})["version"]
