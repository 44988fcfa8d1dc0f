"""Tiling for stills: where to run the detector so that small faces in a large photo are found.

The detectors see a letterboxed copy of what they are given, so a face smaller than the detector's
``min_face_fraction`` of the picture's long side is missed. :func:`tile_pyramid` lists the regions
(the whole frame, then levels of overlapping square tiles) and the face sizes each is trusted for;
:func:`usable_tile_detection` drops a tile's detections that belong to another tile or level;
:func:`suppress` merges what is left across tiles. Pure Python (stdlib), runs under Pyodide too.
"""
from __future__ import annotations

from typing import Iterator

from .geometry import iou
from .results import Detection

Region = tuple[float, float, float, float]      # x0, y0, width, height in frame pixels

TILE_OVERLAP = 0.25
"""Fraction of a tile shared with its neighbour: any face up to a quarter tile is whole in one tile."""

EDGE_MARGIN = 2.0
"""A box this close (px) to a tile edge inside the frame is cut by the edge: a neighbour sees it."""

SMALLER_OVERLAP = 0.6
"""A box whose intersection with a better box covers more than this of the smaller one's area is a
duplicate (a face's part found in one tile, the whole face in another)."""


def tile_pyramid(width: int, height: int, min_face: float | None,
                 min_fraction: float) -> Iterator[tuple[Region | None, float]]:
    """Regions to run the detector on, each with the largest face size it is trusted for.

    First ``(None, inf)``: the whole frame, which finds faces down to ``min_fraction`` of its long
    side. Then levels of overlapping square tiles whose side doubles (or grows by
    ``TILE_OVERLAP / min_fraction`` if that is less) from ``min_face / min_fraction``
    (where a face of ``min_face`` px is just big enough for the detector) until a level keeps the
    faces the whole frame finds (side × :data:`TILE_OVERLAP` ≥ ``min_fraction`` × the long side:
    0.4 × the long side for the full-range detector's 10 %). A tile of side s finds faces from
    ``min_fraction``·s and, thanks to the overlap, sees any face up to a quarter tile whole; so the
    levels' ranges meet, and the whole frame takes over above them.
    """
    yield None, float("inf")
    longest = max(width, height)
    if not min_face or min_face >= min_fraction * longest:
        return                                  # the whole frame already shows such a face
    side = min_face / min_fraction
    # a level of side s keeps faces up to TILE_OVERLAP·s; the next one must find faces that small
    growth = min(2.0, TILE_OVERLAP / min_fraction)
    while True:
        tw, th = min(side, width), min(side, height)
        yield from (((x, y, tw, th), side * TILE_OVERLAP)
                    for y in tile_starts(height, th) for x in tile_starts(width, tw))
        if side * TILE_OVERLAP >= min_fraction * longest:
            break
        side *= growth


def tile_starts(length: float, tile: float) -> list[float]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length]`` with :data:`TILE_OVERLAP`
    (at least that much; the last tile ends exactly at ``length``)."""
    if tile >= length:
        return [0.0]
    stride = tile * (1.0 - TILE_OVERLAP)
    n = int(-(-(length - tile) // stride)) + 1      # ceil
    return [min(i * stride, length - tile) for i in range(n)]


def usable_tile_detection(d: Detection, region: Region, keep_below: float,
                          frame_width: float, frame_height: float) -> bool:
    """A tile's detection counts if the face is small for the tile (larger faces belong to a coarser
    level) and does not touch a tile edge that lies inside the frame (another tile sees it whole)."""
    x0, y0, x1, y1 = d.box
    if max(x1 - x0, y1 - y0) > keep_below:
        return False
    rx, ry, rw, rh = region
    m = EDGE_MARGIN
    if (x0 < rx + m and rx > 0) or (y0 < ry + m and ry > 0):
        return False
    if (x1 > rx + rw - m and rx + rw < frame_width) or (y1 > ry + rh - m and ry + rh < frame_height):
        return False
    return True


def suppress(detections: list[Detection], iou_threshold: float) -> list[Detection]:
    """Greedy NMS in pure Python (few boxes: merging tiles), best score first. A box mostly inside a
    better one (see :data:`SMALLER_OVERLAP`) is a duplicate too."""
    kept: list[Detection] = []
    for d in sorted(detections, key=lambda d: -d.score):
        if all(iou(d.box, k.box) <= iou_threshold and overlap_of_smaller(d.box, k.box) <= SMALLER_OVERLAP
               for k in kept):
            kept.append(d)
    return kept


def overlap_of_smaller(a, b) -> float:
    """Intersection area of boxes ``a`` and ``b`` (x0, y0, x1, y1) over the smaller one's area."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 0.0
