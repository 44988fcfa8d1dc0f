"""RegressionParser for BlazeFace: anchor decoding + score threshold + NMS + top-k, all faces.

Inputs (the FaceDetector graph's outputs, names as in the seed's contract)::

    bbox_regressions [1, N, 4]   raw (dx, dy, w, h) in input pixels, relative to the anchor centre
    scores           [1, N]      face probability (sigmoid already applied by the detector)
    ldm_regressions  [1, N, 2K]  raw keypoint (dx, dy) pairs in input pixels, relative to the anchor

Outputs, M = faces kept (best first, at most ``max_faces``), coordinates normalised to the detector
input (0..1; the runtime maps them back through its letterbox)::

    boxes  [M, 4]   x0, y0, x1, y1
    scores [M]
    landms [M, 2K]  x, y per keypoint

Runs on the wasm provider (NonMaxSuppression and int64 indices are not WebGL ops).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .nms import nms


class BlazeFaceParser(nn.Module):
    def __init__(self, anchors: np.ndarray, input_size: int, num_keypoints: int,
                 score_threshold: float, iou_threshold: float, max_faces: int):
        super().__init__()
        self.register_buffer("anchors", torch.as_tensor(anchors, dtype=torch.float32))  # [N,2] cx,cy
        self.input_size = float(input_size)
        self.num_keypoints = num_keypoints
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_faces = int(max_faces)

    def decode_boxes(self, bbox_regressions: torch.Tensor) -> torch.Tensor:
        """[1,N,4] raw → [N,4] x0,y0,x1,y1 normalised."""
        r = bbox_regressions[0] / self.input_size
        centre = self.anchors + r[:, 0:2]
        half = r[:, 2:4] / 2
        return torch.cat([centre - half, centre + half], dim=1)

    def decode_keypoints(self, ldm_regressions: torch.Tensor) -> torch.Tensor:
        """[1,N,2K] raw → [N,2K] normalised."""
        r = ldm_regressions[0].reshape(-1, self.num_keypoints, 2) / self.input_size
        return (r + self.anchors[:, None, :]).reshape(-1, 2 * self.num_keypoints)

    def forward(self, bbox_regressions, scores, ldm_regressions):
        boxes = self.decode_boxes(bbox_regressions)
        keypoints = self.decode_keypoints(ldm_regressions)
        yx_boxes = boxes[:, [1, 0, 3, 2]].unsqueeze(0)          # NMS wants (y0, x0, y1, x1)
        selected = nms(yx_boxes, scores.reshape(1, 1, -1), self.max_faces, self.iou_threshold,
                       self.score_threshold)
        index = selected[:, 2]
        return boxes[index], scores[0][index], keypoints[index]
