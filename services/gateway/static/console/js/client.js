// A client organisation's pages: postings, shortlists and why-nots, negotiation, contracts, invoices, costs; and the
// finance key's (invoices and costs).

import { get, post, query } from "./api.js";
import {
  contractPage, contractsPage, historyTable, invoicePage, invoicesPage, itemsSection, myTurn, offerForm, providerName,
  terms,
} from "./common.js";
import {
  act, badge, barChart, errorBox, facts, field, h, link, money, replace, scoreBar, section, table, when, words,
} from "./ui.js";

const reload = () => window.dispatchEvent(new HashChangeEvent("hashchange"));

async function postingsPage() {
  const page = await get(`/v1/postings${query({ limit: 50 })}`);
  return h("div", {}, h("h1", {}, "Postings"),
    table("Your postings", ["Title", "Category", "Model", "Status", "Published"],
      page.items.map((p) => [link(`#/postings/${encodeURIComponent(p.id)}`, p.title), words(p.category), words(p.model),
        badge(p.status), when(p.published_at)]),
      "No postings yet."));
}

function explanationView(explanation, name) {
  return h("div", { class: "explanation", "aria-live": "polite" },
    h("h3", {}, `Why ${name}: ${words(explanation.status)}`),
    h("p", { class: "summary" }, explanation.summary),
    explanation.rows.map((row) => h("div", { class: "explained-row" },
      row.centre_name ? h("h4", {}, row.centre_name) : null,
      row.excluded_by && row.excluded_by.length
        ? h("ul", { class: "exclusions" }, row.excluded_by.map((e) => h("li", {}, h("strong", {}, words(e.constraint)), ": ", e.reason)))
        : null,
      row.score !== undefined ? facts([
        ["Score", row.score], ["Place among eligible", row.rank ?? "—"],
        row.below_cut_by ? ["Below the cut by", row.below_cut_by] : null,
      ]) : null,
      row.breakdown ? h("div", { class: "breakdown" }, Object.entries(row.breakdown).map(([k, v]) => scoreBar(k, v))) : null,
      row.reasons && row.reasons.length ? h("ul", { class: "reasons" }, row.reasons.map((r) => h("li", {}, r))) : null)));
}

async function explain(postingId, providerId, into) {
  const name = await providerName(providerId);
  await act(into, async () => {
    const explanation = await get(`/v1/postings/${encodeURIComponent(postingId)}/shortlist/${encodeURIComponent(providerId)}/explain`);
    replace(into, explanationView(explanation, name));
  });
}

async function shortlistSection(posting) {
  const path = `/v1/postings/${encodeURIComponent(posting.id)}/shortlist`;
  let shortlist;
  try {
    shortlist = await get(path);
  } catch (error) {
    const note = error.status === 404 && posting.status === "open"
      ? h("p", {}, "Matching has not ranked this posting yet; reload in a moment.") : null;
    return section("Shortlist", note, errorBox(error));
  }
  const candidates = await Promise.all(shortlist.shortlist.candidates.map(async (c) => {
    const name = await providerName(c.provider_id);
    const why = h("div", { class: "why" });
    const actions = h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", onclick: () => explain(posting.id, c.provider_id, why) },
        `Explain ${name}`),
      posting.status === "open" ? h("button", { type: "button", onclick: () => act(actions, async () => {
        await post(`/v1/postings/${encodeURIComponent(posting.id)}/invitations`, { provider_id: c.provider_id });
        replace(actions, h("p", { role: "status" }, `${name} is invited.`));
      }) }, `Invite ${name}`) : null);
    return h("li", { class: "candidate card" },
      h("h3", {}, `#${c.rank} ${name}`, h("span", { class: "score" }, `score ${c.score}`)),
      h("div", { class: "breakdown", "aria-label": `Score components of ${name}` },
        Object.entries(c.breakdown).map(([k, v]) => scoreBar(k, v))),
      h("ul", { class: "reasons" }, c.reasons.map((r) => h("li", {}, r))),
      actions, why);
  }));
  const whyNot = h("form", { class: "inline-form", "aria-label": "Why not this provider?" });
  const answer = h("div", { class: "why", id: "why-not-answer" });
  const options = await otherProviders(posting, shortlist);
  whyNot.append(
    h("div", { class: "field" }, h("label", { for: "why-not-provider" }, "Provider"),
      h("select", { id: "why-not-provider", required: true },
        h("option", { value: "" }, "Choose a provider…"),
        options.map(([id, name]) => h("option", { value: id }, name)))),
    h("button", { type: "submit" }, "Why not this provider?"));
  whyNot.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = whyNot.querySelector("#why-not-provider").value;
    if (id) explain(posting.id, id, answer);
  });
  return section("Shortlist",
    h("p", {}, `Version ${shortlist.shortlist.version}, ranked ${when(shortlist.shortlist.computed_at)}: `,
      `${shortlist.shortlist.candidates.length} shortlisted of ${shortlist.eligible} eligible (top ${shortlist.top_k}).`),
    h("ol", { class: "candidates" }, candidates),
    h("h3", {}, "Why not this provider?"), whyNot, answer);
}

