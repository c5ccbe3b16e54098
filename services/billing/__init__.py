"""The billing service: an account per contract, approved time, usage and milestones, invoice runs with gapless
numbers, tax, SLA credits, payments, credit notes and cost reports (docs/design/billing.md)."""
