"""Photo mode: one picture a person chose, the CLI's still-image options (full-range detector,
tiles for small faces, two passes, mirror averaging).

Large photos never hold the page: the file's size is read from its header and a picture over
MAX_PIXELS (the CLI's limit, from pipeline/options.py) is refused before decoding;
createImageBitmap decodes off the main thread; a photo larger than WORKING_SIDE is scaled down in
strips, one short task each (pixels.downscale); the pipeline awaits ONNX Runtime between tiles, so
the page stays responsive, and "Cancel" stops it before the next tile. Results are published in the
photo's own pixels."""
from __future__ import annotations

import time

import js
from pyodide.ffi import JsException

import messages
from facelandmarks.pipeline.options import MAX_PIXELS, PipelineOptions
from facelandmarks.pipeline.stages import FacePipeline
from ort_runtime import CanvasFrame, ModelError, WorkerLost

boot = js.window.faceBoot
pixels = boot.pixels
document = js.document

WORKING_SIDE = 4096          # longest side the pipeline works on; larger photos are scaled down
STRIP_PIXELS = 4_000_000     # source pixels scaled per main-thread task (~60 ms here)


class PhotoCancelled(Exception):
    pass


class CancellableFrame(CanvasFrame):
    """A CanvasFrame that stops the pipeline at its next stage input once cancelled."""

    cancelled = False

    def to_tensor(self, to_frame, spec):
        if self.cancelled:
            raise PhotoCancelled()
        return super().to_tensor(to_frame, spec)


def _scaled(item: dict, s: float) -> dict:
    out = dict(item)
    out["box"] = [round(v * s, 2) for v in item["box"]]
    out["landmarks"] = [[round(x * s, 2), round(y * s, 2)] for x, y in item["landmarks"]]
    if "mesh" in item:
        out["mesh"] = [[round(x * s, 2), round(y * s, 2), round(z * s, 2)] for x, y, z in item["mesh"]]
    return out


class PhotoMode:
    def __init__(self, manifest, runtime, output, on_model_error):
        self.manifest, self.runtime, self.output = manifest, runtime, output
        self.on_model_error = on_model_error
        self.pipeline: FacePipeline | None = None
        self.canvas = document.getElementById("still")
        self.bitmap = None
        self.frame: CancellableFrame | None = None
        self.result = None
        self.scale = 1.0           # photo pixels per working pixel
        self.size = (0, 0)         # the photo's own size

    def cancel(self):
        if self.frame is not None:
            self.frame.cancelled = True

    def show(self):
        document.getElementById("video").classList.add("hidden")
        self.canvas.classList.remove("hidden")
        document.getElementById("back").classList.remove("hidden")

    def hide(self):
        document.getElementById("back").classList.add("hidden")
        document.getElementById("cancel").classList.add("hidden")
        self.canvas.classList.add("hidden")
        document.getElementById("video").classList.remove("hidden")
        self.output.clear()

    def refuse(self, text: str, status: str):
        messages.progress("still", f"Photo: {status}", "error")
        messages.message("error", text, "still")

    async def decode(self, file):
        """(bitmap at working size, photo width, photo height), or None after saying why."""
        name = file.name
        size = await pixels.imageSize(file)
        if size is not None:
            w, h = int(size.width), int(size.height)
            if w * h > MAX_PIXELS:
                self.refuse(f"“{name}” is {w}×{h} = {w * h / 1e6:.0f} megapixels; this page (like the "
                            f"command line) reads pictures up to {MAX_PIXELS / 1e6:.0f} megapixels. "
                            "Scale it down first.", f"{name} is too large")
                return None
        try:
            bitmap = await boot.decodeImage(file)      # decoded off the main thread
        except JsException:
            self.refuse(messages.photo_unreadable(name), f"{name} is not an image this browser can read")
            return None
        w, h = int(bitmap.width), int(bitmap.height)
        if w * h > MAX_PIXELS:
            bitmap.close()
            self.refuse(f"“{name}” is {w}×{h}, over the {MAX_PIXELS / 1e6:.0f}-megapixel limit.",
                        f"{name} is too large")
            return None
        if max(w, h) > WORKING_SIDE:
            s = WORKING_SIDE / max(w, h)
            messages.progress("still", f"Photo: scaling {w}×{h} down…")
            strips = max(1, round(w * h / STRIP_PIXELS))
            small = await pixels.downscale(bitmap, max(1, round(w * s)), max(1, round(h * s)), strips)
            bitmap.close()
            bitmap = small
        return bitmap, w, h

    async def analyse(self, file):
        self.cancel()
        self.show()
        messages.progress("still", f"Photo: reading {file.name}…")
        decoded = await self.decode(file)
        if decoded is None:
            return
        messages.clear("still")
        bitmap, w, h = decoded
        if self.bitmap is not None and hasattr(self.bitmap, "close"):
            self.bitmap.close()
        self.bitmap, self.size = bitmap, (w, h)
        bw, bh = int(bitmap.width), int(bitmap.height)
        self.scale = w / bw
        self.canvas.width, self.canvas.height = bw, bh
        self.canvas.getContext("2d").drawImage(bitmap, 0, 0)
        self.output.clear()
        if self.pipeline is None:
            # min_face counts working pixels: a photo scaled down is searched for faces down to
            # min_face × scale of its own pixels, with as many tiles as a WORKING_SIDE photo
            self.pipeline = FacePipeline(self.manifest, self.runtime, PipelineOptions.for_stills())
        shown = f"{w}×{h}" + (f" (working at {bw}×{bh})" if self.scale != 1 else "")
        messages.progress("still", f"Photo: finding faces in {shown}…")
        cancel = document.getElementById("cancel")
        cancel.classList.remove("hidden")
        self.frame = frame = CancellableFrame(bitmap, bw, bh, pixels)
        t0 = time.perf_counter()
        try:
            try:
                result = await self.pipeline.process(frame)
            except WorkerLost:          # its runs go to the page's main thread now: once more there
                result = await self.pipeline.process(frame)
        except PhotoCancelled:
            messages.progress("still", "Photo: cancelled", "note")
            return
        except ModelError as e:
            self.on_model_error(e)
            return
        finally:
            if self.frame is frame:
                self.frame = None
                cancel.classList.add("hidden")
        ms = (time.perf_counter() - t0) * 1e3
        self.result = result
        self.redraw(publish=True)
        n = len(result.faces)
        messages.progress("still", f"Photo: {n} face{'s' if n != 1 else ''} found ({ms:.0f} ms)", "done")
        js.window.faceLandmarks.stillDone = True

    def redraw(self, publish=False):
        """Draw (and ``publish``) the last result, in the photo's own pixels."""
        if self.result is None:
            return
        w, h = self.size
        items = [_scaled(self.output.face_item(f), self.scale) for f in self.result.faces]
        self.output.show("still", w, h, items, dict(self.result.timings), False, True, publish,
                         overlay_width=self.result.width)
