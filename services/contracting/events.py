"""What contracting publishes and consumes: routing keys and payloads.

Contracts: ``contracts-schema/events/contracting/<routing key>.schema.json`` (the contract object itself is
``contract.schema.json``). Payloads carry wire forms (``schemas.contract_to_event``), never stored documents.
It consumes postings' ``posting.awarded.v1``, which carries everything a draft contract needs.
"""

from __future__ import annotations

CONTRACT_SIGNED = "contract.signed.v1"
CONTRACT_ACTIVATED = "contract.activated.v1"
CONTRACT_AMENDED = "contract.amended.v1"
CONTRACT_COMPLETED = "contract.completed.v1"
CONTRACT_TERMINATED = "contract.terminated.v1"
SLA_MET = "sla.met.v1"
SLA_BREACHED = "sla.breached.v1"
ISSUE_ESCALATED = "issue.escalated.v1"

PUBLISHES = (CONTRACT_SIGNED, CONTRACT_ACTIVATED, CONTRACT_AMENDED, CONTRACT_COMPLETED, CONTRACT_TERMINATED, SLA_MET,
             SLA_BREACHED, ISSUE_ESCALATED)

POSTINGS = "postings"
POSTING_AWARDED = "posting.awarded.v1"


def contract_signed(contract: dict, signature: dict, amendment_id: str | None) -> dict:
    return {"contract_id": contract["id"], "tenant_id": contract["tenant_id"], "provider_id": contract["provider_id"],
            "amendment_id": amendment_id, "signature": signature, "status": contract["status"],
            "version": contract["version"]}


def contract_activated(contract: dict) -> dict:
    return {"contract": contract}


def contract_amended(contract: dict, amendment: dict) -> dict:
    return {"contract": contract, "amendment": amendment}


def contract_completed(contract: dict, rating: dict, completed_at: str) -> dict:
    return {"contract": contract, "provider_rating": {"score": rating["score"], "comment": rating["comment"]},
            "completed_at": completed_at}


def contract_terminated(contract: dict, termination: dict, terminated_at: str) -> dict:
    return {"contract": contract, **termination, "terminated_at": terminated_at}


def sla_evaluated(outcome: dict) -> tuple[str, dict]:
    """The routing key and data of a window's outcome."""
    return (SLA_MET if outcome["met"] else SLA_BREACHED), outcome


def issue_escalated(issue: dict) -> dict:
    reached = issue["escalations"][-1]
    return {
        "contract_id": issue["contract_id"], "tenant_id": issue["tenant_id"], "provider_id": issue["provider_id"],
        "issue": {"id": issue["id"], "title": issue["title"], "severity": issue["severity"], "owner": issue["owner"],
                  "raised_by": issue["raised_by"], "level": issue["level"], "escalated_at": reached["at"],
                  "next_escalation_at": issue["escalation_due_at"], "client_contact": reached["client_contact"],
                  "provider_contact": reached["provider_contact"]},
    }
