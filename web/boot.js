// boot.js — everything the page can start before Python is up, in parallel with Pyodide's boot:
//   * WebAssembly / WebGL / camera-API checks, with messages a person understands;
//   * the manifest and the model files of the camera path (fetched with progress, SHA-256 checked
//     against the manifest with crypto.subtle before any session sees them);
//   * the camera (getUserMedia 640x480);
//   * ONNX Runtime Web bundles, imported on demand per provider (wasm / webgl / webgpu);
//   * then PyScript itself (main.py → app.py decide, create the sessions and run the loop).
// Python reaches all of this as `window.faceBoot`. Pyodide's own boot starts before all of this, in
// python_boot.mjs (imported first, so it is evaluated first).
import * as python from "./python_boot.mjs";
import * as pixels from "./pixels.js";
import { openSession, runAndCopy } from "./ort_session.js";
import { OrtWorker } from "./ort_worker_client.js";

const VENDOR = {
  ort: "./vendor/ort-1.30.0/",
  pyscript: "./vendor/pyscript-0.7.31/core.js",
};
const ORT_BUNDLES = {
  wasm: "ort.wasm.min.mjs",        // + ort-wasm-simd-threaded.{mjs,wasm}
  webgl: "ort.webgl.min.mjs",      // pure JS
  webgpu: "ort.webgpu.min.mjs",    // + ort-wasm-simd-threaded.asyncify.{mjs,wasm}; only if asked for
};

const t0 = performance.now();
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

// ---- progress list and messages -------------------------------------------------------------
function progress(item, text, state = "busy") {
  const list = $("progress");
  if (!list) return;
  let li = list.querySelector(`[data-item="${CSS.escape(item)}"]`);
  if (!li) {
    li = document.createElement("li");
    li.dataset.item = item;
    list.appendChild(li);
  }
  li.textContent = text;
  li.className = state;      // busy | done | error | note
}

function message(kind, text, key = null) {
  // kind: error | warning | info. A message with a key replaces the previous one with that key.
  const box = $("messages");
  if (!box) return null;
  let el = key ? box.querySelector(`[data-key="${CSS.escape(key)}"]`) : null;
  if (!el) {
    el = document.createElement("p");
    if (key) el.dataset.key = key;
    box.appendChild(el);
  }
  el.className = `msg ${kind}`;
  el.textContent = text;
  return el;
}

function clearMessage(key) {
  $("messages")?.querySelector(`[data-key="${CSS.escape(key)}"]`)?.remove();
}

// ---- capabilities ---------------------------------------------------------------------------
const hasWasm = typeof WebAssembly === "object" && typeof WebAssembly.instantiate === "function";

// Creating a WebGL context can take a while (a software GPU needs ~0.5 s): done on first use, after
// the Python runtime's download has been started. The renderer's name tells a software GPU
// (SwiftShader in Chromium without a GPU, llvmpipe/softpipe under Mesa, Microsoft's Basic Render
// Driver): ONNX Runtime's webgl provider is many times slower there than wasm (~30x measured here),
// so stages the manifest puts on webgl go to wasm instead unless the URL asks for webgl.
let webglInfo = null;
const SOFTWARE_RENDERER = /swiftshader|llvmpipe|softpipe|software|basic render/i;
function probeWebgl() {
  if (webglInfo === null) {
    webglInfo = { ok: false, renderer: "" };
    try {
      const c = document.createElement("canvas");
      const gl = c.getContext("webgl2") || c.getContext("webgl");
      if (gl) {
        const ext = gl.getExtension("WEBGL_debug_renderer_info");
        webglInfo = { ok: true, renderer: String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER) || "") };
      }
      gl?.getExtension("WEBGL_lose_context")?.loseContext();   // free it; ORT makes its own
    } catch {
      webglInfo = { ok: false, renderer: "" };
    }
  }
  return webglInfo;
}
const webglAvailable = () => probeWebgl().ok;
const softwareWebgl = () => probeWebgl().ok && SOFTWARE_RENDERER.test(probeWebgl().renderer);

