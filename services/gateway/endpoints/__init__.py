"""The HTTP routes' methods, one mixin per route group (as ``routes/`` and ``schemas/``), mixed into the one nameko
class ``GatewayService`` (``service.py``): its service name, entrypoints and dependencies are those of one service."""
