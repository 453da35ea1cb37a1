// mesh dashboard: plain JavaScript, no build step, nothing from the network but
// `mesh dashboard` itself. Pages (location.hash):
//   #/                    namespaces and deployments (stat, pushed by /api/live)
//   #/ns/NS               the deployments of NS
//   #/deploy/NS/NAME      one deployment: its numbers, top paths (/api/top), live tap (/api/tap)
// Every text from the collector (paths, authorities: chosen by peers) goes in with
// textContent, never as HTML. A row whose success is below 100% is "failing": red, marked "!".
// With ?snapshot in the URL the page keeps no connection open: one answer of each, and a
// few seconds of tap (a bounded stream), for screenshots and proxies that buffer SSE.
"use strict";

const SNAPSHOT = new URLSearchParams(location.search).has("snapshot");

const state = { rows: [], error: null, windowS: 60, updated: null, live: null, page: null };

// --- formatting ---------------------------------------------------------------------------
function pct(s) { return s === null || s === undefined ? "-" : (100 * s).toFixed(2) + "%"; }
function rps(r) { return r === null || r === undefined ? "-" : r.toFixed(1); }
function ms(v) {
  if (v === null || v === undefined) return "-";
  return v >= 1000 ? (v / 1000).toFixed(2) + "s" : v >= 10 ? v.toFixed(0) + "ms" : v.toFixed(2) + "ms";
}
function failing(success) { return success !== null && success !== undefined && success < 1; }

// el("td", {class: "num"}, "text", child…): an element; strings become text nodes.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return e;
}
function link(href, text) { return el("a", { href }, text); }
function hashOf(...parts) { return "#/" + parts.map(encodeURIComponent).join("/"); }

// table(columns, rows): columns are [title, class]; a row is {cells, failing, idle}.
function table(columns, rows, empty) {
  const head = el("tr", {}, ...columns.map(([t, c]) => el("th", { class: c }, t)));
  const body = el("tbody");
  for (const r of rows) {
    const tr = el("tr", { class: r.failing ? "failing" : r.idle ? "idle" : null });
    r.cells.forEach((c, i) => tr.appendChild(el("td", { class: columns[i][1] }, c)));
    body.appendChild(tr);
  }
  if (rows.length === 0)
    body.appendChild(el("tr", { class: "idle" }, el("td", { colspan: columns.length }, empty || "no requests in the window")));
  return el("table", {}, el("thead", {}, head), body);
}

const STAT_COLS = [["", "mark"], ["Name", "name"], ["Success", "num success"], ["RPS", "num"],
                   ["Latency p50", "num"], ["p95", "num"], ["p99", "num"], ["TCP", "num"]];
function statCells(r, name) {
  return [failing(r.success) ? "!" : "", name, pct(r.success), rps(r.rps), ms(r.latency_p50_ms),
          ms(r.latency_p95_ms), ms(r.latency_p99_ms), String(r.tcp_conn)];
}
function statRow(r, name) { return { cells: statCells(r, name), failing: failing(r.success), idle: !r.requests }; }
function byName(a, b) { return (a.namespace || "").localeCompare(b.namespace || "") || a.name.localeCompare(b.name); }

// --- the stat data ------------------------------------------------------------------------
function namespaces() { return state.rows.filter(r => r.type === "ns").sort(byName); }
function deployments(ns) {
  return state.rows.filter(r => r.type === "deploy" && (ns === undefined || r.namespace === ns)).sort(byName);
}

function setStatus() {
  const s = document.getElementById("status");
  if (state.error) {
    s.textContent = "error: " + state.error;
    s.className = "status error";
  } else if (state.updated) {
    s.textContent = "last " + state.windowS + "s · updated " + state.updated.toLocaleTimeString();
    s.className = "status";
  }
}

