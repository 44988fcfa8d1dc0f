"""The page in headless Chromium: a fake camera showing a real face, the same numbers as the CLI,
and the errors a person meets (no permission, no camera, broken models, no WebAssembly, lost WebGL).

Runs Debian's /usr/bin/chromium through Playwright (never `playwright install`), on the site served
by scripts/serve.py (same headers as vercel.json) on a free localhost port. WebGL here is a software
GPU (~30× slower than wasm), so webgl runs are kept to a frame or two.
"""
from __future__ import annotations

import json
import math
import shutil
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from bench import browser as helpers

pytestmark = [pytest.mark.browser]
_missing = helpers.missing_prerequisites()
if _missing:
    pytestmark.append(pytest.mark.skip(reason=f"browser tests need the built site: {_missing}"))

LANDMARK_TOLERANCE = 0.02       # of the face width
# records every published frame before the page's own scripts run (CDP, not subject to the CSP)
RECORD = """
window.__faces = [];
window.__csp = [];
addEventListener('faces', (e) => { if (window.__faces.length < 50) window.__faces.push(e.detail); });
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pw():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def site():
    with helpers.serve() as url:
        yield url


@pytest.fixture(scope="module")
def frame():
    return helpers.astronaut_frame()


@pytest.fixture(scope="module")
def camera_file(frame, tmp_path_factory):
    return helpers.write_y4m(tmp_path_factory.mktemp("cam") / "astronaut.y4m", frame)


@pytest.fixture(scope="module")
def camera_browser(pw, camera_file):
    with helpers.launch(pw, helpers.browser_args(camera_file)) as ctx:
        yield ctx


@pytest.fixture(scope="module")
def known_box():
    """The hand-annotated astronaut face box (tests/conftest.py) in the 640x480 camera frame."""
    from conftest import FACE_BOXES
    s = helpers.FRAME_H / 512
    x0, y0, x1, y1 = FACE_BOXES["astronaut"]
    ox = (helpers.FRAME_W - helpers.FRAME_H) / 2
    return (x0 * s + ox, y0 * s, x1 * s + ox, y1 * s)


def new_page(ctx, url, query="", routes=()):
    """A page on url+query recording its errors, console warnings and requests; ``routes`` are
    (pattern, handler) pairs for page.route, set before it loads."""
    page = ctx.new_page()
    page.add_init_script(RECORD)
    page.errors, page.warnings, page.requests = [], [], []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: m.type == "warning" and page.warnings.append(m.text))
    page.on("request", lambda r: page.requests.append(r.url))
    for pattern, handler in routes:
        page.route(pattern, handler)
    page.goto(url + query)
    return page


def run_python(page, code: str):
    """Run ``code`` in the page's Pyodide (the interpreter python_boot.mjs booted); its last
    expression's value, converted to JS and back."""
    return page.evaluate("""async (code) => {
      const python = await import('./python_boot.mjs');
      return (await python.start()).runPython(code); }""", code)


def wait_for(page, js, timeout=60.0, what=""):
    """Poll ``js`` (a function expression) until truthy (no eval: the page's CSP forbids it)."""
    t0 = time.time()
    while True:
        value = page.evaluate(js)
        if value:
            return value
        if time.time() - t0 > timeout:
            state = page.evaluate("() => ({fl: JSON.stringify(window.faceLandmarks && {error: faceLandmarks.error,"
                                  " ready: faceLandmarks.ready, frames: faceLandmarks.frames}),"
                                  " messages: Array.from(document.querySelectorAll('#messages p, #progress li'),"
                                  " e => e.textContent)})")
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or js}; page: {state}; "
                                 f"errors: {page.errors}")
        time.sleep(0.1)


def messages(page) -> str:
    return page.evaluate("() => Array.from(document.querySelectorAll('#messages p'), e => e.textContent).join('\\n')")


