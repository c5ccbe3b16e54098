"""The postings service's nameko entrypoints, one class per aggregate, mixed into ``service.PostingsService`` (nameko
runs one class per service: its name, every RPC method name and every queue stay those of that one class).

Each entrypoint decodes its input (``schemas``), calls one use case of ``handlers`` (a change in one transaction
with its events, ``store.transact``; the outbox relay publishes them afterwards) and answers. The classes use the
dependencies ``PostingsService`` declares: ``store``, ``config`` and the ``matching`` proxy.
"""
