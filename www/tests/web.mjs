// The browser package and the demo app in real headless Chromium (playwright-core, Debian's
// chromium), against `sextant web` and a live collector that a Rust test (tests/it/web.rs) runs.
//
// Phases (SEXTANT_PHASE), one browser profile (SEXTANT_PROFILE_DIR) so localStorage carries over:
// - "api": the JS API on both engines against reference outputs, error codes, progress, the
//   Cache API; then the demo page classifies samples and sends labels to the collector.
// - "offline": the collector is down; the demo classifies and labels, then the page reloads.
// - "online": the collector is back; a new page load delivers what the earlier ones saved; then
//   two more predictions leave with the page, by sendBeacon.
// Prints one JSON line of results (`RESULT {...}`); exits 1 on any failed check.
//
// Environment: SEXTANT_URL (sextant web), SEXTANT_CHROMIUM, SEXTANT_CASES (JSON file of
// reference cases), SEXTANT_ARTIFACTS (screenshots), SEXTANT_SAMPLES (how many samples to click).
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromiumArgs, env } from "./common.mjs";

const url = env("SEXTANT_URL");
const phase = env("SEXTANT_PHASE");
const artifacts = env("SEXTANT_ARTIFACTS");
mkdirSync(artifacts, { recursive: true });

const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };
const result = { phase };

