"""Frame-to-frame tracking (facelandmarks.pipeline.tracking): detector skipped while the landmark
stage keeps the face, re-detection when lost and periodically, smoothing per track."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from PIL import Image

from facelandmarks.pipeline.geometry import Crop, box_of, crop_from_points, iou
from facelandmarks.pipeline.results import Detection, Face, FrameResult
from facelandmarks.pipeline.options import OneEuroOptions, TrackerOptions
from facelandmarks.pipeline.tracking import FaceTracker, face_json


# -- a scripted world: faces are boxes; the "landmark graph" sees a face when the crop centre is on it
@dataclass
class World:
    faces: list[tuple[float, float, float, float]] = field(default_factory=list)
    detector_blind: bool = False


class FakePipeline:
    def __init__(self, world: World, landmarks: bool = True):
        self.world = world
        self.detect_calls = 0
        self.landmark_calls = 0
        self.process_calls = 0
        self.options = SimpleNamespace(passes=2)
        self.clock = lambda: 0.0
        self.manifest = SimpleNamespace(
            landmarks=SimpleNamespace(presence_threshold=0.5) if landmarks else None)

    async def detect(self, frame, timings):
        self.detect_calls += 1
        timings["detector"] = 1.0
        if self.world.detector_blind:
            return []
        return [Detection(b, 0.9, [(b[0], b[1]), (b[2], b[1])]) for b in self.world.faces]

    def crop_for_detection(self, d):
        x0, y0, x1, y1 = d.box
        return Crop((x0 + x1) / 2, (y0 + y1) / 2, 1.5 * (x1 - x0))

    def crop_for_face(self, face):
        x0, y0, x1, y1 = face.box
        return Crop((x0 + x1) / 2, (y0 + y1) / 2, 1.5 * (x1 - x0))

    async def refine(self, frame, crop, passes, timings):
        self.landmark_calls += passes
        timings["landmarks"] = timings.get("landmarks", 0.0) + passes
        for b in self.world.faces:
            if b[0] <= crop.cx <= b[2] and b[1] <= crop.cy <= b[3]:
                pts = [(b[0] + (b[2] - b[0]) * i / 9, b[1] + (b[3] - b[1]) * j / 9)
                       for i in range(10) for j in range(10)]
                return Face(box_of(pts), pts, mesh=[(x, y, 0.0) for x, y in pts], presence=1.0, crop=crop)
        return Face((0, 0, 1, 1), [(0, 0), (1, 1)], presence=0.0, crop=crop)

    async def process(self, frame):
        self.process_calls += 1
        return FrameResult(640, 480, [Face(b, [], detector_score=0.9) for b in self.world.faces])


FRAME = SimpleNamespace(width=640, height=480)


def run(tracker, n, dt=1 / 30, t0=0.0):
    out = []
    for i in range(n):
        out.append(asyncio.run(tracker.step(FRAME, t0 + i * dt)))
    return out


def test_detector_runs_once_then_tracking_takes_over():
    world = World([(100, 100, 200, 220)])
    pipe = FakePipeline(world)
    tr = FaceTracker(pipe, TrackerOptions(redetect_every=1000))
    results = run(tr, 20)
    assert pipe.detect_calls == 1
    assert results[0].result.detected and not any(r.result.detected for r in results[1:])
    assert all(len(r.faces) == 1 for r in results)
    assert len({r.faces[0].id for r in results}) == 1          # one track all along
    # a new face gets the manifest's passes; a tracked face one pass per frame
    assert pipe.landmark_calls == 2 + 19


def test_face_that_moves_is_followed_without_the_detector():
    world = World([(100, 100, 200, 220)])
    pipe = FakePipeline(world)
    tr = FaceTracker(pipe, TrackerOptions(redetect_every=1000, smoothing=False))
    for i in range(30):
        world.faces[0] = (100 + 5 * i, 100, 200 + 5 * i, 220)       # 5 px per frame
        r = asyncio.run(tr.step(FRAME, i / 30))
        assert len(r.faces) == 1 and iou(r.faces[0].face.box, world.faces[0]) > 0.9
    assert pipe.detect_calls == 1


def test_lost_face_is_redetected_in_the_same_frame():
    world = World([(100, 100, 200, 220)])
    pipe = FakePipeline(world)
    tr = FaceTracker(pipe, TrackerOptions(redetect_every=1000))
    run(tr, 3)
    world.faces[0] = (400, 200, 500, 320)         # jumps away: the tracked crop sees nothing
    r = asyncio.run(tr.step(FRAME, 1.0))
    assert r.result.detected and len(r.faces) == 1
    assert iou(r.faces[0].face.box, world.faces[0]) > 0.8
    assert pipe.detect_calls == 2


def test_periodic_redetection_finds_a_new_face_and_keeps_the_old_track():
    world = World([(100, 100, 200, 220)])
    pipe = FakePipeline(world)
    tr = FaceTracker(pipe, TrackerOptions(redetect_every=5))
    first = run(tr, 3)
    world.faces.append((400, 100, 500, 220))
    later = run(tr, 6, t0=0.2)
    assert pipe.detect_calls == 2                 # frame 0 and frame 6
    ids = {f.id for f in later[-1].faces}
    assert len(ids) == 2 and first[0].faces[0].id in ids


def test_track_kept_while_the_detector_misses_it():
    world = World([(100, 100, 200, 220)])
    pipe = FakePipeline(world)
    tr = FaceTracker(pipe, TrackerOptions(redetect_every=2))
    run(tr, 2)
    world.detector_blind = True
    res = run(tr, 6, t0=0.1)
    assert all(len(r.faces) == 1 for r in res)


def test_face_leaving_ends_the_track():
    world = World([(100, 100, 200, 220)])
    pipe = FakePipeline(world)
    tr = FaceTracker(pipe)
    run(tr, 2)
    world.faces.clear()
    r = asyncio.run(tr.step(FRAME, 1.0))
    assert r.faces == [] and tr.tracks == []
    r = asyncio.run(tr.step(FRAME, 1.1))          # nothing tracked: the detector looks every frame
    assert r.result.detected


def test_max_faces_and_duplicates():
    world = World([(100, 100, 200, 220), (105, 100, 205, 220), (400, 100, 500, 220), (10, 300, 60, 360)])
    pipe = FakePipeline(world)
    tr = FaceTracker(pipe, TrackerOptions(max_faces=2))
    r = asyncio.run(tr.step(FRAME, 0.0))
    assert len(r.faces) == 2
    boxes = [f.face.box for f in r.faces]
    assert iou(boxes[0], boxes[1]) < 0.5


def test_smoothing_applies_to_output_not_to_the_next_crop():
    world = World([(100, 100, 200, 220)])
    pipe = FakePipeline(world)
    tr = FaceTracker(pipe, TrackerOptions(redetect_every=1000, smoothing=True,
                                          one_euro=OneEuroOptions(min_cutoff=0.05, beta=0.0)))
    run(tr, 5)
    world.faces[0] = (110, 100, 210, 220)
    r = asyncio.run(tr.step(FRAME, 5 / 30))
    tf = r.faces[0]
    assert tf.raw.box[0] == pytest.approx(110)               # the crop follows the raw landmarks
    assert 100 < tf.face.box[0] < 105                        # the output is smoothed
    assert tf.face.mesh == tf.raw.mesh                       # mesh smoothing is off by default
    j = face_json(tf)
    assert j["id"] == tf.id and len(j["landmarks"]) == 100 and j["detector_score"] == 0.9


# -- with the real graphs (CPython runtime): a face sliding across a frame ---------------------------
def test_real_models_track_a_moving_face(models_dir):
    from conftest import paste
    from facelandmarks.pipeline.options import PipelineOptions
    from facelandmarks.pipeline.stages import FacePipeline
    from facelandmarks.runtime_onnx import OnnxRuntime, PILFrame, load_manifest

    manifest = load_manifest(models_dir)
    if manifest.landmarks is None:
        pytest.skip("the manifest has no landmark graph")
    pipe = FacePipeline(manifest, OnnxRuntime(models_dir, manifest), PipelineOptions(passes=1))
    calls = {"detect": 0}
    original = pipe.detect

    async def counting_detect(frame, timings=None):
        calls["detect"] += 1
        return await original(frame, timings)
    pipe.detect = counting_detect
    tr = FaceTracker(pipe, TrackerOptions(redetect_every=1000, smoothing=False))
    for i in range(8):
        bg = Image.new("RGB", (640, 480), (90, 110, 130))
        truth = paste(bg, "astronaut", 140, (150 + 12 * i, 150))
        r = asyncio.run(tr.step(PILFrame(bg), i / 30))
        assert len(r.faces) == 1, f"frame {i}: lost the face"
        assert iou(r.faces[0].face.box, truth) > 0.5, f"frame {i}: {r.faces[0].face.box} vs {truth}"
    assert calls["detect"] == 1
    # the next crop came from the mesh's extent without mapping its 468 points; mapped, the same crop
    face = r.faces[0].raw
    lazy = pipe.crop_for_face(face)
    assert face.mesh._points is None and len(face.mesh) == 468
    lm = manifest.landmarks
    mesh = list(face.mesh)
    full = crop_from_points(mesh, mesh[lm.mesh_right_eye], mesh[lm.mesh_left_eye], lm.crop_scale)
    assert (lazy.cx, lazy.cy, lazy.size, lazy.angle) == pytest.approx((full.cx, full.cy, full.size, full.angle))


# -- a user's own models (exports of the seed's trained weights; see tests/own_models.py) -----------
from bench import own_models  # noqa: E402

needs_seed = pytest.mark.skipif(not own_models.SEED_DETECTOR.is_file(), reason="seed fixture absent")


@pytest.fixture(scope="module")
def own_export(tmp_path_factory):
    return own_models.exporter(tmp_path_factory)


def _counting_pipeline(models_dir, manifest=None):
    from facelandmarks.pipeline.options import PipelineOptions
    from facelandmarks.pipeline.stages import FacePipeline
    from facelandmarks.runtime_onnx import OnnxRuntime, load_manifest

    manifest = manifest or load_manifest(models_dir)
    pipe = FacePipeline(manifest, OnnxRuntime(models_dir, manifest), PipelineOptions.for_camera())
    calls = []
    original = pipe.detect

    async def counting(frame, timings=None, region=None, detector=None):
        calls.append(detector.name if detector else "full")
        return await original(frame, timings, region, detector)
    pipe.detect = counting
    return pipe, calls


def _sliding_face(i, face="astronaut", width=110, step=14):
    from conftest import paste
    from facelandmarks.runtime_onnx import PILFrame

    bg = Image.new("RGB", (640, 480), (90, 110, 130))
    truth = paste(bg, face, width, (140 + step * i, 140))
    return PILFrame(bg), truth


@needs_seed
@pytest.mark.parametrize("kind,points", [("retinaface98", 98), ("retinaface5", 5)])
def test_detector_only_pipeline_tracks_with_the_roi_detector(own_export, kind, points):
    """After one full-frame detection, a face sliding across the frame is followed by the 160-px
    roi detector on a crop around it: one track, the box on the face every frame."""
    pipe, calls = _counting_pipeline(own_export(kind))
    tracker = FaceTracker(pipe, TrackerOptions(redetect_every=1000, smoothing=False))
    for i in range(8):
        frame, truth = _sliding_face(i)
        res = asyncio.run(tracker.step(frame, i / 30))
        assert len(res.faces) == 1, (i, calls)
        assert iou(res.faces[0].face.box, truth) > 0.5, (i, res.faces[0].face.box, truth)
        assert len(res.faces[0].face.landmarks) == points
        assert res.result.detected == (i == 0)
    assert calls == ["full"] + ["retinaface-roi"] * 7
    assert len({tf.id for tf in res.faces}) == 1 and res.faces[0].id == 1


@needs_seed
def test_detector_only_lost_face_redetected_same_frame_and_periodic_redetect(own_export):
    pipe, calls = _counting_pipeline(own_export("retinaface98"))
    tracker = FaceTracker(pipe, TrackerOptions(redetect_every=3, smoothing=False))
    from facelandmarks.runtime_onnx import PILFrame

    for i in range(6):
        frame, _ = _sliding_face(i, step=4)
        asyncio.run(tracker.step(frame, i / 30))
    # full-frame detection on frames 0, 4 (after 3 tracked frames) and the roi detector between
    assert calls == ["full"] + ["retinaface-roi"] * 3 + ["full"] + ["retinaface-roi"], calls
    # the face vanishes: the roi detector finds nothing, the full detector runs in the same frame
    calls.clear()
    empty = asyncio.run(tracker.step(PILFrame(Image.new("RGB", (640, 480), (90, 110, 130))), 0.3))
    assert empty.faces == [] and empty.result.detected and calls == ["retinaface-roi", "full"]
    # it comes back elsewhere (Grace Hopper): found by the next frame's full detection, a new track
    calls.clear()
    frame, truth = _sliding_face(20, face="grace_hopper", width=120)
    back = asyncio.run(tracker.step(frame, 0.33))
    assert calls == ["full"] and len(back.faces) == 1 and iou(back.faces[0].face.box, truth) > 0.5
    assert back.faces[0].id == 2


@needs_seed
def test_detector_only_smoothing_and_without_roi_detector(own_export):
    """One-Euro smoothing applies to detector landmarks and box (the raw result is kept for the
    next crop); a manifest without a roi detector detects every frame and still tracks + smooths."""
    from facelandmarks.pipeline.manifest import Manifest
    import json

    folder = own_export("retinaface98")
    raw = json.loads((folder / "manifest.json").read_text())
    del raw["defaults"]["roi"]
    for with_roi, manifest in ((True, None), (False, Manifest.parse(raw))):
        pipe, calls = _counting_pipeline(folder, manifest)
        tracker = FaceTracker(pipe, TrackerOptions(redetect_every=1000, smoothing=True))
        for i in range(6):
            frame, truth = _sliding_face(i, step=20)
            res = asyncio.run(tracker.step(frame, i / 30))
        tf = res.faces[0]
        assert tf.id == 1 and iou(tf.raw.box, truth) > 0.5
        # the smoothed face lags behind the raw one (the face moves right)
        assert tf.face.box[0] < tf.raw.box[0] and tf.face.landmarks[96][0] < tf.raw.landmarks[96][0]
        assert calls == (["full"] + ["retinaface-roi"] * 5 if with_roi else ["full"] * 6)


@needs_seed
def test_landmark_model_without_mesh_tracks_from_its_points(own_export):
    """The user's crop → 98 points model (no mesh, no presence): after the detection, the next
    crops come from its points at the manifest's track scale; the detector does not run again."""
    folder = own_export("user98")
    pipe, calls = _counting_pipeline(folder)
    lm = pipe.manifest.landmarks
    assert lm.graph.outputs.get("mesh") is None and lm.graph.outputs.get("presence") is None
    assert lm.track_from == "points" and lm.track_scale > 1.0
    tracker = FaceTracker(pipe, TrackerOptions(redetect_every=1000, smoothing=False))
    for i in range(6):
        frame, truth = _sliding_face(i)
        res = asyncio.run(tracker.step(frame, i / 30))
        assert len(res.faces) == 1
        f = res.faces[0].face
        assert f.presence is None and f.mesh is None and len(f.landmarks) == 98
        assert iou(box_of(f.landmarks), truth) > 0.4, (i, box_of(f.landmarks), truth)
        # the crop follows the points: centred on them, track.scale x their extent
        if i:
            assert f.crop.size == pytest.approx(lm.track_scale * max(
                prev.box[2] - prev.box[0], prev.box[3] - prev.box[1]), rel=0.15)
        prev = f
    assert calls == ["full"]
