"""API keys: ``tlk_<kind>_<secret>``, shown once, stored only as a SHA-256 hash.

A key carries 256 random bits, so a plain SHA-256 (not a slow password hash) is the right store: it cannot be
brute-forced, and lookup by hash is one indexed read. The kind tells the gateway which service owns the key:
``c`` a client organisation's key (postings), ``p`` a provider's key (providers).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

CLIENT = "c"
PROVIDER = "p"
KINDS = (CLIENT, PROVIDER)


def generate(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown key kind {kind!r}")
    return f"tlk_{kind}_{secrets.token_urlsafe(32)}"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def kind_of(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) == 3 and parts[0] == "tlk" and parts[1] in KINDS and len(parts[2]) >= 32:
        return parts[1]
    return None


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
