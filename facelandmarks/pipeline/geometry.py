"""Plane geometry shared by every runtime: letterboxing, face crops, mapping points between frames.

Pure Python (no numpy): this module runs in the page under Pyodide as well as in CPython.

Convention: an :class:`Affine` maps **model-input pixels → frame pixels**. That is the direction a
sampler needs (PIL's ``Image.transform`` takes exactly these six numbers) and the direction in which
model outputs are mapped back to the frame. The canvas wants the other direction; see
:meth:`Affine.canvas_transform`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence, overload

Point = tuple[float, float]


@dataclass(frozen=True)
class Affine:
    """x' = a·x + b·y + c ; y' = d·x + e·y + f"""
    a: float
    b: float
    c: float
    d: float
    e: float
    f: float

    @staticmethod
    def identity() -> "Affine":
        return Affine(1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

    def apply(self, x: float, y: float) -> Point:
        return (self.a * x + self.b * y + self.c, self.d * x + self.e * y + self.f)

    def apply_all(self, points: Iterable[Sequence[float]]) -> list[Point]:
        a, b, c, d, e, f = self.a, self.b, self.c, self.d, self.e, self.f
        return [(a * p[0] + b * p[1] + c, d * p[0] + e * p[1] + f) for p in points]

    def map_flat(self, flat: Sequence[float], stride: int = 2, sx: float = 1.0,
                 sy: float = 1.0) -> tuple[list[float], list[float]]:
        """Points stored flat (x, y at the start of every ``stride`` values, as model outputs are),
        each scaled by (``sx``, ``sy``) first: their frame xs and ys. Slices and zips instead of a
        tuple per point: this runs on every landmark output of every frame (478 mesh points)."""
        a, b, d, e = self.a * sx, self.b * sy, self.d * sx, self.e * sy
        c, f = self.c, self.f
        px, py = flat[0::stride], flat[1::stride]
        return [a * x + b * y + c for x, y in zip(px, py)], [d * x + e * y + f for x, y in zip(px, py)]

    def map_xyz(self, flat: Sequence[float], sx: float = 1.0, sy: float = 1.0,
                zscale: float = 1.0) -> list[tuple[float, float, float]]:
        """Points stored flat as x, y, z triples (a mesh output), x and y scaled by (``sx``, ``sy``)
        and mapped, z scaled by ``zscale``: one (x, y, z) per point, made in one pass (no slices,
        no separate lists zipped afterwards: this runs on the 468-point mesh of every frame)."""
        a, b, d, e = self.a * sx, self.b * sy, self.d * sx, self.e * sy
        c, f = self.c, self.f
        values = iter(flat)
        return [(a * x + b * y + c, d * x + e * y + f, z * zscale) for x, y, z in zip(values, values, values)]

    def inverse(self) -> "Affine":
        det = self.a * self.e - self.b * self.d
        if abs(det) < 1e-12:
            raise ValueError("affine transform is not invertible")
        a, b, d, e = self.e / det, -self.b / det, -self.d / det, self.a / det
        return Affine(a, b, -(a * self.c + b * self.f), d, e, -(d * self.c + e * self.f))

    def then(self, other: "Affine") -> "Affine":
        """The transform that applies ``self`` first, then ``other``."""
        o = other
        return Affine(
            o.a * self.a + o.b * self.d, o.a * self.b + o.b * self.e, o.a * self.c + o.b * self.f + o.c,
            o.d * self.a + o.e * self.d, o.d * self.b + o.e * self.e, o.d * self.c + o.e * self.f + o.f)

    @property
    def scale(self) -> float:
        """Mean length scale (frame pixels per model pixel)."""
        return math.sqrt(abs(self.a * self.e - self.b * self.d))

    def pil_data(self) -> tuple[float, ...]:
        """The six numbers for PIL's ``Image.transform(size, Image.AFFINE, data)``."""
        return (self.a, self.b, self.c, self.d, self.e, self.f)

    def canvas_transform(self) -> tuple[float, ...]:
        """Arguments for ``CanvasRenderingContext2D.setTransform(a, b, c, d, e, f)`` that draw the
        frame into the model-input canvas (canvas order: x' = a·x + c·y + e, y' = b·x + d·y + f)."""
        inv = self.inverse()
        return (inv.a, inv.d, inv.b, inv.e, inv.c, inv.f)


