// The page of a `sextant drift --html` report: one self-contained file with the JSON report in a
// <script id="report" type="application/json"> element, drawn with the dashboard's sections.
"use strict";

const report = JSON.parse(document.getElementById("report").textContent);
const main = document.getElementById("main");
const drift = { vs_reference: report, vs_previous: null, prediction: null, histograms: report.histograms, skipped: [] };

function performanceTable(performance) {
  if (!performance) return null;
  const section = el("section", {}, el("h2", {}, "Performance: reference vs current"));
  if (performance.classification) {
    const { reference, current } = performance.classification;
    const row = (name, r, c) => el("tr", {}, el("td", {}, name), el("td", { class: "num" }, fmt(r)), el("td", { class: "num" }, fmt(c)));
    section.append(el("table", {}, el("thead", {}, el("tr", {}, ["Metric", "Reference", "Current"].map((h) => el("th", {}, h)))),
      el("tbody", {},
        row("accuracy", reference.accuracy.value, current.accuracy.value),
        row("precision (macro)", reference.macro_avg.precision, current.macro_avg.precision),
        row("recall (macro)", reference.macro_avg.recall, current.macro_avg.recall),
        row("F1 (macro)", reference.macro_avg.f1, current.macro_avg.f1),
        row("F1 (weighted)", reference.weighted_avg.f1, current.weighted_avg.f1))),
      el("p", { class: "muted" }, `Current accuracy 95% interval: ${fmt(current.accuracy.low)}–${fmt(current.accuracy.high)} on ${current.n} rows.`));
  } else if (performance.regression) {
    const { reference, current } = performance.regression;
    section.append(el("table", {}, el("thead", {}, el("tr", {}, ["Metric", "Reference", "Current"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ["mae", "rmse", "r2"].map((m) => el("tr", {}, el("td", {}, m), el("td", { class: "num" }, fmt(reference[m], 4)),
        el("td", { class: "num" }, fmt(current[m], 4)))))));
  }
  return section;
}

main.replaceChildren(
  el("h1", {}, "Drift report ", el("span", { class: "muted" }, `${report.current.path} (${report.current.rows} rows) against ${report.reference.path} (${report.reference.rows} rows)`)),
  el("section", {}, el("p", { "data-testid": "verdict" }, "Data set drift: ",
    report.dataset_drift ? badge("drift") : badge("ok"),
    ` ${report.drifted_columns} of ${report.columns.length} columns drifted (share ${fmt(report.share)}, threshold ${report.policy.dataset_share}).`)),
  driftSection(drift),
  integritySection({ findings: report.integrity }),
  performanceTable(report.performance),
);
drawPending();
