"""The page's Python: camera, canvas, controls and the frame loop (UI only).

One frame's way (the same pipeline code as the CLI, copied in by scripts/build_site.py):

    camera ─ requestAnimationFrame ─ snapshot canvas ─ FaceTracker.step ─┬─ detector  (ort, webgl)
                                                                         ├─ parser    (ort, wasm)
                                                                         └─ landmarks (ort, webgl)
           ─ One-Euro smoothing ─ overlay canvas + window "faces" event + window.faceLandmarks.last

boot.js (started before Python) has already fetched the manifest and the model files, opened the camera
and imported ONNX Runtime; this file awaits those, creates the sessions (ort_runtime.py) and runs.
"""
from __future__ import annotations

import asyncio
import statistics
import time
from collections import deque

import js
from pyodide.ffi import JsException, create_proxy, to_js

from facelandmarks.pipeline.manifest import Manifest, ManifestError
from facelandmarks.pipeline.stages import FacePipeline, PipelineOptions
from facelandmarks.pipeline.tracking import FaceTracker, TrackerOptions, face_json
from ort_runtime import STAGES, CanvasFrame, ModelError, OrtWebRuntime, js_error_text, js_obj

boot = js.window.faceBoot
pixels = boot.pixels
document = js.document
params = boot.params


def el(id_):
    return document.getElementById(id_)


def param(name, default=None):
    return str(params.get(name)) if params.has(name) else default


CAMERA_DENIED = ("Camera access was denied. To see yourself with landmarks, allow the camera for this "
                 "site (the camera icon in the address bar) and press “Start camera”. "
                 "You can still analyse a photo.")
CAMERA_BUSY = ("The camera could not be started: another application or browser tab is probably using "
               "it. Close that, then press “Start camera”. You can still analyse a photo.")
CAMERA_ERRORS = {
    "NotAllowedError": CAMERA_DENIED,
    "PermissionDeniedError": CAMERA_DENIED,
    "SecurityError": CAMERA_DENIED,
    "NotFoundError": ("No camera was found. Connect a camera and press “Start camera”, "
                      "or analyse a photo instead."),
    "DevicesNotFoundError": "No camera was found. Connect a camera, or analyse a photo instead.",
    "OverconstrainedError": ("The chosen camera is no longer available. Pick another camera in the list, "
                             "or analyse a photo."),
    "NotReadableError": CAMERA_BUSY,
    "TrackStartError": CAMERA_BUSY,
    "AbortError": CAMERA_BUSY,
    "InsecureContextError": ("The camera can only be used when the page is served over https:// "
                             "(or from localhost). You can still analyse a photo."),
    "NotSupportedError": "This browser does not give web pages access to cameras. You can still analyse a photo.",
}


def message(kind, text, key=None):
    boot.message(kind, text, key)


def progress(item, text, state="busy"):
    boot.progress(item, text, state)


class RollingStats:
    """Per-stage timings of recent frames → medians for the panel (and the bench reads p95)."""

    def __init__(self, n=60):
        self.n = n
        self.hist: dict[str, deque] = {}

    def add(self, timings):
        for k, v in timings.items():
            self.hist.setdefault(k, deque(maxlen=self.n)).append(v)

    def median(self, k):
        h = self.hist.get(k)
        return statistics.median(h) if h else None


