// Small DOM helpers and the charts, drawn as inline SVG (no library, nothing fetched from elsewhere).

const SVG = "http://www.w3.org/2000/svg";

// h("button", {type: "button", onclick: fn, class: "x"}, "text", child, [more]) -> an element.
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "for") element.htmlFor = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  append(element, children);
  return element;
}

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
  return parent;
}

export function words(identifier) {
  if (identifier === null || identifier === undefined) return "—";
  const text = String(identifier).replaceAll("_", " ").replace(/\bsla\b/gi, "SLA");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function money(value) {
  if (!value) return "—";
  const [whole, fraction] = String(value.amount).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${fraction === undefined ? grouped : `${grouped}.${fraction}`} ${value.currency}`;
}

export function when(timestamp) {
  if (!timestamp) return "—";
  return timestamp.replace("T", " ").replace(/(\.\d+)?(Z|\+00:00)$/, " UTC");
}

export function link(href, ...text) {
  return h("a", { href }, ...text);
}

export function badge(status) {
  return h("span", { class: `badge badge-${status}` }, words(status));
}

export function section(title, ...children) {
  const id = `h-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

export function table(caption, headers, rows, empty = "Nothing yet.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("table", {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))));
}

// A definition list from [term, value] pairs.
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

export function errorBox(error) {
  const details = error.details || [];
  return h("div", { class: "error", role: "alert" },
    h("p", {}, error.message || String(error)),
    details.length ? h("ul", {}, details.map((line) => h("li", {}, line))) : null);
}

// A labelled form field. kind: an <input> type, or "textarea".
export function field(id, label, attrs = {}) {
  const control = attrs.type === "textarea"
    ? h("textarea", { id, name: id, ...attrs, type: null })
    : h("input", { id, name: id, type: "text", ...attrs });
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

// Runs an action from a button or form: the button is disabled meanwhile, an API error is shown beside it.
export async function act(where, action) {
  const buttons = where.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  where.querySelectorAll(".error").forEach((e) => e.remove());
  try {
    await action();
  } catch (error) {
    where.append(errorBox(error));
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// --- charts --------------------------------------------------------------------------------------------------------

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, value);
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

// A score component as a bar (0..1), with its value in words beside it.
export function scoreBar(name, value) {
  const fraction = Math.max(0, Math.min(1, Number(value)));
  const bar = h("span", { class: "bar-fill" });
  bar.style.width = `${(fraction * 100).toFixed(1)}%`;
  return h("div", { class: "score-row" },
    h("span", { class: "score-name" }, words(name)),
    h("span", { class: "bar", role: "meter", "aria-valuemin": "0", "aria-valuemax": "1", "aria-valuenow": String(fraction),
      "aria-label": words(name) }, bar),
    h("span", { class: "score-value" }, Number(value).toFixed(2)));
}

// Horizontal bars: [{label, value, text}] with value a number; one row per item, its amount in words.
export function barChart(title, items) {
  const rowHeight = 28, labelWidth = 250, width = 720, barWidth = width - labelWidth - 130;
  const top = Math.max(...items.map((item) => item.value), 0) || 1;
  const height = items.length * rowHeight + 8;
  const rows = items.map((item, index) => {
    const y = index * rowHeight + 4;
    const length = Math.max(0, (item.value / top) * barWidth);
    return svg("g", { class: "chart-row" },
      svg("text", { x: 0, y: y + 17, class: "chart-label" }, item.label),
      svg("rect", { x: labelWidth, y: y + 4, width: length.toFixed(1), height: rowHeight - 10,
        class: item.value < 0 ? "chart-bar negative" : "chart-bar" }),
      svg("text", { x: labelWidth + length + 6, y: y + 17, class: "chart-value" }, item.text));
  });
  return h("figure", { class: "chart" },
    h("figcaption", {}, title),
    svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
      "aria-label": `${title}: ${items.map((i) => `${i.label} ${i.text}`).join("; ")}` },
    svg("title", {}, title), rows));
}

// One SLA's windows as columns: the measured value against the target line, met green, breached red.
export function slaChart(sla) {
  const windows = sla.windows || [];
  const width = 620, height = 220, left = 48, bottom = 40, top = 16;
  const values = windows.map((w) => Number(w.value ?? 0));
  const target = Number(sla.target);
  const ceiling = Math.max(target, ...values, 1) * 1.15;
  const y = (v) => top + (height - top - bottom) * (1 - v / ceiling);
  const slot = (width - left - 10) / Math.max(windows.length, 1);
  const columns = windows.map((w, index) => {
    const value = Number(w.value ?? 0);
    const column = Math.min(slot * 0.6, 56);
    const x = left + index * slot + (slot - column) / 2;
    const middle = (x + column / 2).toFixed(1);
    const outcome = w.met ? "met" : "breached";
    return svg("g", { class: `sla-window ${outcome}` },
      svg("rect", { x: x.toFixed(1), y: y(value).toFixed(1), width: column.toFixed(1),
        height: Math.max(1, height - bottom - y(value)).toFixed(1), class: `sla-bar ${outcome}` },
      svg("title", {}, `${w.start.slice(0, 10)}: ${w.value ?? "no measurement"} (${outcome})`)),
      svg("text", { x: middle, y: (y(value) - 4).toFixed(1), class: "chart-value", "text-anchor": "middle" },
        w.value ?? "none"),
      svg("text", { x: middle, y: height - bottom + 16, class: "chart-tick", "text-anchor": "middle" },
        w.start.slice(5, 10)),
      svg("text", { x: middle, y: height - bottom + 32, class: `chart-tick ${outcome}`, "text-anchor": "middle" },
        outcome));
  });
  const described = windows.map((w) => `${w.start.slice(0, 10)} ${w.value ?? "none"} ${w.met ? "met" : "breached"}`);
  return h("figure", { class: "chart sla-chart" },
    svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
      "aria-label": `${words(sla.metric)} per ${sla.window} window, target ${sla.direction.replace("_", " ")} ${sla.target}: ${described.join("; ") || "no window evaluated yet"}` },
    svg("line", { x1: left, x2: width - 10, y1: y(target), y2: y(target), class: "sla-target" }),
    svg("text", { x: 2, y: y(target) + 4, class: "chart-tick" }, `${sla.target}`),
    svg("line", { x1: left, x2: width - 10, y1: height - bottom, y2: height - bottom, class: "chart-axis" }),
    columns),
    h("figcaption", {}, `${words(sla.metric)} (target ${sla.direction.replace("_", " ")} ${sla.target}, ${sla.window}): `,
      `${sla.met} met, ${sla.breached} breached`,
      sla.compliance_percent === null || sla.compliance_percent === undefined ? "" : ` — ${sla.compliance_percent}% compliance`,
      `, credits ${money(sla.credits)}`));
}
