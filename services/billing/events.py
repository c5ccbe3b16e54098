"""What billing publishes and consumes: routing keys and payloads.

Contracts: ``contracts-schema/events/billing/<routing key>.schema.json`` (the invoice object is in
``billing.schema.json``). Billing consumes contracting's contract lifecycle (accounts) and SLA breaches (credits),
postings' tenant.registered.v1 (the client's country: tax and shoring) and providers' registered/updated (the
provider's country and time zone: shoring).
"""

from __future__ import annotations

INVOICE_ISSUED = "invoice.issued.v1"
PAYMENT_RECORDED = "payment.recorded.v1"
CREDIT_APPLIED = "credit.applied.v1"
INVOICE_OVERDUE = "invoice.overdue.v1"
CREDIT_NOTE_ISSUED = "credit_note.issued.v1"

PUBLISHES = (INVOICE_ISSUED, PAYMENT_RECORDED, CREDIT_APPLIED, INVOICE_OVERDUE, CREDIT_NOTE_ISSUED)

CONTRACTING = "contracting"
CONTRACT_ACTIVATED = "contract.activated.v1"
CONTRACT_AMENDED = "contract.amended.v1"
CONTRACT_COMPLETED = "contract.completed.v1"
CONTRACT_TERMINATED = "contract.terminated.v1"
SLA_BREACHED = "sla.breached.v1"
POSTINGS = "postings"
TENANT_REGISTERED = "tenant.registered.v1"
PROVIDERS = "providers"
PROVIDER_REGISTERED = "provider.registered.v1"
PROVIDER_UPDATED = "provider.updated.v1"


def event(routing_key: str, subject: str, invoice: dict, data: dict) -> dict:
    """The keyword arguments of ``uow.emit`` for an event about ``invoice`` (its tenant and lane)."""
    return {"routing_key": routing_key, "subject": subject, "data": data, "lane": invoice["lane"],
            "tenant": invoice["tenant_id"]}


def invoice_issued(invoice_wire: dict) -> dict:
    return {"invoice": invoice_wire}


def credit_applied(credit: dict, application: dict, invoice: dict) -> dict:
    return {"credit": {"id": credit["id"], "contract_id": credit["contract_id"], "tenant_id": credit["tenant_id"],
                       "provider_id": credit["provider_id"], "sla_id": credit["sla_id"], "metric": credit["metric"],
                       "window": credit["window"], "owed": credit["owed"], "applied": application["applied"],
                       "remaining": application["remaining"]},
            "invoice_id": invoice["id"], "invoice_number": invoice["number"]}


def payment_recorded(payment_wire: dict, balance: dict) -> dict:
    return {"payment": payment_wire, "invoice": balance}


def invoice_overdue(invoice: dict, balance: dict, detected_at: str) -> dict:
    return {"invoice": balance, "tenant_id": invoice["tenant_id"], "provider_id": invoice["provider_id"],
            "contract_id": invoice["contract_id"], "due_date": invoice["due_date"], "detected_at": detected_at}


def credit_note_issued(note_wire: dict, balance: dict) -> dict:
    return {"credit_note": note_wire, "invoice": balance}