class App:
    def __init__(self, manifest: Manifest, runtime: OrtWebRuntime):
        self.manifest = manifest
        self.runtime = runtime
        self.video = el("video")
        self.overlay = el("overlay")
        self.still = el("still")
        self.stage = el("stage")
        self.snap = document.createElement("canvas")
        # the picture the last published camera frame was computed on (same pixels as the landmarks)
        js.window.faceLandmarks.canvas = self.snap
        self.pipeline = FacePipeline(manifest, runtime, PipelineOptions.for_camera())
        self.tracker = FaceTracker(self.pipeline, TrackerOptions(
            redetect_every=int(param("redetect", "30")),
            max_faces=int(param("faces", "4")),
            smoothing=param("smooth", "1") != "0"))
        self.still_pipeline: FacePipeline | None = None
        self.stream = None
        self.running = False
        self.busy = False
        self.raf = None          # the one requestAnimationFrame proxy (made on start, destroyed on stop)
        self.raf_id = None
        self.frame_no = 0
        self.stats = RollingStats()
        self.done_times: deque = deque(maxlen=30)
        self.first_landmarks_ms = None
        self.mode = "camera"
        self.show_mesh = False
        self.mirror = True
        self.still_bitmap = None
        self.still_result = None
        self.loop_error = None
        self.handlers = []       # DOM event proxies: live as long as the page
        self.last_panel = 0.0

    # -- controls ---------------------------------------------------------------------------------
    def on(self, target, event, fn):
        proxy = create_proxy(fn)
        self.handlers.append(proxy)
        target.addEventListener(event, proxy)

    def wire(self):
        self.on(el("start"), "click", lambda e: asyncio.ensure_future(self.toggle_camera()))
        self.on(el("camera-select"), "change", lambda e: asyncio.ensure_future(self.switch_camera()))
        self.on(el("mesh"), "change", self.on_mesh)
        self.on(el("mirror"), "change", self.on_mirror)
        self.on(el("smooth"), "change", self.on_smooth)
        self.on(el("photo"), "change", self.on_photo_input)
        self.on(el("back"), "click", lambda e: asyncio.ensure_future(self.back_to_camera()))
        self.on(self.stage, "dragover", self.on_dragover)
        self.on(self.stage, "dragleave", lambda e: self.stage.classList.remove("dragging"))
        self.on(self.stage, "drop", self.on_drop)
        el("mesh").checked = self.show_mesh
        el("smooth").checked = self.tracker.options.smoothing
        self.video.classList.toggle("mirrored", self.mirror)

    def on_mesh(self, e):
        self.show_mesh = bool(el("mesh").checked)
        self.tracker.options.smooth_mesh = self.show_mesh
        if self.mode == "still" and self.still_result is not None:
            self.draw_result(self.still_result, False)

    def on_mirror(self, e):
        self.mirror = bool(el("mirror").checked)
        self.video.classList.toggle("mirrored", self.mirror)

    def on_smooth(self, e):
        self.tracker.options.smoothing = bool(el("smooth").checked)

    def on_dragover(self, e):
        e.preventDefault()
        self.stage.classList.add("dragging")

    def on_drop(self, e):
        e.preventDefault()
        self.stage.classList.remove("dragging")
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
        b.textContent = "Stop camera" if self.running else "Start camera"

    # -- camera -----------------------------------------------------------------------------------
    def camera_error(self, e):
        name = str(getattr(e, "name", "") or "")
        text = CAMERA_ERRORS.get(name) or (f"The camera could not be started ({js_error_text(e)}). "
                                          f"You can still analyse a photo.")
        message("error", text, "camera")
        progress("camera", "Camera: " + {"NotAllowedError": "permission denied",
                                          "NotFoundError": "none found"}.get(name, "not available"), "error")
        js.window.faceLandmarks.cameraError = name or "Error"

    async def toggle_camera(self):
        if self.running:
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
        """Open the camera (or take boot.js's pending stream) and show it; start the loop if ``loop``."""
        progress("camera", "Camera: starting…")
        try:
            stream = await (pending if pending is not None else boot.openCamera(device_id))
        except JsException as e:
            self.camera_error(e)
            self.set_start_button()
            return False
        boot.clearMessage("camera")
        self.stream = stream
        self.video.srcObject = stream
        try:
            await self.video.play()
        except JsException as e:
            self.camera_error(e)
            return False
        for _ in range(200):                       # metadata arrives with the first frame
            if self.video.videoWidth:
                break
            await asyncio.sleep(0.01)
        w, h = int(self.video.videoWidth), int(self.video.videoHeight)
        label = stream.getVideoTracks()[0].label if stream.getVideoTracks().length else "camera"
        progress("camera", f"Camera: {label} {w}×{h}", "done")
        js.window.faceLandmarks.cameraError = None
        await self.fill_camera_list(stream)
        self.mode = "camera"
        if loop:
            self.start_loop()
        return True

    def start_loop(self):
        if self.running or self.stream is None:
            return
        self.tracker.reset()
        self.running = True
        self.raf = create_proxy(self.on_frame)
        self.raf_id = js.requestAnimationFrame(self.raf)
        self.set_start_button()

    async def fill_camera_list(self, stream):
        try:
            cams = (await boot.listCameras()).to_py()
        except JsException:
            return
        sel = el("camera-select")
        current = stream.getVideoTracks()[0].getSettings().deviceId if stream.getVideoTracks().length else ""
        sel.innerHTML = ""
        for c in cams:
            opt = document.createElement("option")
            opt.value = c["id"]
            opt.textContent = c["label"]
            opt.selected = c["id"] == current
            sel.appendChild(opt)
        sel.disabled = len(cams) < 2

    def _stop_loop(self):
        self.running = False
        if self.raf_id is not None:
            js.cancelAnimationFrame(self.raf_id)
            self.raf_id = None
        if not self.busy:
            self._destroy_raf()
        # (else the frame in flight destroys it when it finishes)

    def stop_camera(self):
        self._stop_loop()
        boot.stopStream(self.stream)
        self.stream = None
        self.video.srcObject = None
        pixels.clear(self.overlay)
        progress("camera", "Camera: off", "done")

    def pause(self, *_):
        """Stop processing frames but keep the camera running (window.faceLandmarks.pause())."""
        if self.running:
            self._stop_loop()

    def resume(self, *_):
        """Start processing again after pause() (window.faceLandmarks.resume())."""
        if not self.running and self.stream is not None and self.raf is None:
            self.start_loop()

    def _destroy_raf(self):
        if self.raf is not None:
            self.raf.destroy()
            self.raf = None

    # -- the loop ---------------------------------------------------------------------------------
    def on_frame(self, ts):
        self.raf_id = None
        if not self.running or self.busy:
            return
        self.busy = True
        asyncio.ensure_future(self.tick())

    async def tick(self):
        try:
            await self.process_frame()
            self.loop_error = None
        except ModelError as e:
            self.fatal_model_error(e)
            self.running = False
        except Exception as e:          # keep the page alive; say what happened once
            text = js_error_text(e)
            if text != self.loop_error:
                self.loop_error = text
                message("error", f"Processing a frame failed: {text}", "loop")
                js.console.error(f"frame failed: {e!r}")
        finally:
            self.busy = False
            if self.running and self.raf is not None:
                self.raf_id = js.requestAnimationFrame(self.raf)
            elif not self.running:
                self._destroy_raf()

    async def process_frame(self):
        v = self.video
        w, h = int(v.videoWidth), int(v.videoHeight)
        if not w or not h or v.readyState < 2:
            return
        t_snap = time.perf_counter()
        pixels.snapshot(v, self.snap, w, h)
        snap_ms = (time.perf_counter() - t_snap) * 1e3
        frame = CanvasFrame(self.snap, w, h, pixels)
        t = js.performance.now() / 1000.0
        tr = await self.tracker.step(frame, t)
        if not self.running:
            return
        t_draw = time.perf_counter()
        self.frame_no += 1
        timings = dict(tr.result.timings)
        ort_ms = sum(timings.get(k, 0.0) for k in ("preprocess", "detector", "parser", "landmarks"))
        timings["python"] = max(0.0, timings.get("total", 0.0) - ort_ms)
        timings["snapshot"] = snap_ms
        faces = [face_json(f, mesh=False) for f in tr.faces]
        self.draw(tr.result.faces, w, h, self.mirror)
        self.publish("camera", w, h, faces, timings, tr.result.detected)
        timings["draw"] = (time.perf_counter() - t_draw) * 1e3
        self.stats.add(timings)
        now = js.performance.now()
        self.done_times.append(now)
        if self.first_landmarks_ms is None and faces:
            self.first_landmarks_ms = now        # performance.now(): ms since navigation started
            js.window.faceLandmarks.firstLandmarksMs = self.first_landmarks_ms
            progress("first", f"First landmarks {self.first_landmarks_ms / 1000:.2f} s after page open", "done")
        if now - self.last_panel > 250:
            self.last_panel = now
            self.update_panel()

    # -- output -----------------------------------------------------------------------------------
    def draw(self, faces, w, h, mirror):
        if self.overlay.width != w or self.overlay.height != h:
            self.overlay.width, self.overlay.height = w, h
        items = []
        for i, f in enumerate(faces):
            label = f.label()
            mesh = None
            if self.show_mesh and f.mesh:
                mesh = [c for p in f.mesh for c in (p[0], p[1])]
            items.append({"box": list(f.box), "points": [c for p in f.landmarks for c in p],
                          "mesh": mesh, "label": label})
        pixels.drawFaces(self.overlay, js_obj({"faces": items}).faces, mirror, 1.0)

    def publish(self, source, w, h, faces, timings, detected=True):
        detail = js_obj({
            "frame": self.frame_no, "source": source, "width": w, "height": h,
            "faces": faces,
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "providers": self.runtime.stage_providers(),
            "detected": bool(detected),
            "time": js.performance.now(),
        })
        fl = js.window.faceLandmarks
        fl.last = detail
        fl.frames = self.frame_no
        js.window.dispatchEvent(js.CustomEvent.new("faces", js_obj({"detail": detail})))

    def update_panel(self):
        providers = self.runtime.stage_providers()
        rows = []
        for stage in ("snapshot", "preprocess") + STAGES + ("python", "draw", "total"):
            m = self.stats.median(stage)
            if m is None:
                continue
            rows.append(f"<tr><td>{stage}</td><td>{providers.get(stage, '')}</td><td>{m:.1f}</td></tr>")
        el("stats").tBodies[0].innerHTML = "".join(rows)
        ts = list(self.done_times)
        if len(ts) > 1 and ts[-1] > ts[0]:
            fps = (len(ts) - 1) * 1000.0 / (ts[-1] - ts[0])
            el("fps").textContent = f"{fps:.1f} frames/s · frame {self.frame_no}"
            js.window.faceLandmarks.fps = fps

    # -- still images -----------------------------------------------------------------------------
    async def analyse_photo(self, file):
        if self.running:
            self.stop_camera()
            self.set_start_button()
        self.mode = "still"
        el("back").classList.remove("hidden")
        progress("still", f"Photo: reading {file.name}…")
        try:
            bitmap = await boot.decodeImage(file)
        except JsException:
            progress("still", f"Photo: {file.name} is not an image this browser can read", "error")
            message("error", f"“{file.name}” is not an image this browser can read. Try a JPEG or PNG.", "still")
            return
        boot.clearMessage("still")
        if self.still_bitmap is not None:
            self.still_bitmap.close()
        self.still_bitmap = bitmap
        w, h = int(bitmap.width), int(bitmap.height)
        self.video.classList.add("hidden")
        self.still.classList.remove("hidden")
        self.still.width, self.still.height = w, h
        self.still.getContext("2d").drawImage(bitmap, 0, 0)
        pixels.clear(self.overlay)
        if self.still_pipeline is None:
            self.still_pipeline = FacePipeline(self.manifest, self.runtime,
                                               PipelineOptions.for_stills())
        progress("still", f"Photo: finding faces in {w}×{h}…")
        t0 = time.perf_counter()
        try:
            result = await self.still_pipeline.process(CanvasFrame(bitmap, w, h, pixels))
        except ModelError as e:
            self.fatal_model_error(e)
            return
        ms = (time.perf_counter() - t0) * 1e3
        self.still_result = result
        self.draw_result(result, True)
        n = len(result.faces)
        progress("still", f"Photo: {n} face{'s' if n != 1 else ''} found ({ms:.0f} ms)", "done")
        js.window.faceLandmarks.stillDone = True

    def draw_result(self, result, publish):
        self.draw(result.faces, result.width, result.height, False)
        if publish:
            self.frame_no += 1
            self.publish("still", result.width, result.height, [f.to_json() for f in result.faces],
                         dict(result.timings), True)

    async def back_to_camera(self):
        self.mode = "camera"
        el("back").classList.add("hidden")
        self.still.classList.add("hidden")
        self.video.classList.remove("hidden")
        pixels.clear(self.overlay)
        await self.start_camera(el("camera-select").value or None)

    # -- errors -----------------------------------------------------------------------------------
    def fatal_model_error(self, e: ModelError):
        message("error", e.explain(), "model")
        js.window.faceLandmarks.error = f"model-{e.kind}"
        js.console.error(str(e))


