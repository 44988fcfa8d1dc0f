"""Frame-to-frame tracking (facelandmarks.pipeline.tracking): detector skipped while the landmark
stage keeps the face, re-detection when lost and periodically, smoothing per track."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from PIL import Image

from facelandmarks.pipeline.geometry import Crop, box_of, iou
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


def test_without_landmark_graph_every_frame_is_processed():
    pipe = FakePipeline(World([(100, 100, 200, 220)]), landmarks=False)
    tr = FaceTracker(pipe)
    res = run(tr, 3)
    assert pipe.process_calls == 3 and all(len(r.faces) == 1 for r in res)


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
