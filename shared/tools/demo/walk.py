"""The demo's path, step by step over the public API: a world registered, a posting published and its explained
shortlist, invitation, proposal, counter-offer, award, the contract signed by both, SLA measurements with one
breached window, time approved, an invoice run with its service-credit line, the PDF, a payment and the cost report.

Timed things use what every stack allows: the contract is backdated to last week's Monday (within
``contracting_max_backdate_days``), so last week's SLA window and billing period are already over, and the
operator's invoice run (``POST /v1/invoice-runs``) issues the invoice at once. Contracting would evaluate a
backdated contract's past windows only a grace period after activation (``contracting_sla_grace_seconds``, an hour
by default); once the measurements are in, both parties close last week's windows
(``POST /v1/contracts/{id}/slas/{sla_id}/windows/close``), which evaluates them at once, whatever the timers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.tools.demo import world
from shared.tools.demo.api import Api, ApiError, wait_until

ASYNC_TIMEOUT = 60.0  # events between services: a shortlist, a draft contract, a billing account


class DemoError(RuntimeError):
    """The platform did not do what the step needs; the message says what and where to look."""


@dataclass
class Report:
    """What the demo created and saw, also written as ``demo.json`` beside the PDF."""

    world: str
    output_dir: str
    keys: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    shortlist: list[dict] = field(default_factory=list)
    contract_status: str = ""
    breached_windows: int = 0
    credit: dict | None = None
    invoice: dict = field(default_factory=dict)
    pdf: str = ""
    payment: dict = field(default_factory=dict)
    saving: dict = field(default_factory=dict)

    def save(self) -> Path:
        path = Path(self.output_dir) / "demo.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _money(value: dict | None) -> str:
    return "—" if not value else f"{Decimal(value['amount']):,.2f} {value['currency']}"


class Walk:
    def __init__(self, api: Api, operator_key: str, output_root: Path, console: Console,
                 now: datetime | None = None):
        self.api = api
        self.operator = operator_key
        self.console = console
        self.now = now or datetime.now(UTC)
        tag = f"demo {self.now:%Y-%m-%d %H:%M:%S}"
        self.output_dir = output_root / f"{self.now:%Y%m%dT%H%M%S%f}"
        self.report = Report(world=tag, output_dir=str(self.output_dir))
        self.names: dict[str, str] = {}  # provider and centre id -> name
        self.monday = world.last_weeks_monday(self.now.date())
        self.activated_at: datetime | None = None  # when the second signature made the contract active
        self.slas: dict[str, str] = {}  # metric -> the contract's SLA id

    # -- the path -------------------------------------------------------------------------------------------------

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("Registering two clients", self.register_clients),
            ("Registering and verifying providers", self.register_providers),
            ("Publishing both clients' postings", self.publish_postings),
            ("Waiting for matching's explained shortlist", self.show_shortlist),
            ("Inviting, proposing, countering, accepting", self.negotiate),
            ("Awarding the posting", self.award),
            ("Drafting and signing the contract", self.sign_contract),
            ("Recording last week's time and SLA measurements", self.record_work),
            ("Closing last week's SLA windows by agreement", self.close_sla_windows),
            ("Running the invoice run", self.invoice),
            ("Writing the invoice PDF", self.write_pdf),
            ("Paying the invoice", self.pay),
            ("Reading the cost report", self.cost_report),
        ]

    def run(self) -> Report:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.console.print(Panel.fit(f"TaskLINKr demo: a new world, [bold]{self.report.world}[/]\n"
                                     f"against {self.api.base_url}", border_style="cyan"))
        steps = self.steps()
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task("", total=len(steps))
            for title, step in steps:
                progress.update(task, description=title)
                try:
                    step()
                except ApiError as error:
                    raise DemoError(f"{title}: {error}") from error
                progress.advance(task)
        self.report.save()
        return self.report

    def say(self, text: str) -> None:
        self.console.print(f"[green]✓[/] {text}")

    def as_operator(self, method: str, path: str, body=None, **kwargs):
        return self.api.request(method, path, self.operator, body, **kwargs)

    def register_clients(self) -> None:
        for role, tenant in world.clients(self.report.world).items():
            created = self.as_operator("POST", "/v1/tenants", tenant)
            self.report.keys[f"{role} (owner)"] = created["api_key"]
            self.report.ids[role] = created["tenant"]["id"]
            self.say(f"client [bold]{tenant['name']}[/] ({tenant['segment']}, {tenant['country']}) "
                     f"{created['tenant']['id']}")
        small = self.report.ids["small_business"]
        finance = self.api.post(f"/v1/tenants/{small}/keys", self.key("small_business"),
                                {"role": "finance", "label": "accounts payable"})
        self.report.keys["small_business (finance)"] = finance["api_key"]

    def key(self, who: str) -> str:
        return self.report.keys[f"{who} (owner)" if who in ("small_business", "enterprise") else who]

    def register_providers(self) -> None:
        table = Table("provider", "model", "based in", "delivery centres", "rate", title="Providers (all verified)")
        for profile in world.providers():
            registered = self.as_operator("POST", "/v1/providers", profile)
            provider = registered["provider"]
            self.as_operator("POST", f"/v1/providers/{provider['id']}/verify", {"note": "Identity and references"})
            self.names[provider["id"]] = profile["display_name"]
            for centre in provider["delivery_centres"]:
                self.names[centre["id"]] = centre["name"]
            self.report.keys[profile["display_name"]] = registered["api_key"]
            self.report.ids[profile["display_name"]] = provider["id"]
            centres = ", ".join(f"{c['name']} {c['country']}" for c in profile["delivery_centres"]) or "—"
            table.add_row(profile["display_name"], profile["models"][0].replace("virtual_assistant", "VA"),
                          profile["country"], centres, f"{_money(provider['rates']['hourly'])}/h")
        self.console.print(table)

    def publish_postings(self) -> None:
        start = self.now.date() + timedelta(days=7)
        for who, body in (("small_business", world.small_business_posting(start)),
                          ("enterprise", world.enterprise_posting(start))):
            draft = self.api.post("/v1/postings", self.key(who), body, expect=(201,))
            posting = self.api.post(f"/v1/postings/{draft['id']}/publish", self.key(who))
            self.report.ids[f"{who} posting"] = posting["id"]
            assessment = posting["assessment"]
            self.say(f"{who.replace('_', ' ')} published [bold]{posting['title']}[/] ({posting['id']}): "
                     f"{assessment['classification'].replace('_', '-')}. {assessment['reason']}")

    def shortlist_of(self, who: str) -> dict:
        """The posting's shortlist; no candidates yet while matching has not ranked it (404)."""
        try:
            return self.api.get(f"/v1/postings/{self.report.ids[who + ' posting']}/shortlist", self.key(who))
        except ApiError as error:
            if error.status != 404:
                raise
            return {"eligible": 0, "top_k": 0, "shortlist": {"candidates": []}}

    def show_shortlist(self) -> None:
        chosen = self.report.ids[world.CHOSEN]

        def with_chosen():
            shortlist = self.shortlist_of("small_business")
            ids = [c["provider_id"] for c in shortlist["shortlist"]["candidates"]]
            return shortlist if chosen in ids else None

        shortlist = wait_until(with_chosen, ASYNC_TIMEOUT)
        if shortlist is None:
            raise DemoError(f"{world.CHOSEN} ({chosen}) did not reach the shortlist within {ASYNC_TIMEOUT:.0f} s; "
                            "is the matching service running? (`tasklinkr status`, its log)")
        self.print_shortlist("Harbour Dental's shortlist", shortlist)
        posting = self.report.ids["small_business posting"]
        manila = self.report.ids["Maria Santos"]
        why_not = self.api.get(f"/v1/postings/{posting}/shortlist/{manila}/explain", self.key("small_business"))
        self.say(f"why not Maria Santos? {why_not['summary']}")
        firms = {self.report.ids[p["display_name"]] for p in world.providers() if p["kind"] == "firm"}

        def with_a_firm_of_ours():
            shortlist = self.shortlist_of("enterprise")
            ids = {c["provider_id"] for c in shortlist["shortlist"]["candidates"]}
            return shortlist if ids & firms else None

        shortlist = wait_until(with_a_firm_of_ours, 20) or self.shortlist_of("enterprise")
        self.print_shortlist("Nordwind's shortlist (firms, by delivery centre)", shortlist)

    def print_shortlist(self, title: str, shortlist: dict) -> None:
        table = Table("#", title=f"{title}: {shortlist['eligible']} eligible, top {shortlist['top_k']}",
                      box=box.SIMPLE_HEAD, collapse_padding=True, show_edge=False,
                      caption="components 0-1: skills, rate vs budget, overlapping hours, track record, "
                      "load, shoring; * registered by an earlier run")
        table.add_column("provider", no_wrap=True)
        for heading in ("score", "skill", "rate", "hours", "track", "load", "shore"):
            table.add_column(heading, justify="right", no_wrap=True)
        candidates = shortlist["shortlist"]["candidates"]
        for candidate in candidates:
            name = _short(self.name_of(candidate["provider_id"]), 16 if candidate["centre_id"] else 24)
            if candidate["centre_id"]:
                name += f", {_short(self.names.get(candidate['centre_id'], '?'), 9)}"
            if candidate.get("other_centres"):  # a firm takes one place; its other eligible centres come with it
                name += f" +{len(candidate['other_centres'])}"
            parts = {k: f"{Decimal(v):.2f}" for k, v in candidate["breakdown"].items()}
            table.add_row(str(candidate["rank"]), name, f"[bold]{Decimal(candidate['score']):.3f}[/]",
                          parts.get("required_skills", ""), parts.get("rate", ""), parts.get("overlap", ""),
                          parts.get("track_record", ""), parts.get("load", ""), parts.get("shoring", ""))
            self.report.shortlist.append({"provider_id": candidate["provider_id"], "name": name,
                                          "score": candidate["score"], "shortlist": title})
        self.console.print(table)
        if candidates:
            self.console.print(f"  why #1: {'; '.join(candidates[0]['reasons'])}", style="dim")

    def name_of(self, provider_id: str) -> str:
        """This world's providers by name; an earlier run's (providers are shared by every client) marked so."""
        if provider_id not in self.names:
            profile = self.api.get(f"/v1/providers/{provider_id}", self.key("small_business"))
            self.names[provider_id] = f"*{profile['display_name']}"
            for centre in profile["delivery_centres"]:
                self.names[centre["id"]] = centre["name"]
        return self.names[provider_id]

    def negotiate(self) -> None:
        posting, client = self.report.ids["small_business posting"], self.key("small_business")
        provider_id, provider = self.report.ids[world.CHOSEN], self.key(world.CHOSEN)
        invitation = self.api.post(f"/v1/postings/{posting}/invitations", client, {"provider_id": provider_id},
                                   expect=(201,))
        self.api.post(f"/v1/invitations/{invitation['id']}/accept", provider)
        available = (self.now.date() + timedelta(days=7)).isoformat()
        terms = {"price": world.ASKED, "hours_per_week": world.HOURS_PER_WEEK, "available_from": available}
        proposal = self.api.post(f"/v1/invitations/{invitation['id']}/proposals", provider,
                                 {"terms": terms, "note": "Bilingual, and I know Dentrix."}, expect=(201,))
        self.api.post(f"/v1/proposals/{proposal['id']}/counter", client,
                      {"terms": {**terms, "price": world.COUNTERED}, "note": "Our budget for a 26-week start."})
        agreed = self.api.post(f"/v1/proposals/{proposal['id']}/accept", provider)
        self.report.ids["proposal"] = proposal["id"]
        table = Table("step", "who", "did", "price", "hours/week", "note", box=box.SIMPLE_HEAD,
                      title=f"Negotiation: {world.CHOSEN} invited and accepted; proposal {agreed['status']}")
        for step in agreed["history"]:
            terms = step.get("terms") or {}
            table.add_row(str(step["step"]), step["by"], step["action"], _money(terms.get("price")),
                          str(terms.get("hours_per_week") or ""), step.get("note") or "")
        self.console.print(table)
        self.say(f"{world.CHOSEN} asked {_money(world.ASKED)}/h, Harbour Dental countered "
                 f"{_money(world.COUNTERED)}/h, she accepted")

    def award(self) -> None:
        posting = self.report.ids["small_business posting"]
        awarded = self.api.post(f"/v1/postings/{posting}/award", self.key("small_business"),
                                {"proposal_id": self.report.ids["proposal"]})
        self.say(f"posting {awarded['status']}")

    def sign_contract(self) -> None:
        client, provider = self.key("small_business"), self.key(world.CHOSEN)
        posting = self.report.ids["small_business posting"]

        def drafted():
            return [c for c in self.api.get("/v1/contracts", client)["items"] if c["posting_id"] == posting]

        found = wait_until(drafted, ASYNC_TIMEOUT)
        if not found:
            raise DemoError(f"no draft contract for {posting} within {ASYNC_TIMEOUT:.0f} s; is contracting running?")
        contract_id = found[0]["id"]
        self.report.ids["contract"] = contract_id
        final = self.api.request("PATCH", f"/v1/contracts/{contract_id}", client, {
            "start_date": self.monday.isoformat(), "slas": world.SLAS,
            "terms": {"payment_due_days": 14}})
        self.api.post(f"/v1/contracts/{contract_id}/sign", provider, {"terms_hash": final["terms_hash"]})
        active = self.api.post(f"/v1/contracts/{contract_id}/sign", client, {"terms_hash": final["terms_hash"]})
        self.report.contract_status = active["status"]
        self.activated_at = datetime.now(UTC)
        self.slas = {sla["metric"]: sla["id"] for sla in active["slas"]}
        self.say(f"contract {contract_id} backdated to {self.monday} (work under way since last week), signed "
                 f"by both: [bold]{active['status']}[/], terms {final['terms_hash'][:12]}…")

    def record_work(self) -> None:
        contract_id, provider = self.report.ids["contract"], self.key(world.CHOSEN)
        account = f"/v1/billing-accounts/{contract_id}"
        if not wait_until(lambda: self.api.status_of(account, provider) == 200, ASYNC_TIMEOUT):
            raise DemoError(f"no billing account for {contract_id} within {ASYNC_TIMEOUT:.0f} s; is billing running?")
        days = [self.monday + timedelta(days=n) for n in range(len(world.TIME))]
        items = [{"kind": "time", "key": f"time-{day}", "date": day.isoformat(), "hours": hours,
                  "description": text} for day, (hours, text) in zip(days, world.TIME, strict=True)]
        submitted = self.api.post(f"{account}/items", provider, {"items": items})
        for item in submitted["items"]:
            self.api.post(f"{account}/items/{item['id']}/approve", self.key("small_business"))
        measurements = []
        for metric, values in world.MEASUREMENTS.items():
            for n, value in enumerate(values):
                at = datetime(days[n].year, days[n].month, days[n].day, 15, tzinfo=UTC)
                measurements.append({"key": f"{metric}-{n}", "sla_id": self.slas[metric], "value": value,
                                     "measured_at": at.isoformat()})
        recorded = self.api.post(f"/v1/contracts/{contract_id}/measurements", provider,
                                 {"measurements": measurements})
        hours = sum(Decimal(h) for h, _ in world.TIME)
        self.say(f"{submitted['recorded']} days of time ({hours} h) submitted and approved; "
                 f"{recorded['recorded']} SLA measurements for the week of {self.monday}")

    def close_sla_windows(self) -> None:
        """Both parties confirm last week's measurements complete: contracting evaluates the windows at once instead
        of after its grace period."""
        contract_id, client = self.report.ids["contract"], self.key("small_business")
        start = {"start": datetime(self.monday.year, self.monday.month, self.monday.day, tzinfo=UTC).isoformat()}
        for sla_id in self.slas.values():
            path = f"/v1/contracts/{contract_id}/slas/{sla_id}/windows/close"
            self.api.post(path, self.key(world.CHOSEN), start)
            closed = self.api.post(path, client, start)
            if closed["evaluation"] is None:
                raise DemoError(f"both parties closed the SLA window of {closed['window']['start']} of {contract_id} "
                                "but contracting did not evaluate it; its logs say why")
        self.say(f"provider and client confirmed the week of {self.monday} measured in full: its windows are "
                 "evaluated now, not after the grace period")
        rows = self.api.get(f"/v1/contracts/{contract_id}/governance", client)["sla_compliance"]
        table = Table("SLA", "target", "value", "outcome", "credit", title="Last week's SLA windows")
        for row in rows:
            window = row["windows"][0]
            arrow = "≤" if row["direction"] == "at_most" else "≥"
            table.add_row(row["metric"], f"{arrow} {row['target']}", window["value"],
                          "[green]met[/]" if window["met"] else "[red]breached[/]", _money(window["credit"]))
        self.console.print(table)
        self.report.breached_windows = sum(row["breached"] for row in rows)
        self.report.credit = next((w["credit"] for row in rows for w in row["windows"] if w["credit"]), None)
        account = f"/v1/billing-accounts/{contract_id}"
        if self.report.credit and not wait_until(lambda: any(
                c["state"] == "awaiting_invoice" for c in self.api.get(account, client)["sla_credits"]), ASYNC_TIMEOUT):
            raise DemoError(f"billing did not record the SLA credit of {contract_id} within {ASYNC_TIMEOUT:.0f} s")

    def invoice(self) -> None:
        contract_id, client = self.report.ids["contract"], self.key("small_business")
        run = self.as_operator("POST", "/v1/invoice-runs", {"tenant_id": self.report.ids["small_business"]})
        summaries = [i for i in self.api.get("/v1/invoices", client)["items"] if i["contract_id"] == contract_id]
        if not summaries:
            raise DemoError(f"the invoice run issued nothing for {contract_id} ({run})")
        invoice = self.api.get(f"/v1/invoices/{summaries[0]['id']}", client)
        table = Table("kind", "date", "description", "quantity", "amount",
                      title=f"Invoice {invoice['number']} — {invoice['period']['start']} to {invoice['period']['end']}")
        for line in invoice["lines"]:
            style = "red" if line["kind"] == "sla_credit" else ""
            table.add_row(line["kind"], line.get("date") or "", line["description"], line.get("quantity") or "",
                          _money(line["amount"]), style=style)
        table.add_section()
        table.add_row("net", "", "", "", _money(invoice["net"]))
        table.add_row("tax", "", invoice["tax"].get("name") or "none", "", _money(invoice["tax"]["amount"]))
        table.add_row("total", "", f"due {invoice['due_date']}", "", _money(invoice["total"]), style="bold")
        self.console.print(table)
        self.report.invoice = {"id": invoice["id"], "number": invoice["number"], "total": invoice["total"],
                               "lines": [line["kind"] for line in invoice["lines"]]}

    def write_pdf(self) -> None:
        invoice = self.report.invoice
        pdf = self.api.get(f"/v1/invoices/{invoice['id']}/pdf", self.key("small_business (finance)"))
        path = self.output_dir / f"{invoice['number']}.pdf"
        path.write_bytes(pdf)
        self.report.pdf = str(path)
        self.say(f"PDF written to [bold]{path}[/] ({len(pdf):,} bytes)")

    def pay(self) -> None:
        invoice = self.report.invoice
        paid = self.api.post(f"/v1/invoices/{invoice['id']}/payments", self.key("small_business (finance)"),
                             {"amount": invoice["total"], "reference": f"ACH {invoice['number']} {self.now:%H%M%S}"},
                             expect=(201,))
        self.report.payment = {"status": paid["status"], "paid": paid["paid"], "balance": paid["balance"]}
        self.say(f"finance paid {_money(paid['paid'])}: invoice {paid['status']}, balance {_money(paid['balance'])}")

    def cost_report(self) -> None:
        client = self.key("small_business")
        self.api.request("PUT", "/v1/reports/in-house-costs", client, {"monthly": world.IN_HOUSE_MONTHLY})
        report = self.api.get("/v1/reports/costs", client, params={"from": self.monday.isoformat(), "months": 1})
        table = Table("", "amount", title=f"Cost report {report['from']} to {report['to']} ({report['months']} month)")
        for part in report["currencies"]:
            table.add_row("spend (net of SLA credits)", _money(part["spend"]))
            table.add_row("SLA credits", _money(part["credits"]))
            for dimension in ("by_model", "by_shoring"):
                for row in part[dimension]:
                    table.add_row(f"  {dimension[3:]}: {row['key']}", _money(row["spend"]))
            for saving in part["savings"]:
                table.add_row(f"in-house cost of {saving['category']}", _money(saving["in_house_cost"]))
                table.add_row("[bold]saving against in-house[/]", f"[bold]{_money(saving['saving'])} "
                              f"({saving['saving_percent']} %)[/]")
                self.report.saving = saving
        self.console.print(table)

    # -- the end ----------------------------------------------------------------------------------------------------

    def print_keys(self) -> None:
        self.console.rule("Keys this run created (the API shows each once; also in demo.json)")
        for who, key in self.report.keys.items():
            self.console.print(f"  {who:<26} [bold]{key}[/]", soft_wrap=True)

    def print_next(self, operator_key_source: str) -> None:
        base = self.api.base_url
        client = self.key("small_business")
        self.console.rule("Where to look next")
        for label, text in (
            ("Console", f"{base}/console  (sign in with a key above, e.g. Harbour Dental's owner or "
                        f"{world.CHOSEN}'s, or the operator key)"),
            ("API", f"{base}/v1/openapi.json"),
            ("Try", f"curl -s -H 'Authorization: Bearer {client}' "
                    f"{base}/v1/contracts/{self.report.ids['contract']}/governance"),
            ("Invoice PDF", self.report.pdf),
            ("This run", str(Path(self.report.output_dir) / "demo.json")),
            ("Operator", f"key in {operator_key_source}; `tasklinkr status` (outbox backlog, queue depths), "
                         "`tasklinkr dlq list`"),
            ("Docs", "README.md, docs/api.md, docs/architecture.md"),
        ):
            self.console.print(f"  [bold]{label:<12}[/]{text}", soft_wrap=True, highlight=False)
