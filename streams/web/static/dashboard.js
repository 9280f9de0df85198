// spendfuse dashboard: polls /api/dashboard and redraws; charts are uPlot (vendored, no CDN).
"use strict";

const POLL_MS = 2000;
const charts = new Map(); // use_case_id -> {card, plot}

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) =>
  ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "—");
const usd = (v) => "$" + Number(v || 0).toFixed(2);

function commandLabel(c) {
  if (c.kind === "degrade") return `degrade ${c.level || ""}`;
  return c.kind.replace("_", " ");
}

function renderAlerts(alerts) {
  const body = document.querySelector("#alerts tbody");
  body.innerHTML = alerts.map((a) => `
    <tr class="alert-row" data-fingerprint="${esc(a.fingerprint)}">
      <td><span class="sev sev-${esc(a.severity)}">${esc(a.severity)}</span></td>
      <td>${esc(a.use_case_id)}<div class="meta">${esc(a.tenant_id)}</div></td>
      <td>${esc(a.rule)}</td>
      <td>${esc(a.summary)}${a.guardrail_held?.length
        ? `<div class="meta">guardrail: ${esc(a.guardrail_held[0])}</div>` : ""}</td>
      <td>${time(a.fired_at)}</td>
      <td>${a.actions_taken?.length ? `${a.actions_taken.length} command(s)` : "alert only"}</td>
      <td>${a.silenced ? `silenced until ${time(a.silence.until)} by ${esc(a.silence.author)}`
        : "not silenced"}</td>
    </tr>`).join("");
  document.getElementById("alerts-empty").hidden = alerts.length > 0;
}

function renderCommands(commands) {
  const body = document.querySelector("#commands tbody");
  body.innerHTML = commands.map((c) => `
    <tr class="command-row" data-kind="${esc(c.kind)}" data-target="${esc(c.key)}">
      <td>${esc(c.target.type)}: <b>${esc(c.target.id)}</b></td>
      <td><span class="kind kind-${esc(c.kind)}">${esc(commandLabel(c))}</span>
        ${c.mode === "shadow" ? '<span class="meta">(shadow)</span>' : ""}</td>
      <td>${esc(c.issued_by)}</td>
      <td>${time(c.issued_at)}</td>
      <td>${c.expires_at ? time(c.expires_at) : "no expiry"}</td>
      <td>${esc(c.reason)}</td>
    </tr>`).join("");
  document.getElementById("commands-empty").hidden = commands.length > 0;
}

function renderLogs(data) {
  document.getElementById("recent-commands").innerHTML = data.commands_recent.map((c) =>
    `<li><b class="kind kind-${esc(c.kind)}">${esc(commandLabel(c))}</b> ${esc(c.target.type)}:` +
    `${esc(c.target.id)} at ${time(c.issued_at)} by ${esc(c.issued_by)}</li>`).join("");
  document.getElementById("recent-alerts").innerHTML = data.alerts_recent.map((a) =>
    `<li><b>${esc(a.use_case_id)}</b> ${esc(a.rule)}: fired ${time(a.fired_at)}, ` +
    `resolved ${time(a.resolved_at)}</li>`).join("");
}

const amount = (b, v) => (b.measure === "spend_usd" ? usd(v)
  : `${Number(v || 0).toLocaleString()} ${b.measure.replace("_", " ")}`);

function renderBudgets(budgets) {
  const body = document.querySelector("#budgets tbody");
  body.innerHTML = budgets.map((b) => {
    const cls = b.status === "exhausted" ? "over" : b.status === "projected" ? "warn" : "";
    const pct = b.percent ?? 0;
    return `
    <tr class="budget-row" data-budget="${esc(b.name)}" data-kind="${esc(b.kind)}">
      <td><b>${esc(b.name)}</b><div class="meta">${esc(b.kind)} · ${esc(b.enforcement)} ·
        ${esc(b.owner)}</div></td>
      <td>${esc(b.scope)}</td>
      <td>${esc(b.period)}</td>
      <td>${amount(b, b.limit)}</td>
      <td>${amount(b, b.spent)}</td>
      <td>${pct.toFixed(1)}%<div class="bar ${cls}"><div style="width:${Math.min(100, pct)}%">
        </div></div></td>
      <td>${b.forecast === null ? "—" : amount(b, b.forecast)}</td>
      <td>${esc(b.status)}${b.exhausted_at ? ` <span class="meta">${time(b.exhausted_at)}</span>`
        : ""}</td>
    </tr>`;
  }).join("");
  document.getElementById("budgets-empty").hidden = budgets.length > 0;
}

