// ort_session.js — what the page does with an ONNX Runtime session, wherever the session lives: on
// the page's main thread (boot.js: webgl, webgpu, or wasm with ?worker=0) or in ort_worker.js (wasm).

const ARRAYS = { float32: Float32Array, uint8: Uint8Array, int32: Int32Array };

// A session for `model` (bytes) and, if `warm`, its first run made on zeros: a session's first run is
// several times slower than the next ones (buffers, kernels, on webgl the shaders), and the camera
// path's sessions make it while Python boots, so the first camera frame runs at the speed of the
// others. Returns {session, createMs, warmMs} (warmMs null when not warmed). `file` names it in the
// warning of a failed warm-up.
export async function openSession(ort, file, model, options, warm) {
  const t = performance.now();
  const session = await ort.InferenceSession.create(model, options);
  const createMs = performance.now() - t;
  let warmMs = null;
  if (warm) {
    try {
      warmMs = await warmUp(session, ort);
    } catch (e) {
      console.warn(`${file}: warm-up run failed`, e);
    }
  }
  return { session, createMs, warmMs };
}

// Inputs of unknown size are left cold. Returns the run's ms, or null.
async function warmUp(session, ort) {
  const inputs = session.inputMetadata ?? [];
  const fixed = (meta) => meta.isTensor && ARRAYS[meta.type] &&
    (meta.shape ?? []).every((d) => Number.isInteger(d) && d > 0);
  if (!inputs.every(fixed)) return null;
  const feeds = {};
  for (const { name, type, shape } of inputs) {
    feeds[name] = new ort.Tensor(type, new ARRAYS[type](shape.reduce((a, b) => a * b, 1)), shape);
  }
  const t = performance.now();
  const out = await session.run(feeds);
  for (const v of Object.values(out)) v.dispose?.();
  for (const v of Object.values(feeds)) v.dispose?.();
  return performance.now() - t;
}

// One graph run: wrap the feeds ({name: {type, data, dims}}: a Float32Array made by pixels.js, or an
// output of an earlier run), run, copy every output into a plain {type, data, dims} (data: a typed
// array owned by JS, not by ONNX Runtime) and dispose every tensor. Returns {ms: session.run's own
// time, outputs}.
export async function runAndCopy(session, ort, feeds) {
  const inputs = {};
  for (const name of Object.keys(feeds)) {
    const f = feeds[name];
    inputs[name] = new ort.Tensor(f.type || "float32", f.data, f.dims);
  }
  const t = performance.now();
  let out;
  try {
    out = await session.run(inputs);
  } finally {
    for (const name of Object.keys(inputs)) inputs[name].dispose();
  }
  const ms = performance.now() - t;
  const outputs = {};
  for (const name of session.outputNames) {
    const o = out[name];
    outputs[name] = { type: o.type, data: o.data, dims: Array.from(o.dims) };
    o.dispose();
  }
  return { ms, outputs };
}

// The buffers of `arrays` that can be handed to another thread without a copy: each array's whole,
// non-shared buffer (a view into a larger buffer is copied instead, so its other views stay usable).
export function transferable(arrays) {
  const out = new Set();
  for (const a of arrays) {
    if (ArrayBuffer.isView(a) && a.buffer instanceof ArrayBuffer && a.byteOffset === 0 &&
        a.byteLength === a.buffer.byteLength) out.add(a.buffer);
  }
  return [...out];
}
