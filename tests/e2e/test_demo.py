"""`tasklinkr demo` against the stack running as processes, twice, as a newcomer runs it after `make run`.

Each run makes its own world (two clients, individuals and firms) and walks it from a published posting to a paid
invoice over the public API. What it prints is checked, and so is what the API holds afterwards, with the keys it
printed: the contract active, the invoice carrying the breached window's service credit and paid, the PDF a PDF, the
cost report's saving. Contracting runs with its default timers (an hour of SLA grace), as after a plain `make run`:
the breach and its credit come in time only because both parties close the window.
"""

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.test_award import call, ok
from tests.support.stack import OPERATOR_KEY

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def default_sla_timers():
    """Whatever the environment says, the module's stack starts with contracting's default SLA timers."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("TASKLINKR_CONTRACTING_SLA_EVALUATION_INTERVAL_SECONDS",
                     "TASKLINKR_CONTRACTING_SLA_GRACE_SECONDS"):
            patch.delenv(name, raising=False)
        yield


def run_demo(stack, output: Path) -> tuple[str, dict]:
    env = {**os.environ, "TASKLINKR_OPERATOR_KEY": OPERATOR_KEY, "TASKLINKR_GATEWAY_ADDRESS": stack.url[7:],
           "COLUMNS": "120"}
    before = set(output.glob("*/demo.json"))
    done = subprocess.run([sys.executable, "-m", "shared.tools.cli", "demo", "--output-dir", str(output)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr + stack.logs()
    [report] = set(output.glob("*/demo.json")) - before
    return " ".join(done.stdout.split()), json.loads(report.read_text())  # as read, whatever the line width


def test_the_demo_walks_a_new_world_from_posting_to_paid_invoice_each_time_it_runs(stack, tmp_path):
    first_out, first = run_demo(stack, tmp_path)
    second_out, second = run_demo(stack, tmp_path)

    assert first["world"] != second["world"]
    assert first["ids"]["small_business"] != second["ids"]["small_business"]
    for printed, report in ((first_out, first), (second_out, second)):
        for heading in ("shortlist", "why not Maria Santos? Excluded", "countered 12.75 USD/h", "signed by both",
                        "breached", f"Invoice {report['invoice']['number']}", "PDF written to",
                        "saving against in-house", "Where to look next", "/console"):
            assert heading in printed, heading
        assert all(key in printed for key in report["keys"].values())
        client = report["keys"]["small_business (owner)"]
        finance = report["keys"]["small_business (finance)"]

        contract = ok(call(stack, "GET", f"/v1/contracts/{report['ids']['contract']}", key=client))
        assert contract["status"] == report["contract_status"] == "active"
        governance = ok(call(stack, "GET", f"/v1/contracts/{contract['id']}/governance", key=client))
        assert sorted(row["breached"] for row in governance["sla_compliance"]) == [0, 1]

        invoice = ok(call(stack, "GET", f"/v1/invoices/{report['invoice']['id']}", key=finance))
        [credit] = [line for line in invoice["lines"] if line["kind"] == "sla_credit"]
        assert credit["amount"] == {"amount": "-25.50", "currency": "USD"} == {
            **report["credit"], "amount": "-" + report["credit"]["amount"]}
        assert invoice["credits"]["amount"] == "25.50" and invoice["contract_id"] == contract["id"]
        assert (invoice["status"], invoice["balance"]["amount"]) == ("paid", "0.00")
        assert [p["amount"] for p in invoice["payments"]] == [invoice["total"]]
        assert Path(report["pdf"]).read_bytes().startswith(b"%PDF")

        account = ok(call(stack, "GET", f"/v1/billing-accounts/{contract['id']}", key=finance))
        assert [c["state"] for c in account["sla_credits"]] == ["applied"] and account["balance"]["amount"] == "0.00"
        assert Decimal(report["saving"]["saving"]["amount"]) > 0
    # The second world's shortlist ranks the first world's providers too (providers are the platform's, not a
    # client's), marked as such, and its own chosen provider still made it.
    assert any(row["name"].startswith("*") for row in second["shortlist"])
