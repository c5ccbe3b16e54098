// The operator's page: health, outbox backlog and dead letters, providers waiting for verification, organisations.

import { ApiError, get, post, query } from "./api.js";
import { act, badge, errorBox, h, replace, section, table, when, words } from "./ui.js";

async function attempt(title, build) {
  try {
    return section(title, await build());
  } catch (error) {
    return section(title, errorBox(error));
  }
}

async function health() {
  // /health answers 503 with the same body when something is down: read the body either way.
  const response = await fetch("/health", { headers: { Accept: "application/json" } });
  let report;
  try { report = await response.json(); } catch { throw new ApiError(response.status, null, response.statusText); }
  if (!report.services) throw new ApiError(response.status, report);
  const rows = [["Broker", report.broker], ["Gateway", report.gateway],
    ...Object.entries(report.services).map(([name, component]) => [words(name), component])];
  // A service answers per workload lane (each lane's processes; in cells, each lane's database).
  const lanes = (c) => c.lanes
    ? Object.entries(c.lanes).map(([lane, l]) => `${lane}: ${l.status}`).join(", ")
    : "—";
  return h("div", {}, h("p", {}, "Overall: ", badge(report.status)),
    table("Components", ["Component", "Status", "Database", "Lanes", "Error"],
      rows.map(([name, c]) => [name, badge(c.status), c.database || "—", lanes(c), c.error || "—"])));
}

async function unverified() {
  const page = await get(`/v1/providers${query({ verified: false, limit: 50 })}`);
  return table("Providers waiting for verification", ["Provider", "Kind", "Country", "Models", "Verify"],
    page.items.map((p) => {
      const cell = h("div", { class: "actions" });
      cell.append(h("button", { type: "button", onclick: () => act(cell, async () => {
        await post(`/v1/providers/${encodeURIComponent(p.id)}/verify`, { note: "Verified in the console" });
        replace(cell, h("span", { role: "status" }, `${p.display_name} verified.`));
      }) }, `Verify ${p.display_name}`));
      return [p.display_name, words(p.kind), p.country, (p.models || []).map(words).join(", "), cell];
    }), "No provider is waiting for verification.");
}

async function tenants() {
  // Each organisation's registration is in the audit trail (there is no list of tenants in the API).
  const page = await get(`/v1/audit${query({ operation: "create_tenant", outcome: "succeeded", limit: 50 })}`);
  return table("Client organisations registered, newest first", ["Organisation", "Registered", "By"],
    page.items.map((r) => [r.tenant_id || r.resource_ids.tenant_id || "—", when(r.at), r.actor]),
    "No client organisation yet.");
}

async function backlog() {
  const { services } = await get("/v1/operations/backlog");
  const count = (n) => (n === null || n === undefined ? "—" : String(n));
  const rows = Object.entries(services);
  const parked = rows.reduce((sum, [, s]) => sum + (s.dead_letters || 0), 0);
  return h("div", {},
    h("p", {}, parked ? `${parked} message(s) parked in dead-letter queues: list and replay them with tasklinkr dlq.`
      : "No message is parked in a dead-letter queue."),
    table("Outbox backlog and dead letters per service", ["Service", "Status", "Outbox backlog", "Dead letters"],
      rows.map(([name, s]) => [words(name), badge(s.status), count(s.outbox_backlog), count(s.dead_letters)])));
}

async function operatorPage() {
  const sections = await Promise.all([
    attempt("Health", health),
    attempt("Outbox backlog and dead letters", backlog),
    attempt("Providers waiting for verification", unverified),
    attempt("Client organisations", tenants),
  ]);
  return h("div", {}, h("h1", {}, "Operations"), sections);
}

export const operatorPages = {
  home: "#/operations",
  menu: [["Operations", "#/operations"]],
  routes: { operations: operatorPage },
};
