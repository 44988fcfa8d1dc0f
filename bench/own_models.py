"""Exports of "a user's own" models, shared by the tests (tests/test_tracking.py,
tests/test_own_models_export.py, tests/browser/test_own_models.py) and bench/own_model_bench.py.

* the seed's trained RetinaFace-98 weights re-exported as a user's checkpoint (98 points);
* the same weights as a 5-point RetinaFace: its landmark head cut down to the channels of the pupils,
  the nose tip and the mouth corners, saved in biubug6's layout like a classic 5-point checkpoint;
* our FaceMesh + WFLW-98 map dressed as a user's landmark model (examples/facemesh_wflw98.py).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the seed's published graphs (not in the repo, beside it in ../shared); FACELANDMARKS_SEED_DIR points elsewhere
SEED_DIR = Path(os.environ.get("FACELANDMARKS_SEED_DIR")
                or ROOT.parent / "shared" / "fixtures" / "seed-retinaface")
SEED_DETECTOR = SEED_DIR / "FaceDetector.onnx"
FIVE_OF_98 = (96, 97, 54, 76, 82)     # WFLW: pupils, nose tip, mouth corners (RetinaFace-5's order)


def five_point_checkpoint(path: Path) -> Path:
    from facelandmarks.models.retinaface import ANCHORS_PER_CELL, RetinaFace, load_checkpoint
    from facelandmarks.models.retinaface_seed import import_seed_detector

    state, facts = import_seed_detector(SEED_DETECTOR)
    model = RetinaFace(98, facts["upsample"])
    load_checkpoint(model, state)
    channels = [a * 196 + 2 * k + c for a in range(ANCHORS_PER_CELL) for k in FIVE_OF_98 for c in (0, 1)]
    five = {}
    for key, value in model.state_dict().items():
        if key.startswith("LandmarkHead."):
            value = value[channels]
        five[f"module.{key}"] = value
    import torch

    torch.save({"state_dict": five}, path)
    return path


def export(kind: str, out: Path) -> Path:
    """Export ``kind`` ("retinaface98", "retinaface5", "user98") into ``out`` via export_models.py."""
    import export_models

    with tempfile.TemporaryDirectory() as tmp:
        if kind == "retinaface98":
            argv = ["--model", "retinaface", "--weights", str(SEED_DETECTOR)]
        elif kind == "retinaface5":
            ckpt = five_point_checkpoint(Path(tmp) / "retinaface5.pth")
            argv = ["--model", "retinaface", "--weights", str(ckpt), "--landmarks", "5",
                    "--preprocessing", "imagenet"]
        elif kind == "user98":
            import torch
            from examples.facemesh_wflw98 import pretrained

            weights = Path(tmp) / "facemesh_wflw98.pt"
            torch.save(pretrained().state_dict(), weights)
            argv = ["--model", "landmarks", "--module", "examples.facemesh_wflw98:FaceMeshWFLW98",
                    "--weights", str(weights), "--input-size", "192", "--layout", "wflw98",
                    "--points", "signed", "--name", "facemesh-as-user-model"]
        else:
            raise ValueError(kind)
        if export_models.main(argv + ["--out", str(out)]) != 0:
            raise RuntimeError(f"export of {kind} failed")
    return out


def exporter(tmp_path_factory):
    """``get(kind)``: the export of ``kind``, made once per test module (a module fixture's body)."""
    made = {}

    def get(kind):
        if kind not in made:
            made[kind] = export(kind, tmp_path_factory.mktemp(kind))
        return made[kind]
    return get
