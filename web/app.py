"""The page's Python: wiring (main.py, PyScript's script, only calls main()). The parts live in
their own modules:

    camera.py      the camera (open, list, stop, what went wrong)
    frame_loop.py  the camera loop: one picture per frame → FaceTracker.step → output
    output.py      one result per frame: drawn on the overlay and published as the "faces" event
    photo.py       photo mode (decode at a working size, tiles, cancel, the pixel limit)
    messages.py    every sentence the page's Python shows a person
    ort_runtime.py onnxruntime-web behind the pipeline's Runtime interface

One frame's way (the same pipeline code as the CLI, copied in by scripts/build_site.py):

    camera ─ requestAnimationFrame ─ snapshot canvas ─ FaceTracker.step ─┬─ detector  (ort)
                                                                         ├─ parser    (ort, wasm)
                                                                         └─ landmarks (ort)
           ─ One-Euro smoothing ─ overlay canvas + window "faces" event + window.faceLandmarks.last

boot.js (started before Python) has already fetched the manifest and the model files, opened the camera
and imported ONNX Runtime; this file awaits those, creates the sessions (ort_runtime.py) and runs.
"""
from __future__ import annotations

import asyncio
import gc

import js
from pyodide.ffi import JsException, create_proxy

import messages
from camera import Camera
from facelandmarks.pipeline.manifest import Manifest, ManifestError
from facelandmarks.pipeline.options import PageOptions, PipelineOptions
from facelandmarks.pipeline.stages import FacePipeline
from facelandmarks.pipeline.tracking import FaceTracker
from frame_loop import FrameLoop
from ort_runtime import ModelError, OrtWebRuntime, js_obj
from output import Output
from photo import PhotoMode

boot = js.window.faceBoot
boot.marks.main_imported = js.performance.now()
document = js.document


def el(id_):
    return document.getElementById(id_)


def url_param(name):
    return str(boot.params.get(name)) if boot.params.has(name) else None


def describe_models(manifest: Manifest) -> None:
    """The header, the mesh toggle and the untrained notice follow the manifest."""
    lm = manifest.landmarks
    if lm is not None:
        points = f"{lm.count} points per face ({lm.layout})"
    else:
        det = manifest.detector("camera")
        points = f"{int(det.keypoints['count'])} keypoints per face"
    el("points-text").textContent = points
    mesh = lm.graph.outputs.get("mesh") if lm is not None else None
    el("mesh-control").classList.toggle("hidden", not mesh)
    if mesh:
        count = lm.mesh_count
        el("mesh-label").textContent = f"full mesh ({count})" if count else "full mesh"
    if not manifest.trained:
        messages.message("warning", f"The models “{manifest.name}” are marked untrained (their "
                                    "export says \"trained\": false): boxes and points will be "
                                    "meaningless until you export trained weights.", "untrained")


def offer_models(choice) -> None:
    """The models/index.json side of the page: a selector of the labels when the site has several
    exports (choosing one reloads the page with ?models=NAME), and what went wrong with ?models."""
    if choice.problem:
        messages.message("warning", f"{choice.problem}; using models/manifest.json.", "models")
    index = choice.index.to_py() if choice.index else None
    if not index:
        return
    entries = [m for m in index["models"] if isinstance(m, dict) and m.get("name")]
    names = [m["name"] for m in entries]
    if choice.unknown:
        messages.message("error", f"There are no models named “{choice.unknown}” on this site; it has "
                                  f"{', '.join(names)}. Showing “{choice.entry.name}” instead.", "models")
    if len(entries) < 2:
        return
    select = el("models-select")
    for m in entries:
        opt = document.createElement("option")
        opt.value = m["name"]
        opt.textContent = str(m.get("label") or m["name"])
        opt.selected = m["name"] == choice.entry.name
        select.appendChild(opt)
    el("models-control").classList.remove("hidden")

    def pick(e):
        query = js.URLSearchParams.new(js.location.search)
        query.set("models", select.value)
        js.location.search = query.toString()
    proxy = create_proxy(pick)
    select.addEventListener("change", proxy)
    globals()["_PICK_MODELS"] = proxy        # lives as long as the page


