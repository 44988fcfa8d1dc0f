"""The camera loop: one requestAnimationFrame callback, at most one frame in flight; each frame is
taken once as a picture (pixels.grab: the cheaper of drawImage(video) and the planes of the camera
track's own frame, measured on the first frames), tracked (the pipeline's FaceTracker) and handed to
output.py once."""
from __future__ import annotations

import asyncio
import time

import js
from pyodide.ffi import create_proxy

import messages
from ort_runtime import CanvasFrame, ModelError, WorkerLost, js_error_text

boot = js.window.faceBoot
pixels = boot.pixels
ORT_STAGES = ("preprocess", "detector", "parser", "landmarks")


class FrameLoop:
    def __init__(self, camera, tracker, output, on_model_error, mirror=lambda: True):
        self.camera, self.tracker, self.output = camera, tracker, output
        self.on_model_error = on_model_error
        self.mirror = mirror
        # the picture the last published camera frame was computed on (same pixels as the landmarks)
        self.snap = js.document.createElement("canvas")
        js.window.faceLandmarks.canvas = self.snap
        self.running = False
        self.busy = False
        self.raf = None          # the one requestAnimationFrame proxy (made on start, destroyed on stop)
        self.raf_id = None
        self.loop_error = None
        self.first_landmarks_ms = None
        self.first_frame_marked = False

    def start(self):
        if self.running or self.camera.stream is None:
            return
        self.tracker.reset()
        self.running = True
        self.raf = create_proxy(self.on_frame)
        self.raf_id = js.requestAnimationFrame(self.raf)

    def stop(self):
        self.running = False
        if self.raf_id is not None:
            js.cancelAnimationFrame(self.raf_id)
            self.raf_id = None
        if not self.busy:
            self._destroy_raf()
        # (else the frame in flight destroys it when it finishes)

    def _destroy_raf(self):
        if self.raf is not None:
            self.raf.destroy()
            self.raf = None

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
            self.on_model_error(e)
            self.running = False
        except WorkerLost:              # this frame is dropped; the next one runs on the main thread
            pass
        except Exception as e:          # keep the page alive; say what happened once
            text = js_error_text(e)
            if text != self.loop_error:
                self.loop_error = text
                messages.message("error", messages.frame_failed(text), "loop")
                js.console.error(f"frame failed: {e!r}")
        finally:
            self.busy = False
            if self.running and self.raf is not None:
                self.raf_id = js.requestAnimationFrame(self.raf)
            elif not self.running:
                self._destroy_raf()

    async def process_frame(self):
        video = self.camera.video
        w, h = self.camera.size
        if not w or not h or video.readyState < 2:
            return
        if not self.first_frame_marked:           # start-up mark: the first frame Python takes
            boot.marks.first_frame = js.performance.now()
            self.first_frame_marked = True
        snap_ms = float(await pixels.grab(video, self.snap, w, h))
        tr = await self.tracker.step(CanvasFrame(self.snap, w, h, pixels), js.performance.now() / 1000.0)
        if not self.running:
            return
        t_out = time.perf_counter()
        timings = dict(tr.result.timings)
        # Python's own share: the tracker step minus what ONNX Runtime and pixels.js spent
        timings["python"] = max(0.0, timings.get("total", 0.0) - sum(timings.get(k, 0.0) for k in ORT_STAGES))
        timings["snapshot"] = snap_ms
        items = [{"id": tf.id, **self.output.face_item(tf.face)} for tf in tr.faces]
        self.output.show("camera", w, h, items, timings, self.mirror(), tr.result.detected)
        timings["draw"] = (time.perf_counter() - t_out) * 1e3
        now = self.output.frame_done(timings)
        if self.first_landmarks_ms is None and items:
            self.first_landmarks_ms = now        # performance.now(): ms since navigation started
            js.window.faceLandmarks.firstLandmarksMs = now
            messages.progress("first", f"First landmarks {now / 1000:.2f} s after page open", "done")
