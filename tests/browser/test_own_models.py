"""A user's own RetinaFace export in the page (98 and 5 points): after one full-frame detection the
page tracks with the 160-px roi detector, smooths, and publishes what the CLI computes on the same
pixels. Exports of the seed's trained weights (tests/own_models.py); skipped without the seed."""
from __future__ import annotations

import numpy as np
import pytest

from bench import browser as helpers
from bench import own_models
from test_page import RECORD, iou, known_box, page_pixels, wait_for  # noqa: F401  (the page test's tools)

pytestmark = [pytest.mark.browser]
_missing = helpers.missing_prerequisites()
if _missing:
    pytestmark.append(pytest.mark.skip(reason=f"browser tests need the built site: {_missing}"))
if not own_models.SEED_DETECTOR.is_file():
    pytestmark.append(pytest.mark.skip(reason="seed fixture absent"))

TOLERANCE = 0.02      # of the face width, as in test_page
WASM = "?detector=wasm&landmarks=wasm&parser=wasm"


@pytest.fixture(scope="module")
def pw():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def camera(pw, tmp_path_factory):
    video = helpers.write_y4m(tmp_path_factory.mktemp("cam") / "astronaut.y4m", helpers.astronaut_frame())
    with helpers.launch(pw, helpers.browser_args(video)) as ctx:
        yield ctx


@pytest.fixture(scope="module")
def own_export(tmp_path_factory):
    return own_models.exporter(tmp_path_factory)


def _camera_frames(camera, folder, query, frames):
    """The page on the site whose models/ is ``folder``: its first ``frames`` published camera
    frames with a face, and the picture they were computed on."""
    with helpers.serve(folder) as url:
        page = camera.new_page()
        page.add_init_script(RECORD)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(url + query)
            # the first frames are taken alternately by the two ways of grabbing a frame (timed to
            # pick the cheaper), whose pixels differ by a level or so: start afresh once one is chosen,
            # so that every recorded frame has the pixels read below
            wait_for(page, "() => window.faceBoot.pixels.grabWay() !== null", 240, "the frame grab chosen")
            page.evaluate("() => window.faceLandmarks.pause()")
            page.wait_for_timeout(500)            # a frame in flight finishes
            start = page.evaluate("() => window.__faces.length")
            page.evaluate("() => window.faceLandmarks.resume()")
            fresh = f"window.__faces.slice({start}).filter(d => d.source === 'camera' && d.faces.length)"
            wait_for(page, f"() => {fresh}.length >= {frames}", 240, f"{frames} camera frames with a face")
            got = page.evaluate(f"() => {fresh}")
            pixels = page_pixels(page)
        finally:
            page.close()
    assert errors == []
    return got, pixels


def _cli_tracked(rgb, models, times, smoothing):
    import asyncio

    from PIL import Image

    from facelandmarks.pipeline.options import PipelineOptions, TrackerOptions
    from facelandmarks.pipeline.stages import FacePipeline
    from facelandmarks.pipeline.tracking import FaceTracker
    from facelandmarks.runtime_onnx import OnnxRuntime, PILFrame, load_manifest

    manifest = load_manifest(models)
    pipe = FacePipeline(manifest, OnnxRuntime(models, manifest), PipelineOptions.for_camera())
    tracker = FaceTracker(pipe, TrackerOptions(smoothing=smoothing))
    frame = PILFrame(Image.fromarray(rgb))

    async def run():
        return [await tracker.step(frame, t) for t in times]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as ex:     # Playwright's sync API holds this thread's event loop
        return ex.submit(asyncio.run, run()).result()


def _worst(page_face, cli_face) -> float:
    a = np.asarray(page_face["landmarks"], float)
    b = np.asarray(cli_face.landmarks, float)
    assert a.shape == b.shape
    return float(np.linalg.norm(a - b, axis=1).max() / (cli_face.box[2] - cli_face.box[0]))


@pytest.mark.parametrize("kind,points", [("retinaface98", 98), ("retinaface5", 5)])
@pytest.mark.parametrize("smooth", [False, True])
def test_own_retinaface_tracks_and_smooths_in_the_page(camera, own_export, known_box, kind, points,
                                                       smooth):
    folder = own_export(kind)
    frames = 6
    got, pixels = _camera_frames(camera, folder, WASM + ("" if smooth else "&smooth=0"), frames)
    for d in got[:frames]:
        assert len(d["faces"]) == 1 and iou(d["faces"][0]["box"], known_box) >= 0.5
        assert len(d["faces"][0]["landmarks"]) == points
    # one full-frame detection, then the roi detector follows the face (no "detected" frames)
    assert got[0]["detected"] and not any(d["detected"] for d in got[1:frames])
    # the CLI's tracker on the same pixels at the page's frame times (the One-Euro filter depends on
    # them; a frame's time is when its step began) gives the same points
    times = [(d["time"] - d["timings"]["total"] - d["timings"].get("draw", 0.0)) / 1000.0
             for d in got[:frames]]
    cli = _cli_tracked(pixels, folder, times, smooth)
    assert len(cli[frames - 1].faces) == 1
    worst = _worst(got[frames - 1]["faces"][0], cli[frames - 1].faces[0].face)
    assert worst <= TOLERANCE, f"tracked frame {frames}: max {worst:.3%} of the face width"
    if smooth:   # and smoothing did something: the raw points of that frame are elsewhere
        assert _worst(got[frames - 1]["faces"][0], cli[frames - 1].faces[0].raw) > 0.001


def test_user_landmark_model_in_the_page_equals_the_cli(camera, own_export):
    """FaceMesh + WFLW-98 as a user's crop → points model (no mesh, no presence) in the page, all
    wasm, unsmoothed: once tracking has converged (crops from its own points) the page equals the
    CLI on the same pixels within 1 px. (The detected frame differs by up to ~2 px: the detector's
    downscaled input is not bit-identical between canvas and PIL, which moves the first crop; measured
    per frame 2.0, 1.0, 1.1, 1.3, 1.1, 0.7, 0.6, 0.6, 0.7, 0.6 px.)"""
    folder = own_export("user98")
    frames = 10
    got, pixels = _camera_frames(camera, folder, WASM + "&smooth=0", frames)
    assert got[0]["detected"] and not got[frames - 1]["detected"]
    face = got[frames - 1]["faces"][0]
    assert len(face["landmarks"]) == 98 and face["presence"] is None
    cli = _cli_tracked(pixels, folder, [i / 30 for i in range(frames)], False)
    a = np.asarray(face["landmarks"], float)
    b = np.asarray(cli[frames - 1].faces[0].face.landmarks, float)
    worst = float(np.linalg.norm(a - b, axis=1).max())
    assert worst <= 1.0, f"tracked frame {frames}: the page is {worst:.2f} px from the CLI"