// The provider a stage starts on: the URL's (?detector=webgl forces it), else the manifest's, with
// webgl → wasm on a software renderer. ort_runtime.py applies the same rule (and says so once).
function startProvider(stage, manifestProvider) {
  let provider = params.get(stage) || manifestProvider;
  if (provider === "cpu") provider = "wasm";
  if (provider === "webgl" && (!webglAvailable() || (!params.get(stage) && softwareWebgl()))) provider = "wasm";
  if (provider === "webgpu" && !navigator.gpu) provider = "wasm";
  return ORT_BUNDLES[provider] ? provider : null;
}

// ---- models ---------------------------------------------------------------------------------
class ModelFetchError extends Error {
  constructor(kind, file, message) {
    super(message);
    this.name = "ModelFetchError";
    this.kind = kind;         // missing | http | network | checksum | manifest
    this.file = file;
  }
}

// Several exports side by side: models/index.json lists them ({schema, default, models: [{name,
// label, path}]}) and ?models=NAME picks one; without an index (404) the site's one export is
// models/ itself. The chosen manifest's graph files are relative to its own folder.
async function chooseModels() {
  const none = { base: "./models/", index: null, entry: null, unknown: null, problem: null };
  let res;
  try {
    res = await fetch("./models/index.json", { cache: "no-cache" });
  } catch {
    return none;
  }
  if (!res.ok) return none;
  let index;
  try {
    index = JSON.parse(await res.text());
    if (!Array.isArray(index?.models) || !index.models.length) throw new Error("no \"models\" list");
  } catch (e) {
    return { ...none, problem: `models/index.json is not a valid index (${e.message})` };
  }
  const wanted = params.get("models");
  const byName = (n) => index.models.find((m) => m.name === n);
  const entry = byName(wanted ?? index.default) ?? byName(index.default) ?? index.models[0];
  const path = String(entry.path ?? "");
  if (path.includes("..") || path.startsWith("/") || /^[a-z]+:/i.test(path)) {
    return { ...none, index, problem: `models/index.json gives "${entry.name}" the path "${path}", outside models/` };
  }
  return { base: `./models/${path}`, index, entry, unknown: wanted && !byName(wanted) ? wanted : null, problem: null };
}
const modelsChoice = chooseModels();
// models/manifest.json is asked for beside the index, not after its answer: over HTTP/1.1 each request
// waits for a free connection behind the big downloads (the index's 404 came ~0.7 s after it was
// asked). Used when the index names no other folder (a single export, or its entry at models/ itself).
// First landmarks −94 ms median, sooner in 6 of 8 interleaved pairs (bench/startup_ab.py).
const plainManifest = fetch("./models/manifest.json", { cache: "no-cache" });
plainManifest.catch(() => {});        // reported by fetchManifest when it is the one used

async function fetchManifest() {
  const { base } = await modelsChoice;
  let res;
  try {
    res = await (base === "./models/" ? plainManifest : fetch(`${base}manifest.json`, { cache: "no-cache" }));
  } catch (e) {
    throw new ModelFetchError("network", "manifest.json", `network error: ${e.message}`);
  }
  if (res.status === 404) throw new ModelFetchError("missing", "manifest.json", "HTTP 404");
  if (!res.ok) throw new ModelFetchError("http", "manifest.json", `HTTP ${res.status}`);
  return await res.text();
}
const manifestText = fetchManifest();
let manifestJson = null;
const manifestParsed = manifestText.then((t) => (manifestJson = JSON.parse(t))).catch(() => null);

const modelFetches = new Map();
const mb = (n) => (n / 1e6).toFixed(1);

