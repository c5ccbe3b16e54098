"""The HTTP routes of postings and their negotiation: invitations and proposals."""

from __future__ import annotations

from services.gateway.endpoints.common import page, party
from services.gateway.entrypoints import ApiRequest, route
from shared.runtime.tracing import new_id


class PostingRoutes:
    """Mixed into ``GatewayService``: uses its ``rpc`` and RPC proxies."""

    @route("create_posting")
    def create_posting(self, request: ApiRequest) -> dict:
        # Without a key from the client a retry after a timeout would create a second posting; a generated key
        # still makes nameko-level redelivery of this one call harmless.
        idempotency_key = request.headers.get("Idempotency-Key") or new_id()
        return self.rpc(
            self.postings.create_posting, request.caller.tenant_id, request.body, idempotency_key=idempotency_key
        )

    @route("list_postings")
    def list_postings(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.postings.list_postings,
            request.caller.tenant_id,
            status=request.query.get("status"),
            **page(request),
        )

    @route("get_posting")
    def get_posting(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.get_posting, request.caller.tenant_id, request.path["posting_id"])

    @route("update_posting")
    def update_posting(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.postings.update_posting, request.caller.tenant_id, request.path["posting_id"], request.body
        )

    @route("publish_posting")
    def publish_posting(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.postings.publish_posting,
            request.caller.tenant_id,
            request.path["posting_id"],
            confirm_core=bool(request.body.get("confirm_core", False)),
        )

    @route("cancel_posting")
    def cancel_posting(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.postings.cancel_posting, request.caller.tenant_id, request.path["posting_id"], request.body["reason"]
        )


    @route("invite_provider")
    def invite_provider(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.invite_provider, request.caller.tenant_id, request.path["posting_id"],
                        request.body["provider_id"])

    @route("list_posting_proposals")
    def list_posting_proposals(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.list_proposals, request.caller.tenant_id, request.path["posting_id"])

    @route("award_posting")
    def award_posting(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.award_posting, request.caller.tenant_id, request.path["posting_id"],
                        request.body["proposal_id"])

    @route("list_invitations")
    def list_invitations(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.postings.list_invitations,
            request.caller.provider_id,
            status=request.query.get("status"),
            **page(request),
        )

    @route("accept_invitation")
    def accept_invitation(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.accept_invitation, request.caller.provider_id, request.path["invitation_id"])

    @route("decline_invitation")
    def decline_invitation(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.decline_invitation, request.caller.provider_id, request.path["invitation_id"],
                        reason=request.body.get("reason"))

    @route("submit_proposal")
    def submit_proposal(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.submit_proposal, request.caller.provider_id, request.path["invitation_id"],
                        request.body["terms"], note=request.body.get("note"))

    @route("get_proposal")
    def get_proposal(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.get_proposal, party(request), request.path["proposal_id"])

    @route("counter_proposal")
    def counter_proposal(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.counter_proposal, party(request), request.path["proposal_id"],
                        request.body["terms"], note=request.body.get("note"))

    @route("accept_proposal")
    def accept_proposal(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.accept_proposal, party(request), request.path["proposal_id"])
