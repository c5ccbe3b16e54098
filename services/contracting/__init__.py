"""The contracting service: contracts from awards, signatures, amendments, measured SLAs and their credits, and
governance (reviews, escalating issues, ratings) (docs/design/contracting.md)."""
