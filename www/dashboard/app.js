// Sextant's monitoring dashboard: a model list with health at a glance, and per model version its
// alerts, drift (with reference vs current histograms), performance over time with 95% bands,
// integrity findings, and traffic and latency by engine and source. It only reads the collector's
// JSON API, with a read key kept in localStorage. Charts are uPlot's.
"use strict";

const $ = (selector) => document.querySelector(selector);

const keyInput = $("#key");
const windowSelect = $("#window");
// A key or window in the address (`?key=…&window=1m`, as `sextant demo` prints it) wins over the
// stored one, and is stored; `refresh=N` re-reads everything every N seconds (at least 5).
const params = new URLSearchParams(location.search);
for (const name of ["key", "window"]) {
  if (params.get(name)) localStorage.setItem(`sextant.${name}`, params.get(name));
}
keyInput.value = localStorage.getItem("sextant.key") || "";
windowSelect.value = localStorage.getItem("sextant.window") || "1h";
if (!windowSelect.value) windowSelect.value = "1h";
const refreshSeconds = Number(params.get("refresh"));
if (refreshSeconds > 0) setInterval(() => { if (!document.hidden) render(); }, Math.max(5, refreshSeconds) * 1000);
keyInput.addEventListener("change", () => { localStorage.setItem("sextant.key", keyInput.value.trim()); render(); });
windowSelect.addEventListener("change", () => { localStorage.setItem("sextant.window", windowSelect.value); render(); });
$("#refresh").addEventListener("click", () => render());
window.addEventListener("hashchange", () => render());

