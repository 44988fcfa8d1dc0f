"""Non-maximum suppression as a PyTorch custom op that exports to ONNX ``NonMaxSuppression``.

torchvision does not import beside the CPU torch wheel used here, and the ONNX op is what the
browser's wasm provider runs anyway. Eagerly the op runs a plain greedy NMS in torch (used for the
PyTorch ↔ onnxruntime parity check); under ``torch.onnx.export`` it becomes the standard op through
``CUSTOM_TRANSLATIONS`` (pass it as ``custom_translation_table``).
"""
from __future__ import annotations

import torch
from onnxscript import opset18 as op


@torch.library.custom_op("facelandmarks::nms", mutates_args=())
def nms(boxes: torch.Tensor, scores: torch.Tensor, max_output: int, iou_threshold: float,
        score_threshold: float) -> torch.Tensor:
    """boxes [1,N,4] as (y0, x0, y1, x1), scores [1,1,N] → selected [K,3] int64 (batch, class, index),
    best first — exactly ONNX NonMaxSuppression's contract (center_point_box = 0)."""
    b, s = boxes[0], scores[0, 0]
    order = torch.argsort(s, descending=True, stable=True)
    order = order[s[order] > score_threshold]
    keep: list[int] = []
    area = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    for idx in order.tolist():
        if len(keep) >= max_output:
            break
        if keep:
            k = torch.tensor(keep)
            y0 = torch.maximum(b[k, 0], b[idx, 0])
            x0 = torch.maximum(b[k, 1], b[idx, 1])
            y1 = torch.minimum(b[k, 2], b[idx, 2])
            x1 = torch.minimum(b[k, 3], b[idx, 3])
            inter = (y1 - y0).clamp(min=0) * (x1 - x0).clamp(min=0)
            iou = inter / (area[k] + area[idx] - inter).clamp(min=1e-12)
            if bool((iou > iou_threshold).any()):
                continue
        keep.append(idx)
    out = torch.zeros((len(keep), 3), dtype=torch.int64)
    out[:, 2] = torch.tensor(keep, dtype=torch.int64)
    return out


@nms.register_fake
def _nms_fake(boxes, scores, max_output, iou_threshold, score_threshold):
    count = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((count, 3), dtype=torch.int64)


def _nms_onnx(boxes, scores, max_output: int, iou_threshold: float, score_threshold: float):
    return op.NonMaxSuppression(
        boxes, scores,
        op.Constant(value_ints=[max_output]),
        op.Constant(value_floats=[iou_threshold]),
        op.Constant(value_floats=[score_threshold]),
        center_point_box=0)


CUSTOM_TRANSLATIONS = {torch.ops.facelandmarks.nms.default: _nms_onnx}
