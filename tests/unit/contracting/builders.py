"""A contract as contracting drafts it from postings' example award, and signed by both parties."""

import copy
import json
from datetime import UTC, datetime, timedelta
from itertools import count

from services.contracting import domain
from services.contracting.domain import Party
from shared.runtime import contracts

NOW = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
GRACE = timedelta(hours=1)
_ids = count(1)


def sla_id() -> str:
    return f"sla_{next(_ids):032x}"


def award(**terms) -> dict:
    path = contracts.event_schema_path("postings", "posting.awarded.v1")
    data = copy.deepcopy(json.loads(path.read_text())["examples"][0]["data"])
    data["terms"].update(terms)
    return data


def draft(**terms) -> dict:
    return domain.draft_from_award(award(**terms), contract_id="ctr_" + "a" * 32, sla_ids=[sla_id()], lane="smb",
                                   now=NOW)


def active(**terms) -> dict:
    contract = draft(**terms)
    contract, _ = domain.sign(contract, Party.CLIENT, contract["terms_hash"], now=NOW, grace=GRACE)
    contract, _ = domain.sign(contract, Party.PROVIDER, contract["terms_hash"], now=NOW, grace=GRACE)
    return contract
