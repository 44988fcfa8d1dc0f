"""Shared by the browser tests (tests/browser) and bench/page_bench.py: the test frame, the
fake-camera file, the browser launch, the local server, and the Python (CLI-equivalent) reference
run."""
from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
CHROMIUM = "/usr/bin/chromium"
FRAME_W, FRAME_H = 640, 480

BASE_ARGS = [
    "--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader", "--remote-debugging-pipe", "--disable-gpu-sandbox",
    "--autoplay-policy=no-user-gesture-required", "--mute-audio",
    # shared memory in /tmp, not /dev/shm: containers often give /dev/shm 64 MB, and a renderer that
    # runs out of it crashes ("Target crashed")
    "--disable-dev-shm-usage",
]


def missing_prerequisites() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} not installed (apt-get install chromium)"
    if not (WEB / "models" / "manifest.json").is_file():
        return "web/models/manifest.json missing (python export_models.py)"
    if not (WEB / "vendor" / "VENDORED.json").is_file():
        return "web/vendor missing (npm ci && npm run vendor)"
    if not (WEB / "facelandmarks" / "pipeline" / "stages.py").is_file():
        return "web/facelandmarks missing (python scripts/build_site.py)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright (python package) not installed"
    return None


def cannot_run() -> bool:
    """For the benches: say why they cannot run here (on stderr) and return True; False if they can."""
    why = missing_prerequisites()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
    return why is not None


def astronaut_frame() -> np.ndarray:
    """scikit-image's astronaut (512x512) resized to 480x480 and padded to 640x480 (uint8 RGB)."""
    from PIL import Image
    from skimage import data
    im = Image.fromarray(data.astronaut()).resize((FRAME_H, FRAME_H), Image.Resampling.LANCZOS)
    out = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    x0 = (FRAME_W - FRAME_H) // 2
    out[:, x0:x0 + FRAME_H] = np.asarray(im)
    return out


