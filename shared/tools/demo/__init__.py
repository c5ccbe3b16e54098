"""``tasklinkr demo``: a small, realistic world walked through the whole path over the public HTTP API.

``world`` says who is in it (clients, individuals, firms and what they ask and offer), ``api`` is the HTTP
client, ``walk`` the path from a published posting to a paid invoice and a cost report.
"""
