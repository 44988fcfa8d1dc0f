"""The camera: open it (or take the stream boot.js opened while Python booted), show it in the
<video>, list the cameras, stop it; what went wrong, in words (messages.py)."""
from __future__ import annotations

import asyncio

import js
from pyodide.ffi import JsException

import messages
from ort_runtime import js_error_text

boot = js.window.faceBoot
document = js.document


class Camera:
    def __init__(self):
        self.video = document.getElementById("video")
        self.stream = None
        self.listing = None      # the task filling the camera list (kept so it is not collected)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.video.videoWidth), int(self.video.videoHeight)

    def error(self, e) -> None:
        name = str(getattr(e, "name", "") or "")
        messages.message("error", messages.camera_error(name, js_error_text(e)), "camera")
        messages.progress("camera", "Camera: " + messages.CAMERA_STATUS.get(name, "not available"), "error")
        js.window.faceLandmarks.cameraError = name or "Error"

    async def start(self, device_id=None, pending=None) -> bool:
        """Open the camera (or await boot.js's pending stream) and show it; False if it failed."""
        messages.progress("camera", "Camera: starting…")
        try:
            stream = await (pending if pending is not None else boot.openCamera(device_id))
        except JsException as e:
            self.error(e)
            return False
        messages.clear("camera")
        self.stream = stream
        self.video.srcObject = stream
        try:
            await self.video.play()
        except JsException as e:
            self.error(e)
            return False
        for _ in range(200):                       # metadata arrives with the first frame
            if self.video.videoWidth:
                break
            await asyncio.sleep(0.01)
        w, h = self.size
        tracks = stream.getVideoTracks()
        label = tracks[0].label if tracks.length else "camera"
        messages.progress("camera", f"Camera: {label} {w}×{h}", "done")
        js.window.faceLandmarks.cameraError = None
        # the camera list is not needed to start: filled beside the first frames
        self.listing = asyncio.ensure_future(self.fill_list(stream))
        return True

    async def fill_list(self, stream):
        try:
            cams = (await boot.listCameras()).to_py()
        except JsException:
            return
        sel = document.getElementById("camera-select")
        tracks = stream.getVideoTracks()
        current = tracks[0].getSettings().deviceId if tracks.length else ""
        sel.innerHTML = ""
        for c in cams:
            opt = document.createElement("option")
            opt.value = c["id"]
            opt.textContent = c["label"]
            opt.selected = c["id"] == current
            sel.appendChild(opt)
        sel.disabled = len(cams) < 2

    def stop(self, why: str = "off") -> None:
        boot.stopStream(self.stream)
        self.stream = None
        self.video.srcObject = None
        messages.progress("camera", f"Camera: {why}", "done")
