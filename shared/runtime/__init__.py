"""The platform runtime every service runs on: configuration, persistence and the transactional outbox, event
messaging and the broker topology, inbound commands, RPC, tracing, logs and metrics.

It may use ``shared.vocabulary``; it never imports ``shared.tools`` (an import-linter contract in pyproject.toml).
"""
