// A provider's pages: invitations (accept, decline, propose), proposals and counter-offers, contracts with time
// entries and their approval, invoices.

import { get, post, query } from "./api.js";
import {
  contractPage, contractsPage, historyTable, invoicePage, invoicesPage, itemsSection, myTurn, offerForm, terms,
} from "./common.js";
import { act, badge, facts, h, link, money, section, when, words } from "./ui.js";

const reload = () => window.dispatchEvent(new HashChangeEvent("hashchange"));

function invitationCard(invitation) {
  const posting = invitation.posting || {};
  const title = posting.title || invitation.posting_id;
  const actions = h("div", { class: "actions" });
  if (invitation.status === "pending") {
    actions.append(
      h("button", { type: "button", onclick: () => act(actions, async () => {
        await post(`/v1/invitations/${encodeURIComponent(invitation.id)}/accept`); reload();
      }) }, `Accept the invitation to ${title}`),
      h("button", { type: "button", class: "secondary", onclick: () => act(actions, async () => {
        await post(`/v1/invitations/${encodeURIComponent(invitation.id)}/decline`, { reason: null }); reload();
      }) }, "Decline"));
  } else if (invitation.status === "accepted" && !invitation.proposal_id) {
    const currency = posting.budget ? posting.budget.currency : "USD";
    actions.append(h("h3", {}, "Send a proposal"), offerForm(`proposal-${invitation.id}`, "Send proposal", currency,
      async (offer) => {
        const proposal = await post(`/v1/invitations/${encodeURIComponent(invitation.id)}/proposals`, offer);
        location.hash = `#/proposals/${encodeURIComponent(proposal.id)}`;
      }, { hours: posting.hours_per_week, from: posting.start_date }));
  }
  if (invitation.proposal_id) {
    actions.append(link(`#/proposals/${encodeURIComponent(invitation.proposal_id)}`, "Open the proposal"));
  }
  return h("li", { class: "card" },
    h("h2", {}, title, " ", badge(invitation.status)),
    facts([
      ["Category", words(posting.category)], ["Model", words(posting.model)],
      ["Budget", `${money(posting.budget)}${posting.engagement ? ` (${words(posting.engagement.type)})` : ""}`],
      ["Hours per week", posting.hours_per_week ?? "—"], ["Start", posting.start_date || "—"],
      ["Your rank", invitation.rank ?? "—"], ["Invited", when(invitation.invited_at)],
    ]),
    actions);
}

async function invitationsPage() {
  const page = await get(`/v1/invitations${query({ limit: 50 })}`);
  return h("div", {}, h("h1", {}, "Invitations"),
    page.items.length ? h("ul", { class: "invitations" }, page.items.map(invitationCard))
      : h("p", { class: "empty" }, "No invitations yet: clients invite providers from their shortlists."));
}

async function proposalPage(id) {
  const proposal = await get(`/v1/proposals/${encodeURIComponent(id)}`);
  const actions = h("div", { class: "actions" });
  if (myTurn(proposal, "provider")) {
    actions.append(
      h("button", { type: "button", onclick: () => act(actions, async () => {
        await post(`/v1/proposals/${encodeURIComponent(id)}/accept`); reload();
      }) }, "Accept the client's terms"),
      h("h2", {}, "Counter-offer"),
      offerForm("counter", "Send counter-offer", proposal.terms.price.currency, async (offer) => {
        await post(`/v1/proposals/${encodeURIComponent(id)}/counter`, offer); reload();
      }, { hours: proposal.terms.hours_per_week, from: proposal.terms.available_from }));
  } else if (proposal.status === "awaiting_client") {
    actions.append(h("p", {}, "Waiting for the client's answer."));
  }
  return h("div", {},
    h("p", {}, link("#/invitations", "← Invitations")),
    h("h1", {}, "Proposal"),
    facts([["Status", badge(proposal.status)], ["On the table", terms(proposal.terms)],
      ["Agreed", when(proposal.agreed_at)], proposal.closed_reason ? ["Closed", proposal.closed_reason] : null]),
    section("Negotiation", historyTable(proposal)), actions);
}

async function providerContractPage(id) {
  return contractPage(id, (contract) => itemsSection(contract, { submit: true }));
}

export const providerPages = {
  home: "#/invitations",
  menu: [["Invitations", "#/invitations"], ["Contracts", "#/contracts"], ["Invoices", "#/invoices"]],
  routes: {
    invitations: invitationsPage,
    proposals: proposalPage,
    contracts: (id) => (id ? providerContractPage(id) : contractsPage()),
    invoices: (id) => (id ? invoicePage(id) : invoicesPage()),
  },
};

