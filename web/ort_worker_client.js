// ort_worker_client.js — the page's side of ort_worker.js: start it, create sessions in it, run them.
// A session made here looks like the part of an InferenceSession the page uses (inputNames,
// outputNames, inputMetadata, release) plus runGraph(feeds) → {ms, outputs}, boot.runGraph's answer.
import { transferable } from "./ort_session.js";

export class OrtWorker {
  // ortBase: absolute URL of ONNX Runtime's vendor folder; bundle: its wasm bundle's file name;
  // identity: a tiny model whose session starts the backend (its wasm, OrtInit) right away.
  constructor({ ortBase, bundle, threads, identity }) {
    this.pending = new Map();       // request id → [resolve, reject]
    this.nextId = 1;
    this.nextKey = 1;
    this.failure = null;
    this.worker = new Worker(new URL("./ort_worker.js", import.meta.url), { type: "module", name: "onnxruntime" });
    this.worker.onmessage = ({ data }) => this.settle(data);
    // the worker's script failed to load or threw outside a request: nothing more will come back
    this.worker.onerror = (ev) => {
      ev.preventDefault?.();
      this.fail(new Error(ev.message || "its script did not load"));
    };
    this.worker.onmessageerror = () => this.fail(new Error("ONNX Runtime's worker sent a message that could not be read"));
    this.ready = this.request("init", { ortBase, bundle, threads, identity });
    this.ready.catch(() => {});
  }

  request(op, body = {}, transfer = []) {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, [resolve, reject]);
      this.worker.postMessage({ id, op, ...body }, transfer);
    });
  }

  settle({ id, out, error }) {
    const callbacks = this.pending.get(id);
    if (!callbacks) return;
    this.pending.delete(id);
    if (error) callbacks[1](Object.assign(new Error(error.message), { name: error.name }));
    else callbacks[0](out);
  }

  // Every request from now on, and those in flight, fail with an OrtWorkerLost error (boot.js then
  // makes new sessions on the main thread; ort_runtime.py forgets the dead ones).
  fail(cause) {
    const error = Object.assign(new Error(`ONNX Runtime's worker stopped: ${cause.message}`), { name: "OrtWorkerLost" });
    this.failure ??= error;
    for (const [, reject] of this.pending.values()) reject(this.failure);
    this.pending.clear();
    this.worker.terminate();
  }

  // file: the model's name (for messages); model: a Uint8Array the caller gives up (its buffer moves
  // to the worker).
  async createSession(file, model, options, warm = false) {
    const key = `s${this.nextKey++}`;
    const info = await this.request("create", { key, file, model, options, warm }, transferable([model]));
    return new WorkerSession(this, key, info);
  }
}

class WorkerSession {
  constructor(owner, key, { inputNames, outputNames, inputMetadata, createMs, warmMs }) {
    Object.assign(this, { owner, key, inputNames, outputNames, inputMetadata, createMs, warmMs });
    this.inWorker = true;
  }

  // feeds: {name: {type, data, dims}}; their buffers move to the worker (runGraph's feeds are fresh
  // arrays, each used once)
  runGraph(feeds) {
    const arrays = Object.values(feeds).map((f) => f.data);
    return this.owner.request("run", { key: this.key, feeds }, transferable(arrays));
  }

  release() {
    return this.owner.request("release", { key: this.key });
  }
}
