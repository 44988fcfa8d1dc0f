"""Drawing and publishing: one result object per frame, built once, drawn on the overlay and
dispatched as the window "faces" event (window.faceLandmarks.last), plus the performance panel."""
from __future__ import annotations

import statistics
from collections import deque

import js

from ort_runtime import STAGES, js_obj

boot = js.window.faceBoot
pixels = boot.pixels
document = js.document


class RollingStats:
    """Per-stage timings of recent frames → medians for the panel (and the bench reads p95)."""

    def __init__(self, n=60):
        self.hist: dict[str, deque] = {}
        self.n = n

    def add(self, timings):
        for k, v in timings.items():
            self.hist.setdefault(k, deque(maxlen=self.n)).append(v)

    def median(self, k):
        h = self.hist.get(k)
        return statistics.median(h) if h else None


class Output:
    """The overlay canvas, the "faces" event and the panel."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.overlay = document.getElementById("overlay")
        self.frame_no = 0
        self.stats = RollingStats()
        self.done_times: deque = deque(maxlen=30)
        self.last_panel = 0.0
        self.show_mesh = False

    def face_item(self, face) -> dict:
        """The published form of a face (frame pixels), with the label the overlay draws."""
        return {**face.to_json(mesh=self.show_mesh), "label": face.label()}

    def show(self, source: str, w: int, h: int, items: list[dict], timings: dict, mirror: bool,
             detected: bool = True, publish: bool = True, overlay_width: int | None = None):
        """Build the frame's result once (one to_js), draw it and (``publish``) dispatch it. The
        overlay is ``overlay_width`` pixels wide (default ``w``: one overlay pixel per frame pixel)."""
        if publish:
            self.frame_no += 1
        detail = js_obj({
            "frame": self.frame_no, "source": source, "width": w, "height": h, "faces": items,
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "providers": self.runtime.stage_providers(), "detected": bool(detected),
            "time": js.performance.now(),
        })
        ow = overlay_width or w
        oh = round(h * ow / w)
        if self.overlay.width != ow or self.overlay.height != oh:
            self.overlay.width, self.overlay.height = ow, oh
        pixels.drawFaces(self.overlay, detail.faces, mirror, ow / w)
        if publish:
            fl = js.window.faceLandmarks
            fl.last = detail
            fl.frames = self.frame_no
            js.window.dispatchEvent(js.CustomEvent.new("faces", js_obj({"detail": detail})))

    def clear(self):
        pixels.clear(self.overlay)

    def frame_done(self, timings: dict):
        self.stats.add(timings)
        now = js.performance.now()
        self.done_times.append(now)
        if now - self.last_panel > 250:
            self.last_panel = now
            self.update_panel()
        return now

    def update_panel(self):
        providers = self.runtime.stage_providers()
        rows = []
        for stage in ("snapshot", "preprocess") + STAGES + ("python", "draw", "total"):
            m = self.stats.median(stage)
            if m is None:
                continue
            rows.append(f"<tr><td>{stage}</td><td>{providers.get(stage, '')}</td><td>{m:.1f}</td></tr>")
        document.getElementById("stats").tBodies[0].innerHTML = "".join(rows)
        ts = list(self.done_times)
        if len(ts) > 1 and ts[-1] > ts[0]:
            fps = (len(ts) - 1) * 1000.0 / (ts[-1] - ts[0])
            document.getElementById("fps").textContent = f"{fps:.1f} frames/s · frame {self.frame_no}"
            js.window.faceLandmarks.fps = fps
