"""Landmark layouts: WFLW-98 groups, mirror pairs, the WFLW -> iBUG-68 map, and NME.

Standard library only (runs under Pyodide in the browser).

Sources of the standard tables (checked against their public code, not invented here):

* ``WFLW98_FLIP_PAIRS``: ``MATCHED_PARTS["WFLW"]`` in HRNet-Facial-Landmark-Detection,
  ``lib/utils/transforms.py`` (HRNet/HRNet-Facial-Landmark-Detection on GitHub), the pairs used for
  horizontal-flip augmentation when training on WFLW. Points not listed there are on the mid-line and
  map to themselves (contour 16, nose 51-54 and 57, lip mid-points 79 85 90 94).
* ``WFLW98_TO_68``: the widely used ``WFLW_98_TO_DLIB_68_IDX_MAPPING`` (e.g. in the AdaptiveWingLoss
  and DSLPT code bases): jaw = every 2nd contour point, brows = the upper brow edges 33-37 / 42-46,
  nose 51-59, eyes 60 61 63 64 65 67 / 68 69 71 72 73 75, mouth 76-95.

WFLW order (image-left = the subject's right side in an un-mirrored photo): contour 0-32 runs from the
image-left ear level down to the chin (16) and up to the image-right side; brows 33-41 (image-left:
33 outer end, 34-36 upper edge, 37 inner end, 38-41 lower edge inner -> outer) and 42-50 (42 inner
end ... 46 outer end, 47-50 lower edge outer -> inner); nose bridge 51-54 (top -> tip), lower nose
55-59; eyes 60-67 and 68-75 (each: corner, upper lid, corner, lower lid; 60 and 72 are the outer
corners); outer lip 76-87, inner lip 88-95; pupils 96 (image-left) and 97.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

N_WFLW = 98
N_IBUG = 68

#: group name -> range of WFLW-98 indices
WFLW98_GROUPS: dict[str, range] = {
    "contour": range(0, 33),
    "brows": range(33, 51),
    "nose": range(51, 60),
    "eyes": range(60, 76),
    "mouth": range(76, 96),
    "pupils": range(96, 98),
}

#: group name -> range of iBUG-68 indices (the usual names: jaw, not contour)
IBUG68_GROUPS: dict[str, range] = {
    "jaw": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "mouth": range(48, 68),
}

#: horizontal-mirror pairs of WFLW-98 (HRNet-Facial-Landmark-Detection, MATCHED_PARTS["WFLW"])
WFLW98_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (0, 32), (1, 31), (2, 30), (3, 29), (4, 28), (5, 27), (6, 26), (7, 25), (8, 24), (9, 23),
    (10, 22), (11, 21), (12, 20), (13, 19), (14, 18), (15, 17),                      # contour
    (33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47),  # brows
    (60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73),  # eyes
    (55, 59), (56, 58),                                                              # nose
    (76, 82), (77, 81), (78, 80), (87, 83), (86, 84),                                # outer lip
    (88, 92), (89, 91), (95, 93),                                                    # inner lip
    (96, 97),                                                                        # pupils
)


#: horizontal-mirror pairs of iBUG-68 (the 300-W / dlib order; 8, 27-30, 33, 51, 57, 62, 66 are on
#: the mid-line)
IBUG68_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (0, 16), (1, 15), (2, 14), (3, 13), (4, 12), (5, 11), (6, 10), (7, 9),            # jaw
    (17, 26), (18, 25), (19, 24), (20, 23), (21, 22),                                # brows
    (31, 35), (32, 34),                                                              # nose
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),                      # eyes
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67),  # mouth
)


def _permutation(pairs: Iterable[tuple[int, int]], n: int) -> tuple[int, ...]:
    perm = list(range(n))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


#: WFLW98_FLIP_PERM[i] = index of the point that i becomes after a horizontal mirror
WFLW98_FLIP_PERM: tuple[int, ...] = _permutation(WFLW98_FLIP_PAIRS, N_WFLW)

#: iBUG-68 index j -> WFLW-98 index (the widely used WFLW_98_TO_DLIB_68 mapping)
WFLW98_TO_68: tuple[int, ...] = (
    0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32,   # jaw 0-16
    33, 34, 35, 36, 37,                                              # brow 17-21
    42, 43, 44, 45, 46,                                              # brow 22-26
    51, 52, 53, 54,                                                  # nose bridge 27-30
    55, 56, 57, 58, 59,                                              # nose lower 31-35
    60, 61, 63, 64, 65, 67,                                          # eye 36-41
    68, 69, 71, 72, 73, 75,                                          # eye 42-47
    76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87,                  # outer lip 48-59
    88, 89, 90, 91, 92, 93, 94, 95,                                  # inner lip 60-67
)

#: inter-ocular normalisation: outer eye corners
WFLW98_INTEROCULAR = (60, 72)
IBUG68_INTEROCULAR = (36, 45)

Point = Sequence[float]


def wflw98_to_68(points98: Sequence[Point]) -> list[tuple[float, float]]:
    """Select the 68 iBUG points out of 98 WFLW points."""
    if len(points98) != N_WFLW:
        raise ValueError(f"expected {N_WFLW} points, got {len(points98)}")
    return [(float(points98[i][0]), float(points98[i][1])) for i in WFLW98_TO_68]


def flip_wflw98(points98: Sequence[Point], width: float = 1.0) -> list[tuple[float, float]]:
    """Mirror 98 points horizontally (x -> width - x) and re-index them with the flip pairs, so the
    result is the WFLW annotation of the mirrored image."""
    if len(points98) != N_WFLW:
        raise ValueError(f"expected {N_WFLW} points, got {len(points98)}")
    return [(width - float(points98[j][0]), float(points98[j][1])) for j in WFLW98_FLIP_PERM]


def nme(pred: Sequence[Point], gt: Sequence[Point], left: int, right: int,
        indices: Iterable[int] | None = None) -> float:
    """Mean point-to-point error divided by the distance between ``gt[left]`` and ``gt[right]``
    (inter-ocular NME; a fraction, not a percentage). ``indices`` restricts the mean to a subset."""
    if len(pred) != len(gt):
        raise ValueError(f"{len(pred)} predicted points vs {len(gt)} ground-truth points")
    norm = math.dist(gt[left][:2], gt[right][:2])
    if norm <= 0:
        raise ValueError("zero normalising distance")
    idx = list(range(len(gt))) if indices is None else list(indices)
    return sum(math.dist(pred[i][:2], gt[i][:2]) for i in idx) / (len(idx) * norm)