def notify(kind, text):
    message(kind, text, "provider:" + text.split(" stage")[0])


async def main():
    fl = js.window.faceLandmarks
    boot.marks.python = js.performance.now()
    progress("python", f"Python runtime: ready ({(js.performance.now() - boot.t0) / 1000:.1f} s)", "done")
    try:
        text = await boot.manifestText
    except JsException as e:
        kind = getattr(e, "kind", "")
        message("error", "The face models are missing on this site (models/manifest.json was not found). "
                         "It was deployed without running `python export_models.py`." if kind == "missing"
                else f"The model manifest could not be downloaded ({getattr(e, 'message', e)}). Reload the page.",
                "model")
        fl.error = "manifest-missing" if kind == "missing" else "manifest-network"
        return
    try:
        manifest = Manifest.loads(text)
    except ManifestError as e:
        message("error", f"models/manifest.json does not fit this version of the page: {e}. "
                         "Re-export the models (python export_models.py) and deploy page and models together.",
                "model")
        fl.error = "manifest-mismatch"
        return

    overrides = {s: param(s) for s in STAGES if param(s)}
    runtime = OrtWebRuntime(manifest, boot, overrides, notify, progress)
    app = App(manifest, runtime)
    app.wire()
    fl.pause = create_proxy(app.pause)
    fl.resume = create_proxy(app.resume)
    # camera and sessions in parallel; the loop starts once both are there
    det = manifest.detector("camera")
    graphs = [det.graph, det.parser] + ([manifest.landmarks.graph] if manifest.landmarks else [])

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
    else:
        progress("camera", "Camera: off (press Start camera)", "note")
    ok = await ready
    fl.sessions = js_obj({f: s for f, s in runtime.sessions.items()})
    fl.providers = js_obj(runtime.stage_providers())
    fl.ready = ok
    if ok and cam_ok:
        app.start_loop()
    app.set_start_button()
    globals()["APP"] = app


await main()  # noqa: F704  (PyScript runs this file with top-level await)
