"""Result types: what one frame's processing yields, in frame (image/video) pixels."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .geometry import Crop, Point


@dataclass
class Detection:
    """One face from the detector + parser stage."""
    box: tuple[float, float, float, float]        # x0, y0, x1, y1
    score: float
    keypoints: list[Point]                        # the detector's own keypoints (6 for BlazeFace)


@dataclass
class Face:
    """One face's landmarks, in frame pixels, with the two confidences kept apart.

    JSON (:meth:`to_json`, the CLI's output and the page's ``faces`` event):
    ``{"box": [x0, y0, x1, y1], "detector_score": s | null, "presence": p | null,
    "landmarks": [[x, y], ...]}`` (+ ``"mesh": [[x, y, z], ...]`` on request).
    """
    box: tuple[float, float, float, float]        # x0, y0, x1, y1
    landmarks: list[Point]                        # the layout's points (98 WFLW), frame pixels
    detector_score: float | None = None
    """The detector's confidence for the detection this face came from. While tracking skips the
    detector it is the score of the last detection that started or confirmed the track; ``None``
    for a face only the landmark stage has seen."""
    presence: float | None = None
    """The landmark graph's face presence on this face's (last) crop, 0..1; ``None`` without a
    landmark graph (the detector's keypoints are the landmarks)."""
    mesh: Sequence[tuple[float, float, float]] | None = None
    """468 FaceMesh vertices (x, y, z) in frame pixels; from the pipeline a
    :class:`~.geometry.MappedPoints`, which maps them when first read."""
    crop: Crop | None = None                      # where the landmark stage looked (last pass)

    def label(self) -> str:
        """Short text for drawing: the confidences this face has."""
        parts = [f"face {self.detector_score:.2f}" if self.detector_score is not None else "",
                 f"presence {self.presence:.2f}" if self.presence is not None else ""]
        return " · ".join(p for p in parts if p)

    def to_json(self, mesh: bool = False) -> dict:
        out = {"box": [round(v, 2) for v in self.box],
               "detector_score": _rounded(self.detector_score), "presence": _rounded(self.presence),
               "landmarks": [[round(x, 2), round(y, 2)] for x, y in self.landmarks]}
        if mesh and self.mesh is not None:
            out["mesh"] = [[round(x, 2), round(y, 2), round(z, 2)] for x, y, z in self.mesh]
        return out


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass
class FrameResult:
    width: int
    height: int
    faces: list[Face] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)    # stage → ms
    detected: bool = True                                      # False when tracking skipped the detector