const context = await chromium.launchPersistentContext(env("SEXTANT_PROFILE_DIR"), {
  executablePath: env("SEXTANT_CHROMIUM"),
  args: chromiumArgs,
  viewport: { width: 1100, height: 900 },
});
const page = await context.newPage();
const problems = [];
page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`); });
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
// Failed responses, by URL: the console's "Failed to load resource" lines do not name it.
page.on("response", (r) => {
  const expected = r.url().includes("/models/nope/") || (phase === "offline" && r.url().includes("/v1/"));
  if (r.status() >= 400 && !expected) problems.push(`HTTP ${r.status()} from ${r.url()}`);
});
const modelRequests = [];
page.on("request", (r) => { if (r.url().endsWith(".onnx")) modelRequests.push(r.url()); });
const beacons = [];
page.on("request", (r) => { if (r.url().includes("/v1/beacon")) beacons.push(r.url()); });

/** Clicks `n` samples on the demo page, labelling each with the predicted digit (or a wrong one). */
async function classifyAndLabel(n) {
  const digits = [];
  for (let i = 0; i < n; i++) {
    const before = Number(await page.evaluate(() => document.body.dataset.runs ?? 0));
    await page.locator("[data-testid=sample]").nth(i).click();
    await page.waitForFunction((b) => Number(document.body.dataset.runs ?? 0) > b, before, { timeout: 10000 });
    const status = await page.locator("[data-testid=status]").innerText();
    if (status.includes(":")) throw new Error(`sample ${i}: ${status}`);
    const digit = (await page.locator("[data-testid=digit]").innerText()).trim();
    digits.push(digit);
    await page.locator("[data-testid=label]", { hasText: digit }).first().click();
  }
  return digits;
}

async function openDemo() {
  await page.goto(`${url}/`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
}

try {
  if (phase === "api") {
    await page.goto(`${url}/`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
    const cases = JSON.parse(readFileSync(env("SEXTANT_CASES"), "utf8"));
    const api = await page.evaluate(async (cases) => {
      const { Session } = await import("/pkg/sextant.js");
      const typed = { f32: Float32Array, f64: Float64Array, i32: Int32Array, u8: Uint8Array, i8: Int8Array, bool: Uint8Array };
      const tensor = (t) => ({
        data: t.dtype === "i64" ? BigInt64Array.from(t.data.map((v) => BigInt(v))) : typed[t.dtype].from(t.data.map(Number)),
        dims: t.dims,
      });
      const compare = (got, want) => {
        if (JSON.stringify(got.dims) !== JSON.stringify(want.dims)) return `dims ${JSON.stringify(got.dims)} != ${JSON.stringify(want.dims)}`;
        if (got.dtype !== want.dtype) return `dtype ${got.dtype} != ${want.dtype}`;
        let worst = 0;
        for (let i = 0; i < want.data.length; i++) {
          const g = Number(got.data[i]), w = Number(want.data[i]);
          const err = Math.abs(g - w) / (1e-4 + 1e-4 * Math.abs(w));
          if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : err;
        }
        return worst <= 1 ? null : `max error ${worst.toFixed(2)}× the tolerance`;
      };
      const errorOf = async (f) => { try { await f(); return null; } catch (e) { return { code: e.code, name: e.name, message: e.message }; } };
      const out = { runs: {}, errors: {} };
      // The GPU engine needs every dim fixed: the case's own dims, named as the model names them
      // (read from the CPU session's inputs, which run first).
      const dimsOf = (c, inputs) => {
        const dims = {};
        for (const info of inputs) {
          const given = c.inputs.find((t) => t.name === info.name);
          (info.dims ?? []).forEach((d, k) => { if (typeof d === "string" && given) dims[d] = given.dims[k]; });
        }
        return dims;
      };
      const runCase = async (c, bytes, backend, dims) => {
        const session = await Session.create(bytes.slice(), { backend, dims });
        const feeds = Object.fromEntries(c.inputs.map((t) => [t.name, tensor(t)]));
        const r = await session.run(feeds);
        const mismatches = c.outputs.map((want) => [want.name, compare(r.outputs[want.name], want)]).filter(([, m]) => m);
        const result = { backend: session.backend, mismatches, inputs: session.inputs };
        session.release();
        return result;
      };
      for (const c of cases) {
        // One download per case (the Cache API checks below count them).
        const bytes = new Uint8Array(await (await fetch(`/models/${c.name}/model.onnx`)).arrayBuffer());
        const cpu = await runCase(c, bytes, "cpu", {}).catch((e) => ({ error: `${e.code}: ${e.message}` }));
        out.runs[`${c.name}/cpu`] = cpu;
        const dims = dimsOf(c, cpu.inputs ?? []);
        out.runs[`${c.name}/webgpu`] = await runCase(c, bytes, "webgpu", dims).catch((e) => ({ error: `${e.code}: ${e.message}` }));
      }

      // `auto` passes over a software WebGPU adapter (SwiftShader here) even for a model the gate
      // would take; an explicit "webgpu" uses it (above).
      const autoOps = await Session.create("/models/gpu_ops/model.onnx", { backend: "auto" });
      out.auto_software = { backend: autoOps.backend, reason: autoOps.backendReason };
      autoOps.release();
      // `auto` on SwiftShader falls back with the reason.
      const auto = await Session.create("/models/digits_mlp/model.onnx", { backend: "auto", dims: { N: 1 } });
      out.auto = { backend: auto.backend, reason: auto.backendReason, inputs: auto.inputs, outputs: auto.outputs.map((o) => o.name) };

      // Bad inputs: each a typed error with a stable code, and the module keeps working.
      const x = new Float32Array(64);
      out.errors.dtype = await errorOf(() => auto.run({ pixels: new Int32Array(64) }));
      out.errors.shape = await errorOf(() => auto.run({ pixels: new Float32Array(63) }));
      out.errors.dims = await errorOf(() => auto.run({ pixels: { data: x, dims: [2, 32] } }));
      out.errors.missing = await errorOf(() => auto.run({}));
      out.errors.unexpected = await errorOf(() => auto.run({ pixels: x, extra: x }));
      out.errors.not_an_object = await errorOf(() => auto.run(42));
      out.errors.bad_value = await errorOf(() => auto.run({ pixels: "nope" }));
      out.errors.bad_backend = await errorOf(() => Session.create("/models/digits_mlp/model.onnx", { backend: "tpu" }));
      out.errors.not_found = await errorOf(() => Session.create("/models/nope/model.onnx"));
      out.errors.invalid_model = await errorOf(() => Session.create(new Uint8Array([1, 2, 3, 4, 5])));
      out.errors.integrity = await errorOf(() => Session.create("/models/digits_mlp/model.onnx", { sha256: "0".repeat(64) }));
      out.errors.label_without_telemetry = await errorOf(() => auto.label("p", "3"));
      // Degenerate and hostile shapes must come back as errors or results, never a trap.
      const free = await Session.create("/models/digits_mlp/model.onnx", { backend: "cpu" });
      out.empty_batch = await free.run({ pixels: { data: new Float32Array(0), dims: [0, 64] } })
        .then((r) => r.outputs.probabilities.dims, (e) => e.code);
      out.errors.huge_dims = await errorOf(() => free.run({ pixels: { data: x, dims: [65536, 65536, 64] } }));
      out.errors.negative_dims = await errorOf(() => free.run({ pixels: { data: x, dims: [-1, 64] } }));
      free.release();
      const still = await auto.run({ pixels: x });
      out.still_runs = still.outputs.probabilities.dims;
      auto.release();
      out.errors.released = await errorOf(() => auto.run({ pixels: x }));

      // Application records counted against a profile of them (not of the model's inputs).
      const { telemetry } = await (await fetch("/config.json")).json();
      const profile = { profile_version: 1, rows: 2, target: null, features: [
        { name: "region", missing_rate: 0, kind: { category: { categories: ["north", "south"], counts: [1, 1, 0] } } }] };
      const app = await Session.create("/models/digits_mlp/model.onnx", { backend: "cpu",
        telemetry: { ...telemetry, model: "observe-test", version: "1", profile, samples: 4 } });
      app.observe({ region: "north" });
      app.observe({ region: "mars", regoin: "north" });
      app.observe({ region: null });
      out.errors.observe_not_object = await errorOf(() => app.observe(5));
      out.errors.observe_bad_field = await errorOf(() => app.observe({ region: {} }));
      out.observe_stats = await app.flush();
      app.release();

      // Progress, then the Cache API keyed by the content hash.
      const progress = [];
      const first = await Session.create("/models/digits_cnn/model.onnx", { onProgress: (l, t) => progress.push([l, t]) });
      out.progress = progress.at(-1);
      out.progress_calls = progress.length;
      const sha256 = first.sha256;
      first.release();
      const cached = [];
      for (let i = 0; i < 2; i++) {
        const s = await Session.create("/models/digits_cnn/model.onnx", { cache: true, sha256 });
        cached.push(s.sha256 === sha256);
        s.release();
      }
      out.cached = cached;
      return out;
    }, cases);
    result.api = api;
    // The cache: digits_cnn fetched once for progress, once to fill the cache, then served from it.
    result.cnn_requests = modelRequests.filter((u) => u.includes("digits_cnn")).length;
    await page.screenshot({ path: join(artifacts, "api.png"), fullPage: true });

    // The demo: classify samples, send labels, deliver.
    await openDemo();
    result.engine = await page.locator("[data-testid=engine]").innerText();
    result.digits = await classifyAndLabel(Number(env("SEXTANT_SAMPLES")));
    result.stats = await page.evaluate(() => window.sextant.session().flush());
    await page.screenshot({ path: join(artifacts, "demo.png"), fullPage: true });
  } else if (phase === "offline") {
    await openDemo();
    result.digits = await classifyAndLabel(Number(env("SEXTANT_SAMPLES")));
    result.stats = await page.evaluate(() => window.sextant.session().flush());
    // Leaving the page: the beacons fail (nothing listens); the batches stay saved.
    await page.reload();
    await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
    result.saved = await page.evaluate(() => {
      let batches = 0;
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i);
        if (key.startsWith("sextant:outbox:")) batches += JSON.parse(localStorage.getItem(key)).length;
      }
      return batches;
    });
  } else if (phase === "online") {
    await openDemo();
    result.stats = await page.evaluate(() => window.sextant.session().flush());
    result.left = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("sextant:outbox:")).length);
    // Then leave the page without a flush: `pagehide` hands the open batch to sendBeacon.
    result.beaconed = await classifyAndLabel(2);
    // Hidden three times, then left: the open batch goes by beacon once, not once per hide.
    await page.evaluate(() => { for (let i = 0; i < 3; i++) window.dispatchEvent(new Event("pagehide")); });
    await new Promise((r) => setTimeout(r, 500));
    result.beacons_while_hidden = beacons.length;
    await page.close({ runBeforeUnload: true });
    await new Promise((r) => setTimeout(r, 1500));
  } else {
    throw new Error(`unknown phase ${phase}`);
  }
  // Failed requests to a stopped collector are expected in the offline phase; nothing else
// (failed loads are judged by their responses above).
  const offlineNoise = (p) => p.includes("ERR_CONNECTION_REFUSED") || p.includes("Failed to load resource")
    || p.includes("sextant: the reference profile could not be fetched");
  const unexpected = problems.filter((p) => !p.includes("Failed to load resource") && !(phase === "offline" && offlineNoise(p)));
  result.problems = unexpected;
} catch (error) {
  await page.screenshot({ path: join(artifacts, `failure-${phase}.png`), fullPage: true }).catch(() => {});
  const status = await page.locator("[data-testid=status]").innerText().catch(() => "");
  failures.push(`${error.message.split("\n")[0]}\n  status line: ${status}\n  page said:\n  ${problems.join("\n  ")}`);
} finally {
  await context.close();
}

console.log(`RESULT ${JSON.stringify(result)}`);
if (failures.length > 0) {
  console.error(`web checks failed (${phase}):\n- ${failures.join("\n- ")}`);
  process.exit(1);
}
