"""The web console: static files shipped in the package, served by the gateway at /console.

The pages are plain HTML, CSS and JavaScript modules; in the browser they call the public /v1 API with the key the
person enters, like any other client. Nothing here reads a service: the gateway only hands out files.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from services.gateway.entrypoints import Reply
from services.gateway.errors import RouteNotFound

ROOT = Path(__file__).resolve().parent / "static" / "console"
INDEX = "index.html"
MEDIA_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
}
# Scripts and styles only from the gateway itself (no inline script, no CDN); the pages call only this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@cache
def _read(relative: str) -> bytes:
    return (ROOT / relative).read_bytes()


def asset(relative: str) -> Reply:
    """The file at ``relative`` under the console's folder (the page itself for ""), or 404.

    Only files that exist under the folder with a known type are served: ``..``, hidden files and anything else are
    answered like any unknown path.
    """
    relative = relative or INDEX
    path = (ROOT / relative).resolve()
    media_type = MEDIA_TYPES.get(path.suffix)
    if media_type is None or not path.is_relative_to(ROOT) or not path.is_file():
        raise RouteNotFound(f"No console file {relative}.")
    return Reply(_read(str(path.relative_to(ROOT))), status=200, media_type=media_type,
                 headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})
