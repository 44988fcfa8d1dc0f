"""The stage loop: frame → letterbox → detector → parser → landmark crop(s) → landmarks → frame pixels.

Written against two small interfaces so the same code runs in CPython (onnxruntime, PIL) and in the
page (onnxruntime-web through Pyodide, a canvas):

* :class:`Runtime` runs a graph named in the manifest and reads its outputs;
* :class:`FrameSource` turns a region of the current frame into a model-input tensor.

Tensors are opaque here: a numpy array in CPython, an ``ort.Tensor`` in the page. The pipeline only
passes them between stages and reads small outputs (boxes, landmarks) as flat float sequences.
All coroutines, because onnxruntime-web's ``run`` is a promise; the CPython runtime simply awaits
synchronous work.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Protocol, Sequence

from .geometry import Affine, Crop, MappedPoints, box_of, crop_from_box, crop_from_points, iou, letterbox
from .manifest import DetectorSpec, GraphSpec, InputSpec, Manifest
from .options import PipelineOptions
from .results import Detection, Face, FrameResult
from .tiling import Region, suppress, tile_pyramid, usable_tile_detection


class Runtime(Protocol):
    async def run(self, graph: GraphSpec, feeds: dict[str, Any]) -> dict[str, Any]:
        """Run ``graph`` with feeds keyed by *tensor name*; return outputs keyed by tensor name."""

    def read(self, tensor: Any) -> Sequence[float]:
        """The tensor's values, flattened (row-major)."""

    def release(self, tensors: dict[str, Any]) -> None:
        """Free tensors the pipeline no longer needs (ORT web: dispose; CPython: nothing)."""


class FrameSource(Protocol):
    width: int
    height: int

    def to_tensor(self, to_frame: Affine, spec: InputSpec) -> Any:
        """Sample the frame through ``to_frame`` (model-input pixels → frame pixels) into an
        NCHW float32 tensor of ``spec``'s size and normalisation; outside the frame is black."""


