// The only way the console talks to TaskLINKr: the public /v1 API, with the key the person entered.
// The key lives in sessionStorage: it is gone when the tab closes and is never sent anywhere but this origin.

const KEY = "tasklinkr.console.key";
const ROLE = "tasklinkr.console.role";

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  get role() { return sessionStorage.getItem(ROLE); },
  start(key, role) { sessionStorage.setItem(KEY, key); sessionStorage.setItem(ROLE, role); },
  end() { sessionStorage.removeItem(KEY); sessionStorage.removeItem(ROLE); },
};

const STATUS_WORDS = {
  0: "The platform could not be reached",
  400: "The request was not understood",
  401: "The key was not accepted",
  403: "This key may not do that",
  404: "Not found",
  409: "Not possible now",
  413: "Too large",
  422: "Some values were refused",
  429: "Too many requests; wait a moment",
  500: "The platform failed",
  503: "A service is not available right now",
  504: "A service did not answer in time",
};

// An API error in words: what the status means, the API's own message, and each refused field.
export class ApiError extends Error {
  constructor(status, problem, fallback) {
    const headline = STATUS_WORDS[status] || `The API answered ${status}`;
    const said = problem && typeof problem.message === "string" ? problem.message : fallback || "";
    super(said ? `${headline}: ${said}` : headline);
    this.status = status;
    this.problem = problem;
    this.details = flatten(problem && problem.details);
  }
}

function flatten(details, prefix = "") {
  if (!details || typeof details !== "object") return [];
  const lines = [];
  for (const [name, value] of Object.entries(details)) {
    const label = prefix ? `${prefix}.${name}` : name;
    if (Array.isArray(value) && value.every((v) => typeof v !== "object")) lines.push(`${label}: ${value.join(" ")}`);
    else if (value && typeof value === "object") lines.push(...flatten(value, label));
    else lines.push(`${label}: ${value}`);
  }
  return lines;
}

async function send(method, path, body, key) {
  const headers = { Authorization: `Bearer ${key}`, Accept: "application/json" };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, null, String(error.message || error));
  }
  if (!response.ok) {
    let problem = null;
    try { problem = await response.json(); } catch { /* not JSON: the status says enough */ }
    throw new ApiError(response.status, problem, response.statusText);
  }
  return response;
}

export async function api(method, path, body, key = session.key) {
  return (await send(method, path, body, key)).json();
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);

// A document (the invoice's PDF or HTML) as a blob: a plain link could not carry the key.
export async function documentBlob(path) {
  return (await send("GET", path, undefined, session.key)).blob();
}

export function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return pairs.length ? "?" + new URLSearchParams(pairs).toString() : "";
}