class App:
    def __init__(self, manifest: Manifest, runtime: OrtWebRuntime, options: PageOptions):
        self.manifest = manifest
        self.runtime = runtime
        self.camera = Camera()
        self.output = Output(runtime)
        self.mirror = True
        self.tracker = FaceTracker(FacePipeline(manifest, runtime, PipelineOptions.for_camera()),
                                   options.tracker)
        self.loop = FrameLoop(self.camera, self.tracker, self.output, self.fatal_model_error,
                              mirror=lambda: self.mirror)
        self.photo = PhotoMode(manifest, runtime, self.output, self.fatal_model_error)
        self.mode = "camera"
        self.handlers = []       # DOM event proxies: live as long as the page

    # -- controls ---------------------------------------------------------------------------------
    def on(self, target, event, fn):
        proxy = create_proxy(fn)
        self.handlers.append(proxy)
        target.addEventListener(event, proxy)

    def wire(self):
        stage = el("stage")
        self.on(el("start"), "click", lambda e: asyncio.ensure_future(self.toggle_camera()))
        self.on(el("camera-select"), "change", lambda e: asyncio.ensure_future(self.switch_camera()))
        self.on(el("mesh"), "change", self.on_mesh)
        self.on(el("mirror"), "change", self.on_mirror)
        self.on(el("smooth"), "change", lambda e: setattr(self.tracker.options, "smoothing",
                                                          bool(el("smooth").checked)))
        self.on(el("photo"), "change", self.on_photo_input)
        self.on(el("cancel"), "click", lambda e: self.photo.cancel())
        self.on(el("back"), "click", lambda e: asyncio.ensure_future(self.back_to_camera()))
        self.on(stage, "dragover", self.on_dragover)
        self.on(stage, "dragleave", lambda e: stage.classList.remove("dragging"))
        self.on(stage, "drop", self.on_drop)
        el("mesh").checked = self.output.show_mesh
        el("smooth").checked = self.tracker.options.smoothing
        self.camera.video.classList.toggle("mirrored", self.mirror)

    def on_mesh(self, e):
        self.output.show_mesh = bool(el("mesh").checked)
        self.tracker.options.smooth_mesh = self.output.show_mesh
        if self.mode == "still":
            self.photo.redraw()

    def on_mirror(self, e):
        self.mirror = bool(el("mirror").checked)
        self.camera.video.classList.toggle("mirrored", self.mirror)

    def on_dragover(self, e):
        e.preventDefault()
        el("stage").classList.add("dragging")

    def on_drop(self, e):
        e.preventDefault()
        el("stage").classList.remove("dragging")
        files = e.dataTransfer.files
        if files.length:
            asyncio.ensure_future(self.analyse_photo(files.item(0)))

    def on_photo_input(self, e):
        files = el("photo").files
        if files.length:
            asyncio.ensure_future(self.analyse_photo(files.item(0)))
        el("photo").value = ""

    def set_start_button(self):
        b = el("start")
        b.disabled = False
        b.textContent = "Stop camera" if self.loop.running else "Start camera"

    # -- camera -----------------------------------------------------------------------------------
    async def toggle_camera(self):
        if self.loop.running:
            self.stop_camera()
        else:
            await self.start_camera(el("camera-select").value or None)
        self.set_start_button()

    async def switch_camera(self):
        if self.mode != "camera":
            return
        self.stop_camera()
        await self.start_camera(el("camera-select").value or None)
        self.set_start_button()

    async def start_camera(self, device_id=None, pending=None, loop=True):
        ok = await self.camera.start(device_id, pending)
        if ok:
            self.mode = "camera"
            if loop:
                self.loop.start()
        self.set_start_button()
        return ok

    def stop_camera(self):
        self.loop.stop()
        self.camera.stop()
        self.output.clear()

    def pause(self, *_):
        """Stop processing frames but keep the camera running (window.faceLandmarks.pause())."""
        if self.loop.running:
            self.loop.stop()

    def resume(self, *_):
        """Start processing again after pause() (window.faceLandmarks.resume())."""
        if not self.loop.running and self.camera.stream is not None and self.loop.raf is None:
            self.loop.start()

    # -- photo mode -------------------------------------------------------------------------------
    async def analyse_photo(self, file):
        if self.loop.running:
            self.stop_camera()
            self.set_start_button()
        self.mode = "still"
        await self.photo.analyse(file)

    async def back_to_camera(self):
        self.photo.cancel()
        self.photo.hide()
        self.mode = "camera"
        await self.start_camera(el("camera-select").value or None)

    # -- errors -----------------------------------------------------------------------------------
    def fatal_model_error(self, e: ModelError):
        messages.message("error", e.explain(), "model")
        js.window.faceLandmarks.error = f"model-{e.kind}"
        js.console.error(str(e))