def first_camera_frame(page, timeout=90.0):
    """The first published camera frame with a face (it comes from the detector, unsmoothed)."""
    return wait_for(page, "() => (window.__faces || []).find(d => d.source === 'camera' && d.faces.length)",
                    timeout, "a camera frame with a face")


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def landmark_error(page_face, ref_face) -> tuple[float, float]:
    """(mean, max) point distance between page and CLI landmarks, in face widths."""
    a = np.asarray(page_face["landmarks"], float)
    b = np.asarray(ref_face.landmarks, float)
    assert a.shape == b.shape, f"page has {a.shape}, CLI {b.shape}"
    width = ref_face.box[2] - ref_face.box[0]
    d = np.linalg.norm(a - b, axis=1) / width
    return float(d.mean()), float(d.max())


GRAB = """() => { const c = document.createElement('canvas'); c.width = 640; c.height = 480;
  const x = c.getContext('2d', {willReadFrequently: true}); x.drawImage(window.faceLandmarks.canvas, 0, 0);
  return Array.from(x.getImageData(0, 0, 640, 480).data); }"""


def page_pixels(page) -> np.ndarray:
    """The picture the page computed its last frame on (window.faceLandmarks.canvas), RGB."""
    return np.asarray(page.evaluate(GRAB), np.uint8).reshape(480, 640, 4)[..., :3].copy()


def check_camera_path(page, known_box, frames=4):
    """The page's camera frames against the CLI-equivalent runs on the very same pixels:
    frame 1 (detector crop) against FacePipeline.process, frame ``frames`` (tracked crop) against
    FaceTracker — every landmark within 2 % of the face width of the converged tracked frame."""
    wait_for(page, f"() => window.__faces.filter(d => d.source === 'camera' && d.faces.length).length >= {frames}",
             150, f"{frames} camera frames with a face")
    got = page.evaluate("() => window.__faces.filter(d => d.source === 'camera' && d.faces.length)")
    pixels = page_pixels(page)          # the fake camera shows one still picture: every frame's pixels
    for d in got:
        assert d["width"] == 640 and d["height"] == 480
        assert len(d["faces"]) == 1 and iou(d["faces"][0]["box"], known_box) >= 0.5, (d["faces"], known_box)
    assert got[0]["detected"] and not got[frames - 1]["detected"], "the detector ran on a tracked frame"
    # detector crop: the 5x downscale of the detector input is not bit-identical between canvas and
    # PIL (mean 0.5 levels), which moves the crop slightly: check the mean error here
    ref = helpers.python_reference(pixels)
    mean, worst = landmark_error(got[0]["faces"][0], ref.faces[0])
    assert mean <= LANDMARK_TOLERANCE, f"detected frame: mean {mean:.3%}, max {worst:.3%} of the face width"
    # tracked crop, once converged: every point
    tracked = helpers.python_tracked(pixels, frames)[frames - 1]
    mean, worst = landmark_error(got[frames - 1]["faces"][0], tracked.faces[0].face)
    assert worst <= LANDMARK_TOLERANCE, f"tracked frame: max {worst:.3%}, mean {mean:.3%} of the face width"
    return got


