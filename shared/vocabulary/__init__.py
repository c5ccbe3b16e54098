"""The business vocabulary the services share: money, the outsourcing terms (models, categories, shoring, lanes),
validated fields, the stored form of resources, idempotency keys, API keys and the domain errors.

It imports neither ``shared.runtime`` nor ``shared.tools`` (an import-linter contract in pyproject.toml), so a
service's pure domain code can use it without pulling in the broker or the database machinery.
"""