const SHOWBACK_TITLES = { cost_center: "cost center", business_unit: "business unit",
  use_case_id: "use case" };

function renderShowback(sb) {
  const dims = Object.entries(sb.dimensions || {});
  document.getElementById("showback").innerHTML = dims.map(([dim, rows]) => `
    <table class="showback-table" data-dimension="${esc(dim)}"><thead><tr>
      <th>${esc(SHOWBACK_TITLES[dim] || dim)}</th><th>today</th><th>this month</th>
    </tr></thead><tbody>${rows.map((r) => `<tr class="showback-row">
      <td>${esc(r.name)}</td><td>${usd(r.day_usd)}</td><td>${usd(r.month_usd)}</td></tr>`)
      .join("")}</tbody></table>`).join("");
  document.getElementById("showback-period").textContent = sb.day
    ? `· ${sb.day} and ${sb.month} (UTC, event time), from the hourly rollups` : "";
  document.getElementById("showback-empty").hidden = dims.length > 0;
}

// Cost per successful outcome and ROI over the outcome window (event time).
function outcomeLine(o) {
  if (!o) return "";
  const w = o.window;
  const cps = w.cost_per_success_usd === null ? "no success yet"
    : `${usd(w.cost_per_success_usd)} per successful outcome`;
  const roi = w.roi === null ? "" : ` · ROI ${(100 * w.roi).toFixed(0)}%`;
  return `outcomes: ${w.successes} ok, ${w.failures} failed · ${cps}${roi}` +
    (o.pending_outcomes ? ` · ${o.pending_outcomes} pending` : "");
}

function budgetRow(label, b) {
  const pct = Math.min(100, b.used_pct || 0);
  const cls = b.status === "exhausted" ? "over" : b.status === "projected" ? "warn" : "";
  const when = b.status === "exhausted" ? "exhausted"
    : b.status === "projected" ? `runs out ${time(b.exhausted_at)}` : "on track";
  const src = b.source && b.source !== "default" ? ` <span class="meta">${esc(b.source)}</span>`
    : ' <span class="meta">default</span>';
  return `<div>${label}</div><div>${usd(b.used_usd)} of ${usd(b.budget_usd)}${src} ` +
    `(${(b.used_pct || 0).toFixed(1)}%) · ${when}<div class="bar ${cls}">` +
    `<div style="width:${pct}%"></div></div></div>`;
}

// Shade each alert's firing span (event time) behind the lines.
function incidentsPlugin(getIncidents) {
  return { hooks: { drawClear: (u) => {
    const ctx = u.ctx;
    const [xmin, xmax] = [u.scales.x.min, u.scales.x.max];
    ctx.save();
    ctx.fillStyle = "rgba(255, 92, 92, 0.18)";
    for (const inc of getIncidents()) {
      const a = Math.max(Date.parse(inc.fired_at) / 1000, xmin);
      const b = Math.min(inc.resolved_at ? Date.parse(inc.resolved_at) / 1000 : xmax, xmax);
      if (b <= a) continue;
      const x0 = u.valToPos(a, "x", true), x1 = u.valToPos(b, "x", true);
      ctx.fillRect(x0, u.bbox.top, Math.max(x1 - x0, 2), u.bbox.height);
    }
    ctx.restore();
  } } };
}

