// The end-to-end test's browser (tests/it/demo.rs drives `sextant demo`): real headless Chromium
// (playwright-core, Debian's chromium) on the demo's pages.
//
// Phases (SEXTANT_PHASE):
// - "page": the web demo (SEXTANT_URL) classifies SEXTANT_SAMPLES digits in the page, labels each
//   with the predicted digit, and flushes its telemetry to the demo's collector.
// - "dashboard": the collector's dashboard (SEXTANT_URL, read key SEXTANT_KEY) for each model in
//   SEXTANT_MODELS (comma-separated): the firing alert rows and integrity findings it shows.
// Prints one JSON line of results (`RESULT {...}`); exits 1 when a step fails.
//
// Environment: SEXTANT_CHROMIUM, SEXTANT_ARTIFACTS (screenshots).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromiumArgs, env } from "./common.mjs";

const url = env("SEXTANT_URL");
const phase = env("SEXTANT_PHASE");
const artifacts = env("SEXTANT_ARTIFACTS");
mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: env("SEXTANT_CHROMIUM"),
  args: chromiumArgs,
});
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
const problems = [];
// The demo gives the digits page no reference profile (it has no digits training data): the
// page says so once, and its profile request is a 404. Anything else is a problem.
const expected = (text) => text.includes("no reference profile") || text.includes("/profile");
page.on("console", (m) => {
  if ((m.type() === "error" || m.type() === "warning") && !expected(m.text()) && !m.text().includes("404")) {
    problems.push(`console ${m.type()}: ${m.text()}`);
  }
});
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("response", (r) => { if (r.status() >= 400 && !expected(r.url())) problems.push(`HTTP ${r.status()} from ${r.url()}`); });

const result = { phase };
let failed = null;
try {
  if (phase === "page") {
    await page.goto(`${url}/`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 60000 });
    result.engine = await page.locator("[data-testid=engine]").innerText();
    result.digits = [];
    for (let i = 0; i < Number(env("SEXTANT_SAMPLES")); i++) {
      const before = Number(await page.evaluate(() => document.body.dataset.runs ?? 0));
      await page.locator("[data-testid=sample]").nth(i).click();
      await page.waitForFunction((b) => Number(document.body.dataset.runs ?? 0) > b, before, { timeout: 10000 });
      const digit = (await page.locator("[data-testid=digit]").innerText()).trim();
      result.digits.push(digit);
      await page.locator("[data-testid=label]", { hasText: digit }).first().click();
    }
    result.stats = await page.evaluate(() => window.sextant.session().flush());
    await page.screenshot({ path: join(artifacts, "demo-page.png"), fullPage: true });
  } else if (phase === "dashboard") {
    result.models = {};
    for (const model of env("SEXTANT_MODELS").split(",")) {
      // As the demo prints the link: the demo's one-minute windows (without its auto-refresh).
      await page.goto(`${url}/dashboard/?key=${encodeURIComponent(env("SEXTANT_KEY"))}&window=1m`);
      const row = page.locator(`[data-testid=model-row][data-model="${model}"]`);
      await row.waitFor({ timeout: 10000 });
      await row.click();
      await page.locator("[data-testid=alert-row]").first().waitFor({ timeout: 10000 });
      const alerts = await page.locator("[data-testid=alert-row][data-state=firing]")
        .evaluateAll((rows) => rows.map((r) => `${r.dataset.rule}|${r.dataset.subject}`));
      const findings = await page.locator("[data-testid=finding-row]")
        .evaluateAll((rows) => rows.map((r) => `${r.dataset.feature}:${r.dataset.issue}`));
      const windowShown = await page.locator("h1 .muted").innerText();
      result.models[model] = { alerts, findings, window: windowShown };
      await page.screenshot({ path: join(artifacts, `dashboard-${model}.png`), fullPage: true });
    }
  } else {
    throw new Error(`unknown phase ${phase}`);
  }
} catch (e) {
  failed = e;
  await page.screenshot({ path: join(artifacts, `${phase}-failed.png`), fullPage: true }).catch(() => {});
}
result.problems = problems;
await browser.close();
console.log(`RESULT ${JSON.stringify(result)}`);
if (failed) {
  console.error(failed);
  process.exit(1);
}
