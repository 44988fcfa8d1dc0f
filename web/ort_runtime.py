"""onnxruntime-web behind the pipeline's interfaces (the page's counterpart of runtime_onnx.py).

* :class:`OrtWebRuntime` implements ``Runtime``: one ``ort.InferenceSession`` per graph file, on the
  provider the manifest names for it unless the URL overrides the stage
  (``?detector=wasm&landmarks=webgl&parser=wasm``; also ``webgpu``). WebGL missing, a session that
  cannot be made on WebGL/WebGPU, or a lost WebGL context → that stage falls back to wasm and the page
  says so. Model bytes come from boot.js, already SHA-256-checked against the manifest.
* :class:`CanvasFrame` implements ``FrameSource`` for a video snapshot, canvas or ImageBitmap: the
  frame is drawn through the affine into a canvas of the model's input size and normalised into a
  Float32Array by one typed-array loop in pixels.js — no pixel passes through Python.

Tensors stay JS objects (``JsProxy`` of ``ort.Tensor``); Python reads only the small outputs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import js
from pyodide.ffi import JsException, to_js

from facelandmarks.pipeline.geometry import Affine
from facelandmarks.pipeline.manifest import GraphSpec, InputSpec, Manifest
from facelandmarks.pipeline.options import STAGES

PROVIDERS = ("webgl", "wasm", "webgpu")


def js_obj(d: dict) -> Any:
    return to_js(d, dict_converter=js.Object.fromEntries)


class ModelError(Exception):
    """A model cannot be used. ``kind``: missing | http | network | checksum | mismatch | load."""

    def __init__(self, kind: str, file: str, detail: str):
        super().__init__(f"{file}: {detail}")
        self.kind, self.file, self.detail = kind, file, detail

    def explain(self) -> str:
        f = self.file
        if self.kind == "missing":
            return (f"The model file {f} is missing on the server (HTTP 404). The site was published "
                    f"without its models: run `python export_models.py` before deploying.")
        if self.kind == "checksum":
            return (f"The model file {f} is damaged or out of date: its SHA-256 does not match "
                    f"models/manifest.json ({self.detail}). Re-export the models and deploy again.")
        if self.kind == "mismatch":
            return (f"The model file {f} does not fit models/manifest.json ({self.detail}). The manifest "
                    f"and the graphs come from different exports: re-export the models.")
        if self.kind == "load":
            return (f"ONNX Runtime could not load {f} ({self.detail}). The file may be corrupt: "
                    f"re-export the models.")
        if self.kind == "network":
            return f"The model file {f} could not be downloaded ({self.detail}). Check the connection and reload."
        return f"The model file {f} could not be downloaded ({self.detail})."


class WorkerLost(RuntimeError):
    """ONNX Runtime's worker stopped during a run, taking the run's inputs with it (they are transferred
    to it). The wasm sessions are made again on the page's main thread at their next run: the caller
    drops this frame, or runs its step again."""


def is_worker_lost(e: BaseException) -> bool:
    """boot.js's error for a run or session in ONNX Runtime's worker after the worker stopped."""
    return getattr(e, "name", "") == "OrtWorkerLost"


def js_error_text(e: BaseException) -> str:
    msg = str(e)
    # JsException's text is "Name: message"; keep it short
    return msg.splitlines()[0][:300] if msg else type(e).__name__


@dataclass
class FrameTensor:
    """A model input prepared by pixels.js: a Float32Array (NCHW), wrapped as an ort.Tensor by
    boot.runGraph (which bundle's Tensor depends on the session that consumes it)."""
    data: Any
    dims: tuple[int, ...]

    def js(self) -> dict:
        return {"type": "float32", "data": self.data, "dims": list(self.dims)}


class CanvasFrame:
    """A video snapshot / canvas / ImageBitmap as the pipeline's FrameSource."""

    def __init__(self, source: Any, width: int, height: int, pixels: Any):
        self.source, self.width, self.height, self.pixels = source, int(width), int(height), pixels

    def to_tensor(self, to_frame: Affine, spec: InputSpec) -> FrameTensor:
        mean_std = _norm_cache.get(spec)
        if mean_std is None:
            mean_std = _norm_cache[spec] = (to_js(list(spec.mean)), to_js(list(spec.std)))
        a, b, c, d, e, f = to_frame.canvas_transform()
        data = self.pixels.toInput(self.source, a, b, c, d, e, f, spec.width, spec.height,
                                   mean_std[0], mean_std[1], spec.channels == "BGR")
        return FrameTensor(data, (1, 3, spec.height, spec.width))


_norm_cache: dict[InputSpec, tuple[Any, Any]] = {}


class OrtWebRuntime:
    def __init__(self, manifest: Manifest, boot: Any, overrides: dict[str, str] | None = None,
                 notify: Callable[..., None] | None = None,
                 progress: Callable[[str, str, str], None] | None = None):
        self.manifest = manifest
        self.boot = boot
        self.overrides = {k: v for k, v in (overrides or {}).items() if v in PROVIDERS}
        self.notify = notify or (lambda kind, text, key=None: None)
        self.progress = progress or (lambda item, text, state="busy": None)
        self.stage_of: dict[str, str] = {}
        for det in manifest.detectors.values():
            self.stage_of[det.graph.file] = "detector"
            self.stage_of[det.parser.file] = "parser"
        if manifest.landmarks:
            self.stage_of[manifest.landmarks.graph.file] = "landmarks"
        self.sessions: dict[str, Any] = {}          # file → JsProxy(InferenceSession)
        self.modules: dict[str, Any] = {}           # file → the ort module its session belongs to
        self.providers: dict[str, str] = {}         # file → provider in use
        self.fallen_back: dict[str, str] = {}       # stage → why it runs on wasm instead
        self.output_names: dict[str, list[str]] = {}
        self._webgl_lost = False
        self._worker_gone = False

    # -- providers -------------------------------------------------------------------------------
    def wanted_provider(self, graph: GraphSpec) -> str:
        stage = self.stage_of.get(graph.file, "detector")
        p = self.overrides.get(stage, graph.provider)
        if p == "cpu":
            p = "wasm"
        if stage in self.fallen_back:
            return "wasm"
        if p == "webgl" and stage not in self.overrides and self.boot.softwareWebgl:
            self._software_webgl(stage)
            return "wasm"
        if p == "webgl" and (not self.boot.webgl or self._webgl_lost):
            self._fall_back(stage, "WebGL is not available in this browser" if not self.boot.webgl
                            else "the WebGL context was lost")
            return "wasm"
        if p == "webgpu" and not getattr(js.navigator, "gpu", None):
            self._fall_back(stage, "WebGPU is not available in this browser")
            return "wasm"
        return p

    def _fall_back(self, stage: str, why: str) -> None:
        if stage in self.fallen_back:
            return
        self.fallen_back[stage] = why
        self.notify("warning", f"The {stage} stage runs on WebAssembly (CPU) instead: {why}. "
                               f"Results are the same; it may be slower or faster depending on the device.")

    def _software_webgl(self, stage: str) -> None:
        """The manifest's webgl stages on a software GPU run on wasm, said in one line."""
        if stage in self.fallen_back:
            return
        self.fallen_back[stage] = "software WebGL"
        stages = [s for s in STAGES if self.fallen_back.get(s) == "software WebGL"]
        force = "&".join(f"{s}=webgl" for s in stages)
        self.notify("info", f"WebGL here is a software renderer ({self.boot.webglRenderer}), slower than "
                            f"WebAssembly: {' and '.join(stages)} run on WebAssembly. To use WebGL anyway "
                            f"add ?{force} to the address.", "provider:software")

    def stage_providers(self) -> dict[str, str]:
        out = {}
        for f, stage in self.stage_of.items():
            if f in self.providers:
                out[stage] = self.providers[f]
        return out

    # -- sessions --------------------------------------------------------------------------------
    async def prepare(self, graphs: Sequence[GraphSpec]) -> None:
        """Create the sessions for ``graphs`` (in order; each one's bytes are already on their way)."""
        for g in graphs:
            await self.session(g)

    async def session(self, graph: GraphSpec) -> Any:
        sess = self.sessions.get(graph.file)
        if sess is not None:
            return sess
        provider = self.wanted_provider(graph)
        try:
            await self.boot.fetchModel(graph.file)
        except JsException as e:          # boot.js's ModelFetchError (a JsProxy: .kind, .message)
            kind = getattr(e, "kind", None) or "network"
            raise ModelError(str(kind), graph.file, str(getattr(e, "message", e))) from None
        label = f"session:{graph.file}"
        t0 = time.perf_counter()
        worker_lost = False
        while True:
            self.progress(label, f"{graph.file}: starting on {provider}…", "busy")
            try:
                sess = await self.boot.createSession(graph.file, provider)
            except JsException as e:
                self.boot.forgetSession(graph.file, provider)
                if provider != "wasm":
                    self._fall_back(self.stage_of.get(graph.file, "detector"),
                                    f"{graph.file} could not start on {provider} ({js_error_text(e)})")
                    provider = "wasm"
                    continue
                if is_worker_lost(e) and not worker_lost:     # once more, on the page's main thread
                    worker_lost = True
                    self._worker_lost(e)
                    continue
                self.progress(label, f"{graph.file}: cannot be loaded", "error")
                raise ModelError("load", graph.file, js_error_text(e)) from None
            break
        ort = await self.boot.loadOrt(provider)
        ms = (time.perf_counter() - t0) * 1e3
        inputs, outputs = set(sess.inputNames.to_py()), set(sess.outputNames.to_py())
        missing = [n for n in graph.inputs.values() if n not in inputs] + \
                  [n for n in graph.outputs.values() if n not in outputs]
        if missing:
            self.boot.forgetSession(graph.file, provider)
            sess.release()
            self.progress(label, f"{graph.file}: does not match the manifest", "error")
            raise ModelError("mismatch", graph.file,
                             f"the manifest names tensors {missing} the graph does not have; "
                             f"it has inputs {sorted(inputs)} and outputs {sorted(outputs)}")
        self.sessions[graph.file] = sess
        self.output_names[graph.file] = sorted(outputs)
        self.modules[graph.file] = ort
        self.providers[graph.file] = provider
        self.progress(label, f"{graph.file}: ready on {provider} "
                             f"(created in {float(sess.createMs or 0):.0f} ms, waited {ms:.0f} ms)", "done")
        if provider == "webgl":
            self.boot.watchWebgl(ort, self._on_webgl_lost_proxy())
        return sess

    def _worker_lost(self, e: JsException) -> None:
        """ONNX Runtime's worker stopped: its sessions died with it. Forget them (the next run of each
        makes it again; boot.js now puts wasm sessions on the page's main thread) and say so once."""
        for f, p in list(self.providers.items()):
            if p == "wasm":
                self.sessions.pop(f, None)
                self.providers.pop(f, None)
                self.boot.forgetSession(f, p)
        if not self._worker_gone:
            self._worker_gone = True
            why = getattr(e, "message", None) or js_error_text(e)
            self.notify("warning", f"{why}. The WebAssembly stages now run on the page's main thread: "
                                   f"results are the same, the page may be less smooth.", "provider:worker")

    def _on_webgl_lost_proxy(self):
        if not hasattr(self, "_lost_proxy"):
            from pyodide.ffi import create_proxy
            self._lost_proxy = create_proxy(self.on_webgl_lost)
        return self._lost_proxy

    def on_webgl_lost(self, *_):
        """WebGL context lost: every webgl session is dead; recreate those stages on wasm."""
        if self._webgl_lost:
            return
        self._webgl_lost = True
        for f, p in list(self.providers.items()):
            if p == "webgl":
                self._fall_back(self.stage_of[f], "the WebGL context was lost")
                self.sessions.pop(f, None)      # died with the context; made again (wasm) on next run
                self.providers.pop(f, None)
                self.boot.forgetSession(f, p)

    # -- Runtime interface -----------------------------------------------------------------------
    async def run(self, graph: GraphSpec, feeds: dict[str, Any]) -> dict[str, Any]:
        """One ``boot.runGraph`` call: feeds in, outputs back as plain JS objects ``{type, data,
        dims}`` (JsProxy) that the next graph can take as feeds; ONNX Runtime's tensors are already
        disposed."""
        js_feeds = to_js({name: value.js() if isinstance(value, FrameTensor) else value
                          for name, value in feeds.items()}, dict_converter=js.Object.fromEntries)
        for attempt in (0, 1):
            sess = await self.session(graph)
            try:
                result = await self.boot.runGraph(sess, self.modules[graph.file], js_feeds)
            except JsException as e:
                provider = self.providers.get(graph.file)
                if is_worker_lost(e):
                    # its feeds went to the worker with the request (transferred): the caller starts
                    # its step again, and this graph and the other wasm ones are made again here
                    self._worker_lost(e)
                    raise WorkerLost(str(getattr(e, "message", e))) from None
                if attempt == 0 and provider != "wasm":
                    # e.g. WebGL context lost mid-run: retry this graph on wasm
                    stage = self.stage_of.get(graph.file, "detector")
                    self._fall_back(stage, f"running {graph.file} on {provider} failed ({js_error_text(e)})")
                    self.sessions.pop(graph.file, None)
                    self.providers.pop(graph.file, None)
                    self.boot.forgetSession(graph.file, provider)
                    continue
                raise
            return result.outputs.to_py(depth=1)
        raise RuntimeError("unreachable")

    def read(self, tensor: Any) -> Sequence[float]:
        # a list, not to_py()'s memoryview: the pipeline slices outputs with a step (x, y of every
        # point), which on a float32 memoryview costs ~0.4 ms a frame here; tolist() is one C pass
        return tensor.data.to_py().tolist()

    def release(self, tensors: dict[str, Any]) -> None:
        """Nothing to do: runGraph disposed ONNX Runtime's tensors; the plain arrays are JS garbage."""
