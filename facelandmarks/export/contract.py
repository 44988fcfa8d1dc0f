"""The export contract every model family builds on: tensor names, manifest blocks, and the one
export → check → parity step.

Each family (``mediapipe``, ``retinaface``, ``landmarks`` — a user's crop→points model) is a module
with the same entry point::

    build(tmp_dir: Path, report: verify.ParityReport, **family_options)
        -> (graphs: {file name: onnx.ModelProto}, manifest: dict)

``tmp_dir`` is scratch space for the parity runs; nothing is written anywhere else: the caller
(``export_models.py``) hands the result to :func:`facelandmarks.export.site.write_models_dir`.
A family builds its PyTorch modules and passes each through :func:`export_checked` (ONNX export,
``onnx.checker``, the static WebGL check for webgl-bound graphs, PyTorch ↔ onnxruntime parity on a
real photo) and describes the graphs with the block builders below, so that every manifest is
shaped the same way whatever the family (see :mod:`facelandmarks.pipeline.manifest`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from .. import verify
from .onnx_export import export_module, save_model

SCHEMA = 1

# -- tensor names (the seed's two-graph contract, kept by every detector family) ------------------
DETECTOR_INPUTS = ["inputImage"]
DETECTOR_OUTPUTS = ["bbox_regressions", "scores", "ldm_regressions"]
# The parser's score input is named "scores.1" as in the seed: an ONNX graph cannot have an input
# and an output of the same name, and the parser outputs "scores".
PARSER_INPUTS = ["bbox_regressions", "scores.1", "landm_regressions"]
PARSER_OUTPUTS = ["boxes", "scores", "landms"]
LANDMARK_INPUTS = ["faceImage"]
#: landmark graph output roles: ``points`` always; ``mesh`` and ``presence`` only where a model has them
LANDMARK_ROLES = ("points", "mesh", "presence")

#: the one coordinate convention of landmark graph outputs (a family's graph converts to it)
CROP_COORDINATES = "crop-normalised (0..1 across the crop)"


def torch_run(module: nn.Module, *inputs: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(*[torch.from_numpy(x) for x in inputs])
    return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else (out,))]


def export_checked(module: nn.Module, inputs: tuple[np.ndarray, ...], input_names: list[str],
                   output_names: list[str], label: str, *, webgl: bool, report, tmp_dir: Path,
                   atol: float, custom_translation_table: dict | None = None,
                   check: str = "pytorch vs onnxruntime") -> onnx.ModelProto:
    """Export ``module`` on ``inputs`` (a real photo, prepared as the runtime prepares it), run the
    checks, record the measured parity in ``report``; raises ``verify.VerificationError``."""
    model = export_module(module, tuple(torch.from_numpy(x) for x in inputs), input_names,
                          output_names, custom_translation_table)
    verify.check_model(model, label)
    if webgl:
        verify.check_webgl(model, label)
    path = Path(tmp_dir) / label
    save_model(model, path)
    diffs = verify.onnx_parity(torch_run(module, *inputs), path, dict(zip(input_names, inputs)),
                               output_names, atol, label)
    if report is not None:
        report.add(label, check, diffs)
    return model


# -- manifest blocks -------------------------------------------------------------------------------

def graph_block(file: str, provider: str, inputs: dict[str, str], outputs: dict[str, str]) -> dict:
    return {"file": file, "provider": provider, "inputs": dict(inputs), "outputs": dict(outputs)}


def detector_block(detector_file: str, parser_file: str, input_manifest: dict, *,
                   score_threshold: float, iou_threshold: float, max_faces: int,
                   keypoints: dict, anchors: dict, **extra: Any) -> dict:
    """A detector graph (webgl) + its parser (wasm) with the seed's roles and tensor names."""
    return {
        "graph": graph_block(detector_file, "webgl", {"image": DETECTOR_INPUTS[0]},
                             {r: r for r in DETECTOR_OUTPUTS}),
        "input": dict(input_manifest),
        "parser": {**graph_block(parser_file, "wasm", dict(zip(DETECTOR_OUTPUTS, PARSER_INPUTS)),
                                 {r: r for r in PARSER_OUTPUTS}),
                   "output_scale": [1, 1], "score_threshold": score_threshold,
                   "iou_threshold": iou_threshold, "max_faces": max_faces},
        "keypoints": keypoints,
        "anchors": anchors,
        **extra,
    }


def landmarks_block(file: str, input_manifest: dict, outputs: dict[str, str], *, layout: str,
                    count: int, flip_pairs, crop_scale: float, crop_shift_y: float = 0.0,
                    track: dict, presence_threshold: float | None = None, mesh: dict | None = None,
                    provider: str = "webgl") -> dict:
    """A landmark graph: face crop → ``points`` [1,N,2] (+ optional ``mesh``, ``presence``).

    ``track`` says how the next frame's crop follows the face: ``{"from": "mesh"}`` (crop around
    the mesh at ``crop_scale``) or ``{"from": "points", "right_eye": i, "left_eye": j, "scale": s,
    "shift_y": t}`` (crop around the N points, ``s`` × their extent: N points cover less of the
    head than the detector box the crop scale was set for)."""
    unknown = set(outputs) - set(LANDMARK_ROLES)
    if "points" not in outputs or unknown:
        raise ValueError(f"landmark outputs need 'points' and only roles {LANDMARK_ROLES}, got {sorted(outputs)}")
    if ("mesh" in outputs) != (mesh is not None) or ("presence" in outputs) != (presence_threshold is not None):
        raise ValueError("a mesh output needs its mesh block, a presence output its threshold")
    if track.get("from") == "mesh" and mesh is None:
        raise ValueError("tracking from the mesh needs a mesh output")
    block = {
        "graph": graph_block(file, provider, {"image": LANDMARK_INPUTS[0]}, outputs),
        "input": dict(input_manifest),
        "crop": {"scale": crop_scale, "shift_y": crop_shift_y},
        "track": dict(track),
        "layout": layout, "count": int(count),
        "flip_pairs": [list(p) for p in flip_pairs],
        "coordinates": CROP_COORDINATES + ("; mesh z in the same scale" if mesh else ""),
    }
    if presence_threshold is not None:
        block["presence_threshold"] = presence_threshold
    if mesh is not None:
        block["mesh"] = dict(mesh)
    return block


def manifest(name: str, trained: bool, source: str, detectors: dict[str, dict],
             defaults: dict[str, str], landmarks: dict | None) -> dict:
    return {"schema": SCHEMA, "name": name, "trained": bool(trained), "source": source,
            "detectors": detectors, "defaults": defaults, "landmarks": landmarks}
