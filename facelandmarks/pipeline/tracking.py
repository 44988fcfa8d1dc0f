"""Frame-to-frame tracking: skip the detector while the landmark stage keeps seeing the face.

For a video, detecting every frame wastes work and makes the crop jump: once the landmark graph has
found a face, the next frame's crop comes from that face's own landmarks
(:meth:`FacePipeline.crop_for_face`, MediaPipe's landmarks→ROI rule) and the detector is skipped.
The detector runs again when

* no face is being tracked (start, or every track's presence fell below the manifest's threshold —
  then in the *same* frame, so a lost face costs no blank frame), or
* ``redetect_every`` frames have passed, so faces entering the view are found. A detection that
  overlaps a track continues that track (its landmark crop is better than a fresh box crop); the
  others start new tracks.

Each track smooths its landmarks with a One-Euro filter (:mod:`.smoothing`); the crop for the next
frame is taken from the *raw* landmarks so that smoothing lag never feeds back into the crop.

A landmark graph without a presence output (a user's crop → N points model) cannot say it lost the
face: its tracks end when a detector run no longer sees them, or when their crop leaves the frame.

Without a landmark graph (``manifest.landmarks`` is null: RetinaFace, whose keypoints are the
landmarks) the detector tracks: after a full-frame detection, each later frame runs the manifest's
small-input roi detector (``defaults.roi``) on a square crop of its ``crop.scale`` × the tracked
box, and a track ends when the roi detector finds nothing there. The full-frame detector runs again
as above (nothing tracked, or ``redetect_every``). Without a roi detector every frame runs the full
detector and detections continue the tracks they overlap. The box is smoothed with the points.

Pure Python (stdlib): runs under Pyodide in the page and in CPython.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .geometry import Crop, iou
from .options import TrackerOptions
from .results import Detection, Face, FrameResult
from .smoothing import PointSmoother
from .stages import FacePipeline, FrameSource


@dataclass
class Track:
    id: int
    face: Face                          # last raw (unsmoothed) result: the next crop comes from it
    smoother: PointSmoother
    mesh_smoother: PointSmoother
    age: int = 0                        # frames since the track started


@dataclass
class LandmarkTask:
    """One landmark-stage run planned for this frame."""
    track: Track | None                 # the track it continues; None: a new face
    crop: Crop
    detector_score: float | None        # this frame's detection, else the track's last one
    passes: int


@dataclass
class TrackedFace:
    """What a tracked frame reports per face (frame pixels)."""
    id: int
    face: Face                          # smoothed landmarks/mesh; box from the smoothed landmarks
    raw: Face


@dataclass
class TrackResult:
    result: FrameResult
    faces: list[TrackedFace] = field(default_factory=list)


class FaceTracker:
    def __init__(self, pipeline: FacePipeline, options: TrackerOptions | None = None):
        self.pipeline = pipeline
        self.options = options or TrackerOptions()
        self.tracks: list[Track] = []
        self._next_id = 1
        self._since_detect = 0

    def reset(self) -> None:
        self.tracks = []
        self._since_detect = 0

    def _new_track(self, face: Face) -> Track:
        o = self.options.one_euro
        t = Track(self._next_id, face, PointSmoother(o), PointSmoother(o))
        self._next_id += 1
        return t

    async def step(self, frame: FrameSource, t: float) -> TrackResult:
        """Process one video frame taken at time ``t`` (seconds)."""
        pipe = self.pipeline
        clock = pipe.clock
        t_start = clock()
        timings: dict[str, float] = {}
        o = self.options
        detect = not self.tracks or self._since_detect >= o.redetect_every
        follow = self._follow_with_landmarks if pipe.manifest.landmarks else self._follow_with_detector
        kept = await follow(frame, detect, timings)
        self._since_detect = 0 if detect else self._since_detect + 1
        if not kept and not detect:
            # every track was lost between two detector runs: look again now, not next frame (and
            # not on their crops again)
            self.tracks = []
            self._since_detect = 0
            detect = True
            kept = await follow(frame, True, timings)
        self.tracks = self._dedupe(kept)[: o.max_faces]

        result = FrameResult(frame.width, frame.height, timings=timings, detected=detect)
        out = []
        for tr in self.tracks:
            face = self._smoothed(tr, t) if o.smoothing else tr.face
            out.append(TrackedFace(tr.id, face, tr.face))
            result.faces.append(face)
        timings["total"] = (clock() - t_start) * 1e3
        return TrackResult(result, out)

    async def _follow_with_landmarks(self, frame: FrameSource, detect: bool,
                                     timings: dict[str, float]) -> list[Track]:
        return await self._run(frame, await self._plan(frame, detect, timings), timings)

    async def _follow_with_detector(self, frame: FrameSource, detect: bool,
                                    timings: dict[str, float]) -> list[Track]:
        """Detector-only pipelines: the roi detector around each track, or (``detect``, or no roi
        detector) the full-frame detector matched to the tracks."""
        pipe = self.pipeline
        roi = pipe.manifest.roi_detector()
        kept: list[Track] = []
        free = list(self.tracks)
        if detect or roi is None:
            for d in await pipe.detect(frame, timings):
                if len(kept) >= self.options.max_faces:
                    break
                if any(iou(d.box, k.face.box) >= self.options.duplicate_iou for k in kept):
                    continue
                best = self._best_match(d.box, free)
                if best is not None:
                    free.remove(best)
                kept.append(self._update(best, _detector_face(d)))
            if roi is None:
                return kept
        for tr in free:    # tracks not (re)detected on the whole frame: follow them in their crop
            d = await self._roi_detection(frame, tr, roi, timings)
            if d is not None:
                kept.append(self._update(tr, _detector_face(d)))
        return kept

    async def _roi_detection(self, frame: FrameSource, tr: Track, roi, timings: dict[str, float]):
        x0, y0, x1, y1 = tr.face.box
        side = roi.crop_scale * max(x1 - x0, y1 - y0)
        region = ((x0 + x1 - side) / 2.0, (y0 + y1 - side) / 2.0, side, side)
        found = [d for d in await self.pipeline.detect(frame, timings, region, detector=roi)
                 if iou(d.box, tr.face.box) > 0.0]
        return max(found, key=lambda d: d.score) if found else None

    def _best_match(self, box, tracks: list[Track]) -> Track | None:
        best, best_iou = None, self.options.match_iou
        for tr in tracks:
            overlap = iou(box, tr.face.box)
            if overlap >= best_iou:
                best, best_iou = tr, overlap
        return best

    def _update(self, tr: Track | None, face: Face) -> Track:
        if tr is None:
            return self._new_track(face)
        tr.face = face
        tr.age += 1
        return tr

    async def _plan(self, frame: FrameSource, detect: bool,
                    timings: dict[str, float]) -> list[LandmarkTask]:
        """What the landmark stage looks at this frame: every track's next crop (from its own
        landmarks) and, when ``detect``, a detection crop per new face."""
        pipe = self.pipeline
        if not detect:
            return [self._continue(tr) for tr in self.tracks]
        detections = await pipe.detect(frame, timings)
        work = []
        free = list(self.tracks)
        taken: list = []
        for d in detections:
            if len(taken) >= self.options.max_faces:
                break
            if any(iou(d.box, b) >= self.options.duplicate_iou for b in taken):
                continue
            taken.append(d.box)
            best = self._best_match(d.box, free)
            if best is not None:
                free.remove(best)
                work.append(LandmarkTask(best, pipe.crop_for_face(best.face), d.score, 1))
            else:
                work.append(LandmarkTask(None, pipe.crop_for_detection(d), d.score,
                                         max(1, pipe.options.passes)))
        # tracks the detector missed keep going on their own crops while presence holds (a graph
        # without presence cannot tell: the detector's word ends them)
        if pipe.manifest.landmarks.presence_threshold is not None:
            work += [self._continue(tr) for tr in free]
        return work

    def _continue(self, tr: Track) -> LandmarkTask:
        return LandmarkTask(tr, self.pipeline.crop_for_face(tr.face), tr.face.detector_score, 1)

    async def _run(self, frame: FrameSource, work: list[LandmarkTask],
                   timings: dict[str, float]) -> list[Track]:
        pipe = self.pipeline
        threshold = pipe.manifest.landmarks.presence_threshold
        kept = []
        for task in work:
            face = await pipe.refine(frame, task.crop, task.passes, timings)
            if threshold is not None and (face.presence is None or face.presence < threshold):
                continue
            if threshold is None and not _inside(face.crop, frame):
                continue      # no presence to say the face left: its crop did
            kept.append(self._update(task.track, replace(face, detector_score=task.detector_score)))
        return kept

    def _dedupe(self, tracks: list[Track]) -> list[Track]:
        """Two tracks that converged on one face: keep the older (its smoother has history)."""
        out: list[Track] = []
        for tr in sorted(tracks, key=lambda t: t.id):
            if all(iou(tr.face.box, o.face.box) < self.options.duplicate_iou for o in out):
                out.append(tr)
        return out

    def _smoothed(self, tr: Track, t: float) -> Face:
        raw = tr.face
        x0, y0, x1, y1 = raw.box
        size = max(1.0, 0.5 * ((x1 - x0) + (y1 - y0)))
        detector_only = self.pipeline.manifest.landmarks is None
        # a detector's box is not the points' extent (5 points span the eyes and mouth only):
        # its corners are smoothed with the points
        points = tr.smoother(list(raw.landmarks) + ([(x0, y0), (x1, y1)] if detector_only else []),
                             t, size)
        mesh = raw.mesh
        if mesh is not None and self.options.smooth_mesh:
            xy = tr.mesh_smoother(mesh, t, size)
            mesh = [(x, y, p[2]) for (x, y), p in zip(xy, mesh)]
        if detector_only:
            (bx0, by0), (bx1, by1) = points[-2:]
            return replace(raw, landmarks=points[:-2], mesh=mesh, box=(bx0, by0, bx1, by1))
        xs, ys = zip(*points)          # (x, y) pairs: the transpose in C
        return replace(raw, landmarks=points, mesh=mesh, box=(min(xs), min(ys), max(xs), max(ys)))


def _detector_face(d: Detection) -> Face:
    """A detector-only pipeline's face: the detector's keypoints are the landmarks."""
    return Face(d.box, list(d.keypoints), detector_score=d.score)


def _inside(crop: Crop | None, frame: FrameSource) -> bool:
    return crop is None or (0.0 <= crop.cx <= frame.width and 0.0 <= crop.cy <= frame.height)


def face_json(tf: TrackedFace, mesh: bool = False) -> dict[str, Any]:
    """The published form of a tracked face (frame pixels)."""
    return {"id": tf.id, **tf.face.to_json(mesh=mesh)}