async function fetchModelBytes(file) {
  const label = `model:${file}`;
  progress(label, `${file}: downloading…`);
  let res;
  try {
    res = await fetch(`${(await modelsChoice).base}${encodeURI(file)}`);
  } catch (e) {
    progress(label, `${file}: network error`, "error");
    throw new ModelFetchError("network", file, `network error: ${e.message}`);
  }
  if (!res.ok) {
    progress(label, `${file}: HTTP ${res.status}`, "error");
    throw new ModelFetchError(res.status === 404 ? "missing" : "http", file, `HTTP ${res.status}`);
  }
  // Content-Length is the *encoded* size when the server compresses; use it only as a guide.
  const total = Number(res.headers.get("Content-Length")) || 0;
  const encoded = !!res.headers.get("Content-Encoding");
  const reader = res.body.getReader();
  const chunks = [];
  let got = 0, lastShown = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    const now = performance.now();
    if (now - lastShown > 100) {
      lastShown = now;
      const pct = total && !encoded ? ` ${Math.min(100, Math.round((100 * got) / total))}%` : "";
      progress(label, `${file}: downloading…${pct} (${mb(got)} MB)`);
    }
  }
  const bytes = new Uint8Array(got);
  let off = 0;
  for (const c of chunks) { bytes.set(c, off); off += c.length; }
  await manifestParsed;
  const expected = manifestJson?.files?.[file];
  if (expected) {
    const actual = await pixels.sha256Hex(bytes);
    if (actual !== expected) {
      progress(label, `${file}: damaged (checksum mismatch)`, "error");
      throw new ModelFetchError("checksum", file, `sha256 ${actual.slice(0, 12)}… but the manifest says ${expected.slice(0, 12)}…`);
    }
  }
  progress(label, `${file}: ${mb(got)} MB, checked`, "done");
  return bytes;
}

function fetchModel(file) {
  if (!modelFetches.has(file)) {
    const p = fetchModelBytes(file);
    p.catch(() => {});       // reported when Python awaits it
    modelFetches.set(file, p);
  }
  return modelFetches.get(file);
}

// The files of the camera path (default camera detector + its parser + the landmark graph), in the
// order they are needed. Other files (e.g. the still-image detector) are fetched when first used.
// The camera path's models: the camera detector, the tracking (roi) detector when the export has
// one, the landmark model.
function cameraPath(m) {
  return {
    det: m?.detectors?.[m?.defaults?.camera] ?? Object.values(m?.detectors ?? {})[0],
    roi: m?.detectors?.[m?.defaults?.roi],
    landmarks: m?.landmarks,
  };
}

// Its graphs as [stage, graph], in the order they are needed.
function cameraPathGraphs(m) {
  const { det, roi, landmarks } = cameraPath(m);
  return [["detector", det?.graph], ["parser", det?.parser], ["detector", roi?.graph],
          ["parser", roi?.parser], ["landmarks", landmarks?.graph]].filter(([, g]) => g?.file);
}

const cameraPathFiles = (m) => cameraPathGraphs(m).map(([, g]) => g.file);

// The input sizes of its models ([[w, h], ...]).
function cameraPathInputSizes(m) {
  const { det, roi, landmarks } = cameraPath(m);
  return [det?.input, roi?.input, landmarks?.input]
    .filter((i) => Number.isInteger(i?.width) && Number.isInteger(i?.height) && i.width > 0 && i.height > 0)
    .map((i) => [i.width, i.height]);
}

// ---- ONNX Runtime Web ------------------------------------------------------------------------
const ortModules = new Map();
// ONNX Runtime's own rule for its wasm threads (one per two cores, at most 4; one without cross-origin
// isolation), unless ?threads=N. The page's main thread (Python, pixels, drawing) needs a core too: on
// a 2-core machine 2 threads made a frame slower (FaceMesh 10.1 vs 7.1 ms, bench/page_bench.py) and
// start-up later (starting the thread pool is on the way to the first session).
const threads = Math.max(1, Number(params.get("threads")) ||
  (self.crossOriginIsolated ? Math.min(4, Math.ceil((navigator.hardwareConcurrency || 1) / 2)) : 1));

