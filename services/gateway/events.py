"""The routing keys of the gateway: the command types it takes from tenants' and providers' own systems (the
inbound exchange, ``commands.py``; each has its schema in ``contracts-schema/commands/<type>.schema.json``)."""

POSTING_CREATE = "posting.create.v1"
POSTING_PUBLISH = "posting.publish.v1"
INVITATION_CREATE = "invitation.create.v1"
POSTING_AWARD = "posting.award.v1"
SLA_MEASUREMENTS_RECORD = "sla_measurements.record.v1"
BILLABLE_ITEMS_SUBMIT = "billable_items.submit.v1"
BILLABLE_ITEMS_REVIEW = "billable_items.review.v1"