def rgb_to_yuv420_limited(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 limited range (Y 16-235, C 16-240): what Chromium assumes for a .y4m file."""
    x = rgb.astype(np.float64) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    cb = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    cr = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    h, w = y.shape
    sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731
    q = lambda c: np.clip(np.round(c), 0, 255).astype(np.uint8)       # noqa: E731
    return q(y), q(sub(cb)), q(sub(cr))


def y4m_roundtrip(rgb: np.ndarray) -> np.ndarray:
    """The frame as the browser gets it from the .y4m: 4:2:0 chroma, limited range, back to RGB
    (BT.601, chroma upsampled by repetition)."""
    y, u, v = rgb_to_yuv420_limited(rgb)
    up = lambda c: np.repeat(np.repeat(c.astype(np.float64), 2, 0), 2, 1)  # noqa: E731
    yy = (y.astype(np.float64) - 16) / 219.0
    cb = (up(u) - 128) / 224.0
    cr = (up(v) - 128) / 224.0
    r = yy + 1.402 * cr
    g = yy - 0.344136 * cb - 0.714136 * cr
    b = yy + 1.772 * cb
    return np.clip(np.round(np.stack([r, g, b], -1) * 255), 0, 255).astype(np.uint8)


def write_y4m(path: Path, rgb: np.ndarray, frames: int = 1, fps: int = 30) -> Path:
    h, w = rgb.shape[:2]
    y, u, v = rgb_to_yuv420_limited(rgb)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n")
            f.write(y.tobytes())
            f.write(u.tobytes())
            f.write(v.tobytes())
    return path


def python_reference(rgb: np.ndarray, detector: str = "camera", passes: int = 1, models: Path | None = None,
                     options=None):
    """The CLI-equivalent run on the same frame: FacePipeline + OnnxRuntime + PILFrame
    (``options``: a PipelineOptions, else one made of ``detector`` and ``passes``)."""
    from PIL import Image
    from facelandmarks.pipeline.stages import FacePipeline, PipelineOptions
    from facelandmarks.runtime_onnx import OnnxRuntime, PILFrame, load_manifest
    models = models or WEB / "models"
    manifest = load_manifest(models)
    options = options or PipelineOptions(detector=detector, passes=passes)
    pipe = FacePipeline(manifest, OnnxRuntime(models, manifest), options)
    # in a thread of its own: Playwright's sync API keeps an event loop running in this one
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, pipe.process(PILFrame(Image.fromarray(rgb)))).result()


def browser_args(video: Path | None = None, fake_ui: bool = True, fake_device: bool = True,
                 extra: list[str] = ()) -> list[str]:
    args = list(BASE_ARGS)
    if fake_ui:
        args.append("--use-fake-ui-for-media-stream")
    if fake_device:
        args.append("--use-fake-device-for-media-stream")
    if video is not None:
        args.append(f"--use-file-for-fake-video-capture={video}")
    return args + list(extra)


@contextmanager
def launch(playwright, args: list[str], **context_kw):
    """A persistent Chromium context on a fresh user-data-dir (removed afterwards)."""
    udd = tempfile.mkdtemp(prefix="fl-chromium-")
    ctx = playwright.chromium.launch_persistent_context(
        udd, executable_path=CHROMIUM, ignore_default_args=True, args=args, headless=True, **context_kw)
    try:
        yield ctx
    finally:
        try:
            ctx.close()
        finally:
            shutil.rmtree(udd, ignore_errors=True)


@contextmanager
def serve(models: Path | None = None):
    from scripts.serve import serve_in_thread
    server, url = serve_in_thread(port=0, quiet=True, models=models)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def python_tracked(rgb: np.ndarray, frames: int, models: Path | None = None, smoothing: bool = False):
    """The CLI-equivalent of the page's camera loop: FaceTracker over ``frames`` copies of a frame
    (30 fps timestamps, the page's default options). Returns the TrackResult of every frame."""
    from PIL import Image
    from facelandmarks.pipeline.stages import FacePipeline, PipelineOptions
    from facelandmarks.pipeline.tracking import FaceTracker, TrackerOptions
    from facelandmarks.runtime_onnx import OnnxRuntime, PILFrame, load_manifest
    models = models or WEB / "models"
    manifest = load_manifest(models)
    pipe = FacePipeline(manifest, OnnxRuntime(models, manifest), PipelineOptions(detector="camera", passes=1))
    tracker = FaceTracker(pipe, TrackerOptions(smoothing=smoothing))
    frame = PILFrame(Image.fromarray(rgb))

    async def run():
        return [await tracker.step(frame, i / 30) for i in range(frames)]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, run()).result()


# One graph on one onnxruntime-web provider, in the page's origin (the served site's vendor bundles
# and /models/): feeds are base64 float32, outputs come back as plain arrays.
RUN_GRAPH = """async ([file, feeds, provider]) => {
  const bundle = provider === 'wasm' ? 'ort.wasm.min.mjs' : `ort.${provider}.min.mjs`;
  const ort = await import(`/vendor/${VENDOR_ORT}/${bundle}`);
  ort.env.wasm.wasmPaths = new URL(`/vendor/${VENDOR_ORT}/`, location.href).href;
  ort.env.logLevel = 'error';
  const bytes = new Uint8Array(await (await fetch('/models/' + file)).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, {executionProviders: [provider]});
  const tensors = {};
  for (const [name, [b64, dims]] of Object.entries(feeds)) {
    const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    tensors[name] = new ort.Tensor('float32', new Float32Array(raw.buffer), dims);
  }
  const out = await session.run(tensors);
  const result = {};
  for (const name of session.outputNames) {
    result[name] = {dims: Array.from(out[name].dims), data: Array.from(out[name].data, Number)};
    out[name].dispose();
  }
  await session.release();
  return result;
}"""


def run_graph_in_browser(page, file: str, feeds: dict[str, np.ndarray], provider: str) -> dict[str, np.ndarray]:
    """Run ``models/<file>`` on ``provider`` (webgl | wasm | webgpu) in ``page`` (a page of the
    served site) and return its outputs."""
    import base64
    ort_dir = next(p.name for p in (WEB / "vendor").iterdir() if p.name.startswith("ort-"))
    packed = {k: [base64.b64encode(np.ascontiguousarray(v, np.float32).tobytes()).decode(), list(v.shape)]
              for k, v in feeds.items()}
    got = page.evaluate(RUN_GRAPH.replace("${VENDOR_ORT}", ort_dir), [file, packed, provider])
    return {k: np.asarray(v["data"], np.float32).reshape(v["dims"]) for k, v in got.items()}