# -- the camera path ---------------------------------------------------------------------------
def test_wasm_path_same_origin_and_same_landmarks_as_cli(camera_browser, site, known_box):
    page = new_page(camera_browser, site, "?detector=wasm&landmarks=wasm&parser=wasm&smooth=0")
    try:
        got = check_camera_path(page, known_box)
        assert got[0]["providers"] == {"detector": "wasm", "parser": "wasm", "landmarks": "wasm"}
        # window.faceLandmarks.last is the newest frame, in video pixels
        last = page.evaluate("() => window.faceLandmarks.last")
        assert last["frame"] >= 4 and len(last["faces"][0]["landmarks"]) == 98
        assert set(last["timings"]) >= {"landmarks", "total"}
        # the camera list (filled beside the first frames) names the fake camera
        wait_for(page, "() => document.querySelectorAll('#camera-select option').length >= 1", 10, "the camera list")
        # same origin only, cross-origin isolated (→ wasm threads by ONNX Runtime's rule: one per
        # two cores), no CSP violation
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(site))
        foreign = [u for u in page.requests if not (u.startswith(origin) or u.startswith(("data:", "blob:")))]
        assert foreign == []
        assert not any("jsep" in u or "ort.all" in u for u in page.requests)
        cores = page.evaluate("() => navigator.hardwareConcurrency")
        assert page.evaluate("() => [self.crossOriginIsolated, faceBoot.threads]") == [True, min(4, -(-cores // 2))]
        assert page.evaluate("() => window.__csp") == []
        assert page.errors == []
    finally:
        page.close()


def _no_worker_script(route):
    route.fulfill(status=404, body="not found")


@pytest.mark.parametrize("case, query, routes, in_worker, warned", [
    ("by default", "", [], True, False),
    ("asked not to", "&worker=0", [], False, False),
    ("the worker's script missing", "", [("**/ort_worker.js", _no_worker_script)], False, True),
])
def test_the_wasm_backend_runs_in_its_worker_or_where_asked(camera_browser, site, known_box, case, query,
                                                            routes, in_worker, warned):
    """ONNX Runtime's wasm backend (every stage here) runs in the page's own worker (ort_worker.js), off
    the page's main thread; ?worker=0 keeps it on the main thread, and so does a worker that cannot
    start (one console warning). Either way the camera path gives the CLI's landmarks, frame after
    frame (each run transfers its inputs to the worker: a reused buffer would be detached on the next
    frame)."""
    page = new_page(camera_browser, site, "?detector=wasm&landmarks=wasm&parser=wasm&smooth=0" + query,
                    routes=routes)
    try:
        check_camera_path(page, known_box, frames=4)
        workers = [w.url for w in page.workers]
        assert any(u.endswith("/ort_worker.js") for u in workers) == in_worker, (case, workers)
        # ONNX Runtime's own worker (env.wasm.proxy) is not used either way
        assert not any(u.endswith("/ort.wasm.min.mjs") for u in workers), (case, workers)
        # boot.loadOrt("wasm") answers the worker's stand-in, or ONNX Runtime's module on this thread
        assert page.evaluate("async () => (await faceBoot.loadOrt('wasm')).inWorker === true") == in_worker, case
        worker_warnings = [w for w in page.warnings if "ONNX Runtime's worker" in w]
        assert len(worker_warnings) == (1 if warned else 0), (case, page.warnings)
        assert page.errors == []
    finally:
        page.close()


# stops ONNX Runtime's worker right after the page's next graph run was sent to it: that run's
# inputs went with the request (transferred), so the frame in flight cannot simply be run again
STOP_DURING_NEXT_RUN = """() => {
  const runGraph = faceBoot.runGraph;
  faceBoot.runGraph = (session, ort, feeds) => {
    const running = runGraph(session, ort, feeds);
    if (session.inWorker) { faceBoot.runGraph = runGraph; faceBoot.stopOrtWorker(); }
    return running;
  };
  return true;
}"""


STOPS = {"between two frames": "() => faceBoot.stopOrtWorker()", "during a run": STOP_DURING_NEXT_RUN}


@pytest.mark.parametrize("case", list(STOPS))
def test_a_stopped_worker_moves_the_wasm_stages_to_the_main_thread(camera_browser, site, known_box, case):
    """ONNX Runtime's worker stopping (as a crash would) costs at most the frame in flight, not the
    page: the wasm sessions are made again on the main thread, the page says so once, and the face
    is still found frame after frame."""
    page = new_page(camera_browser, site, "?detector=wasm&landmarks=wasm&parser=wasm")
    try:
        first_camera_frame(page)
        seen = page.evaluate("() => window.__faces.length")
        assert page.evaluate(STOPS[case]) is True
        wait_for(page, f"() => window.__faces.slice({seen}).filter(d => d.source === 'camera' && d.faces.length).length >= 5",
                 90, "5 frames with a face after the worker stopped")
        assert page.evaluate("async () => (await faceBoot.loadOrt('wasm')).inWorker === true") is False, case
        after = page.evaluate(f"() => window.__faces.slice({seen}).filter(d => d.source === 'camera')")
        assert all(len(d["faces"]) == 1 and iou(d["faces"][0]["box"], known_box) >= 0.5 for d in after[-5:]), case
        assert messages(page).count("worker stopped") == 1, (case, messages(page))
        assert "failed" not in messages(page), (case, messages(page))
        assert page.errors == []
    finally:
        page.close()


def test_a_photo_survives_the_worker_stopping_during_its_search(camera_browser, site, tmp_path):
    """Photo mode runs its search again on the main thread when the worker stops under it."""
    from conftest import FACE_BOXES, photo
    path = tmp_path / "grace_hopper.png"
    photo("grace_hopper").save(path)
    page = new_page(camera_browser, site, "?camera=0&detector=wasm&landmarks=wasm")
    try:
        wait_for(page, "() => window.faceLandmarks.ready", 60, "sessions")
        assert page.evaluate(STOP_DURING_NEXT_RUN) is True
        page.set_input_files("#photo", str(path))
        detail = wait_for(page, "() => (window.__faces || []).find(d => d.source === 'still')", 90, "the photo's result")
        assert len(detail["faces"]) == 1 and iou(detail["faces"][0]["box"], FACE_BOXES["grace_hopper"]) >= 0.5
        assert page.evaluate("() => faceBoot.stopOrtWorker()") is False      # it was stopped
        assert messages(page).count("worker stopped") == 1, messages(page)
        assert page.errors == []
    finally:
        page.close()


def on_software_webgl(check, attempts: int = 2):
    """Run ``check()`` (which opens and closes its own page) again if Chromium's renderer crashed.

    The WebGL provider here runs on SwiftShader, a software GPU; about one full test run in seven on
    these machines lost the renderer of a WebGL page ("Target crashed") with nothing in the page's
    own errors, and the same test passed on its own every time. A crash on the retry still fails,
    and every crash is reported as a warning, so a page that really crashes Chromium stays visible."""
    from playwright.sync_api import Error as PlaywrightError
    for attempt in range(1, attempts + 1):
        try:
            return check()
        except PlaywrightError as exc:
            if "crashed" not in str(exc) or attempt == attempts:
                raise
            warnings.warn(f"Chromium's renderer crashed on a software-WebGL page (attempt {attempt}); "
                          f"retrying: {exc}")


def test_webgl_detector_path(camera_browser, site, known_box):
    # the detector graph on the (software) WebGL provider; the tracked frames skip it, so few frames
    def check():
        page = new_page(camera_browser, site, "?detector=webgl&landmarks=wasm&parser=wasm&smooth=0")
        try:
            detail = first_camera_frame(page, timeout=150)
            assert detail["providers"]["detector"] == "webgl", messages(page)
            assert "instead" not in messages(page)
            check_camera_path(page, known_box, frames=3)
        finally:
            page.close()
    on_software_webgl(check)


def test_webgl_context_lost_falls_back_to_wasm(camera_browser, site, known_box):
    def check():
        page = new_page(camera_browser, site, "?detector=wasm&landmarks=webgl&parser=wasm")
        try:
            detail = first_camera_frame(page, timeout=150)
            assert detail["providers"]["landmarks"] == "webgl"
            assert page.evaluate("() => faceBoot.loseWebgl()") is True
            wait_for(page, "() => { const l = window.faceLandmarks.last; return l && "
                           "l.providers.landmarks === 'wasm' && l.faces.length; }", 90,
                     "frames on wasm after the context loss")
            assert "WebGL context was lost" in messages(page) or "failed" in messages(page)
            last = page.evaluate("() => window.faceLandmarks.last")
            assert iou(last["faces"][0]["box"], known_box) >= 0.5
        finally:
            page.close()
    on_software_webgl(check)


# -- still images ------------------------------------------------------------------------------
def test_still_photo(camera_browser, site, tmp_path):
    from conftest import FACE_BOXES, photo
    img = photo("grace_hopper")
    path = tmp_path / "grace_hopper.png"
    img.save(path)
    from facelandmarks.pipeline.stages import PipelineOptions
    ref = helpers.python_reference(np.asarray(img), options=PipelineOptions.for_stills())
    assert ref.faces
    page = new_page(camera_browser, site, "?camera=0&detector=wasm&landmarks=wasm")
    try:
        wait_for(page, "() => window.faceLandmarks.ready", 60, "sessions")
        page.set_input_files("#photo", str(path))
        detail = wait_for(page, "() => (window.__faces || []).find(d => d.source === 'still')", 60, "the photo's result")
        assert (detail["width"], detail["height"]) == img.size
        assert len(detail["faces"]) == 1
        face = detail["faces"][0]
        assert iou(face["box"], FACE_BOXES["grace_hopper"]) >= 0.5
        mean, worst = landmark_error(face, ref.faces[0])
        assert worst <= LANDMARK_TOLERANCE, f"up to {worst:.3%} of the face width (mean {mean:.3%})"
        # the still detector is the manifest's "still" default
        manifest = json.loads((helpers.WEB / "models" / "manifest.json").read_text())
        still_det = manifest["detectors"][manifest["defaults"]["still"]]["graph"]["file"]
        assert any(u.endswith("/models/" + still_det) for u in page.requests)
        assert page.is_visible("#back")
    finally:
        page.close()


# -- what a person is told ---------------------------------------------------------------------
def test_camera_permission_denied(pw, site, camera_file):
    # no --use-fake-ui-for-media-stream: the permission prompt is answered "no"
    with helpers.launch(pw, helpers.browser_args(camera_file, fake_ui=False)) as ctx:
        page = new_page(ctx, site)
        wait_for(page, "() => window.faceLandmarks.cameraError", 60, "the camera error")
        assert page.evaluate("() => window.faceLandmarks.cameraError") == "NotAllowedError"
        assert "Camera access was denied" in messages(page)
        assert page.is_enabled("#start") and page.locator("#photo").count() == 1


def test_no_camera(pw, site):
    with helpers.launch(pw, helpers.browser_args(None, fake_device=False)) as ctx:
        page = new_page(ctx, site, "?detector=wasm&landmarks=wasm")
        wait_for(page, "() => window.faceLandmarks.cameraError", 60, "the camera error")
        assert page.evaluate("() => window.faceLandmarks.cameraError") == "NotFoundError"
        assert "No camera was found" in messages(page)
        # the rest of the page works: the sessions are up for photos
        wait_for(page, "() => window.faceLandmarks.ready", 60, "sessions")


def _models_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "models"
    shutil.copytree(helpers.WEB / "models", dst, ignore=shutil.ignore_patterns("*.br", "*.gz"))
    return dst


def _landmark_file() -> str:
    m = json.loads((helpers.WEB / "models" / "manifest.json").read_text())
    return (m.get("landmarks") or {}).get("graph", {}).get("file") or \
        m["detectors"][m["defaults"]["camera"]]["graph"]["file"]


@pytest.mark.parametrize("damage,expected", [
    ("corrupt", "damaged or out of date"),
    ("missing", "is missing on the server"),
    ("schema", "does not fit this version of the page"),
])
def test_broken_models_are_explained(camera_browser, tmp_path, damage, expected):
    models = _models_copy(tmp_path)
    name = _landmark_file()
    if damage == "corrupt":
        data = bytearray((models / name).read_bytes())
        data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
        (models / name).write_bytes(bytes(data))
    elif damage == "missing":
        (models / name).unlink()
    else:
        m = json.loads((models / "manifest.json").read_text())
        m["schema"] = 99
        (models / "manifest.json").write_text(json.dumps(m))
    with helpers.serve(models=models) as url:
        page = new_page(camera_browser, url, "?detector=wasm&landmarks=wasm")
        try:
            wait_for(page, "() => window.faceLandmarks.error", 60, "the model error")
            assert expected in messages(page)
            # the camera still shows; nothing crashed
            assert page.errors == []
        finally:
            page.close()


def test_no_webassembly(camera_browser, site):
    page = camera_browser.new_page()
    try:
        page.add_init_script("delete globalThis.WebAssembly")
        page.goto(site)
        wait_for(page, "() => window.faceLandmarks && window.faceLandmarks.error", 20, "the error")
        assert page.evaluate("() => window.faceLandmarks.error") == "no-webassembly"
        assert "cannot run WebAssembly" in messages(page)
    finally:
        page.close()


def test_software_webgl_runs_the_manifests_webgl_stages_on_wasm(camera_browser, site, known_box):
    """This machine's WebGL is SwiftShader: with no provider in the URL the page runs the stages the
    manifest puts on webgl on wasm, says so in one line, and keeps the URL's choice when given."""
    renderer_note = "software renderer"
    page = new_page(camera_browser, site, "")
    try:
        detail = first_camera_frame(page, timeout=150)
        assert detail["providers"] == {"detector": "wasm", "parser": "wasm", "landmarks": "wasm"}
        notes = [t for t in messages(page).split("\n") if renderer_note in t]
        assert len(notes) == 1 and "SwiftShader" in notes[0] and "detector=webgl" in notes[0], notes
        assert iou(detail["faces"][0]["box"], known_box) >= 0.5
    finally:
        page.close()

    def forced():
        page = new_page(camera_browser, site, "?detector=webgl&smooth=0")
        try:
            detail = first_camera_frame(page, timeout=150)
            assert detail["providers"]["detector"] == "webgl"
            assert detail["providers"]["landmarks"] == "wasm"      # not forced: software → wasm
            assert "landmarks run on WebAssembly" in messages(page)
        finally:
            page.close()
    on_software_webgl(forced)


# -- Python's boot ------------------------------------------------------------------------------
SNAPSHOT_URL = "**/vendor/pyodide-*/snapshot.bin.gz"


def _garbage_gzip(route):
    import gzip
    route.fulfill(status=200, content_type="application/octet-stream",
                  body=gzip.compress(np.random.default_rng(0).bytes(1 << 20)))


def _gzip_without_its_header(route):
    """The snapshot's own gzip, served the way a host without vercel.json's header would."""
    route.fulfill(status=200, content_type="application/octet-stream",
                  body=(helpers.WEB / "vendor" / Path(urlsplit(route.request.url).path).relative_to("/vendor")).read_bytes())


@pytest.mark.parametrize("case, query, broken, from_snapshot", [
    ("the snapshot", "", None, True),
    ("gzip without Content-Encoding", "", _gzip_without_its_header, True),
    ("asked not to", "&snapshot=0", None, False),
    ("missing (404)", "", lambda route: route.fulfill(status=404, body="not found"), False),
    ("not gzip", "", lambda route: route.fulfill(status=200, body=b"\x00" * 4096), False),
    ("gzip of the wrong bytes", "", _garbage_gzip, False),
])
def test_python_boots_from_the_memory_snapshot_or_without_it(camera_browser, site, case, query, broken,
                                                            from_snapshot):
    """Pyodide starts from the snapshot scripts/vendor.mjs made; without it (asked, missing, damaged)
    it boots the usual way with one console warning, and the page finds the face either way."""
    page = new_page(camera_browser, site, "?detector=wasm&landmarks=wasm&parser=wasm" + query,
                    routes=[(SNAPSHOT_URL, broken)] if broken else [])
    try:
        first_camera_frame(page)
        marks = page.evaluate("() => faceBoot.marks")
        assert "pyodide:ready" in marks, case
        assert ("pyodide:snapshot" in marks) == from_snapshot, (case, marks)
        snapshot_warnings = [w for w in page.warnings if "memory snapshot did not load" in w]
        assert len(snapshot_warnings) == int(bool(broken) and not from_snapshot), (case, page.warnings)
        # the browser inflates what the server says is gzip (vercel.json); the page inflates the rest
        assert ("pyodide:inflate" in marks) == (broken in (_gzip_without_its_header, _garbage_gzip)), (case, marks)
        assert page.errors == []
    finally:
        page.close()


def test_each_page_gets_its_own_random_state(camera_browser, site):
    """The snapshot froze `random`'s state when it was made; python_boot.mjs reseeds it per page."""
    draws = []
    for _ in range(2):
        page = new_page(camera_browser, site, "?camera=0&detector=wasm&landmarks=wasm")
        try:
            wait_for(page, "() => window.faceBoot && faceBoot.marks['pyodide:ready']", 60, "Python")
            assert "pyodide:snapshot" in page.evaluate("() => faceBoot.marks")
            draws.append(run_python(page, "import random; random.random()"))
        finally:
            page.close()
    assert draws[0] != draws[1], draws


def test_page_modules_import_from_their_bytecode(camera_browser, site):
    """python.zip's .pyc files are the ones Python imports (Pyodide never writes bytecode, so a .pyc
    in its file system came from the archive), PyScript's own package included: its checked-hash
    .pyc files carry the hash of the very sources PyScript wrote, so Python takes them as they are.
    (The pipeline's modules come from the memory snapshot: see the next test.)"""
    page = new_page(camera_browser, site, "?camera=0&detector=wasm&landmarks=wasm")
    try:
        wait_for(page, "() => window.faceLandmarks.ready", 60, "sessions")
        names = ["app", "camera", "frame_loop", "ort_runtime", "pyscript", "pyscript.display", "pyscript.web"]
        got = json.loads(run_python(page, f"""
import importlib, importlib.util, json, os, sys
def used(name):
    spec = importlib.import_module(name).__spec__
    if not os.path.exists(spec.cached):
        return "no .pyc"
    with open(spec.cached, "rb") as f:
        header = f.read(16)
    if int.from_bytes(header[4:8], "little") == 3:          # checked-hash: the source's hash must match
        with open(spec.origin, "rb") as f:
            if header[8:16] != importlib.util.source_hash(f.read()):
                return "stale .pyc"
    return True
json.dumps([sys.dont_write_bytecode] + [used(n) for n in {names!r}])"""))
        assert got == [True] * (1 + len(names)), dict(zip(["dont_write_bytecode"] + names, got))
    finally:
        page.close()


def _python_zip_with_another_tracking(route):
    """python.zip as build_site wrote it, but with a tracking.py that differs from the snapshot's."""
    import io
    import zipfile
    out = io.BytesIO()
    with zipfile.ZipFile(helpers.WEB / "python.zip") as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "facelandmarks/pipeline/tracking.py":
                data += b"\n# not the source the snapshot was made from\n"
            dst.writestr(info, data)
    route.fulfill(status=200, content_type="application/zip", body=out.getvalue())


@pytest.mark.parametrize("case, routes, from_snapshot", [
    ("python.zip's pipeline is the snapshot's", [], True),
    ("python.zip carries another tracking.py", [("**/python.zip", _python_zip_with_another_tracking)], False),
])
def test_the_pipeline_comes_from_the_snapshot_while_it_is_python_zips(camera_browser, site, case, routes,
                                                                      from_snapshot):
    """scripts/vendor.mjs imports the pipeline into Pyodide's memory snapshot (each module carrying
    its source's sha256); the page keeps those modules only while every one matches python.zip's file,
    else it imports the whole package from python.zip with one console warning. The face is found
    either way."""
    page = new_page(camera_browser, site, "?detector=wasm&landmarks=wasm&parser=wasm", routes=routes)
    try:
        first_camera_frame(page)
        frozen = json.loads(run_python(page, """
import json, sys
json.dumps({n: hasattr(m, '__snapshot_sha256__') for n, m in sys.modules.items()
            if n.startswith('facelandmarks.pipeline')})"""))
        assert "facelandmarks.pipeline.tracking" in frozen and "facelandmarks.pipeline.stages" in frozen, frozen
        assert set(frozen.values()) == {from_snapshot}, (case, frozen)
        warned = [w for w in page.warnings if "snapshot holds another version" in w]
        assert len(warned) == (0 if from_snapshot else 1), (case, page.warnings)
        if not from_snapshot:
            assert "facelandmarks.pipeline.tracking" in warned[0]
        assert page.errors == []
    finally:
        page.close()


# -- taking the camera's picture ---------------------------------------------------------------
GRAB_BY = """async (way) => { const c = document.createElement('canvas');
  const ok = await window.faceBoot.pixels.grabBy(way, document.getElementById('video'), c, 640, 480);
  return ok ? Array.from(c.getContext('2d', {willReadFrequently: true}).getImageData(0, 0, 640, 480).data) : null; }"""


# way → (mean, 99th percentile) |difference| allowed against the .y4m as decoded by bench/browser.py
# (BT.601 limited range, chroma repeated). The track's own planes are converted by pixels.js exactly
# so; the <video>'s picture passed the compositor's own conversion (measured: mean 1.8–2.0, p99 11–12).
GRAB_WAYS = {"track": (0.5, 1), "draw": (3.0, 16), "video": (3.0, 16)}


def test_each_way_of_taking_the_camera_picture_gives_its_pixels(camera_browser, site, frame):
    """drawImage(video), the camera track's own frame and a VideoFrame of the <video>: each puts the
    camera's picture (the .y4m as Chromium decodes it) into the canvas, colours included."""
    want = helpers.y4m_roundtrip(frame).astype(int)
    page = new_page(camera_browser, site, "?detector=wasm&landmarks=wasm&parser=wasm")
    try:
        wait_for(page, "() => window.faceLandmarks && window.faceLandmarks.frames >= 3", 150, "3 camera frames")
        assert page.evaluate("() => window.faceBoot.pixels.grabSource()") == "camera track"
        for way, (mean_max, p99_max) in GRAB_WAYS.items():
            rgba = page.evaluate(GRAB_BY, way)
            assert rgba is not None, f"{way}: the frame could not be read that way"
            diff = np.abs(np.asarray(rgba, np.uint8).reshape(480, 640, 4)[..., :3].astype(int) - want)
            mean, p99 = diff.mean(), np.percentile(diff, 99)
            assert mean <= mean_max and p99 <= p99_max, f"{way}: mean {mean:.2f}, p99 {p99:.0f} levels off"
        assert not page.errors
    finally:
        page.close()


def test_the_camera_tracks_reader_ends_with_the_camera_and_follows_a_restart(camera_browser, site):
    """Stopping the camera ends the page's reading of its track (the camera can turn off); started
    again, the page reads the new track and its frames go on."""
    page = new_page(camera_browser, site, "?detector=wasm&landmarks=wasm&parser=wasm")
    try:
        wait_for(page, "() => window.faceLandmarks && window.faceLandmarks.frames >= 3", 150, "3 camera frames")
        source = "() => window.faceBoot.pixels.grabSource()"
        assert page.evaluate(source) == "camera track"
        page.click("#start")                                   # Stop camera
        wait_for(page, f"() => ({source})() === 'video element'", 10, "the track's reader to end")
        assert page.evaluate("() => document.getElementById('video').srcObject") is None
        frames = page.evaluate("() => window.faceLandmarks.frames")
        page.click("#start")                                   # Start camera
        wait_for(page, f"() => window.faceLandmarks.frames >= {frames + 3}", 60, "frames after the restart")
        assert page.evaluate(source) == "camera track"
        assert not page.errors
    finally:
        page.close()