function renderNav(route) {
  const nav = document.getElementById("nav");
  nav.replaceChildren();
  for (const ns of namespaces()) {
    nav.appendChild(el("h3", {}, link(hashOf("ns", ns.name), ns.name)));
    const ul = el("ul");
    for (const d of deployments(ns.name)) {
      const current = route.page === "deploy" && route.ns === d.namespace && route.name === d.name;
      ul.appendChild(el("li", { class: failing(d.success) ? "failing" : null },
        el("a", { href: hashOf("deploy", d.namespace, d.name), class: current ? "current" : null },
          el("span", {}, d.name), el("span", { class: "pct" }, pct(d.success)))));
    }
    nav.appendChild(ul);
  }
  if (namespaces().length === 0) nav.appendChild(el("p", { class: "muted", style: "padding: 0 16px" }, "no traffic yet"));
}

function crumbs(route) {
  const c = document.getElementById("crumbs");
  const parts = [];
  if (route.ns) parts.push(link(hashOf("ns", route.ns), "ns/" + route.ns));
  if (route.name) parts.push(link(hashOf("deploy", route.ns, route.name), "deploy/" + route.name));
  c.replaceChildren();
  parts.forEach((p, i) => { if (i) c.appendChild(el("span", { class: "sep" }, "›")); c.appendChild(p); });
}

// --- pages --------------------------------------------------------------------------------
function errorBox() { return state.error ? el("div", { class: "error-box" }, state.error) : null; }

function renderOverview(main, only) {
  const nss = namespaces().filter(n => !only || n.name === only);
  main.replaceChildren(...[errorBox(), el("h1", {}, only ? "Namespace " + only : "Namespaces")].filter(Boolean));
  main.appendChild(table(STAT_COLS, nss.map(n => statRow(n, link(hashOf("ns", n.name), n.name)))));
  main.appendChild(el("h2", {}, "Deployments"));
  const deps = deployments(only);
  const cols = STAT_COLS.slice();
  cols.splice(1, 0, ["Namespace", ""]);
  main.appendChild(table(cols, deps.map(d => {
    const row = statRow(d, link(hashOf("deploy", d.namespace, d.name), d.name));
    row.cells.splice(1, 0, d.namespace || "");
    return row;
  })));
}

function card(label, value, bad) {
  return el("div", { class: "card" + (bad ? " failing" : "") }, el("div", { class: "label" }, label), el("div", { class: "value" }, value));
}

const TOP_COLS = [["", "mark"], ["Source", ""], ["Destination", ""], ["Method", ""], ["Path", "path"],
                  ["Count", "num"], ["Best", "num"], ["Worst", "num"], ["Last", "num"], ["Success", "num success"]];
const TAP_COLS = [["", "mark"], ["Time", ""], ["Dir", ""], ["Source", ""], ["Destination", ""], ["Method", ""],
                  ["Authority", ""], ["Path", "path"], ["Status", "status"], ["Latency", "num"]];
const TAP_KEEP = 200;
const TOP_SHOW = 12;

function who(labels, addr) {
  return labels && labels.deployment ? "deploy/" + labels.deployment : labels && labels.pod ? "po/" + labels.pod : addr || "-";
}
function tapRow(m) {
  const e = m.event;
  const status = [e.status !== undefined ? String(e.status) : null,
                  e.grpc_status !== undefined ? "grpc " + e.grpc_status : null,
                  e.error ? e.error : null, e.reset !== undefined ? "reset " + e.reset : null].filter(Boolean).join(" ");
  const t = new Date(e.ts / 1000);
  // request and response headers and trailers the proxy captured (mesh-proxy --tap-header), on hover
  const hdr = (h, side) => side + h.name + ": " + (h.redacted ? "(redacted)" : h.value || "");
  const headers = (e.headers || []).map(h => hdr(h, "")).concat(
    (e.response_headers || []).map(h => hdr(h, h.trailer ? "trailer " : "response "))).join("\n");
  const tr = el("tr", { class: m.failed ? "failing" : null, title: headers || null });
  [m.failed ? "!" : "", t.toLocaleTimeString() + "." + String(t.getMilliseconds()).padStart(3, "0"),
   e.proxy_direction === "outbound" ? "out" : e.proxy_direction === "inbound" ? "in" : e.proxy_direction || "",
   who(e.src_labels, e.src), who(e.dst_labels, e.dst), e.method || "", e.authority || "", e.path || "",
   status || "-", e.latency_us !== undefined ? ms(e.latency_us / 1000) : "-"]
    .forEach((c, i) => tr.appendChild(el("td", { class: TAP_COLS[i][1] }, c)));
  return tr;
}

