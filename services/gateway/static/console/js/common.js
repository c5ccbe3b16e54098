// Pages both sides of a deal see: negotiation history, contracts with their SLA charts, invoices.

import { documentBlob, get, post, query } from "./api.js";
import {
  act, badge, errorBox, facts, field, h, link, money, replace, section, slaChart, table, when, words,
} from "./ui.js";

const names = new Map();

// A provider's display name (the API's profile), the id itself when it cannot be read.
export async function providerName(id) {
  if (!names.has(id)) {
    names.set(id, get(`/v1/providers/${encodeURIComponent(id)}`).then((p) => p.display_name || id, () => id));
  }
  return names.get(id);
}

export function terms(t) {
  if (!t) return "—";
  const parts = [money(t.price)];
  if (t.hours_per_week) parts.push(`${t.hours_per_week} h/week`);
  if (t.available_from) parts.push(`from ${t.available_from}`);
  return parts.join(", ");
}

export function historyTable(proposal) {
  return table("Negotiation history", ["Step", "By", "Action", "Terms", "Note", "When"],
    proposal.history.map((s) => [String(s.step), words(s.by), words(s.action), terms(s.terms), s.note || "—", when(s.at)]));
}

// Whether it is ``side``'s turn to accept or counter (the proposal awaits that side).
export function myTurn(proposal, side) {
  return proposal.status === `awaiting_${side}`;
}

export function offerForm(prefix, label, currency, onOffer, defaults = {}) {
  const form = h("form", { class: "inline-form", "aria-label": label },
    field(`${prefix}-price`, `Price (${currency})`, { inputmode: "decimal", required: true, value: defaults.price || "",
      pattern: "\\d+(\\.\\d{1,2})?" }),
    field(`${prefix}-hours`, "Hours per week", { type: "number", min: "1", max: "168", value: defaults.hours || "" }),
    field(`${prefix}-from`, "Available from", { type: "date", required: true, value: defaults.from || "" }),
    field(`${prefix}-note`, "Note", { type: "textarea", rows: "2" }),
    h("button", { type: "submit" }, label));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = (name) => form.querySelector(`#${prefix}-${name}`).value.trim();
    const hours = value("hours");
    act(form, () => onOffer({
      terms: { price: { amount: value("price"), currency }, hours_per_week: hours ? Number(hours) : null,
        available_from: value("from") },
      note: value("note") || null,
    }));
  });
  return form;
}

// --- contracts -----------------------------------------------------------------------------------------------------

export async function contractsPage() {
  const page = await get(`/v1/contracts${query({ limit: 50 })}`);
  const rows = await Promise.all(page.items.map(async (c) => [
    link(`#/contracts/${encodeURIComponent(c.id)}`, c.title), await providerName(c.provider_id), badge(c.status),
    `v${c.version}`, c.start_date || "—", c.end_date || "—",
  ]));
  return h("div", {}, h("h1", {}, "Contracts"),
    table("Your contracts", ["Title", "Provider", "Status", "Terms version", "Start", "End"], rows,
      "No contracts yet: an award becomes a draft contract."));
}

function signatureRows(contract, provider) {
  return (contract.signatures || []).map((s) => [words(s.party), s.party === "provider" ? provider : s.party_id,
    when(s.signed_at),
    h("code", {}, (s.terms_hash || "").slice(0, 12))]);
}

export async function contractPage(id, extra) {
  const path = `/v1/contracts/${encodeURIComponent(id)}`;
  const [contract, governance] = await Promise.all([get(path), get(`${path}/governance`).catch((e) => e)]);
  const provider = await providerName(contract.provider_id);
  const t = contract.terms || {};
  const parts = [
    h("h1", {}, contract.title),
    facts([
      ["Status", badge(contract.status)], ["Provider", provider], ["Terms version", `v${contract.version}`],
      ["Price", `${money(t.price)}${t.unit ? ` per ${t.unit}` : ""}`],
      ["Hours per week", t.hours_per_week ?? "—"], ["Billing cycle", words(t.billing_cycle)],
      ["Period", `${contract.start_date || "—"} to ${contract.end_date || "open-ended"}`],
      ["Terms hash", h("code", {}, (contract.terms_hash || "").slice(0, 16))],
    ]),
  ];
  if (["draft", "pending_signatures"].includes(contract.status)) {
    const sign = h("div", { class: "actions" }, h("button", { type: "button", onclick: () => act(sign, async () => {
      await post(`${path}/sign`, { terms_hash: contract.terms_hash });
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    }) }, "Sign the current terms"));
    parts.push(sign);
  }
  parts.push(section("Signatures", table("Signatures of the current terms", ["Party", "Who", "When", "Terms"],
    signatureRows(contract, provider), "Not signed yet.")));
  parts.push(section("Terms versions", table("Every terms version", ["Version", "Agreed", "Signed by", "Terms", "Amendment"],
    (contract.history || []).map((v) => [`v${v.version}`, when(v.agreed_at),
      (v.signatures || []).map((s) => words(s.party)).join(" and ") || "—",
      h("code", {}, (v.terms_hash || "").slice(0, 12)), v.amendment_id || "Original terms"]),
    "No terms agreed yet: the contract becomes v1 when both parties sign.")));
  if (governance instanceof Error) {
    parts.push(section("SLA compliance", errorBox(governance)));
  } else {
    parts.push(section("SLA compliance",
      governance.sla_compliance.length ? governance.sla_compliance.map(slaChart) : h("p", { class: "empty" }, "No SLAs."),
      governance.late_measurements ? h("p", {}, `${governance.late_measurements} late measurement(s) were recorded but not counted.`) : null));
    const reviews = governance.reviews || {};
    parts.push(section("Reviews", facts([
      ["Recorded", String(reviews.recorded ?? 0)], ["Next due", reviews.next_due || "—"],
      ["Overdue", String(reviews.overdue ?? 0)],
      ["Last", reviews.last ? `${reviews.last.overall} overall (${when(reviews.last.recorded_at)})` : "—"],
    ])));
    const issues = governance.issues || { items: [] };
    parts.push(section("Issues", h("p", {}, `${issues.open} open, ${issues.resolved} resolved.`),
      table("Issues", ["Title", "Severity", "Owner", "Level", "Status", "Due"],
        issues.items.map((i) => [i.title, words(i.severity), words(i.owner), String(i.level), badge(i.status), when(i.due_at)]),
        "No issues raised.")));
  }
  if (extra) parts.push(await extra(contract));
  return h("div", {}, parts);
}

