"""What the page tells a person: every user-facing sentence of the page's Python, and the two ways
it shows them (boot.js's message box and progress list)."""
from __future__ import annotations

import js

boot = js.window.faceBoot


def message(kind: str, text: str, key: str | None = None) -> None:
    """kind: error | warning | info. A message with a key replaces the previous one with that key."""
    boot.message(kind, text, key)


def clear(key: str) -> None:
    boot.clearMessage(key)


def progress(item: str, text: str, state: str = "busy") -> None:
    """One line of the status list; state: busy | done | error | note."""
    boot.progress(item, text, state)


def notify(kind: str, text: str, key: str | None = None) -> None:
    """OrtWebRuntime's provider notices (one line per stage, or per key)."""
    message(kind, text, key or "provider:" + text.split(" stage")[0])


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
CAMERA_STATUS = {"NotAllowedError": "permission denied", "NotFoundError": "none found"}


def camera_error(name: str, detail: str) -> str:
    return CAMERA_ERRORS.get(name) or (f"The camera could not be started ({detail}). "
                                      f"You can still analyse a photo.")


def manifest_missing() -> str:
    return ("The face models are missing on this site (models/manifest.json was not found). "
            "It was deployed without running `python export_models.py`.")


def manifest_unreachable(detail: str) -> str:
    return f"The model manifest could not be downloaded ({detail}). Reload the page."


def manifest_invalid(detail: str) -> str:
    return (f"models/manifest.json does not fit this version of the page: {detail}. "
            "Re-export the models (python export_models.py) and deploy page and models together.")


def frame_failed(detail: str) -> str:
    return f"Processing a frame failed: {detail}"


def photo_unreadable(name: str) -> str:
    return f"“{name}” is not an image this browser can read. Try a JPEG or PNG."
