// Rendering shared by the dashboard (app.js) and `sextant drift --html` reports (report.js):
// element building, number formats, and the drift and integrity sections with uPlot histograms.
"use strict";

/** Charts drawn so far, and drawings waiting for their boxes to be in the page (for sizes). */
const charts = { drawn: [], pending: [] };

/** Draws what waited for the page, after a view's elements are inserted. */
function drawPending() {
  for (const draw of charts.pending.splice(0)) draw();
}

/** Destroys every chart before a view is replaced. */
function destroyCharts() {
  for (const chart of charts.drawn.splice(0)) chart.destroy();
  charts.pending.length = 0;
}

/** Builds an element: el("td", { class: "num" }, "text", child, ...). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const fmt = (v, digits = 3) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits));
const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)}%`);
const time = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "–");
const badge = (text, kind) => el("span", { class: `badge ${kind || text}` }, text);
const severityRank = { info: 1, warning: 2, critical: 3 };

function driftSection(drift) {
  const section = el("section", {}, el("h2", {}, "Drift against the reference profile"));
  if (!drift.vs_reference) {
    section.append(el("p", { class: "muted" }, "No reference profile is stored for this version: upload one with PUT …/profile."));
    return section;
  }
  const previous = new Map((drift.vs_previous ? drift.vs_previous.columns : []).map((c) => [c.name, c]));
  const histograms = new Map(drift.histograms.map((h) => [h.name, h]));
  const chartBox = el("div", { class: "chart", "data-testid": "histogram" });
  const select = (name, row) => {
    for (const r of section.querySelectorAll("tr.selected")) r.classList.remove("selected");
    if (row) row.classList.add("selected");
    drawHistogram(chartBox, histograms.get(name));
  };
  const rows = drift.vs_reference.columns.map((c) => {
    const p = previous.get(c.name);
    const verdict = c.insufficient_data ? badge("no verdict", "info") : c.drift ? badge("drift") : badge("ok");
    const row = el("tr", { class: "clickable", "data-testid": "drift-row", "data-feature": c.name, "data-drift": String(c.drift) },
      el("td", {}, c.name), el("td", {}, c.kind), el("td", {}, verdict),
      el("td", {}, c.statistic.replaceAll("_", " ")), el("td", { class: "num", "data-testid": "drift-value" }, fmt(c.value, 4)),
      el("td", { class: "num" }, fmt(c.threshold, 3)), el("td", { class: "num" }, fmt(c.psi, 3)),
      el("td", { class: "num" }, fmt(c.jensen_shannon, 3)),
      drift.vs_previous ? el("td", {}, p ? (p.insufficient_data ? "–" : p.drift ? badge("changed", "drift") : "same") : "–") : null,
      el("td", { class: "explain" }, c.explanation));
    row.addEventListener("click", () => select(c.name, row));
    return row;
  });
  section.append(el("p", { class: "muted" }, `${drift.vs_reference.drifted_columns} of ${drift.vs_reference.columns.length} features drifted; ` +
      `data set drift: ${drift.vs_reference.dataset_drift ? "yes" : "no"}. Click a feature for its histograms.`),
    el("table", {}, el("thead", {}, el("tr", {}, ["Feature", "Kind", "Verdict", "Statistic", "Value", "Threshold", "PSI",
      "JS", drift.vs_previous ? "vs previous window" : null, "Why"].filter(Boolean).map((h) => el("th", {}, h)))), el("tbody", {}, rows)), chartBox);
  if (drift.prediction) {
    const p = drift.prediction;
    section.append(el("p", { "data-testid": "prediction-drift" }, "Predicted classes vs the reference target: ",
      p.insufficient_data ? badge("no verdict", "info") : p.drift ? badge("drift") : badge("ok"), " ", p.explanation));
  }
  for (const s of drift.skipped) section.append(el("p", { class: "explain" }, s));
  const first = drift.vs_reference.columns.find((c) => c.drift) || drift.vs_reference.columns[0];
  if (first) charts.pending.push(() => select(first.name, rows.find((r) => r.dataset.feature === first.name)));
  return section;
}

/** Reference vs current (and previous window) shares per bin, as bars. */
function drawHistogram(box, histogram) {
  box.replaceChildren();
  if (!histogram) return;
  const share = (counts) => { const n = counts.reduce((a, b) => a + b, 0) || 1; return counts.map((c) => c / n); };
  const xs = histogram.bins.map((_, i) => i);
  // Side by side: the reference's bar left of each bin's tick, the current window's right of it.
  const left = uPlot.paths.bars({ size: [0.4, 40], align: -1 });
  const right = uPlot.paths.bars({ size: [0.4, 40], align: 1 });
  const chart = new uPlot({
    title: `${histogram.name}: share of rows per bin`, width: Math.max(480, box.clientWidth || 900), height: 240,
    scales: { x: { time: false, range: [-0.6, xs.length - 0.4] } },
    axes: [{ values: (u, ticks) => ticks.map((t) => histogram.bins[t] ?? ""), space: 40, rotate: -30 }, { values: (u, t) => t.map((v) => pct(v)) }],
    series: [{}, { label: "reference", fill: "rgba(100,116,139,0.55)", stroke: "#64748b", paths: left },
      { label: "current", fill: "rgba(183,121,31,0.65)", stroke: "#b7791f", paths: right }],
  }, [xs, share(histogram.reference), share(histogram.current)], box);
  charts.drawn.push(chart);
}

function integritySection(integrity) {
  const rows = integrity.findings.map((f) => el("tr", { "data-testid": "finding-row", "data-feature": f.feature, "data-issue": f.issue },
    el("td", {}, f.feature), el("td", {}, f.issue.replaceAll("_", " ")), el("td", { class: "num" }, pct(f.share)),
    el("td", { class: "num" }, f.count), el("td", {}, f.detail)));
  const errors = Object.entries(integrity.errors || {}).map(([kind, n]) => `${kind.replaceAll("_", " ")}: ${n}`).join(", ");
  return el("section", {}, el("h2", {}, "Data integrity"),
    rows.length === 0 ? el("p", { class: "muted" }, "No findings in this window.") :
      el("table", {}, el("thead", {}, el("tr", {}, ["Feature", "Issue", "Share", "Rows", "Detail"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)),
    integrity.errors ? el("p", { class: "muted" }, `Errors: ${errors || "none"}; error rate ${pct(integrity.error_rate)}.`) : null);
}