function renderDeploy(main, route, page) {
  const d = deployments(route.ns).find(r => r.name === route.name);
  if (!page.built) {
    page.cards = el("div", { class: "cards" });
    page.top = el("div", {}, el("p", { class: "muted" }, "Loading…"));
    page.tapBody = el("tbody");
    page.tapInfo = el("span", { class: "muted" }, "connecting…");
    main.replaceChildren(el("h1", {}, "deploy/" + route.name), page.error = el("div"), page.cards,
      el("h2", {}, "Top paths ", el("span", { class: "muted" }, "(last " + state.windowS + "s, to and from deploy/" + route.name + ")")),
      page.top,
      el("h2", {}, "Live tap ", page.tapInfo),
      el("div", { class: "tap" }, el("table", {}, el("thead", {}, el("tr", {}, ...TAP_COLS.map(([t, c]) => el("th", { class: c }, t)))), page.tapBody)));
    page.built = true;
  }
  page.error.replaceChildren(...[errorBox()].filter(Boolean));
  if (!d) {
    page.cards.replaceChildren(el("p", { class: "muted" }, "no requests to deploy/" + route.name + " in the window"));
    return;
  }
  page.cards.replaceChildren(card("Success", pct(d.success), failing(d.success)), card("RPS", rps(d.rps)),
    card("Latency p50", ms(d.latency_p50_ms)), card("p95", ms(d.latency_p95_ms)), card("p99", ms(d.latency_p99_ms)),
    card("Requests", String(d.requests)), card("TCP connections", String(d.tcp_conn)));
}

async function refreshTop(route, page) {
  try {
    const r = await fetch("/api/top?ns=" + encodeURIComponent(route.ns) + "&deploy=" + encodeURIComponent(route.name));
    const j = await r.json();
    if (page !== state.page) return;
    if (j.error) { page.top.replaceChildren(el("div", { class: "error-box" }, j.error)); return; }
    // the failing paths first, then the busiest; TOP_SHOW of them
    const rows = j.rows.slice().sort((a, b) => failing(b.success) - failing(a.success) || b.count - a.count);
    const t = table(TOP_COLS, rows.slice(0, TOP_SHOW).map(t => ({
      failing: failing(t.success),
      cells: [failing(t.success) ? "!" : "", t.source || "-", t.destination || "-", t.method || "-", t.path || "-",
              String(t.count), ms(t.best_ms), ms(t.worst_ms), ms(t.last_ms), pct(t.success)]
    })));
    if (rows.length > TOP_SHOW)
      t.tBodies[0].appendChild(el("tr", { class: "idle" }, el("td", { colspan: TOP_COLS.length },
        "… " + (rows.length - TOP_SHOW) + " more paths (mesh top deploy/" + route.name + ")")));
    page.top.replaceChildren(t);
  } catch (err) {
    if (page === state.page) page.top.replaceChildren(el("div", { class: "error-box" }, "dashboard unreachable: " + err));
  }
}

function tapURL(route) {
  return "/api/tap?ns=" + encodeURIComponent(route.ns) + "&deploy=" + encodeURIComponent(route.name);
}

// A bounded stream read whole: its events as {event, data} objects.
function parseSSE(text) {
  return text.split("\n\n").map(block => {
    const ev = { event: "message", data: "" };
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) ev.event = line.slice(7);
      else if (line.startsWith("data: ")) ev.data += line.slice(6);
    }
    return ev;
  }).filter(ev => ev.data);
}

