// The digits demo: draw or pick a digit, classify it in the page, send the right answer as a label.
// Everything model-related goes through the browser package (`/pkg/sextant.js`).
import init, { Session } from "/pkg/sextant.js";

const $ = (id) => document.getElementById(id);
const MODEL = "/models/digits_mlp/model.onnx";
const CLASSES = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

const pad = $("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });
let session = null;
let lastPrediction = null;

function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
}

/** The pad as the model's input: 8×8 cells, each the mean brightness scaled to 0–16 as in the data set. */
function padPixels() {
  const { data } = ctx.getImageData(0, 0, pad.width, pad.height);
  const cell = pad.width / 8;
  const pixels = new Float32Array(64);
  for (let y = 0; y < pad.height; y++) {
    for (let x = 0; x < pad.width; x++) {
      pixels[Math.floor(y / cell) * 8 + Math.floor(x / cell)] += data[(y * pad.width + x) * 4];
    }
  }
  for (let i = 0; i < 64; i++) pixels[i] = (pixels[i] / (cell * cell * 255)) * 16;
  return pixels;
}

function drawPixels(canvas, pixels) {
  const c = canvas.getContext("2d");
  const cell = canvas.width / 8;
  for (let i = 0; i < 64; i++) {
    const v = Math.round((pixels[i] / 16) * 255);
    c.fillStyle = `rgb(${v},${v},${v})`;
    c.fillRect((i % 8) * cell, Math.floor(i / 8) * cell, cell, cell);
  }
}

async function classify(pixels) {
  if (!session) return;
  try {
    const result = await session.run({ pixels: { data: pixels, dims: [1, 64] } });
    const probabilities = result.outputs.probabilities.data;
    let best = 0;
    for (let i = 1; i < probabilities.length; i++) if (probabilities[i] > probabilities[best]) best = i;
    lastPrediction = result.predictionId;
    $("digit").textContent = CLASSES[best];
    $("confidence").textContent = `${(probabilities[best] * 100).toFixed(1)}% sure`;
    $("latency").textContent = `${result.latencyMs.toFixed(2)} ms`;
    const list = $("probabilities");
    list.replaceChildren(...Array.from(probabilities, (p, i) => {
      const li = document.createElement("li");
      li.className = i === best ? "best" : "";
      li.innerHTML = `<span>${CLASSES[i]}</span><span class="bar" style="width:${(p * 100).toFixed(1)}%"></span><span>${(p * 100).toFixed(1)}%</span>`;
      li.setAttribute("aria-label", `${CLASSES[i]}: ${(p * 100).toFixed(1)} percent`);
      return li;
    }));
    $("status").textContent = "";
  } catch (error) {
    $("status").textContent = `${error.code ?? "error"}: ${error.message}`;
  } finally {
    document.body.dataset.runs = String(Number(document.body.dataset.runs ?? 0) + 1);
  }
}

async function load(backend) {
  $("engine").textContent = "loading…";
  session?.release();
  session = null;
  const config = await (await fetch("/config.json")).json();
  const telemetry = config.telemetry
    ? { ...config.telemetry, model: "digits-mlp", version: "1", classes: CLASSES, node: "digits-demo" }
    : undefined;
  try {
    session = await Session.create(MODEL, {
      backend,
      dims: { N: 1 },
      telemetry,
      onProgress: (loaded, total) => { $("status").textContent = `model: ${loaded} of ${total ?? "?"} bytes`; },
    });
    $("engine").textContent = session.backend === "webgpu" ? "WebGPU" : "CPU (WebAssembly)";
    $("reason").textContent = session.backendReason;
    $("telemetry").textContent = telemetry ? `to ${telemetry.collector}` : "off (start `sextant web` with --collector and --key)";
    $("status").textContent = "ready";
    document.body.dataset.ready = "true";
  } catch (error) {
    $("engine").textContent = "none";
    $("status").textContent = `${error.code ?? "error"}: ${error.message}`;
  }
}

function setUpDrawing() {
  let drawing = false;
  const at = (e) => {
    const r = pad.getBoundingClientRect();
    return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
  };
  pad.addEventListener("pointerdown", (e) => {
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    ctx.beginPath();
    ctx.moveTo(...at(e));
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    ctx.lineTo(...at(e));
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 22;
    ctx.lineCap = "round";
    ctx.stroke();
  });
  pad.addEventListener("pointerup", () => {
    drawing = false;
    classify(padPixels());
  });
}

async function setUpSamples() {
  const { pixels } = await (await fetch("/samples.json")).json();
  $("samples").replaceChildren(...pixels.map((sample, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.testid = "sample";
    button.setAttribute("aria-label", `sample ${i + 1}`);
    const thumb = document.createElement("canvas");
    thumb.width = thumb.height = 32;
    drawPixels(thumb, sample);
    button.append(thumb);
    button.addEventListener("click", () => {
      drawPixels(pad, sample);
      classify(Float32Array.from(sample));
    });
    return button;
  }));
}

function setUpLabels() {
  $("labels").replaceChildren(...CLASSES.map((c) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = c;
    button.dataset.testid = "label";
    button.addEventListener("click", () => {
      if (!session || !lastPrediction) return;
      try {
        session.label(lastPrediction, c);
        $("status").textContent = `label "${c}" recorded for prediction ${lastPrediction.slice(0, 8)}…`;
      } catch (error) {
        $("status").textContent = `${error.code ?? "error"}: ${error.message}`;
      }
    });
    return button;
  }));
}

await init();
clearPad();
setUpDrawing();
setUpLabels();
$("clear").addEventListener("click", clearPad);
$("backend").addEventListener("change", (e) => load(e.target.value));
await setUpSamples();
await load("auto");
// The page's module is exposed for tests and for trying the API from the console.
window.sextant = { Session, session: () => session };