def letterbox(frame_w: int, frame_h: int, input_w: int, input_h: int, mode: str = "center") -> Affine:
    """Fit the frame into the model input keeping its aspect ratio.

    ``mode`` is ``"center"`` (pad equally on both sides, MediaPipe's convention) or ``"top-left"``
    (pad right/bottom only, the seed RetinaFace's convention) or ``"stretch"`` (no padding).
    Returns model-input pixels → frame pixels.
    """
    if frame_w <= 0 or frame_h <= 0:
        raise ValueError(f"empty frame {frame_w}x{frame_h}")
    if mode == "stretch":
        return Affine(frame_w / input_w, 0.0, 0.0, 0.0, frame_h / input_h, 0.0)
    s = min(input_w / frame_w, input_h / frame_h)
    if mode == "center":
        ox, oy = (input_w - frame_w * s) / 2.0, (input_h - frame_h * s) / 2.0
    elif mode == "top-left":
        ox = oy = 0.0
    else:
        raise ValueError(f"unknown letterbox mode {mode!r}")
    return Affine(1.0 / s, 0.0, -ox / s, 0.0, 1.0 / s, -oy / s)


@dataclass(frozen=True)
class Crop:
    """A square, rotated region of the frame: centre and side in frame pixels, rotation in radians
    (the angle of the crop's x axis in the frame; 0 = upright)."""
    cx: float
    cy: float
    size: float
    angle: float = 0.0

    def to_frame(self, input_w: int, input_h: int) -> Affine:
        """Model-input pixels of a ``input_w``×``input_h`` crop → frame pixels."""
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        sx, sy = self.size / input_w, self.size / input_h
        # frame = centre + R(angle) · ((x - W/2)·sx, (y - H/2)·sy)
        a, b = cos * sx, -sin * sy
        d, e = sin * sx, cos * sy
        c = self.cx - a * input_w / 2.0 - b * input_h / 2.0
        f = self.cy - d * input_w / 2.0 - e * input_h / 2.0
        return Affine(a, b, c, d, e, f)


def eye_line_angle(right_eye: Sequence[float], left_eye: Sequence[float]) -> float:
    """Angle of the line from the person's right eye (image left) to their left eye (image right)."""
    return math.atan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])


def crop_from_box(box: Sequence[float], right_eye: Sequence[float], left_eye: Sequence[float],
                  scale: float, shift_y: float = 0.0) -> Crop:
    """The landmark crop for a detection: square around the box centre, ``scale`` × the box's long
    side, rotated by the eye line (MediaPipe's detection→ROI rule). ``shift_y`` moves the centre along
    the face's own vertical axis, in units of the box height."""
    x0, y0, x1, y1 = box
    angle = eye_line_angle(right_eye, left_eye)
    h = y1 - y0
    cx = (x0 + x1) / 2.0 - math.sin(angle) * shift_y * h
    cy = (y0 + y1) / 2.0 + math.cos(angle) * shift_y * h
    return Crop(cx, cy, scale * max(x1 - x0, h), angle)


