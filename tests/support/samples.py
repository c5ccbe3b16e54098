"""Realistic request bodies for the HTTP API: the examples in docs/examples/, so the docs are exercised too."""

from __future__ import annotations

import copy
import json
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"

TENANT = json.loads((EXAMPLES / "tenant.json").read_text())
INDIVIDUAL_PROVIDER = json.loads((EXAMPLES / "provider.json").read_text())
POSTING = json.loads((EXAMPLES / "posting.json").read_text())


def tenant(**changes) -> dict:
    return {**copy.deepcopy(TENANT), **changes}


def individual_provider(**changes) -> dict:
    return {**copy.deepcopy(INDIVIDUAL_PROVIDER), **changes}


def posting(**changes) -> dict:
    return {**copy.deepcopy(POSTING), **changes}
