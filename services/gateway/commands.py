"""Commands from tenants' own systems over the broker: the message-side twin of the HTTP routes.

Each handler makes the same RPC calls as its HTTP route, for the tenant RabbitMQ authenticated (``user_id``), and
answers with an outcome event (``shared.runtime.commands``). A command can be delivered again after a crash, so each one
is idempotent on its command id: creating a posting and recording measurements pass it on as the idempotency key,
and publishing, inviting and awarding answer the same when done twice. Each is on the audit trail, written before
it runs (``audit.py``).
"""

from __future__ import annotations

from services.gateway import events
from services.gateway.audit import audited_command
from shared.runtime.commands import PROVIDER, command
from shared.runtime.topology import UNKNOWN
from shared.vocabulary.terms import lane_of


class InboundCommands:
    """Mixed into ``GatewayService``: uses its ``rpc``, ``postings`` and ``contracting`` dependencies."""

    def command_lane(self, sender_id: str) -> str:
        """The sender's workload lane by the platform's lane rule (a tenant's segment, a provider's kind), which the
        command's RPC calls then travel in; NotFound (a rejection) for a sender the platform does not know."""
        if sender_id.startswith("prv_"):
            lane = lane_of(provider_kind=self.rpc(self.providers.get, sender_id)["kind"]).value
        else:
            lane = lane_of(segment=self.rpc(self.postings.get_tenant, sender_id)["segment"]).value
        self.rpc.lane = lane
        return lane

    def record_refused_command(self, delivery: dict, reason: str) -> None:
        """Every inbound message is on the audit trail: one refused before its handler, with who, what and why."""
        self.audit.refused_command(delivery, reason)

    @command(events.POSTING_CREATE)
    @audited_command(events.POSTING_CREATE)
    def posting_create_command(self, tenant_id: str, data: dict, command_id: str) -> dict:
        # Created and published in one transaction: a posting that cannot be published is not created either, so
        # a rejection means nothing changed and the corrected command may reuse the same id.
        posting = self.rpc(self.postings.create_posting, tenant_id, data["posting"], f"command:{command_id}",
                           data.get("publish", False), data.get("confirm_core", False))
        return {"posting_id": posting["id"], "status": posting["status"]}

    @command(events.POSTING_PUBLISH)
    @audited_command(events.POSTING_PUBLISH)
    def posting_publish_command(self, tenant_id: str, data: dict, command_id: str) -> dict:
        posting = self.rpc(self.postings.publish_posting, tenant_id, data["posting_id"],
                           data.get("confirm_core", False))
        return {"posting_id": posting["id"], "status": posting["status"]}

    @command(events.INVITATION_CREATE)
    @audited_command(events.INVITATION_CREATE)
    def invitation_create_command(self, tenant_id: str, data: dict, command_id: str) -> dict:
        invitation = self.rpc(self.postings.invite_provider, tenant_id, data["posting_id"], data["provider_id"])
        return {"invitation_id": invitation["id"], "posting_id": invitation["posting_id"],
                "status": invitation["status"]}

    @command(events.POSTING_AWARD)
    @audited_command(events.POSTING_AWARD)
    def posting_award_command(self, tenant_id: str, data: dict, command_id: str) -> dict:
        posting = self.rpc(self.postings.award_posting, tenant_id, data["posting_id"], data["proposal_id"])
        return {"posting_id": posting["id"], "status": posting["status"],
                "proposal_id": posting["awarded_proposal_id"]}

    @command(events.SLA_MEASUREMENTS_RECORD)
    @audited_command(events.SLA_MEASUREMENTS_RECORD)
    def sla_measurements_record_command(self, tenant_id: str, data: dict, command_id: str) -> dict:
        # A measurement without a key of its own is keyed by the command id and its position: sent again, it is
        # a duplicate, not a second measurement.
        recorded = self.rpc(self.contracting.submit_measurements, {"kind": "client", "tenant_id": tenant_id},
                            data["contract_id"], {"measurements": data["measurements"]},
                            idempotency_key=f"cmd:{command_id}")
        return {key: recorded[key] for key in ("contract_id", "recorded", "late", "duplicate")}

    @command(events.BILLABLE_ITEMS_SUBMIT, sender=PROVIDER)
    @audited_command(events.BILLABLE_ITEMS_SUBMIT)
    def billable_items_submit_command(self, provider_id: str, data: dict, command_id: str) -> dict:
        # An item without a key of its own is keyed by the command id and its position (sent again: a duplicate).
        # Sent in the provider's lane; its contract's account is in the cell of its client's lane (first_found).
        submitted = self.rpc.first_found(self.billing.submit_items, {"kind": "provider", "provider_id": provider_id},
                                         data["contract_id"], {"items": data["items"]},
                                         idempotency_key=f"cmd:{command_id}")
        return {"contract_id": submitted["contract_id"], "recorded": submitted["recorded"],
                "duplicate": submitted["duplicate"],
                "items": [{"key": item["key"], "item_id": item["id"], "status": item["status"],
                           "outcome": item["outcome"]} for item in submitted["items"]]}

    @command(events.BILLABLE_ITEMS_REVIEW)
    @audited_command(events.BILLABLE_ITEMS_REVIEW)
    def billable_items_review_command(self, tenant_id: str, data: dict, command_id: str) -> dict:
        # One item per command: a batch that failed half-way would be half-applied. Reviewing twice the same way
        # answers the same.
        reviewed = self.rpc(self.billing.review_item, {"kind": "client", "tenant_id": tenant_id},
                            data["contract_id"], data["item_id"], data["decision"],
                            {"reason": data["reason"]} if data.get("reason") else None)
        return {"contract_id": data["contract_id"], "item_id": reviewed["id"], "status": reviewed["status"]}

    @command(UNKNOWN)
    def unknown_command(self, tenant_id: str, data: dict, command_id: str) -> dict:
        """Bound to what the inbound exchange routes nowhere: ``shared.runtime.commands`` rejects it before this
        runs."""
        raise AssertionError("an unknown command is rejected before its handler runs")
