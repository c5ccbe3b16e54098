"""What operators run: the ``tasklinkr`` CLI, the local stack and its embedded databases, the service runner,
health probes, dead letters and queue depths, backups, the broker's management API, the tenant sweep and the demo.

Tools may use ``shared.runtime`` and ``shared.vocabulary``; neither of those imports a tool.
"""
