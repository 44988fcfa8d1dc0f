"""Result types: what one frame's processing yields, in frame (image/video) pixels."""
from __future__ import annotations

from dataclasses import dataclass, field

from .geometry import Crop, Point


@dataclass
class Detection:
    """One face from the detector + parser stage."""
    box: tuple[float, float, float, float]        # x0, y0, x1, y1
    score: float
    keypoints: list[Point]                        # the detector's own keypoints (6 for BlazeFace)


@dataclass
class Face:
    box: tuple[float, float, float, float]
    score: float                                  # detector score, or landmark presence when tracking
    landmarks: list[Point]                        # the layout's points (98 WFLW), frame pixels
    mesh: list[tuple[float, float, float]] | None = None   # 468 FaceMesh vertices (x, y, z) in pixels
    presence: float | None = None
    crop: Crop | None = None                      # where the landmark stage looked (last pass)

    def to_json(self, mesh: bool = False) -> dict:
        out = {"box": [round(v, 2) for v in self.box], "score": round(self.score, 4),
               "landmarks": [[round(x, 2), round(y, 2)] for x, y in self.landmarks]}
        if self.presence is not None:
            out["presence"] = round(self.presence, 4)
        if mesh and self.mesh is not None:
            out["mesh"] = [[round(x, 2), round(y, 2), round(z, 2)] for x, y, z in self.mesh]
        return out


@dataclass
class FrameResult:
    width: int
    height: int
    faces: list[Face] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)    # stage → ms
    detected: bool = True                                      # False when tracking skipped the detector
