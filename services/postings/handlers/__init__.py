"""The postings service's use cases, one plain function each, one module per aggregate: ``tenants`` (client
organisations and their API keys), ``postings`` (a posting's lifecycle) and ``negotiation`` (shortlists from
matching, invitations, proposals and the award).

A change takes the unit of work of its transaction (or, when it must read or ask matching before it opens one, the
worker's ``Store``) and the decoded input; a read takes a ``Repository`` on committed data. Rules come from
``domain``, data from ``repository``, routing keys and payloads from ``events``; each returns the wire form.
"""