async def without_models(error: str, text: str) -> None:
    """No usable manifest: say what to do, turn the camera boot.js opened off again, and make the
    photo control say why it can't run."""
    fl = js.window.faceLandmarks
    messages.message("error", text, "model")
    messages.progress("manifest", "Model manifest: " + ("missing" if error == "manifest-missing" else "unusable"),
                      "error")
    fl.error = error
    if boot.camera:
        try:
            boot.stopStream(await boot.camera)
        except JsException:
            pass
        messages.progress("camera", "Camera: off (no face models to run)", "note")
    el("start").disabled = True
    el("start").textContent = "Camera off"
    why = create_proxy(lambda e: (messages.message(
        "error", "Photo mode can't run either: " + text, "still"), setattr(el("photo"), "value", "")))
    el("photo").addEventListener("change", why)
    globals()["_WITHOUT_MODELS"] = why     # lives as long as the page


async def main():
    fl = js.window.faceLandmarks
    boot.marks.python = js.performance.now()
    messages.progress("python", f"Python runtime: ready ({(js.performance.now() - boot.t0) / 1000:.1f} s)", "done")
    try:
        options = PageOptions.from_url(url_param)
    except ValueError as e:
        messages.message("warning", f"{e}; using the defaults.", "url")
        options = PageOptions.from_url(lambda name: None)
    offer_models(await boot.modelsChoice)
    try:
        text = await boot.manifestText
    except JsException as e:
        kind = getattr(e, "kind", "")
        await without_models("manifest-missing" if kind == "missing" else "manifest-network",
                             messages.manifest_missing() if kind == "missing"
                             else messages.manifest_unreachable(str(getattr(e, "message", e))))
        return
    try:
        manifest = Manifest.loads(text)
    except ManifestError as e:
        await without_models("manifest-mismatch", messages.manifest_invalid(str(e)))
        return
    describe_models(manifest)

    runtime = OrtWebRuntime(manifest, boot, options.providers, messages.notify, messages.progress)
    app = App(manifest, runtime, options)
    app.wire()
    fl.pause = create_proxy(app.pause)
    fl.resume = create_proxy(app.resume)
    # camera and sessions in parallel; the loop starts once both are there
    # the camera path: its detector, the tracking (roi) detector if the export has one, the landmarks
    roi = manifest.roi_detector()
    graphs = [g for det in (manifest.detector("camera"), roi) if det for g in (det.graph, det.parser)]
    graphs += [manifest.landmarks.graph] if manifest.landmarks else []

    async def sessions():
        try:
            await runtime.prepare(graphs)
            return True
        except ModelError as e:
            app.fatal_model_error(e)
            return False

    ready = asyncio.ensure_future(sessions())
    cam_ok = False
    if boot.camera:
        # show the camera as soon as it is there; the loop waits for the sessions
        cam_ok = await app.start_camera(pending=boot.camera, loop=False)
        boot.marks.camera_shown = js.performance.now()
    else:
        messages.progress("camera", "Camera: off (press Start camera)", "note")
    ok = await ready
    boot.marks.sessions_ready = js.performance.now()
    fl.sessions = js_obj({f: s for f, s in runtime.sessions.items()})
    fl.providers = js_obj(runtime.stage_providers())
    fl.ready = ok
    # what start-up made lives as long as the page: out of the collector's way, so the collections the
    # frame loop's allocations trigger don't walk it again (~0.1 ms of Python a frame here)
    gc.freeze()
    if ok and cam_ok:
        app.loop.start()
    app.set_start_button()
    globals()["APP"] = app

