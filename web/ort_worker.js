// ort_worker.js — ONNX Runtime's wasm backend in a worker of the page's own (a module worker, started
// by ort_worker_client.js at the page's first bytes).
//
// Why not ONNX Runtime's own worker (env.wasm.proxy): there every step is a round trip through the
// page's main thread (init-wasm, init-ep, each create, each warm-up run), and during start-up that
// thread is busy with Pyodide's restore and PyScript in 0.1–0.35 s tasks, so each hop waited for one.
// Here the worker goes from its first message to warm sessions on its own: the backend starts
// (compiling its wasm, OrtInit, the first session's one-time costs) as soon as the worker runs, and
// each session is created and warmed up in one request.
//
// Requests {id, op, ...} → replies {id, out} or {id, error: {name, message}}:
//   init    {ortBase, bundle, threads, identity}  import the bundle, start the backend on `identity`
//   create  {key, model, options, warm}           → {inputNames, outputNames, inputMetadata, createMs, warmMs}
//   run     {key, feeds}                          → {ms, outputs} (output buffers transferred back)
//   release {key}
import { runAndCopy, transferable, warmUp } from "./ort_session.js";

let ort = null;
let started = null;                 // the init request's promise: every later request awaits it
const sessions = new Map();         // key → InferenceSession

async function init({ ortBase, bundle, threads, identity }) {
  ort = await import(ortBase + bundle);
  ort.env.wasm.wasmPaths = ortBase;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  const t = performance.now();
  const first = await ort.InferenceSession.create(identity, { executionProviders: ["wasm"] });
  await first.release();
  return { ms: performance.now() - t };
}

async function create({ key, model, options, warm }) {
  const t = performance.now();
  const session = await ort.InferenceSession.create(model, options);
  const createMs = performance.now() - t;
  let warmMs = null;
  if (warm) {
    try {
      warmMs = await warmUp(session, ort);
    } catch (e) {
      console.warn(`${key}: warm-up run failed`, e);
    }
  }
  sessions.set(key, session);
  const inputMetadata = (session.inputMetadata ?? []).map((m) => ({ ...m, shape: m.shape && Array.from(m.shape) }));
  return { inputNames: [...session.inputNames], outputNames: [...session.outputNames], inputMetadata, createMs, warmMs };
}

function session(key) {
  const s = sessions.get(key);
  if (!s) throw new Error(`no session ${key} in ONNX Runtime's worker`);
  return s;
}

const OPS = {
  init,
  create,
  run: ({ key, feeds }) => runAndCopy(session(key), ort, feeds),
  release: async ({ key }) => {
    const s = sessions.get(key);
    sessions.delete(key);
    await s?.release();
    return {};
  },
};

self.onmessage = async ({ data }) => {
  const { id, op } = data;
  try {
    if (!OPS[op]) throw new Error(`unknown request ${op}`);
    let out;
    if (op === "init") {
      started = init(data);
      out = await started;
    } else {
      if (!started) throw new Error("ONNX Runtime's worker was not started");
      await started;
      out = await OPS[op](data);
    }
    const buffers = op === "run" ? transferable(Object.values(out.outputs).map((o) => o.data)) : [];
    self.postMessage({ id, out }, buffers);
  } catch (e) {
    self.postMessage({ id, error: { name: e?.name || "Error", message: String(e?.message ?? e) } });
  }
};
