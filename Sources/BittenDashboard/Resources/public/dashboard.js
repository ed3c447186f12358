"use strict";
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const num = (v, d = 2) => (typeof v === "number" && isFinite(v)) ? v.toFixed(d) : "—";
const ago = (s) => s == null ? "—" : s < 60 ? Math.round(s) + " s" : s < 3600 ? Math.round(s / 60) + " min" : (s / 3600).toFixed(1) + " h";
const clock = (t) => t ? new Date(t * 1000).toLocaleTimeString() : "—";
const history = [];
// With protected reads the page is opened as /?access_token=…; the same token goes with every call.
const accessToken = new URLSearchParams(location.search).get("access_token");
const withToken = (path) => accessToken ? path + (path.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(accessToken) : path;
let lastPorts = null;
let snapshot = null;
let searchText = "";

function rows(tbody, items, render, emptyText, columns) {
  tbody.innerHTML = items.length ? items.map(render).join("") : `<tr><td class="empty" colspan="${columns}">${esc(emptyText)}</td></tr>`;
}

function drawLine(canvas, points) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  if (points.length < 2) { ctx.fillStyle = "#8b98a5"; ctx.fillText("collecting…", 10, 20); return; }
  const max = Math.max(1, ...points.map((p) => p.total));
  const x = (i) => 30 + (w - 40) * i / (points.length - 1), y = (v) => h - 20 - (h - 30) * v / max;
  ctx.strokeStyle = "#26303b"; ctx.beginPath(); ctx.moveTo(30, y(0)); ctx.lineTo(w - 10, y(0)); ctx.moveTo(30, y(max)); ctx.lineTo(w - 10, y(max)); ctx.stroke();
  ctx.fillStyle = "#8b98a5"; ctx.font = "11px sans-serif"; ctx.fillText(String(max), 2, y(max) + 4); ctx.fillText("0", 2, y(0) + 4);
  for (const [key, color] of [["total", "#8b98a5"], ["online", "#3fb950"]]) {
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
    points.forEach((p, i) => i ? ctx.lineTo(x(i), y(p[key])) : ctx.moveTo(x(i), y(p[key])));
    ctx.stroke();
  }
}

function drawSymbols(canvas, symbols) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px sans-serif";
  if (!symbols.length) { ctx.fillStyle = "#8b98a5"; ctx.fillText("no closed trades yet", 10, 20); return; }
  const maxAbs = Math.max(1, ...symbols.map((s) => Math.abs(s.net)));
  const slot = (w - 20) / symbols.length, mid = (h - 30) / 2 + 5;
  symbols.forEach((s, i) => {
    const bx = 10 + i * slot, bw = Math.max(4, slot * 0.5), bh = (h - 40) / 2 * Math.abs(s.net) / maxAbs;
    ctx.fillStyle = s.net >= 0 ? "#3fb950" : "#f85149";
    ctx.fillRect(bx, s.net >= 0 ? mid - bh : mid, bw, bh);
    ctx.fillStyle = "#58a6ff"; ctx.fillRect(bx + bw + 2, h - 20 - (h - 40) * s.win_rate / 100, 4, (h - 40) * s.win_rate / 100);
    ctx.fillStyle = "#8b98a5"; ctx.fillText(s.symbol, bx, h - 6);
  });
  ctx.fillStyle = "#8b98a5"; ctx.fillText("bars: net P&L · blue: win rate", w - 170, 12);
}

// The trading state: a banner while the system is halted or close-only, or while users are restricted.
function renderTrading(t) {
  const banner = $("trading-banner");
  if (!t || (t.state === "active" && !t.users.length)) { banner.hidden = true; banner.innerHTML = ""; return; }
  banner.hidden = false;
  const users = t.users.map((u) => `${esc(u.uuid)} (${esc(u.state.replace("_", "-"))}${u.reason ? ": " + esc(u.reason) : ""}, by ${esc(u.by)}${u.until ? ", until " + clock(u.until) : ""})`);
  if (t.state === "active") {
    banner.className = "banner close_only";
    banner.innerHTML = `<strong>${t.users.length} USER${t.users.length === 1 ? "" : "S"} RESTRICTED</strong> ${users.slice(0, 5).join(" · ")}${t.users.length > 5 ? " …" : ""}`;
    return;
  }
  banner.className = "banner " + esc(t.state);
  banner.setAttribute("data-state", t.state);
  banner.innerHTML = `<strong>${t.state === "halted" ? "TRADING HALTED" : "CLOSE-ONLY"}</strong>` +
    `${t.state === "halted" ? "nothing is sent; fires are refused" : "closes go through; new fires are refused"}` +
    ` · by <b>${esc(t.by || "?")}</b> at ${esc(new Date(t.at * 1000).toLocaleString())}` +
    `${t.reason ? " · “" + esc(t.reason) + "”" : ""}${t.close_all ? " · every position asked to close" : ""}` +
    ` <span class="dim">· enforced by ${t.processes} trade process${t.processes === 1 ? "" : "es"}${users.length ? " · users: " + users.slice(0, 5).join(" · ") : ""}</span>`;
}