/** GET a JSON document from the collector's API; errors carry the API's message. */
async function api(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${keyInput.value.trim()}` } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    throw new Error(`${path}: ${message}`);
  }
  return body;
}

function showError(error) {
  const box = $("#error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

async function render() {
  destroyCharts();
  showError(null);
  const main = $("#main");
  const route = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (!keyInput.value.trim()) {
      main.replaceChildren(el("section", {}, el("h2", {}, "Read key needed"),
        el("p", {}, "Paste a read key (", el("code", {}, "sextant collect keys create --role read"), ") above.")));
      return;
    }
    const view = route[0] === "model" && route[1] ? await modelView(route[1], route[2]) : await modelList();
    main.replaceChildren(...view);
    drawPending();
  } catch (error) {
    main.replaceChildren();
    showError(error);
  }
}

async function modelList() {
  const [{ models }, { alerts }] = await Promise.all([api("/v1/models"), api("/v1/alerts?state=firing&limit=1000")]);
  const seen = new Map();
  for (const m of models) {
    const id = `${m.name}\u0000${m.version}`;
    const entry = seen.get(id) || { ...m, predictions: 0, batches: 0, dropped: 0, hashes: 0 };
    entry.predictions += m.predictions; entry.batches += m.batches; entry.dropped += m.dropped; entry.hashes += 1;
    entry.last_received_ms = Math.max(entry.last_received_ms || 0, m.last_received_ms || 0);
    seen.set(id, entry);
  }
  const rows = [...seen.values()].map((m) => {
    const firing = alerts.filter((a) => a.model === m.name && a.version === m.version);
    const worst = firing.reduce((w, a) => (severityRank[a.severity] > severityRank[w] ? a.severity : w), "info");
    const health = firing.length === 0 ? badge("ok") : badge(`${firing.length} firing`, worst);
    return el("tr", { class: "clickable", "data-testid": "model-row", "data-model": m.name, "data-version": m.version,
      onclick: () => { location.hash = `#/model/${encodeURIComponent(m.name)}/${encodeURIComponent(m.version)}`; } },
      el("td", {}, el("a", { href: `#/model/${encodeURIComponent(m.name)}/${encodeURIComponent(m.version)}` }, m.name)),
      el("td", {}, m.version), el("td", { "data-testid": "health" }, health),
      el("td", { class: "num" }, m.predictions), el("td", { class: "num" }, m.batches),
      el("td", { class: "num" }, m.dropped), el("td", {}, m.has_profile ? "yes" : badge("none", "warning")),
      el("td", {}, time(m.last_received_ms)));
  });
  return [el("section", {}, el("h2", {}, "Models"),
    rows.length === 0 ? el("p", { class: "muted" }, "No telemetry has arrived yet.") :
      el("table", {}, el("thead", {}, el("tr", {}, ["Model", "Version", "Health", "Predictions", "Batches", "Lost",
        "Profile", "Last batch"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)))];
}

async function modelView(model, version) {
  const w = windowSelect.value;
  const q = `version=${encodeURIComponent(version)}&window=${w}`;
  const base = `/v1/models/${encodeURIComponent(model)}`;
  const [drift, performance, integrity, { alerts }] = await Promise.all([
    api(`${base}/drift?${q}`), api(`${base}/performance?${q}&windows=24`), api(`${base}/integrity?${q}`),
    api(`${base}/alerts?limit=200`)]);
  const mine = alerts.filter((a) => a.version === version);
  return [
    el("h1", {}, `${model} `, el("span", { class: "muted" }, `version ${version} · window ${w} from ${time(drift.window.start_ms)}`)),
    summarySection(drift, performance, integrity, mine),
    alertsSection(mine),
    driftSection(drift),
    performanceSection(performance),
    integritySection(integrity),
    trafficSection(performance),
  ];
}

function summarySection(drift, performance, integrity, alerts) {
  const current = performance.current || {};
  const accuracy = current.classification ? current.classification.accuracy : null;
  const stat = (label, value, testid) => el("div", { class: "stat" }, el("span", { class: "muted" }, label),
    el("b", { "data-testid": testid }, value));
  const vs = drift.vs_reference;
  return el("section", {}, el("div", { class: "grid" },
    stat("Rows (feature summaries)", drift.rows, "rows"),
    stat("Predictions", current.predictions ?? 0, "predictions"),
    stat("Drifted features", vs ? `${vs.drifted_columns} of ${vs.columns.length}` : "no profile", "drifted"),
    stat("Accuracy", accuracy ? `${fmt(accuracy.value)} [${fmt(accuracy.low)}, ${fmt(accuracy.high)}]` : "no labels", "accuracy"),
    stat("Integrity findings", integrity.findings.length, "findings"),
    stat("Firing alerts", alerts.filter((a) => a.state === "firing").length, "firing")));
}

function alertsSection(alerts) {
  const rows = alerts.map((a) => el("tr", { "data-testid": "alert-row", "data-rule": a.rule, "data-subject": a.subject,
    "data-state": a.state },
    el("td", {}, badge(a.state === "firing" ? a.severity : "resolved", a.state === "firing" ? a.severity : "ok")),
    el("td", {}, a.rule), el("td", {}, a.subject || "—"), el("td", {}, a.message),
    el("td", {}, time(a.started_ms)), el("td", {}, time(a.resolved_ms)),
    el("td", {}, a.deliveries.map((d) => `${d.event}: ${d.state}${d.last_error ? ` (${d.last_error})` : ""}`).join("; ") || "—")));
  return el("section", {}, el("h2", {}, "Alerts"), rows.length === 0 ? el("p", { class: "muted" }, "No alerts.") :
    el("table", {}, el("thead", {}, el("tr", {}, ["State", "Rule", "Subject", "Message", "Started", "Resolved",
      "Webhooks"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)));
}

function performanceSection(performance) {
  const section = el("section", {}, el("h2", {}, "Performance over time"));
  const series = performance.series;
  const current = performance.current;
  const cls = current && current.classification;
  if (cls) {
    const rows = cls.classes.map((c) => el("tr", {}, el("td", {}, c.label), el("td", { class: "num" }, fmt(c.precision.value)),
      el("td", { class: "num" }, fmt(c.recall.value)), el("td", { class: "num" }, fmt(c.f1)), el("td", { class: "num" }, c.support)));
    const avg = (name, a) => el("tr", {}, el("td", {}, el("i", {}, name)), el("td", { class: "num" }, fmt(a.precision)),
      el("td", { class: "num" }, fmt(a.recall)), el("td", { class: "num" }, fmt(a.f1)), el("td", { class: "num" }, cls.n));
    section.append(el("p", { "data-testid": "current-accuracy" }, `Current window: accuracy ${fmt(cls.accuracy.value)} ` +
      `(95% interval ${fmt(cls.accuracy.low)}–${fmt(cls.accuracy.high)}) on ${cls.n} labelled predictions.`),
      el("table", { "data-testid": "class-metrics" }, el("thead", {}, el("tr", {}, ["Class", "Precision", "Recall", "F1", "Support"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows, avg("macro", cls.macro_avg), avg("weighted", cls.weighted_avg), avg("micro", cls.micro_avg))));
  } else if (current && current.regression) {
    const r = current.regression;
    section.append(el("p", { "data-testid": "current-regression" }, `Current window: MAE ${fmt(r.mae, 4)}, RMSE ${fmt(r.rmse, 4)}, R² ${fmt(r.r2)} on ${r.n} labels.`));
  } else {
    section.append(el("p", { class: "muted" }, "No labelled predictions in this window yet."));
  }
  const box = el("div", { class: "chart", "data-testid": "performance-chart" });
  section.append(box);
  const xs = series.map((s) => s.window.start_ms / 1000);
  const pick = (f) => series.map((s) => (s.classification ? f(s.classification) : null));
  charts.pending.push(() => {
    const chart = new uPlot({
      title: "Accuracy with its 95% interval, and macro F1, per window", width: Math.max(480, box.clientWidth || 900), height: 240,
      scales: { y: { range: [0, 1] } },
      series: [{}, { label: "accuracy", stroke: "#1b873f", width: 2, spanGaps: false },
        { label: "low", stroke: "rgba(27,135,63,0.25)" }, { label: "high", stroke: "rgba(27,135,63,0.25)" },
        { label: "F1 (macro)", stroke: "#2b6cb0", dash: [6, 4] }],
      bands: [{ series: [3, 2], fill: "rgba(27,135,63,0.12)" }],
    }, [xs, pick((c) => c.accuracy.value), pick((c) => c.accuracy.low), pick((c) => c.accuracy.high), pick((c) => c.macro_avg.f1)], box);
    charts.drawn.push(chart);
  });
  return section;
}

function trafficSection(performance) {
  const current = performance.current;
  const rows = (current ? current.traffic : []).map((t) => el("tr", { "data-testid": "traffic-row" }, el("td", {}, t.engine), el("td", {}, t.source),
    el("td", { class: "num" }, t.predictions), el("td", { class: "num" }, fmt(t.latency_mean_ms, 2)), el("td", { class: "num" }, fmt(t.latency_max_ms, 2))));
  const box = el("div", { class: "chart", "data-testid": "traffic-chart" });
  const series = performance.series;
  const keys = [...new Set(series.flatMap((s) => s.traffic.map((t) => `${t.engine}/${t.source}`)))];
  const colors = ["#2b6cb0", "#b7791f", "#1b873f", "#805ad5", "#c53030"];
  charts.pending.push(() => {
    if (keys.length === 0) return;
    const data = [series.map((s) => s.window.start_ms / 1000),
      ...keys.map((k) => series.map((s) => { const t = s.traffic.find((x) => `${x.engine}/${x.source}` === k); return t ? t.predictions : 0; })),
      series.map((s) => s.latency_mean_ms)];
    const chart = new uPlot({
      title: "Predictions per window by engine/source, and mean latency", width: Math.max(480, box.clientWidth || 900), height: 220,
      scales: { ms: {} },
      axes: [{}, { label: "predictions" }, { side: 1, scale: "ms", label: "ms", grid: { show: false } }],
      series: [{}, ...keys.map((k, i) => ({ label: k, stroke: colors[i % colors.length], width: 2 })),
        { label: "mean latency (ms)", scale: "ms", stroke: "#64748b", dash: [4, 4] }],
    }, data, box);
    charts.drawn.push(chart);
  });
  return el("section", {}, el("h2", {}, "Traffic and latency"),
    rows.length === 0 ? el("p", { class: "muted" }, "No predictions in this window.") :
      el("table", {}, el("thead", {}, el("tr", {}, ["Engine", "Source", "Predictions", "Mean ms", "Max ms"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)),
    box);
}

render();
