"""RegressionParser for RetinaFace: prior decoding + score threshold + NMS + top-k, all faces.

Inputs (the RetinaFace detector graph's outputs)::

    bbox_regressions [1, N, 4]   raw (dcx, dcy, dw, dh) per prior
    scores           [1, N]      face probability (softmax already applied by the detector)
    ldm_regressions  [1, N, 2K]  raw (dx, dy) per landmark per prior

Priors are generated here, in code (biubug6 ``PriorBox``): for each level (min sizes
[[16,32],[64,128],[256,512]], steps [8,16,32]), each row i and column j of its ceil(size/step)
feature map, each min size: centre ((j+0.5)·step, (i+0.5)·step) and size min_size, all divided by
the input size. Decoding is RetinaFace's (variances [0.1, 0.2])::

    centre = prior_c + loc[:2]·0.1·prior_wh      wh = prior_wh·exp(loc[2:]·0.2)
    landmark = prior_c + pred·0.1·prior_wh

Candidates are selected before anything is decoded: ``TopK`` takes the ``top_k`` best-scoring priors
(a face lights up a few dozen), only their boxes are decoded for NMS, and only the kept faces'
landmarks are decoded (with 98 landmarks, decoding all 16 800 priors × 196 values was most of the
parser's time).

Outputs, M = faces kept (best first, at most ``max_faces``; scores > ``score_threshold``; greedy
NMS at ``iou_threshold`` by ONNX ``NonMaxSuppression``), coordinates normalised to the detector
input (0..1; the runtime maps them back through its letterbox)::

    boxes  [M, 4]   x0, y0, x1, y1
    scores [M]
    landms [M, 2K]  x, y per landmark

Runs on the wasm provider only (TopK, Gather, NonMaxSuppression, int64 indices). Export with
``custom_translation_table=facelandmarks.parsers.nms.CUSTOM_TRANSLATIONS``.
"""
from __future__ import annotations

import math
from itertools import product

import numpy as np
import torch
from torch import nn

from ..models.retinaface import MIN_SIZES, STEPS, VARIANCES
from .nms import nms


def generate_priors(input_size: int, min_sizes=MIN_SIZES, steps=STEPS) -> np.ndarray:
    """[N, 4] float32 priors (cx, cy, w, h) normalised to a square ``input_size`` input; order
    level, row, column, size — the order of the detector's outputs."""
    out = []
    for step, sizes in zip(steps, min_sizes):
        f = math.ceil(input_size / step)
        for i, j in product(range(f), range(f)):
            for m in sizes:
                out.append(((j + 0.5) * step / input_size, (i + 0.5) * step / input_size,
                            m / input_size, m / input_size))
    return np.asarray(out, dtype=np.float32)


#: candidates kept for NMS: a face gives a few dozen priors over any threshold, so 16 faces fit
TOP_K = 750


class RetinaFaceParser(nn.Module):
    def __init__(self, input_size: int, num_landmarks: int, score_threshold: float = 0.5,
                 iou_threshold: float = 0.4, max_faces: int = 16, variances=VARIANCES,
                 top_k: int = TOP_K):
        super().__init__()
        priors = torch.from_numpy(generate_priors(input_size))
        self.register_buffer("prior_centre", priors[:, :2].contiguous())
        self.register_buffer("prior_size", priors[:, 2:].contiguous())
        self.num_priors = priors.shape[0]
        self.num_landmarks = int(num_landmarks)
        self.v0, self.v1 = float(variances[0]), float(variances[1])
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_faces = int(max_faces)
        self.top_k = min(int(top_k), self.num_priors)

    def decode_boxes(self, loc: torch.Tensor, centre: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
        """raw [M,4] of priors (centre, size [M,2]) → [M,4] x0, y0, x1, y1 normalised."""
        centre = centre + loc[:, 0:2] * self.v0 * size
        wh = size * torch.exp(loc[:, 2:4] * self.v1)
        top_left = centre - wh / 2
        return torch.cat([top_left, top_left + wh], dim=1)

    def decode_landmarks(self, pre: torch.Tensor, centre: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
        """raw [M,2K] of priors (centre, size [M,2]) → [M,2K] normalised."""
        m = pre.shape[0]
        points = centre[:, None, :] + pre.reshape(m, self.num_landmarks, 2) * self.v0 * size[:, None, :]
        return points.reshape(m, 2 * self.num_landmarks)

    def forward(self, bbox_regressions, scores, ldm_regressions):
        top_scores, top = torch.topk(scores[0], self.top_k)          # best first
        centre, size = self.prior_centre[top], self.prior_size[top]
        boxes = self.decode_boxes(bbox_regressions[0][top], centre, size)
        yx_boxes = boxes[:, [1, 0, 3, 2]].unsqueeze(0)           # NMS wants (y0, x0, y1, x1)
        selected = nms(yx_boxes, top_scores.reshape(1, 1, -1), self.max_faces, self.iou_threshold,
                       self.score_threshold)
        keep = selected[:, 2]
        prior = top[keep]
        landms = self.decode_landmarks(ldm_regressions[0][prior], self.prior_centre[prior],
                                       self.prior_size[prior])
        return boxes[keep], top_scores[keep], landms
