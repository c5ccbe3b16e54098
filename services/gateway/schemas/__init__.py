"""The gateway's marshmallow schemas: what each route accepts and answers, and what the OpenAPI document shows.

Request schemas check the shape and the common vocabulary (shared.vocabulary.fields) so a client hears about a bad
country or a float amount before any service is bothered; the services validate again, because the rules are theirs.
Response schemas are applied on the way out, so a field a service adds (or keeps internally) never reaches a client
until it is declared here. Times and dates in responses stay strings: the services already send RFC 3339.
"""

# One module per route group (``common``: what they share). Every public name is re-exported here: ``schemas.X`` is
# how the route table, the OpenAPI document (which finds its components among these names) and the tests name them.
from services.gateway.schemas.billing import *  # noqa: F403
from services.gateway.schemas.common import *  # noqa: F403
from services.gateway.schemas.contracts import *  # noqa: F403
from services.gateway.schemas.matching import *  # noqa: F403
from services.gateway.schemas.operations import *  # noqa: F403
from services.gateway.schemas.postings import *  # noqa: F403
from services.gateway.schemas.providers import *  # noqa: F403
from services.gateway.schemas.reports import *  # noqa: F403
from services.gateway.schemas.tenants import *  # noqa: F403
