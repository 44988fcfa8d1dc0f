"""Tiling for stills (facelandmarks.pipeline.tiling): which regions the detector runs on, which
tile detections count, and how they merge — so that every face from ``min_face`` up is seen whole,
at a size the detector finds, by exactly the regions that keep it."""
from __future__ import annotations

import itertools
import math

import pytest

from facelandmarks.pipeline.results import Detection
from facelandmarks.pipeline.tiling import (TILE_OVERLAP, overlap_of_smaller, suppress, tile_pyramid,
                                           tile_starts, usable_tile_detection)


@pytest.mark.parametrize("length,tile,starts", [
    (100, 100, [0.0]),                       # one tile fills it
    (100, 200, [0.0]),                       # tile larger than the frame
    (100, 40, [0.0, 30.0, 60.0]),            # stride 30; the last ends at 100 exactly
    (130, 40, [0.0, 30.0, 60.0, 90.0]),
    (131, 40, [0.0, 30.0, 60.0, 90.0, 91.0]),
])
def test_tile_starts(length, tile, starts):
    assert tile_starts(length, tile) == pytest.approx(starts)
    got = tile_starts(length, tile)
    if len(got) > 1:                         # neighbours overlap by at least TILE_OVERLAP
        assert all(b - a <= tile * (1 - TILE_OVERLAP) + 1e-9 for a, b in zip(got, got[1:]))
        assert got[-1] + tile == pytest.approx(length)


@pytest.mark.parametrize("size,min_face,fraction,tiles", [
    ((4000, 3000), 40, 0.1, 174),            # README: a 40-px face in a 4000×3000 photo, 175 regions
    ((4000, 3000), None, 0.1, 0),            # no min_face: whole frame only
    ((4000, 3000), 0, 0.1, 0),
    ((640, 480), 64, 0.1, 0),                # the whole frame already shows a 64-px face at 10 %
    ((640, 480), 40, 0.1, 4),                # one level of 400-px tiles: 2 × 2
    ((480, 640), 40, 0.15, 9 + 4),           # portrait, short range: 267-px tiles, then 444-px
])
def test_pyramid_regions(size, min_face, fraction, tiles):
    regions = list(tile_pyramid(*size, min_face, fraction))
    assert regions[0] == (None, float("inf"))
    assert len(regions) - 1 == tiles
    for region, keep_below in regions[1:]:
        x, y, w, h = region
        assert 0 <= x and 0 <= y and x + w <= size[0] + 1e-9 and y + h <= size[1] + 1e-9
        growth = min(2.0, TILE_OVERLAP / fraction)                     # sides grow per level
        level = math.log(keep_below / TILE_OVERLAP / (min_face / fraction), growth)
        assert level == pytest.approx(round(level))
        assert max(w, h) <= keep_below / TILE_OVERLAP + 1e-9          # a tile is at most its side


@pytest.mark.parametrize("size,min_face,fraction", [
    ((4000, 3000), 40, 0.1),
    ((1920, 1080), 30, 0.1),
    ((800, 1200), 25, 0.15),
])
def test_every_face_from_min_face_up_has_a_region_that_finds_and_keeps_it(size, min_face, fraction):
    """A face of side s at any place is inside some region whole, is at least ``fraction`` of that
    region's long side (the detector finds it) and that region keeps it (size and edge rules)."""
    w, h = size
    regions = list(tile_pyramid(w, h, min_face, fraction))
    sizes = [min_face * k for k in (1, 1.5, 2.3, 4, 7, 13)] + [0.5 * min(w, h)]
    for s in sizes:
        for fx, fy in itertools.product((0.0, 0.13, 0.37, 0.5, 0.71, 0.99), repeat=2):
            x0, y0 = fx * (w - s), fy * (h - s)
            d = Detection((x0, y0, x0 + s, y0 + s), 0.9, [])
            ok = False
            for region, keep_below in regions:
                if region is None:
                    ok = s >= fraction * max(w, h)
                else:
                    rx, ry, rw, rh = region
                    inside = rx <= x0 and ry <= y0 and x0 + s <= rx + rw and y0 + s <= ry + rh
                    ok = (inside and s >= fraction * max(rw, rh) - 1e-9
                          and usable_tile_detection(d, region, keep_below, w, h))
                if ok:
                    break
            assert ok, (s, x0, y0)


@pytest.mark.parametrize("box,region,keep_below,usable", [
    ((50, 50, 80, 80), (0, 0, 200, 200), 50, True),          # small, well inside
    ((50, 50, 120, 120), (0, 0, 200, 200), 50, False),       # too big for this level
    ((0, 0, 30, 30), (0, 0, 200, 200), 50, True),            # on the frame's own edge: fine
    ((150, 150, 199, 199), (100, 100, 100, 100), 50, False), # touches the tile's inner-frame right edge
    ((101, 150, 130, 180), (100, 100, 100, 100), 50, False), # touches the tile's left edge (inside frame)
    ((850, 550, 899, 599), (800, 500, 100, 100), 50, True),  # right/bottom edges are the frame's
])
def test_usable_tile_detection(box, region, keep_below, usable):
    assert usable_tile_detection(Detection(box, 0.9, []), region, keep_below, 900, 600) is usable


def _d(box, score):
    return Detection(box, score, [])


@pytest.mark.parametrize("boxes,kept", [
    ([((0, 0, 10, 10), 0.9), ((1, 1, 11, 11), 0.8)], [0]),              # IoU 0.68: duplicate
    ([((0, 0, 10, 10), 0.7), ((1, 1, 11, 11), 0.8)], [1]),              # best score wins
    ([((0, 0, 10, 10), 0.9), ((20, 20, 30, 30), 0.8)], [0, 1]),         # apart: both
    # wholly inside a better box: a duplicate although the IoU is only 0.09
    ([((0, 0, 100, 100), 0.9), ((10, 10, 40, 40), 0.85)], [0]),
    ([((0, 0, 100, 100), 0.9), ((10, 10, 40, 40), 0.95)], [1]),
    ([((0, 0, 100, 100), 0.9), ((70, 70, 120, 120), 0.8)], [0, 1]),   # 36 % of the smaller: both
    ([], []),
])
def test_suppress(boxes, kept):
    dets = [_d(b, s) for b, s in boxes]
    assert suppress(dets, 0.3) == [dets[i] for i in kept]


@pytest.mark.parametrize("a,b,value", [
    ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
    ((0, 0, 10, 10), (5, 0, 15, 10), 0.5),
    ((0, 0, 100, 100), (10, 10, 20, 20), 1.0),
    ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
    ((0, 0, 0, 10), (0, 0, 10, 10), 0.0),       # empty box
])
def test_overlap_of_smaller(a, b, value):
    assert overlap_of_smaller(a, b) == pytest.approx(value)