async function snapshotTap(route, page) {
  try {
    const text = await (await fetch(tapURL(route) + "&max=20&secs=3")).text();
    let n = 0;
    for (const ev of parseSSE(text)) {
      if (ev.event === "tap") {
        page.tapBody.insertBefore(tapRow(JSON.parse(ev.data)), page.tapBody.firstChild);
        n++;
      } else if (ev.event === "failure") {
        page.tapInfo.textContent = "(" + JSON.parse(ev.data).error + ")";
      }
    }
    if (n) page.tapInfo.textContent = "(snapshot: " + n + " requests, newest first)";
    else if (page.tapInfo.textContent === "connecting…") page.tapInfo.textContent = "(no requests in 3 s)";
  } catch (err) {
    page.tapInfo.textContent = "(dashboard unreachable: " + err + ")";
  }
}

function startTap(route, page) {
  if (SNAPSHOT) return snapshotTap(route, page);
  page.tap = new EventSource(tapURL(route));
  let seen = 0, missed = 0;
  page.tap.addEventListener("tap", ev => {
    const m = JSON.parse(ev.data);
    seen++;
    missed += m.missed;
    page.tapBody.insertBefore(tapRow(m), page.tapBody.firstChild);
    while (page.tapBody.childNodes.length > TAP_KEEP) page.tapBody.removeChild(page.tapBody.lastChild);
    page.tapInfo.textContent = "(" + seen + " requests" + (missed ? ", " + missed + " missed" : "") + ", newest first)";
  });
  page.tap.addEventListener("failure", ev => { page.tapInfo.textContent = "(" + JSON.parse(ev.data).error + "; retrying)"; });
  page.tap.addEventListener("open", () => { if (!seen) page.tapInfo.textContent = "(waiting for requests…)"; });
}

// --- routing and the live stat ----------------------------------------------------------------
function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "deploy" && parts.length === 3) return { page: "deploy", ns: parts[1], name: parts[2] };
  if (parts[0] === "ns" && parts.length === 2) return { page: "ns", ns: parts[1] };
  return { page: "overview" };
}

function render() {
  const route = state.page.route, main = document.getElementById("main");
  renderNav(route);
  crumbs(route);
  setStatus();
  if (route.page === "deploy") renderDeploy(main, route, state.page);
  else renderOverview(main, route.ns);
}

function navigate() {
  const old = state.page;
  if (old) {
    if (old.tap) old.tap.close();
    if (old.timer) clearInterval(old.timer);
  }
  const page = state.page = { route: parseRoute() };
  if (page.route.page === "deploy") {
    render(); // the page's elements first: the answers below fill them
    refreshTop(page.route, page);
    if (!SNAPSHOT) page.timer = setInterval(() => refreshTop(page.route, page), 2000);
    startTap(page.route, page);
    return;
  }
  render();
}

function onStat(j) {
  state.rows = j.rows;
  state.windowS = j.window_s;
  state.error = null;
  state.updated = new Date();
  render();
}

async function start() {
  navigate();
  window.addEventListener("hashchange", navigate);
  // a first answer at once, then the pushes
  try {
    const r = await fetch("/api/stat?type=ns");
    const ns = await r.json();
    const d = await (await fetch("/api/stat?type=deploy")).json();
    if (ns.error || d.error) { state.error = ns.error || d.error; render(); }
    else if (!state.updated) onStat({ rows: ns.rows.concat(d.rows), window_s: ns.window_s });
  } catch (err) {
    state.error = "dashboard unreachable: " + err;
    render();
  }
  if (SNAPSHOT) return;
  state.live = new EventSource("/api/live");
  state.live.addEventListener("stat", ev => onStat(JSON.parse(ev.data)));
  state.live.addEventListener("failure", ev => { state.error = JSON.parse(ev.data).error; render(); });
  state.live.onerror = () => { state.error = "dashboard unreachable (retrying)"; setStatus(); };
}

start();