// Providers of the posting's category that are not on the shortlist: the ones a client asks about.
async function otherProviders(posting, shortlist) {
  const listed = new Set(shortlist.shortlist.candidates.map((c) => c.provider_id));
  try {
    const page = await get(`/v1/providers${query({ category: posting.category, limit: 50 })}`);
    return page.items.filter((p) => !listed.has(p.id)).map((p) => [p.id, `${p.display_name} (${p.country})`]);
  } catch {
    return [];
  }
}

async function proposalsSection(posting) {
  const base = `/v1/postings/${encodeURIComponent(posting.id)}`;
  const { items } = await get(`${base}/proposals`);
  const currency = posting.budget ? posting.budget.currency : "USD";
  const cards = await Promise.all(items.map(async (p) => {
    const name = await providerName(p.provider_id);
    const actions = h("div", { class: "actions" });
    if (myTurn(p, "client")) {
      actions.append(h("button", { type: "button", onclick: () => act(actions, async () => {
        await post(`/v1/proposals/${encodeURIComponent(p.id)}/accept`); reload();
      }) }, `Accept ${name}'s terms`));
      actions.append(h("details", {}, h("summary", {}, "Counter-offer"),
        offerForm(`counter-${p.id}`, "Send counter-offer", currency, async (offer) => {
          await post(`/v1/proposals/${encodeURIComponent(p.id)}/counter`, offer); reload();
        }, { hours: p.terms.hours_per_week, from: p.terms.available_from })));
    }
    if (p.status === "agreed" && posting.status === "open") {
      actions.append(h("button", { type: "button", onclick: () => act(actions, async () => {
        await post(`${base}/award`, { proposal_id: p.id }); reload();
      }) }, `Award to ${name}`));
    }
    return h("li", { class: "card" },
      h("h3", {}, name, " ", badge(p.status)),
      h("p", {}, "On the table: ", terms(p.terms)),
      historyTable(p), actions);
  }));
  return section("Invitations and proposals",
    cards.length ? h("ul", { class: "proposals" }, cards) : h("p", { class: "empty" }, "No proposals yet: invite providers from the shortlist."));
}

async function postingPage(id) {
  const posting = await get(`/v1/postings/${encodeURIComponent(id)}`);
  const assessment = posting.assessment || {};
  const [shortlist, proposals] = await Promise.all([shortlistSection(posting), proposalsSection(posting)]);
  return h("div", {},
    h("p", {}, link("#/postings", "← All postings")),
    h("h1", {}, posting.title),
    facts([
      ["Status", badge(posting.status)], ["Category", words(posting.category)], ["Model", words(posting.model)],
      ["Budget", `${money(posting.budget)}${posting.engagement ? ` (${words(posting.engagement.type)})` : ""}`],
      ["Hours per week", posting.hours_per_week ?? "—"], ["Start", posting.start_date || "—"],
      ["Core or non-core", `${words(assessment.classification)}${assessment.reason ? `: ${assessment.reason}` : ""}`],
    ]),
    shortlist, proposals);
}

