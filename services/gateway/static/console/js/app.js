// The console's shell: sign-in with a key, the navigation of the signed-in role, and the hash router.

import { ApiError, api, session } from "./api.js";
import { clientPages, financePages } from "./client.js";
import { operatorPages } from "./operator.js";
import { providerPages } from "./provider.js";
import { errorBox, field, h, replace } from "./ui.js";

const PAGES = { client: clientPages, finance: financePages, provider: providerPages, operator: operatorPages };
const ROLE_NAMES = { client: "Client", finance: "Client (finance)", provider: "Provider", operator: "Operator" };

// Which kind of key it is, asked of the API itself: each probe is a route only that kind of key may call.
const PROBES = [
  ["client", "/v1/tenants/me"],
  ["finance", "/v1/reports/in-house-costs"],
  ["provider", "/v1/invitations?limit=1"],
  ["operator", "/v1/audit?limit=1"],
];

async function recognise(key) {
  let refusal = null;
  for (const [role, path] of PROBES) {
    try {
      await api("GET", path, undefined, key);
      return role;
    } catch (error) {
      if (!(error instanceof ApiError) || ![403, 404].includes(error.status)) throw error;
      refusal = error;
    }
  }
  throw refusal;
}

const main = () => document.getElementById("main");

function signInPage() {
  const form = h("form", { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", {}, "Enter the API key of a client organisation, a provider or the operator. It stays in this tab only."),
    field("api-key", "API key", { type: "password", autocomplete: "off", required: true, spellcheck: "false" }),
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    form.querySelectorAll(".error").forEach((e) => e.remove());
    const key = form.querySelector("#api-key").value.trim();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const role = await recognise(key);
      session.start(key, role);
      location.hash = PAGES[role].home;
      render();
    } catch (error) {
      form.append(errorBox(error));
      button.disabled = false;
      form.querySelector("#api-key").focus();
    }
  });
  return form;
}

function navigation(role) {
  const nav = document.getElementById("nav");
  const current = location.hash || PAGES[role].home;
  replace(nav, h("ul", {}, PAGES[role].menu.map(([label, href]) =>
    h("li", {}, h("a", { href, "aria-current": current.startsWith(href) ? "page" : null }, label)))));
  replace(document.getElementById("who"),
    h("span", {}, `Signed in as ${ROLE_NAMES[role]}`),
    h("button", { type: "button", class: "link", onclick: () => { session.end(); location.hash = ""; render(); } },
      "Sign out"));
}

let rendering = 0;

export async function render() {
  const turn = ++rendering;
  const role = session.role;
  const target = main();
  if (!session.key || !PAGES[role]) {
    replace(document.getElementById("nav"));
    replace(document.getElementById("who"));
    replace(target, signInPage());
    target.querySelector("#api-key").focus();
    return;
  }
  navigation(role);
  const hash = location.hash || PAGES[role].home;
  const [, page, ...rest] = hash.split("/");
  const show = PAGES[role].routes[page];
  replace(target, h("p", { class: "loading", role: "status" }, "Loading…"));
  let content;
  try {
    content = show ? await show(...rest.map(decodeURIComponent)) : h("p", {}, "There is no such page.");
  } catch (error) {
    content = h("div", {}, h("h1", {}, "Something went wrong"), errorBox(error));
  }
  if (turn !== rendering) return;  // the person moved on meanwhile
  replace(target, content);
  const heading = target.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
    document.title = `${heading.textContent} — TaskLINKr console`;
  }
}

window.addEventListener("hashchange", render);
render();
