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
//   create  {key, file, model, options, warm}     → {inputNames, outputNames, inputMetadata, createMs, warmMs}
//   run     {key, feeds}                          → {ms, outputs} (output buffers transferred back)
//   release {key}
import { openSession, runAndCopy, transferable } from "./ort_session.js";

let ort = null;
let started = null;                 // the init request's promise: every later request awaits it
const sessions = new Map();         // key → InferenceSession

async function init({ ortBase, bundle, threads, identity }) {
  ort = await import(ortBase + bundle);
  ort.env.wasm.wasmPaths = ortBase;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  const first = await ort.InferenceSession.create(identity, { executionProviders: ["wasm"] });
  await first.release();
  return {};
}

async function create({ key, file, model, options, warm }) {
  const { session, createMs, warmMs } = await openSession(ort, file, model, options, warm);
  sessions.set(key, session);
  const inputMetadata = (session.inputMetadata ?? []).map((m) => ({ ...m, shape: m.shape && Array.from(m.shape) }));
  return { inputNames: [...session.inputNames], outputNames: [...session.outputNames], inputMetadata, createMs, warmMs };
}

function session(key) {
  const s = sessions.get(key);
  if (!s) throw new Error(`no session ${key} in ONNX Runtime's worker`);
  return s;
}

// every request but init, which the others wait for
const OPS = {
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
    let out;
    if (op === "init") out = await (started = init(data));
    else if (!OPS[op]) throw new Error(`unknown request ${op}`);
    else if (!started) throw new Error("ONNX Runtime's worker was not started");
    else out = await started.then(() => OPS[op](data));
    const buffers = op === "run" ? transferable(Object.values(out.outputs).map((o) => o.data)) : [];
    self.postMessage({ id, out }, buffers);
  } catch (e) {
    self.postMessage({ id, error: { name: e?.name || "Error", message: String(e?.message ?? e) } });
  }
};
