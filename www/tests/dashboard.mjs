// Drives the dashboard in real headless Chromium (playwright-core, Debian's chromium) against a
// live collector that a Rust test seeded. Fails (exit 1) on any console error, page error or
// wrong number; saves screenshots as test artefacts.
//
// Environment: SEXTANT_URL, SEXTANT_KEY (read key), SEXTANT_CHROMIUM (browser binary),
// SEXTANT_ARTIFACTS (screenshot folder), SEXTANT_EXPECT (JSON: what the seeded data must show).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { env } from "./common.mjs";

const url = env("SEXTANT_URL");
const artifacts = env("SEXTANT_ARTIFACTS");
const expect = JSON.parse(env("SEXTANT_EXPECT"));
mkdirSync(artifacts, { recursive: true });

const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };

const browser = await chromium.launch({ executablePath: env("SEXTANT_CHROMIUM"), args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
const problems = [];
try {
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));

  // The model list, with health at a glance.
  await page.goto(`${url}/dashboard/?key=${encodeURIComponent(env("SEXTANT_KEY"))}`);
  const row = page.locator(`[data-testid=model-row][data-model="${expect.model}"][data-version="${expect.version}"]`);
  await row.waitFor({ timeout: 10000 });
  const health = (await row.locator("[data-testid=health]").innerText()).trim();
  check(health === expect.health, `model list health: expected ${JSON.stringify(expect.health)}, got ${JSON.stringify(health)}`);
  await page.screenshot({ path: join(artifacts, "models.png"), fullPage: true });

  // The model's page: drift table, histogram, performance, integrity, alerts, traffic.
  await row.click();
  await page.locator("[data-testid=drift-row]").first().waitFor({ timeout: 10000 });
  for (const [feature, drift] of Object.entries(expect.drift)) {
    const got = await page.locator(`[data-testid=drift-row][data-feature="${feature}"]`).getAttribute("data-drift");
    check(got === String(drift), `drift of ${feature}: expected ${drift}, got ${got}`);
  }
  const stat = async (id) => (await page.locator(`[data-testid=${id}]`).innerText()).trim();
  const accuracy = await stat("accuracy");
  check(accuracy.startsWith(expect.accuracy), `accuracy: expected ${expect.accuracy}…, got ${accuracy}`);
  check((await stat("drifted")) === expect.drifted, `drifted features: expected ${expect.drifted}, got ${await stat("drifted")}`);
  check((await stat("predictions")) === String(expect.predictions), `predictions: got ${await stat("predictions")}`);
  const alertRows = await page.locator("[data-testid=alert-row][data-state=firing]").count();
  check(alertRows === expect.firing, `firing alert rows: expected ${expect.firing}, got ${alertRows}`);
  const findings = await page.locator("[data-testid=finding-row]").evaluateAll((rows) => rows.map((r) => `${r.dataset.feature}:${r.dataset.issue}`));
  check(JSON.stringify(findings) === JSON.stringify(expect.findings), `integrity findings: expected ${expect.findings}, got ${findings}`);
  const selected = await page.locator("tr.selected[data-testid=drift-row]").getAttribute("data-feature");
  check(selected === expect.first_drifted, `histogram shown for ${selected}, expected the first drifted feature ${expect.first_drifted}`);
  for (const chart of ["histogram", "performance-chart", "traffic-chart"]) {
    const canvases = await page.locator(`[data-testid=${chart}] canvas`).count();
    check(canvases === 1, `${chart}: expected one uPlot canvas, found ${canvases}`);
  }
  const trafficRows = await page.locator("[data-testid=traffic-row]").count();
  check(trafficRows === expect.traffic_rows, `traffic rows: expected ${expect.traffic_rows}, got ${trafficRows}`);
  await page.screenshot({ path: join(artifacts, "model.png"), fullPage: true });

  // Another feature's histogram on click.
  await page.locator(`[data-testid=drift-row][data-feature="${expect.click}"]`).click();
  const title = await page.locator("[data-testid=histogram] .u-title").innerText();
  check(title.startsWith(expect.click), `histogram title after clicking ${expect.click}: ${title}`);
  await page.locator("[data-testid=histogram]").screenshot({ path: join(artifacts, "histogram.png") });

  // A wrong key shows the API's message, not a broken page.
  await page.evaluate(() => localStorage.setItem("sextant.key", "sxt_wrong"));
  await page.goto(`${url}/dashboard/`);
  const error = page.locator("[data-testid=error]");
  await error.waitFor({ state: "visible", timeout: 10000 });
  const message = await error.innerText();
  check(message.includes("unknown or revoked"), `wrong key: expected the API's message, got ${message}`);
  await page.screenshot({ path: join(artifacts, "wrong-key.png") });
  // The 401 itself is logged by Chromium as a failed resource load: that one is expected.
  const unexpected = problems.filter((p) => !p.includes("401"));
  check(unexpected.length === 0, `console or page errors:\n  ${unexpected.join("\n  ")}`);
} catch (error) {
  // A step timed out or threw: say what the page showed and said.
  await page.screenshot({ path: join(artifacts, "failure.png"), fullPage: true }).catch(() => {});
  const banner = await page.locator("[data-testid=error]").innerText().catch(() => "");
  failures.push(`${error.message.split("\n")[0]}\n  error banner: ${banner}\n  page said:\n  ${problems.join("\n  ")}`);
} finally {
  await browser.close();
}

if (failures.length > 0) {
  console.error(`dashboard checks failed:\n- ${failures.join("\n- ")}`);
  process.exit(1);
}
console.log(`dashboard checks passed; screenshots in ${artifacts}`);