def crop_from_points(points: Sequence[Sequence[float]], right_eye: Sequence[float],
                     left_eye: Sequence[float], scale: float) -> Crop:
    """The landmark crop that follows a face's own landmarks (second pass and tracking): the points'
    extent measured along the eye line and across it, centred on that extent, ``scale`` × its long
    side. ``points`` may be :class:`MappedPoints`: then the extent comes from its model outputs
    without mapping them."""
    angle = eye_line_angle(right_eye, left_eye)
    cos, sin = math.cos(angle), math.sin(angle)
    if isinstance(points, MappedPoints):
        u0, u1, v0, v1 = points.extent(cos, sin)
    else:
        us = [p[0] * cos + p[1] * sin for p in points]      # coordinates in the face's own axes
        vs = [-p[0] * sin + p[1] * cos for p in points]
        u0, u1, v0, v1 = min(us), max(us), min(vs), max(vs)
    uc, vc = (u0 + u1) / 2.0, (v0 + v1) / 2.0
    return Crop(uc * cos - vc * sin, uc * sin + vc * cos, scale * max(u1 - u0, v1 - v0), angle)


class MappedPoints(Sequence[tuple[float, float, float]]):
    """A model's flat x, y, z outputs seen as frame-pixel (x, y, z) points, mapped on first use.

    The point ``i`` is :meth:`Affine.map_xyz` of the flat values: (x·sx, y·sy) through ``to_frame``,
    z × ``zscale``. A tracked frame needs FaceMesh's 468 points only to draw, publish or smooth
    them (off by default in the page); the next crop needs only their extent, which :meth:`extent`
    reads straight from the flat values. So a frame that shows the 98 points maps none of them."""

    __slots__ = ("flat", "to_frame", "sx", "sy", "zscale", "_points")

    def __init__(self, flat: Sequence[float], to_frame: Affine, sx: float = 1.0, sy: float = 1.0,
                 zscale: float = 1.0):
        self.flat, self.to_frame, self.sx, self.sy, self.zscale = flat, to_frame, sx, sy, zscale
        self._points: list[tuple[float, float, float]] | None = None

    def points(self) -> list[tuple[float, float, float]]:
        if self._points is None:
            self._points = self.to_frame.map_xyz(self.flat, self.sx, self.sy, self.zscale)
        return self._points

    def __len__(self) -> int:
        return len(self.flat) // 3

    @overload
    def __getitem__(self, i: int) -> tuple[float, float, float]: ...
    @overload
    def __getitem__(self, i: slice) -> list[tuple[float, float, float]]: ...

    def __getitem__(self, i):
        if self._points is not None or isinstance(i, slice):
            return self.points()[i]
        n = len(self)            # one point (e.g. an eye for the next crop's angle): map it alone
        if not -n <= i < n:
            raise IndexError(f"point {i} of {n}")
        i = i + n if i < 0 else i
        return self.to_frame.map_xyz(self.flat[3 * i: 3 * i + 3], self.sx, self.sy, self.zscale)[0]

    def __iter__(self) -> Iterator[tuple[float, float, float]]:
        return iter(self.points())

    def __repr__(self) -> str:
        return f"MappedPoints({len(self)} points{', mapped' if self._points is not None else ''})"

    def extent(self, cos: float, sin: float) -> tuple[float, float, float, float]:
        """min u, max u, min v, max v of the mapped points in the axes u = (cos, sin),
        v = (−sin, cos): each is linear in the flat x, y, so one multiply-add per coordinate."""
        t, sx, sy = self.to_frame, self.sx, self.sy
        ua, ub, uc = (cos * t.a + sin * t.d) * sx, (cos * t.b + sin * t.e) * sy, cos * t.c + sin * t.f
        va, vb, vc = (cos * t.d - sin * t.a) * sx, (cos * t.e - sin * t.b) * sy, cos * t.f - sin * t.c
        xs, ys = self.flat[0::3], self.flat[1::3]
        us = [ua * x + ub * y for x, y in zip(xs, ys)]
        vs = [va * x + vb * y for x, y in zip(xs, ys)]
        return min(us) + uc, max(us) + uc, min(vs) + vc, max(vs) + vc


def box_of(points: Iterable[Sequence[float]]) -> tuple[float, float, float, float]:
    xs, ys = zip(*((p[0], p[1]) for p in points))
    return (min(xs), min(ys), max(xs), max(ys))


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