function makePlot(el, uc) {
  const holder = { incidents: uc.incidents };
  const opts = {
    width: Math.max(el.clientWidth, 300), height: 180,
    plugins: [incidentsPlugin(() => holder.incidents)],
    legend: { show: false },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max * 1.1, 0.01)] } },
    axes: [
      { stroke: "#8b96a5", grid: { stroke: "#273240" } },
      { stroke: "#8b96a5", grid: { stroke: "#273240" }, size: 55,
        values: (u, vals) => vals.map((v) => "$" + v.toFixed(v < 1 ? 3 : 2)) },
    ],
    series: [
      {},
      { label: "spend $/min", stroke: "#5aa9ff", width: 1.5, spanGaps: false,
        fill: "rgba(90,169,255,0.10)" },
      { label: "band low", stroke: "rgba(76,214,138,0.6)", width: 1, dash: [4, 4] },
      { label: "band high", stroke: "rgba(76,214,138,0.6)", width: 1, dash: [4, 4] },
    ],
    bands: [{ series: [3, 2], fill: "rgba(76,214,138,0.10)" }],
  };
  const plot = new uPlot(opts, seriesData(uc), el);
  plot._holder = holder;
  return plot;
}

const seriesData = (uc) => [uc.t, uc.rate_usd_per_min, uc.band_lower, uc.band_upper];

function renderCharts(data, alerting) {
  const root = document.getElementById("charts");
  const seen = new Set();
  data.use_cases.forEach((uc, i) => {
    seen.add(uc.use_case_id);
    let entry = charts.get(uc.use_case_id);
    if (!entry) {
      const card = document.createElement("div");
      card.className = "card";
      card.dataset.useCase = uc.use_case_id;
      card.innerHTML = `<h3><span>${esc(uc.use_case_id)}</span><span class="meta"></span></h3>` +
        `<div class="legend"><i class="k-rate"></i>spend $/min <i class="k-band"></i>baseline ` +
        `band <i class="k-inc"></i>alert firing</div>` +
        `<div class="chart"></div><div class="budget"></div><div class="outcomes meta"></div>`;
      root.appendChild(card);
      entry = { card, plot: makePlot(card.querySelector(".chart"), uc) };
      charts.set(uc.use_case_id, entry);
    } else {
      entry.plot._holder.incidents = uc.incidents;
      entry.plot.setData(seriesData(uc));
    }
    if (root.children[i] !== entry.card) root.insertBefore(entry.card, root.children[i]);
    entry.card.classList.toggle("alerting", alerting.has(uc.use_case_id));
    entry.card.querySelector("h3 .meta").textContent =
      `${uc.tenant_id} · ${uc.risk_tier} risk · ${uc.events} events`;
    entry.card.querySelector(".budget").innerHTML =
      budgetRow("today", uc.budget_day) + budgetRow("month", uc.budget_month);
    entry.card.querySelector(".outcomes").innerHTML = outcomeLine(uc.outcomes);
  });
  for (const [name, entry] of charts) {
    if (!seen.has(name)) { entry.plot.destroy(); entry.card.remove(); charts.delete(name); }
  }
}

function render(data) {
  const alerting = new Set(data.alerts_active.map((a) => a.use_case_id));
  renderAlerts(data.alerts_active);
  renderCommands(data.commands_in_force);
  renderBudgets(data.budgets);
  renderShowback(data.showback);
  renderCharts(data, alerting);
  renderLogs(data);
  document.getElementById("band-label").textContent = "· band: " + data.band;
  document.getElementById("budget-source").textContent = data.budget_source;
  document.getElementById("status").textContent =
    `${data.events_seen} events · ${data.use_cases_tracked} use cases · updated ` +
    new Date(data.generated_at).toLocaleTimeString();
  document.body.dataset.loaded = "true";
}

async function poll() {
  try {
    const res = await fetch("/api/dashboard", { cache: "no-store" });
    if (!res.ok) throw new Error(res.statusText);
    render(await res.json());
    document.getElementById("status").classList.remove("stale");
  } catch (err) {
    const status = document.getElementById("status");
    status.classList.add("stale");
    status.textContent = `worker unreachable (${err.message}); retrying…`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

window.addEventListener("resize", () => {
  for (const { card, plot } of charts.values()) {
    plot.setSize({ width: card.querySelector(".chart").clientWidth, height: 180 });
  }
});
poll();