async function clientContractPage(id) {
  return contractPage(id, (contract) => itemsSection(contract, { review: true }));
}

function isoDate(date) {
  return date.toISOString().slice(0, 10);
}

// The report covers ``months`` calendar months from ``from`` (1-36; by default the year up to this month's end).
async function costsPage(from, months) {
  const today = new Date();
  const start = from || isoDate(new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 11, 1)));
  const span = months || "12";
  const form = h("form", { class: "inline-form", "aria-label": "Report period" },
    field("costs-from", "From", { type: "date", value: start, required: true }),
    field("costs-months", "Months", { type: "number", min: 1, max: 36, step: 1, value: span, required: true }),
    h("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/costs/${form.querySelector("#costs-from").value}/${form.querySelector("#costs-months").value}`;
  });
  let body;
  try {
    const report = await get(`/v1/reports/costs${query({ from: start, months: span })}`);
    const period = h("p", {}, `${report.from} to ${report.to} (${report.months} months)`);
    body = h("div", {}, period, ...(report.currencies.length ? report.currencies.map(currencyReport)
      : [h("p", { class: "empty" }, "No invoices in this period.")]));
  } catch (error) {
    body = errorBox(error);
  }
  return h("div", {}, h("h1", {}, "Cost report"), form, body);
}

function spendBars(title, rows) {
  return barChart(title, rows.map((r) => ({ label: words(r.key), value: Number(r.spend.amount), text: money(r.spend) })));
}

function currencyReport(part) {
  const savings = part.savings.flatMap((s) => [
    { label: `${words(s.category)} in-house`, value: Number(s.in_house_cost.amount), text: money(s.in_house_cost) },
    { label: `${words(s.category)} outsourced`, value: Number(s.spend.amount), text: money(s.spend) },
  ]);
  return section(`Spend in ${part.currency}`,
    facts([
      ["Invoices", String(part.invoices)], ["Spend (net of SLA credits, before tax)", money(part.spend)],
      ["Tax", money(part.tax)], ["Total", money(part.total)], ["SLA credits", money(part.credits)],
      ["Fixed", `${money(part.fixed)} (${part.fixed_share_percent ?? "—"}%)`],
      ["Variable", `${money(part.variable)} (${part.variable_share_percent ?? "—"}%)`],
    ]),
    h("div", { class: "charts" },
      spendBars("Spend by category", part.by_category),
      spendBars("Spend by model", part.by_model),
      spendBars("Spend by shoring", part.by_shoring)),
    part.savings.length
      ? h("div", {}, barChart("In-house cost against outsourced spend", savings),
        table("Saving against in-house", ["Category", "In-house a month", "In-house for the period", "Spend", "Saving"],
          part.savings.map((s) => [words(s.category), money(s.monthly_estimate), money(s.in_house_cost), money(s.spend),
            `${money(s.saving)}${s.saving_percent ? ` (${s.saving_percent}%)` : ""}`])))
      : h("p", { class: "empty" }, "Set your in-house cost estimates (PUT /v1/reports/in-house-costs) to see the saving."));
}

export const clientPages = {
  home: "#/postings",
  menu: [["Postings", "#/postings"], ["Contracts", "#/contracts"], ["Invoices", "#/invoices"], ["Costs", "#/costs"]],
  routes: {
    postings: (id) => (id ? postingPage(id) : postingsPage()),
    contracts: (id) => (id ? clientContractPage(id) : contractsPage()),
    invoices: (id) => (id ? invoicePage(id) : invoicesPage()),
    costs: costsPage,
  },
};

// A client's finance key reads invoices and reports only.
export const financePages = {
  home: "#/invoices",
  menu: [["Invoices", "#/invoices"], ["Costs", "#/costs"]],
  routes: { invoices: clientPages.routes.invoices, costs: costsPage },
};