// The wasm backend runs in a worker of the page's own (ort_worker.js): compiling its 14 MB wasm,
// starting ONNX Runtime, creating the sessions, their first runs and every later run leave the page's
// main thread to Pyodide's boot, PyScript and the page's Python, and the worker gets from its start to
// warm sessions without waiting for that thread (ort_worker.js says why not ONNX Runtime's own
// env.wasm.proxy). Each run posts its inputs to the worker and transfers their buffers (runGraph's
// feeds are used once); a session's model bytes are transferred too, so createSession hands it a copy.
// ?worker=0 keeps the backend on the main thread; so does a worker that fails to start (said once).
const wasmInWorker = params.get("worker") !== "0" && typeof Worker === "function";
// loadOrt("wasm")'s answer while the worker runs the wasm backend: runGraph goes by the session
const ORT_IN_WORKER = Object.freeze({ inWorker: true });
let ortWorker = null;

function workerDidNotStart(why) {
  console.warn("ONNX Runtime's worker did not start; running its wasm backend on the page's main thread:", why);
}

function loadOrt(provider) {
  const bundle = ORT_BUNDLES[provider] ? provider : "wasm";
  if (bundle === "wasm" && ortWorker?.failure) ortWorker = null;       // it stopped: sessions go here
  if (bundle === "wasm" && ortWorker) {
    return ortWorker.ready.then(() => ORT_IN_WORKER, (e) => {
      if (ortWorker) workerDidNotStart(e);
      ortWorker = null;
      return loadOrt(provider);
    });
  }
  if (!ortModules.has(bundle)) {
    const p = (async () => {
      progress(`ort:${bundle}`, `ONNX Runtime (${bundle}): loading…`);
      const ort = await import(VENDOR.ort + ORT_BUNDLES[bundle]);
      ort.env.wasm.wasmPaths = new URL(VENDOR.ort, location.href).href;
      ort.env.wasm.numThreads = threads;
      ort.env.logLevel = "error";
      progress(`ort:${bundle}`, `ONNX Runtime (${bundle}): ready`, "done");
      return ort;
    })();
    p.catch((e) => progress(`ort:${bundle}`, `ONNX Runtime (${bundle}): failed to load (${e.message})`, "error"));
    ortModules.set(bundle, p);
  }
  return ortModules.get(bundle);
}

// ONNX Runtime's wasm backend (compiling its 14 MB wasm, OrtInit, the first session's one-time costs)
// starts with the first session, and the camera path's sessions wait for the manifest and the models.
// A one-node graph (Identity on a float[1]; made with onnx.helper, 72 bytes) starts it at the page's
// first bytes: in ort_worker.js (its init request), or here with ?worker=0.
const IDENTITY_ONNX = "CAgSADo8ChAKAXgSAXkiCElkZW50aXR5EgZ3YXJtdXBaDwoBeBIKCggIARIECgIIAWIPCgF5EgoKCAgBEgQKAggBQgQKABAN";

const identityModel = () => Uint8Array.from(atob(IDENTITY_ONNX), (c) => c.charCodeAt(0));

async function startOrtBackend() {
  const ort = await loadOrt("wasm");
  if (ort === ORT_IN_WORKER) {
    mark("ort:backend");
    return;
  }
  const bytes = identityModel();
  const session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS("wasm"));
  mark("ort:backend");
  await session.release();
}

// One InferenceSession per (file, provider), memoized: boot.js starts the camera path's sessions
// speculatively (manifest providers + URL overrides) while Pyodide boots; Python (ort_runtime.py)
// asks for the sessions it decides on and gets these if they match, or new ones (fallbacks).
const sessions = new Map();
const SESSION_OPTIONS = (provider) => ({ executionProviders: [provider], graphOptimizationLevel: "all" });