function render(s) {
  snapshot = s;
  renderTrading(s.trading);
  const hp = s.health || {};
  const score = hp.health_score;
  const arc = $("gauge-arc"), label = $("health-score");
  label.textContent = score == null ? "—" : String(score);
  label.setAttribute("data-score", score == null ? "" : String(score));
  arc.setAttribute("stroke-dasharray", `${314.16 * (score || 0) / 100} 314.16`);
  arc.setAttribute("stroke", score >= 80 ? "#3fb950" : score >= 50 ? "#d29922" : "#f85149");
  $("version").textContent = "v" + (hp.version || "?");
  $("updated").textContent = "updated " + clock(s.at);
  const factors = hp.health_factors || {};
  $("health-kv").innerHTML = `<div>status</div><div class="${hp.status === "healthy" ? "ok" : hp.status === "degraded" ? "warn" : "bad"}">${esc(hp.status)}</div>` +
    Object.keys(factors).sort().map((k) => `<div>${esc(k.replace(/_/g, " "))}</div><div>${num(factors[k] * 100, 0)} %</div>`).join("");
  const proc = hp.process || {}, redis = hp.redis || {};
  $("process-kv").innerHTML = [
    ["uptime", ago(proc.uptime_seconds)], ["memory (RSS)", proc.rss_bytes ? (proc.rss_bytes / 1048576).toFixed(0) + " MB" : "—"],
    ["RSS after release", proc.rss_after_release_bytes ? (proc.rss_after_release_bytes / 1048576).toFixed(0) + " MB" : "—"],
    ["CPU time", num(proc.cpu_seconds, 1) + " s"], ["disk free", proc.data_dir_free_bytes ? (proc.data_dir_free_bytes / 1073741824).toFixed(1) + " GB" : "—"],
    ["Redis", `<span class="${redis.reachable ? "ok" : "bad"}">${esc(redis.state)}</span>${redis.mode === "cluster" ? ` · cluster, ${redis.primaries ?? "?"} primaries` : ""}`], ["Redis ping", redis.ping_ms != null ? num(redis.ping_ms, 2) + " ms" : "—"],
    ["Redis memory", redis.used_memory_bytes ? (redis.used_memory_bytes / 1048576).toFixed(1) + " MB" : "—"],
  ].map(([k, v]) => `<div>${k}</div><div>${v}</div>`).join("");
  const now = s.at;
  rows($("services-table").tBodies[0], hp.services || [], (v) =>
    `<tr><td>${esc(v.name)}</td><td class="state-${esc(v.state)}">${esc(v.state)}${v.detail ? " · " + esc(v.detail) : ""}</td><td class="num">${v.messages_in}</td><td class="num">${v.messages_out}</td><td class="num ${v.errors ? "warn" : ""}">${v.errors}</td><td class="num">${v.restarts}</td><td>${v.last_activity ? ago(now - v.last_activity) + " ago" : "—"}</td></tr>`, "no services", 7);
  const ports = hp.ports || [];
  const prev = lastPorts;
  rows($("ports-table").tBodies[0], ports, (p) => {
    const before = prev && prev.ports.find((q) => q.name === p.name), dt = prev ? Math.max(1, now - prev.at) : 0;
    const rin = p.received_per_second ?? (before ? (p.received - before.received) / dt : null);
    const rout = p.sent_per_second ?? (before ? (p.sent - before.sent) / dt : null);
    return `<tr><td>${esc(p.name)}</td><td class="num">${p.port}</td><td>${esc(p.socket_type)}</td><td class="num">${num(rin, 1)}</td><td class="num">${num(rout, 1)}</td></tr>`;
  }, "no sockets", 5);
  lastPorts = { at: now, ports };
  const nodes = s.nodes || { online: 0, total: 0, recent: [] };
  $("nodes-online").textContent = nodes.online; $("nodes-total").textContent = nodes.total;
  history.push({ online: nodes.online, total: nodes.total });
  if (history.length > 180) history.shift();
  drawLine($("nodes-chart"), history);
  renderNodes();
  const pos = s.positions || { count: 0, unrealized_profit: 0, positions: [] };
  const upl = $("upl");
  upl.textContent = `${pos.count} open · P&L ${num(pos.unrealized_profit)}`;
  upl.className = "pill " + (pos.unrealized_profit >= 0 ? "ok" : "bad");
  rows($("positions-table").tBodies[0], pos.positions, (p) =>
    `<tr><td>${p.ticket}</td><td>${esc(p.user_uuid)}</td><td>${esc(p.symbol)}</td><td>${esc(p.direction)}</td><td class="num">${num(p.lot)}</td><td class="num">${num(p.open_price, 5)}</td><td class="num">${num(p.current_price, 5)}</td><td class="num ${(p.unrealized_profit || 0) >= 0 ? "ok" : "bad"}">${num(p.unrealized_profit)}</td></tr>`, "no open positions", 8);
  const st = s.stats;
  $("stats-kv").innerHTML = st ? [["trades", st.total], ["win rate", num(st.win_rate, 1) + " %"], ["net", num(st.net)], ["profit factor", num(st.profit_factor)]]
    .map(([k, v]) => `<div>${k}</div><div>${v}</div>`).join("") : `<div class="empty">trade path not running${hp.not_running && hp.not_running.trade ? ": " + esc(hp.not_running.trade) : ""}</div><div></div>`;
  drawSymbols($("symbols-chart"), s.symbols || []);
  rows($("alerts-table").tBodies[0], s.alerts || [], (a) =>
    `<tr><td>${clock(a.timestamp)}</td><td>${esc(a.source)}</td><td>${esc(a.kind)}</td><td>${esc(a.symbol || a.uuid || "")}</td><td>${esc(a.message)}</td></tr>`, "no alerts", 5);
  rows($("signals-table").tBodies[0], s.signals || [], (g) =>
    `<tr><td>${clock(g.received_at)}</td><td>${esc(g.signal_id)}</td><td>${esc(g.symbol)}</td><td>${esc(g.direction)}</td><td class="num">${num(g.entry, 5)}</td><td class="num">${num(g.protection_score, 1)}</td><td><span class="level ${esc(g.risk_level)}">${esc(g.risk_level)}</span></td></tr>`, "no signals yet", 7);
}

