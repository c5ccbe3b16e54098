"""``make bench-billing``: an invoice run over 10,000 contracts with 30 approved time entries each, on this machine.

Against an embedded SecantusDB (as ``make run`` uses), billing's own code path: ``runs.run`` with the service's
transactions (``shared.runtime.persistence.Store``: every batch a transaction with the counter, the invoices, the
accounts, the credits and the outbox events). Measured in the same run, on the same database, the floor: reading
the same entries in bulk (``find`` by the same keys) and writing the same number of invoice documents (the ones the
run issued) with ``insert_many``. Target: the run takes at most 3x the floor. Figures are printed and written to
``bench-results/billing.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from bson import ObjectId
from pymongo import MongoClient
from rich.console import Console
from rich.table import Table

from bench.common import stop_cleanly_on_sigterm
from services.billing import domain, repository, runs
from services.billing.tax import tax_table
from shared.runtime.persistence import Store, ensure_platform_indexes
from shared.tools import embedded
from tests.support.infra import free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results"
TARGET_RATIO = 3.0
console = Console()


def hex_id(prefix: str, n: int) -> str:
    return f"{prefix}_{n:032x}"


def hourly_account(contract_id: str, tenant_id: str, provider_id: str, start, lane: str, now) -> dict:
    """The billing account of an active hourly contract billed monthly from ``start``, as billing opens it from
    ``contract.activated.v1``."""
    return domain.account_from_contract({
        "id": contract_id, "tenant_id": tenant_id, "provider_id": provider_id, "centre_id": None,
        "title": f"Support {contract_id[-6:]}", "category": "customer_inquiries", "model": "bpo", "lane": lane,
        "status": "active", "version": 1, "milestones": [], "start_date": start.isoformat(), "end_date": None,
        "terms": {"engagement_type": "hourly", "unit": None, "price": {"amount": "13.25", "currency": "EUR"},
                  "hours_per_week": 160, "seats": 4, "billing_cycle": "monthly", "payment_due_days": 30}}, now)


def first_of_last_month():
    """The start of the last complete month: its period is due for invoicing today."""
    return (datetime.now(UTC).date().replace(day=1) - timedelta(days=1)).replace(day=1)


def populate(db, contracts: int, entries: int, tenants: int, start) -> list[str]:
    """Tenants, providers, accounts whose first period (last month) is due, and approved time entries."""
    now = repository.current_time()
    db.tenants.insert_many([{"_id": hex_id("ten", t), "name": f"Client {t}", "country": "DE",
                             "time_zone": "Europe/Berlin"} for t in range(tenants)])
    db.providers.insert_many([{"_id": hex_id("prv", p), "name": f"Provider {p}", "country": "PL",
                               "time_zone": "Europe/Warsaw"} for p in range(100)])
    keys, accounts, items = [], [], []
    for c in range(contracts):
        contract_id = hex_id("ctr", c)
        account = hourly_account(contract_id, hex_id("ten", c % tenants), hex_id("prv", c % 100), start, "enterprise",
                                 now)
        accounts.append(repository.document(account))
        period = domain.next_period(account)
        key = domain.bill_key(contract_id, period[0])
        keys.append(key)
        for e in range(entries):
            day = (start + timedelta(days=e % 28)).isoformat()
            items.append({"_id": hex_id("itm", c * entries + e), "contract_id": contract_id, "kind": "time",
                          "key": f"k{e}", "date": day, "hours": f"{1 + e % 7}.25", "units": None,
                          "milestone": None, "description": "Tickets handled", "week": day, "status": "approved",
                          "reason": None, "submitted_at": now, "reviewed_at": now, "bill_key": key,
                          "billing_period": {"start": period[0], "end": period[1]},
                          "tenant_id": account["tenant_id"], "provider_id": account["provider_id"]})
        if len(items) >= 50_000:
            db.items.insert_many(items, ordered=False)
            items = []
    db.accounts.insert_many(accounts, ordered=False)
    if items:
        db.items.insert_many(items, ordered=False)
    return keys


def invoice_run(client, db, batch_size: int) -> tuple[float, dict]:
    dependency = SimpleNamespace(db=db, client=client, service_name="billing", transaction_timeout=60.0,
                                 relay=SimpleNamespace(notify=lambda: None))
    store = Store(dependency, SimpleNamespace(data={}, args=()))
    started = time.perf_counter()
    summary = runs.run(db, store.transact, as_of=datetime.now(UTC).date().isoformat(), tenant_id=None,
                       tax_rates=tax_table(""), batch_size=batch_size, clock=repository.current_time)
    return time.perf_counter() - started, summary


def floor(db, keys: list[str], batch_size: int) -> tuple[float, float]:
    """Bulk-read the same entries by the same keys, and bulk-write as many invoice documents as the run issued."""
    invoices = list(db.invoices.find())
    for invoice in invoices:
        invoice["_id"] = ObjectId()
    started = time.perf_counter()
    read = 0
    for start in range(0, len(keys), batch_size):
        read += len(list(db.items.find({"bill_key": {"$in": keys[start:start + batch_size]}})))
    reading = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, len(invoices), batch_size):
        db.floor_invoices.insert_many(invoices[start:start + batch_size], ordered=False)
    writing = time.perf_counter() - started
    assert read == db.items.count_documents({})
    return reading, writing


def main() -> None:
    stop_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=30)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    port = free_port()
    database = embedded.start(":memory:", port)
    try:
        with MongoClient(embedded.uri_for(port), tz_aware=True, uuidRepresentation="standard") as client:
            db = client["bench_billing"]
            ensure_platform_indexes(db)
            repository.ensure_indexes(db)
            console.print(f"populating {args.contracts:,} contracts x {args.entries} approved entries ...")
            started = time.perf_counter()
            keys = populate(db, args.contracts, args.entries, args.tenants, first_of_last_month())
            console.print(f"  populated in {time.perf_counter() - started:.1f} s")
            elapsed, summary = invoice_run(client, db, args.batch_size)
            assert summary["invoices_issued"] == args.contracts, summary
            numbers = {t["_id"]: t["next"] for t in db.counters.find()}
            assert sum(n - 1 for n in numbers.values()) == args.contracts  # gapless: 1..n per tenant
            rerun, again = invoice_run(client, db, args.batch_size)
            assert again["invoices_issued"] == 0
            reading, writing = floor(db, keys, args.batch_size)
    finally:
        database.terminate()
        database.wait(timeout=15)

    floor_seconds = reading + writing
    results = {
        "contracts": args.contracts, "entries_per_contract": args.entries, "tenants": args.tenants,
        "batch_size": args.batch_size, "run_seconds": round(elapsed, 2),
        "invoices_per_second": round(args.contracts / elapsed, 1),
        "floor_read_seconds": round(reading, 2), "floor_write_seconds": round(writing, 2),
        "floor_seconds": round(floor_seconds, 2), "ratio": round(elapsed / floor_seconds, 2),
        "rerun_seconds": round(rerun, 2), "target_ratio": TARGET_RATIO,
        "target_met": elapsed / floor_seconds <= TARGET_RATIO,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    table = Table(title=f"invoice run: {args.contracts:,} contracts x {args.entries} approved entries "
                        f"({args.tenants} tenants, {args.batch_size} accounts per transaction)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("invoice run (billing's code, transactions, outbox)", f"{elapsed:.1f} s")
    table.add_row("invoices / s", f"{args.contracts / elapsed:,.0f}")
    table.add_row("floor: bulk-read the same entries", f"{reading:.1f} s")
    table.add_row("floor: bulk-write as many invoice documents", f"{writing:.1f} s")
    table.add_row("floor total", f"{floor_seconds:.1f} s")
    table.add_row("run / floor (target <= 3)", f"{elapsed / floor_seconds:.2f}")
    table.add_row("rerun (issues nothing)", f"{rerun:.1f} s")
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "billing.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