function createSession(file, provider, warm = false) {
  const key = `${file}|${provider}`;
  if (!sessions.has(key)) {
    const p = (async () => {
      const [ort, bytes] = await Promise.all([loadOrt(provider), fetchModel(file)]);
      let session;
      if (ort === ORT_IN_WORKER) {
        // the bytes move to the worker: fetchModel's stay for a later (fallback) session
        session = await ortWorker.createSession(file, bytes.slice(), SESSION_OPTIONS(provider), warm);
      } else {
        const { session: s, createMs, warmMs } = await openSession(ort, file, bytes, SESSION_OPTIONS(provider), warm);
        session = Object.assign(s, { createMs, warmMs });
      }
      mark(`session:${file}`);
      return session;
    })();
    p.catch(() => {});
    sessions.set(key, p);
  }
  return sessions.get(key);
}

function forgetSession(file, provider) {
  sessions.delete(`${file}|${provider}`);
}

function speculate(m) {
  for (const [stage, g] of cameraPathGraphs(m)) {
    const provider = startProvider(stage, g.provider);
    if (provider) createSession(g.file, provider, true);
  }
}

// One graph run, one crossing for Python: feeds {name: {type, data, dims}} in, {ms, outputs} back with
// every output a plain {type, data, dims} and every ONNX Runtime tensor disposed (ort_session.js).
// `ort` is the module of the session's provider (loadOrt); a session in the worker runs there.
function runGraph(session, ort, feeds) {
  return session.inWorker ? session.runGraph(feeds) : runAndCopy(session, ort, feeds);
}

// Calls `onLost` when the WebGL context ONNX Runtime draws with is lost (GPU reset, driver, tab in
// background on mobile...). Returns false when there is no context to watch.
function watchWebgl(ort, onLost) {
  let gl = null;
  try { gl = ort.env.webgl.context; } catch { return false; }
  const canvas = gl?.canvas;
  if (!canvas || canvas.__watched) return !!canvas;
  canvas.__watched = true;
  canvas.addEventListener("webglcontextlost", (ev) => { ev.preventDefault(); onLost(); });
  return true;
}

// For tests: stop ONNX Runtime's worker as a crash would (its sessions die; ort_runtime.py makes them
// again on the main thread). False when there is no worker.
function stopOrtWorker() {
  if (!ortWorker || ortWorker.failure) return false;
  ortWorker.fail(new Error("stopped on purpose"));
  return true;
}

// For tests and the bench: lose ORT's WebGL context on purpose.
function loseWebgl() {
  const ort = ortModules.has("webgl") ? ortModules.get("webgl") : null;
  return ort?.then((o) => {
    const ext = o.env.webgl.context?.getExtension("WEBGL_lose_context");
    ext?.loseContext();
    return !!ext;
  });
}

// ---- camera -----------------------------------------------------------------------------------
async function openCamera(deviceId = null) {
  if (!navigator.mediaDevices?.getUserMedia) {
    const e = new Error(window.isSecureContext ? "getUserMedia is not available" : "insecure context");
    e.name = window.isSecureContext ? "NotSupportedError" : "InsecureContextError";
    throw e;
  }
  const video = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } };
  if (deviceId) video.deviceId = { exact: deviceId };
  else video.facingMode = "user";
  const stream = await navigator.mediaDevices.getUserMedia({ video, audio: false });
  pixels.followTrack(stream.getVideoTracks()[0] ?? null);    // its frames, from the start
  return stream;
}

async function listCameras() {
  const devices = await navigator.mediaDevices?.enumerateDevices?.() ?? [];
  return devices.filter((d) => d.kind === "videoinput").map((d, i) => ({
    id: d.deviceId, label: d.label || `Camera ${i + 1}`,
  }));
}

function stopStream(stream) {
  stream?.getTracks?.().forEach((t) => t.stop());
}

// A picture file decoded off the main thread (photo mode scales large ones down itself, in strips:
// createImageBitmap's resize options block the main thread, ~1 s for 48 MP here).
async function decodeImage(file) {
  return await createImageBitmap(file);
}