// One node row; the status cell also marks what an operator must look at: a pending account switch, a
// refused second EA in the last day, an EA that reads no command.
function nodeRow(n) {
  const marks = [];
  if (n.pending_switch) marks.push(`<span class="badge bad" title="account ${n.pending_switch.account} on ${esc(n.pending_switch.server)} from ${esc(n.pending_switch.peer)} waits for approval">switch pending</span>`);
  if (n.last_refused && Date.now() / 1000 - n.last_refused.at < 86400) marks.push(`<span class="badge warn" title="${esc(n.last_refused.reason)} (from ${esc(n.last_refused.peer)})">refused ${esc(n.last_refused.peer || "?")}</span>`);
  if (n.commands_unread) marks.push(`<span class="badge warn" title="a ping is unanswered: fires to this EA wait">commands unread</span>`);
  return `<tr><td>${esc(n.uuid)}</td><td class="${n.status === "online" ? "ok" : "bad"}">${esc(n.status)} ${marks.join(" ")}</td><td>${n.account}</td><td>${esc(n.broker)}</td><td class="num">${num(n.balance)}</td><td class="num">${num(n.equity)}</td><td class="num">${ago(n.heartbeat_age_seconds)}</td><td class="num">${n.latency_ms != null ? num(n.latency_ms, 1) + " ms" : "—"}</td><td class="num">${ago(n.uptime_seconds)}</td></tr>`;
}
function renderNodes() {
  const recent = (snapshot && snapshot.nodes && snapshot.nodes.recent) || [];
  const q = searchText.toLowerCase();
  const list = q ? recent.filter((n) => (n.uuid + " " + n.account + " " + n.broker).toLowerCase().includes(q)) : recent;
  rows($("nodes-table").tBodies[0], list, nodeRow, q ? "no node matches" : "no nodes registered", 9);
}

let searchTimer = null;
$("node-search").addEventListener("input", (e) => {
  searchText = e.target.value.trim();
  renderNodes();
  // Beyond the 100 most recent nodes the server searches.
  clearTimeout(searchTimer);
  if (searchText.length >= 2) searchTimer = setTimeout(async () => {
    try {
      const r = await fetch(withToken("/nodes?limit=100&q=" + encodeURIComponent(searchText)));
      if (!r.ok) return;
      const page = await r.json();
      rows($("nodes-table").tBodies[0], page.nodes, nodeRow, "no node matches", 9);
    } catch (err) { /* the live stream keeps the table current */ }
  }, 300);
});

function setConn(state, text) { const c = $("conn"); c.className = "pill " + state; c.textContent = text; }

let pollTimer = null;
async function poll() {
  try {
    const r = await fetch(withToken("/snapshot"), { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
    setConn("polling", "polling (live stream unavailable)");
  } catch (err) {
    setConn("lost", "connection lost — retrying");
  }
}
function startPolling() { if (!pollTimer) { poll(); pollTimer = setInterval(poll, 5000); } }
function stopPolling() { if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } }

function connect() {
  if (!window.EventSource) return startPolling();
  const source = new EventSource(withToken("/events"));
  let failures = 0;
  source.addEventListener("snapshot", (e) => {
    failures = 0;
    stopPolling();
    setConn("live", "live");
    render(JSON.parse(e.data));
  });
  source.onerror = () => {
    failures += 1;
    setConn("lost", "connection lost — reconnecting");
    if (failures >= 3) startPolling();
  };
}
connect();