// Time entries and other billable items, with their approval; ``review`` adds approve/reject for the client.
export async function itemsSection(contract, { review = false, submit = false } = {}) {
  const base = `/v1/billing-accounts/${encodeURIComponent(contract.id)}/items`;
  const body = h("div", {});
  let items;
  try {
    items = (await get(`${base}${query({ limit: 100 })}`)).items;
  } catch (error) {
    return section("Time entries", errorBox(error));
  }
  const reload = () => window.dispatchEvent(new HashChangeEvent("hashchange"));
  const rows = items.map((item) => {
    const cells = [item.date, words(item.kind), item.hours ?? item.units ?? (item.milestone ?? "—"), item.description || "—",
      badge(item.status), item.reason || "—"];
    if (review) {
      const buttons = h("div", { class: "actions" });
      if (item.status === "submitted") {
        buttons.append(
          h("button", { type: "button", onclick: () => act(buttons, async () => { await post(`${base}/${item.id}/approve`); reload(); }) },
            `Approve ${item.date}`),
          h("button", { type: "button", class: "secondary", onclick: () => act(buttons, async () => {
            await post(`${base}/${item.id}/reject`, { reason: "Rejected in the console." }); reload();
          }) }, `Reject ${item.date}`));
      }
      cells.push(buttons);
    }
    return cells;
  });
  const headers = ["Date", "Kind", "Hours / units", "Description", "Approval", "Reason"];
  if (review) headers.push("Review");
  replace(body, table("Billable items and their approval", headers, rows, "No time entries yet."));
  if (submit && contract.status === "active") {
    const form = h("form", { class: "inline-form", "aria-label": "Record time" },
      field("time-date", "Date", { type: "date", required: true }),
      field("time-hours", "Hours", { inputmode: "decimal", required: true }),
      field("time-description", "What was done", { required: true }),
      h("button", { type: "submit" }, "Record time"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = (name) => form.querySelector(`#time-${name}`).value.trim();
      act(form, async () => {
        await post(base, { kind: "time", date: value("date"), hours: value("hours"), description: value("description") });
        reload();
      });
    });
    body.append(form);
  }
  return section("Time entries", body);
}

// --- invoices ------------------------------------------------------------------------------------------------------

export async function invoicesPage() {
  const page = await get(`/v1/invoices${query({ limit: 50 })}`);
  return h("div", {}, h("h1", {}, "Invoices"),
    table("Invoices", ["Number", "Title", "Period", "Total", "Balance", "Status", "Due"],
      page.items.map((i) => [link(`#/invoices/${encodeURIComponent(i.id)}`, i.number), i.title,
        `${i.period.start} to ${i.period.end}`, money(i.total), money(i.balance), badge(i.status), i.due_date]),
      "No invoices yet: the invoice run issues them after each billing period."));
}

function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const anchor = h("a", { href: url, download: filename });
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export async function invoicePage(id) {
  const path = `/v1/invoices/${encodeURIComponent(id)}`;
  const invoice = await get(path);
  const documents = h("div", { class: "actions" },
    h("button", { type: "button", onclick: () => act(documents, async () => {
      download(await documentBlob(`${path}/pdf`), `${invoice.number}.pdf`);
      documents.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    }) }, "Download the PDF"));
  const tax = invoice.tax || {};
  return h("div", {},
    h("h1", {}, `Invoice ${invoice.number}`),
    facts([
      ["Status", badge(invoice.status)], ["Title", invoice.title], ["Provider", await providerName(invoice.provider_id)],
      ["Period", `${invoice.period.start} to ${invoice.period.end}`], ["Issued", when(invoice.issued_at)],
      ["Due", invoice.due_date],
    ]),
    documents,
    section("Lines", table(`Lines of ${invoice.number}`, ["Kind", "Description", "Date", "Quantity", "Unit price", "Amount"],
      invoice.lines.map((l) => [words(l.kind), l.description, l.date || "—", l.quantity, money(l.unit_price), money(l.amount)]))),
    section("Totals", facts([
      ["Charges", money(invoice.charges)], ["SLA credits", money(invoice.credits)], ["Net", money(invoice.net)],
      [`Tax${tax.name ? ` (${tax.name})` : ""}`, money(tax.amount)], ["Total", money(invoice.total)],
      ["Paid", money(invoice.paid)], ["Credited", money(invoice.credited)],
      ["Balance", h("strong", { class: "balance" }, money(invoice.balance))],
    ])),
    section("Payments", table("Payments", ["Reference", "Amount", "Received"],
      invoice.payments.map((p) => [p.reference, money(p.amount), when(p.received_at)]), "No payment yet.")),
    section("Credit notes", table("Credit notes", ["Number", "Amount", "Reason", "Issued"],
      invoice.credit_notes.map((n) => [n.number, money(n.amount), n.reason, when(n.issued_at)]), "No credit note.")));
}
