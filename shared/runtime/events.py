"""The routing keys the platform itself (not one service) publishes: the outcomes of inbound commands.

Published under the sender's prefix (``<tenant id>.command.accepted.v1``) on the tenant feed; their schemas are in
``contracts-schema/commands/``.
"""

COMMAND_ACCEPTED = "command.accepted.v1"
COMMAND_REJECTED = "command.rejected.v1"