class FacePipeline:
    def __init__(self, manifest: Manifest, runtime: Runtime, options: PipelineOptions | None = None,
                 clock=time.perf_counter):
        self.manifest = manifest
        self.runtime = runtime
        self.options = options or PipelineOptions()
        self.detector_spec: DetectorSpec = manifest.detector(self.options.detector)
        self.clock = clock
        self.iou_threshold = float(self.detector_spec.parser.extra.get("iou_threshold") or 0.3)
        lm = manifest.landmarks
        self._flip_permutation = list(range(lm.count)) if lm else []
        for a, b in (lm.flip_pairs if lm else ()):
            self._flip_permutation[a], self._flip_permutation[b] = b, a
        if self.options.flip_average and lm and not lm.flip_pairs:
            raise ValueError("flip_average needs the manifest's landmarks.flip_pairs")

    # -- detector + parser --------------------------------------------------------------------
    async def detect(self, frame: FrameSource, timings: dict[str, float] | None = None,
                     region: Region | None = None, detector: DetectorSpec | None = None) -> list[Detection]:
        """Detector + parser on the whole frame, or on ``region`` (x0, y0, w, h) of it (it may reach
        outside the frame: that part is black). ``detector``: another of the manifest's detectors
        (tracking's roi detector) instead of the pipeline's own."""
        det = detector or self.detector_spec
        timings = {} if timings is None else timings
        x0, y0, w, h = region or (0, 0, frame.width, frame.height)
        to_frame = letterbox(w, h, det.input.width, det.input.height, det.input.letterbox).then(
            Affine(1.0, 0.0, x0, 0.0, 1.0, y0))
        t0 = self.clock()
        image = frame.to_tensor(to_frame, det.input)
        t1 = self.clock()
        raw = await self.runtime.run(det.graph, {det.graph.inputs["image"]: image})
        t2 = self.clock()
        feeds = {det.parser.inputs[role]: raw[det.graph.outputs[role]]
                 for role in ("bbox_regressions", "scores", "ldm_regressions")}
        parsed = await self.runtime.run(det.parser, feeds)
        t3 = self.clock()
        self.runtime.release({"image": image})
        self.runtime.release(raw)
        detections = self._decode(parsed, to_frame, det)
        self.runtime.release(parsed)
        timings["preprocess"] = timings.get("preprocess", 0.0) + (t1 - t0) * 1e3
        timings["detector"] = timings.get("detector", 0.0) + (t2 - t1) * 1e3
        timings["parser"] = timings.get("parser", 0.0) + (t3 - t2) * 1e3
        return detections

    async def detect_all(self, frame: FrameSource, timings: dict[str, float] | None = None) -> list[Detection]:
        """Every face of a still image, small ones included: the whole frame, then overlapping
        square tiles of halving size until a face of ``options.min_face`` pixels fills enough of a
        tile for the detector; merged by NMS across tiles. See :mod:`.tiling`."""
        timings = {} if timings is None else timings
        min_fraction = self.detector_spec.min_face_fraction
        found: list[Detection] = []
        for region, keep_below in tile_pyramid(frame.width, frame.height, self.options.min_face,
                                               min_fraction):
            for d in await self.detect(frame, timings, region):
                if region is None or usable_tile_detection(d, region, keep_below,
                                                           frame.width, frame.height):
                    found.append(d)
        return suppress(found, self.iou_threshold)

    def _decode(self, parsed: dict[str, Any], to_frame: Affine, det: DetectorSpec) -> list[Detection]:
        boxes = self.runtime.read(parsed[det.parser.outputs["boxes"]])
        scores = self.runtime.read(parsed[det.parser.outputs["scores"]])
        landms = self.runtime.read(parsed[det.parser.outputs["landms"]])
        n = len(scores)
        k = int(det.keypoints["count"])
        # normalised input coordinates → model-input pixels → frame pixels
        sx, sy = det.output_scale
        px, py = det.input.width / sx, det.input.height / sy
        threshold = self.options.score_threshold
        out = []
        for i in range(n):
            score = float(scores[i])
            if threshold is not None and score < threshold:
                continue
            x0, y0 = to_frame.apply(boxes[4 * i] * px, boxes[4 * i + 1] * py)
            x1, y1 = to_frame.apply(boxes[4 * i + 2] * px, boxes[4 * i + 3] * py)
            base = 2 * k * i
            kps = to_frame.apply_all((landms[base + 2 * j] * px, landms[base + 2 * j + 1] * py)
                                     for j in range(k))
            out.append(Detection((x0, y0, x1, y1), score, kps))
        out.sort(key=lambda d: -d.score)
        if self.options.max_faces is not None:
            out = out[: self.options.max_faces]
        return out

    # -- landmark stage ------------------------------------------------------------------------
    def crop_for_detection(self, detection: Detection) -> Crop:
        lm = self.manifest.landmarks
        kp = self.detector_spec.keypoints
        return crop_from_box(detection.box, detection.keypoints[kp["right_eye"]],
                             detection.keypoints[kp["left_eye"]], lm.crop_scale, lm.crop_shift_y)

    def crop_for_face(self, face: Face) -> Crop:
        """The next crop from a face's own landmarks (second pass, tracking): around the mesh at
        the crop scale, or around the points at the manifest's ``track.scale``."""
        lm = self.manifest.landmarks
        if lm.track_from == "points":
            points = face.landmarks
            return crop_from_points(points, points[lm.track_right_eye], points[lm.track_left_eye],
                                    lm.track_scale)
        mesh = face.mesh
        return crop_from_points(mesh, mesh[lm.mesh_right_eye],
                                mesh[lm.mesh_left_eye], lm.crop_scale)

    async def landmarks(self, frame: FrameSource, crop: Crop, timings: dict[str, float] | None = None,
                        mirrored: bool = False, keep_mesh: bool | None = None) -> Face:
        """Run the landmark graph on one crop; points come back in frame pixels.

        ``mirrored`` samples the crop flipped left-right (the flip is part of the sampling affine,
        so outputs map straight back to frame pixels) and swaps the layout's left/right points.
        ``keep_mesh``: keep the mesh too (default: only for an un-mirrored pass; a mirrored
        pass's mesh is in mirrored vertex order). The mesh is mapped to the frame when first used
        (:class:`~.geometry.MappedPoints`)."""
        lm = self.manifest.landmarks
        timings = {} if timings is None else timings
        w, h = lm.input.width, lm.input.height
        to_frame = crop.to_frame(w, h)
        if mirrored:
            to_frame = Affine(-1.0, 0.0, float(w), 0.0, 1.0, 0.0).then(to_frame)
        t0 = self.clock()
        image = frame.to_tensor(to_frame, lm.input)
        t1 = self.clock()
        out = await self.runtime.run(lm.graph, {lm.graph.inputs["image"]: image})
        t2 = self.clock()
        roles = lm.graph.outputs
        points_flat = self.runtime.read(out[roles["points"]])
        mesh_flat = self.runtime.read(out[roles["mesh"]]) if "mesh" in roles else None
        presence = float(self.runtime.read(out[roles["presence"]])[0]) if "presence" in roles else None
        self.runtime.release({"image": image})
        self.runtime.release(out)
        # crop-normalised → crop pixels → frame pixels; z scales like x
        xs, ys = to_frame.map_flat(points_flat, 2, w, h)
        points = list(zip(xs, ys))
        if mirrored:
            points = [points[j] for j in self._flip_permutation]
        mesh = None
        if mesh_flat is not None and (keep_mesh or (keep_mesh is None and not mirrored)):
            # a mirrored pass only adds points
            mesh = MappedPoints(mesh_flat, to_frame, w, h, crop.size)
        timings["preprocess"] = timings.get("preprocess", 0.0) + (t1 - t0) * 1e3
        timings["landmarks"] = timings.get("landmarks", 0.0) + (t2 - t1) * 1e3
        return Face(box=(min(xs), min(ys), max(xs), max(ys)), landmarks=points, presence=presence,
                    mesh=mesh, crop=crop)

    async def landmarks_averaged(self, frame: FrameSource, crop: Crop,
                                 timings: dict[str, float] | None = None) -> Face:
        """The crop and its mirror image, points averaged: FaceMesh is not exactly mirror-symmetric
        (up to ~3 % of the inter-ocular distance on real faces), the average is."""
        face = await self.landmarks(frame, crop, timings)
        flipped = await self.landmarks(frame, crop, timings, mirrored=True)
        face.landmarks = [((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0)
                          for a, b in zip(face.landmarks, flipped.landmarks)]
        if face.presence is not None:
            face.presence = (face.presence + flipped.presence) / 2.0
        face.box = box_of(face.landmarks)
        return face

    async def refine(self, frame: FrameSource, crop: Crop, passes: int,
                     timings: dict[str, float]) -> Face:
        """``passes`` landmark passes, each cropping from the previous pass's landmarks."""
        run = self.landmarks_averaged if self.options.flip_average else self.landmarks
        face = await run(frame, crop, timings)
        for _ in range(passes - 1):
            face = await run(frame, self.crop_for_face(face), timings)
        return face

    # -- a whole frame -------------------------------------------------------------------------
    async def process(self, frame: FrameSource) -> FrameResult:
        """Detect every face, then (if the manifest has a landmark graph) run the landmark stage."""
        t_start = self.clock()
        timings: dict[str, float] = {}
        detections = await (self.detect_all(frame, timings) if self.options.min_face
                            else self.detect(frame, timings))
        result = FrameResult(frame.width, frame.height, timings=timings)
        lm = self.manifest.landmarks
        for d in detections:
            if lm is None:    # the detector's keypoints are the landmarks (e.g. RetinaFace-98)
                result.faces.append(Face(d.box, list(d.keypoints), detector_score=d.score))
                continue
            face = await self.refine(frame, self.crop_for_detection(d), max(1, self.options.passes), timings)
            if face.presence is not None and face.presence < lm.presence_threshold:
                continue
            # a still's face is reported with the detector's box and score beside the presence
            result.faces.append(replace(face, box=d.box, detector_score=d.score))
        timings["total"] = (self.clock() - t_start) * 1e3
        return result