// ---- start ------------------------------------------------------------------------------------
const boot = {
  t0,
  params,
  hasWasm,
  get webgl() { return webglAvailable(); },
  get webglRenderer() { return probeWebgl().renderer; },
  get softwareWebgl() { return softwareWebgl(); },
  isolated: !!self.crossOriginIsolated,
  threads,
  progress, message, clearMessage,
  manifestText, modelsChoice,
  fetchModel, cameraPathFiles,
  loadOrt, createSession, forgetSession, runGraph, watchWebgl, loseWebgl, stopOrtWorker,
  openCamera, listCameras, stopStream, decodeImage,
  pixels,
  camera: null,
  marks: {},
};
window.faceBoot = boot;
window.faceLandmarks = { last: null, ready: false, error: null };

const mark = (name) => { boot.marks[name] = performance.now(); };   // ms since navigation
mark("boot");
Object.assign(boot.marks, python.marks);
python.start().then(() => Object.assign(boot.marks, python.marks), () => {});

if (!hasWasm) {
  message("error", "This browser cannot run WebAssembly (it is missing or switched off), and the page " +
    "needs it for both Python and the face models. Try a current Chrome, Edge, Firefox or Safari, " +
    "with WebAssembly enabled.", "wasm");
  progress("python", "Python runtime: needs WebAssembly", "error");
  window.faceLandmarks.error = "no-webassembly";
} else {
  // 1. Python first: PyScript finds <script type="py"> and boots Pyodide (its big files are already
  //    on their way thanks to <link rel="preload"> in index.html). Everything below runs meanwhile.
  progress("python", "Python runtime: starting…");
  // PyScript's own steps ("Loading interpreter", "Loaded files", ...) arrive as py:progress events;
  // py:ready is sent just before main.py runs. Kept as marks to see where the start-up goes.
  addEventListener("py:progress", (e) => mark(`py:${e.detail}`));
  addEventListener("py:ready", () => mark("py:ready"));
  import(VENDOR.pyscript).then(
    () => mark("pyscript"),
    (e) => {
      progress("python", "Python runtime: failed to load", "error");
      message("error", `The Python runtime could not be loaded (${e.message}). Reload the page; if it ` +
        "persists, the site was deployed without its vendor files (npm run vendor).", "python");
    });
  // 2. camera, unless ?camera=0
  if (params.get("camera") !== "0") {
    progress("camera", "Camera: asking for permission…");
    boot.camera = openCamera();
    boot.camera.then(() => { mark("camera"); progress("camera", "Camera: on", "done"); },
                     () => progress("camera", "Camera: not available", "error"));
  }
  // 3. ONNX Runtime's wasm bundle (the parser always runs there), then the models: manifest, the
  //    camera path's files, and (unless ?speculate=0) their sessions on the manifest's providers
  //    (the worker starts the backend as soon as it runs, whether or not sessions are speculated)
  if (wasmInWorker) {
    try {
      ortWorker = new OrtWorker({ ortBase: new URL(VENDOR.ort, location.href).href, bundle: ORT_BUNDLES.wasm,
                                  threads, identity: identityModel() });
    } catch (e) {          // e.g. a Content-Security-Policy without worker-src 'self'
      workerDidNotStart(e);
    }
  }
  if (ortWorker) {
    progress("ort:wasm", "ONNX Runtime (wasm, in a worker): starting…");
    ortWorker.ready.then(() => progress("ort:wasm", "ONNX Runtime (wasm, in a worker): ready", "done"),
                         () => progress("ort:wasm", "ONNX Runtime (wasm): on the page's main thread", "note"));
  }
  if (params.get("speculate") !== "0") startOrtBackend().catch((e) => console.warn("ONNX Runtime's early start failed:", e));
  else loadOrt("wasm");
  // 4. while the downloads run: the per-pixel loops compiled before the first camera frame needs them
  setTimeout(() => pixels.warmUp(), 0);
  progress("manifest", "Model manifest: loading…");
  manifestParsed.then((m) => {
    if (!m) return;
    progress("manifest", "Model manifest: loaded", "done");
    mark("manifest");
    for (const f of cameraPathFiles(m)) fetchModel(f);
    if (params.get("speculate") !== "0") speculate(m);
    setTimeout(() => pixels.prepareInputs(cameraPathInputSizes(m)), 0);
  });
}
