// `cargo xtask bench-web`: Sextant's browser package against onnxruntime-web, side by side in one
// headless Chromium, same models and inputs: our CPU engine vs its `wasm` EP (1 thread), our
// WebGPU path vs its `webgpu` EP; and what a page downloads for each (raw and gzip).
//
// usage: node bench.mjs MODELS_DIR NAME... (env: SEXTANT_CHROMIUM, SEXTANT_ITERATIONS)
// MODELS_DIR/NAME/model.onnx are the materialised light models (benches/compare/light_models.py).
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { readFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join, extname, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const [models, ...names] = process.argv.slice(2);
const iterations = Number(process.env.SEXTANT_ITERATIONS ?? 20);
const mounts = { "/pkg/": join(repo, "pkg"), "/ort/": join(here, "node_modules/onnxruntime-web/dist"), "/models/": models };
const types = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };

const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  if (path === "/") {
    res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>bench</title>");
    return;
  }
  const mount = Object.keys(mounts).find((m) => path.startsWith(m));
  try {
    const file = join(mounts[mount], path.slice(mount.length));
    const body = readFileSync(file);
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.SEXTANT_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader",
    "--use-webgpu-adapter=swiftshader", "--disable-vulkan-surface"],
});

/** Runs `engine` on `name` in a fresh page; returns p50 latency and the code files the page fetched. */
async function measure(engine, name) {
  const page = await browser.newPage();
  const fetched = new Set();
  page.on("response", (r) => { const p = new URL(r.url()).pathname; if (!p.startsWith("/models/") && p !== "/") fetched.add(p); });
  await page.goto(`${origin}/`);
  const result = await page.evaluate(async ({ engine, name, iterations }) => {
    const url = `/models/${name}/model.onnx`;
    const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    // Floats from a sine; integers (token ids, masks, segment ids) 0 and 1, valid for any index.
    const values = (dtype, n) => dtype === "i64"
      ? BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 2))
      : Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5);
    const count = (dims) => dims.reduce((a, b) => a * b, 1);
    const time = async (run) => {
      for (let i = 0; i < Math.max(2, iterations / 5); i++) await run();
      const xs = [];
      for (let i = 0; i < iterations; i++) { const t = performance.now(); await run(); xs.push(performance.now() - t); }
      return median(xs);
    };
    try {
      if (engine.startsWith("sextant")) {
        const { default: init, Session } = await import("/pkg/sextant.js");
        await init();
        const session = await Session.create(url, { backend: engine === "sextant-webgpu" ? "webgpu" : "cpu" });
        const feeds = Object.fromEntries(session.inputs.map((info) =>
          [info.name, { data: values(info.dtype, count(info.dims)), dims: info.dims }]));
        return { p50: await time(() => session.run(feeds)), backend: session.backend };
      }
      const ort = await import(engine === "ort-webgpu" ? "/ort/ort.webgpu.min.mjs" : "/ort/ort.wasm.min.mjs");
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.wasmPaths = "/ort/";
      const session = await ort.InferenceSession.create(url, { executionProviders: [engine === "ort-webgpu" ? "webgpu" : "wasm"] });
      const feeds = Object.fromEntries(session.inputNames.map((name, i) => {
        const meta = session.inputMetadata?.[i];
        const dims = meta?.shape?.map((d) => (typeof d === "number" ? d : 1)) ?? [1, 3, 224, 224];
        const dtype = meta?.type === "int64" ? "i64" : "f32";
        return [name, new ort.Tensor(dtype === "i64" ? "int64" : "float32", values(dtype, count(dims)), dims)];
      }));
      return { p50: await time(() => session.run(feeds)) };
    } catch (e) {
      return { error: `${e.code ?? e.name}: ${e.message}`.slice(0, 300) };
    }
  }, { engine, name, iterations });
  await page.close();
  let raw = 0, gzip = 0;
  for (const path of fetched) {
    const mount = Object.keys(mounts).find((m) => path.startsWith(m));
    if (!mount) continue;
    const body = readFileSync(join(mounts[mount], path.slice(mount.length)));
    raw += body.length;
    gzip += gzipSync(body, { level: 9 }).length;
  }
  return { ...result, raw, gzip, files: [...fetched] };
}

const rows = [];
for (const name of names) {
  const row = { name };
  for (const engine of ["sextant-cpu", "ort-wasm", "sextant-webgpu", "ort-webgpu"]) row[engine] = await measure(engine, name);
  rows.push(row);
  console.error(JSON.stringify(row));
}
await browser.close();
server.close();

const ms = (r) => (r.error ? `error: ${r.error}` : `${r.p50.toFixed(2)} ms`);
const ratio = (a, b) => (a.error || b.error ? "–" : (a.p50 / b.p50).toFixed(2));
const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;
console.log(`\nheadless ${browser.version?.() ?? "Chromium"}, ${iterations} timed runs per engine (p50), 1 thread`);
console.log("model        sextant cpu        ort wasm          ratio   sextant webgpu     ort webgpu        ratio");
for (const r of rows) {
  console.log(`${r.name.padEnd(12)} ${ms(r["sextant-cpu"]).padEnd(18)} ${ms(r["ort-wasm"]).padEnd(17)} ${ratio(r["sextant-cpu"], r["ort-wasm"]).padEnd(7)} ${ms(r["sextant-webgpu"]).slice(0, 60).padEnd(18)} ${ms(r["ort-webgpu"]).slice(0, 60).padEnd(17)} ${ratio(r["sextant-webgpu"], r["ort-webgpu"])}`);
}
const first = rows[0];
console.log("\nwhat a page downloads (code, not the model):");
for (const engine of ["sextant-cpu", "ort-wasm", "sextant-webgpu", "ort-webgpu"]) {
  const r = first[engine];
  console.log(`${engine.padEnd(16)} ${mb(r.raw)} raw, ${mb(r.gzip)} gzip  (${r.files.join(", ")})`);
}
const size = (a, b) => `${(first[a].raw / first[b].raw).toFixed(2)}× raw, ${(first[a].gzip / first[b].gzip).toFixed(2)}× gzip`;
console.log(`sextant vs ort, wasm: ${size("sextant-cpu", "ort-wasm")}; webgpu: ${size("sextant-webgpu", "ort-webgpu")}`);
