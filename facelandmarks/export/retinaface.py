"""Bring your own RetinaFace: a biubug6-layout checkpoint → verified FaceDetector.onnx +
RegressionParser.onnx + manifest (``landmarks: null``: the detector's keypoints are the landmarks).

    graphs, manifest = build(Path("mobilenet0.25_Final.pth"), landmarks=5, input_size=640,
                             random_weights=False)
    write_models_dir(out_dir, graphs, manifest)

Verification (any failure raises before anything is written):

* onnx checker on both graphs;
* PyTorch ↔ onnxruntime parity on a real photo (scikit-image's astronaut, letterboxed top-left
  like the runtime does it), detector and parser, within ``PARITY_ATOL``;
* the detector passes the static WebGL check (``verify.check_webgl``); the parser is wasm-only.

``weights`` may also be the seed's published ``FaceDetector.onnx``: its folded weights are
imported (:mod:`facelandmarks.models.retinaface_seed`) and re-exported at any input size.
"""
from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from .. import verify
from ..models.retinaface import (MIN_SIZES, STEPS, VARIANCES, CheckpointError, RetinaFace,
                                 load_checkpoint, num_priors)
from ..parsers.nms import CUSTOM_TRANSLATIONS
from ..parsers.retinaface import RetinaFaceParser
from ..pipeline.manifest import InputSpec
from ..weights import sha256_of
from .onnx_export import export_module, save_model

DETECTOR_FILE = "FaceDetector.onnx"
PARSER_FILE = "RegressionParser.onnx"
DETECTOR_INPUTS = ["inputImage"]   # the seed's contract
DETECTOR_OUTPUTS = ["bbox_regressions", "scores", "ldm_regressions"]
# As in the seed (and the MediaPipe export): an ONNX graph cannot have an input and an output of the
# same name, and the parser outputs "scores".
PARSER_INPUTS = ["bbox_regressions", "scores.1", "landm_regressions"]
PARSER_OUTPUTS = ["boxes", "scores", "landms"]
PARITY_ATOL = 1e-4
SCORE_THRESHOLD = 0.5
IOU_THRESHOLD = 0.4
MAX_FACES = 16

#: input normalisation, value = (pixel/255 - mean) / std
PREPROCESSING = {
    # biubug6/Pytorch_Retinaface: BGR, pixel - (104, 117, 123), no scaling
    "biubug6": {"channels": "BGR", "mean": [104 / 255, 117 / 255, 123 / 255], "std": [1 / 255] * 3},
    # the seed's training code (and its FaceDetector.onnx): RGB, ImageNet mean/std
    "imagenet": {"channels": "RGB", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
}

FIVE_POINT_NAMES = ["right_eye", "left_eye", "nose_tip", "mouth_right", "mouth_left"]


class RandomWeightsWarning(UserWarning):
    """The export carries untrained weights: boxes and landmarks are meaningless."""


def reference_photo() -> np.ndarray:
    """The parity photo: scikit-image's astronaut (512×512 RGB uint8)."""
    try:
        from skimage import data
    except ImportError:
        raise verify.VerificationError(
            "the parity check needs scikit-image (skimage.data.astronaut): pip install scikit-image") from None
    return data.astronaut()


def photo_tensor(photo: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The photo as the runtime feeds it: letterboxed per ``spec`` and normalised, NCHW float32."""
    from PIL import Image

    from ..pipeline.geometry import letterbox
    from ..runtime_onnx import PILFrame

    frame = PILFrame(Image.fromarray(photo))
    return frame.to_tensor(letterbox(frame.width, frame.height, spec.width, spec.height, spec.letterbox), spec)


def keypoints_manifest(landmarks: int) -> dict:
    if landmarks == 98:
        return {"count": 98, "layout": "WFLW-98", "right_eye": 96, "left_eye": 97}
    if landmarks == 5:
        # RetinaFace 5-point order: the eye on the image's left (the person's right eye) first
        return {"count": 5, "layout": "retinaface-5", "names": FIVE_POINT_NAMES,
                "right_eye": 0, "left_eye": 1}
    return {"count": landmarks, "layout": f"custom-{landmarks}", "right_eye": 0, "left_eye": 1,
            "note": "unknown layout: right_eye/left_eye are placeholders"}


def _report(report, label: str, check: str, diffs: dict) -> None:
    if report is not None:
        report.add(label, check, diffs)


def make_model(weights: Path | None, landmarks: int, random_weights: bool,
               seed: int = 0) -> tuple[RetinaFace, dict]:
    """(our RetinaFace in eval mode, provenance facts) — checkpoint, seed graph or random."""
    if random_weights:
        if weights is not None:
            raise ValueError("give either weights or random_weights, not both")
        msg = ("RetinaFace export with RANDOM, UNTRAINED weights: the graphs run but detect nothing "
               "meaningful (manifest \"trained\": false). Use --weights CKPT.pth for a real model.")
        print("\n" + "!" * 100 + f"\n!! {msg}\n" + "!" * 100 + "\n", file=sys.stderr)
        warnings.warn(msg, RandomWeightsWarning, stacklevel=3)
        torch.manual_seed(seed)
        return RetinaFace(landmarks).eval(), {"trained": False, "source": f"random weights (seed {seed})"}
    if weights is None:
        raise ValueError("RetinaFace export needs weights (a biubug6-layout .pth checkpoint) "
                         "or random_weights=True")
    weights = Path(weights)
    if not weights.is_file():
        raise CheckpointError(f"{weights}: no such checkpoint file")
    digest = sha256_of(weights)
    if weights.suffix.lower() == ".onnx":
        from ..models.retinaface_seed import import_seed_detector

        state, facts = import_seed_detector(weights)
        if facts["num_landmarks"] != landmarks:
            raise CheckpointError(f"{weights} has {facts['num_landmarks']} landmarks, the model is built "
                                  f"for {landmarks} (export with --landmarks {facts['num_landmarks']})")
        model = RetinaFace(landmarks, facts["upsample"])
        load_checkpoint(model, state, label=str(weights))
        return model.eval(), {"trained": True, "preprocessing": "imagenet", "upsample": facts["upsample"],
                              "source": f"weights imported from {weights.name} (sha256 {digest})"}
    model = RetinaFace(landmarks)
    load_checkpoint(model, weights)
    return model.eval(), {"trained": True, "source": f"checkpoint {weights.name} (sha256 {digest})"}


def build(weights: Path | None, landmarks: int = 98, input_size: int = 640, random_weights: bool = False,
          *, preprocessing: str | None = None, score_threshold: float = SCORE_THRESHOLD,
          iou_threshold: float = IOU_THRESHOLD, max_faces: int = MAX_FACES,
          report=None) -> tuple[dict[str, onnx.ModelProto], dict]:
    """Build and verify the RetinaFace detector + parser; returns ({file name: graph}, manifest).

    ``preprocessing``: "biubug6" (BGR − (104,117,123), biubug6's training) or "imagenet" (RGB,
    ImageNet mean/std, the seed's training); None picks biubug6 for 5 landmarks and imagenet
    otherwise (and always imagenet for the seed's .onnx). ``report``: optional object with
    ``add(graph, check, diffs)`` receiving the measured parities. Raises
    :class:`CheckpointError` / ``verify.VerificationError`` before anything is written.
    """
    if input_size < 32 or input_size % 32:
        raise ValueError(f"input size {input_size}: must be a positive multiple of 32 "
                         "(the FPN upsamples by exactly 2 at each level)")
    model, facts = make_model(weights, landmarks, random_weights)
    if preprocessing is None:
        preprocessing = facts.get("preprocessing") or ("biubug6" if landmarks == 5 else "imagenet")
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {sorted(PREPROCESSING)}, not {preprocessing!r}")
    norm = PREPROCESSING[preprocessing]
    input_manifest = {"width": input_size, "height": input_size, **norm, "letterbox": "top-left"}
    spec = InputSpec.parse(input_manifest, "input")
    x = photo_tensor(reference_photo(), spec)

    import onnxruntime as ort

    graphs: dict[str, onnx.ModelProto] = {}
    with tempfile.TemporaryDirectory(prefix="retinaface-export-") as tmp:
        tmp = Path(tmp)
        # detector
        # export_module also names the empty roi/scales inputs of the bilinear variant's Resize
        detector = export_module(model, (torch.from_numpy(x),), DETECTOR_INPUTS, DETECTOR_OUTPUTS)
        verify.check_model(detector, DETECTOR_FILE)
        verify.check_webgl(detector, DETECTOR_FILE)
        save_model(detector, tmp / DETECTOR_FILE)
        with torch.no_grad():
            expected = [t.numpy() for t in model(torch.from_numpy(x))]
        diffs = verify.onnx_parity(expected, tmp / DETECTOR_FILE, {DETECTOR_INPUTS[0]: x},
                                   DETECTOR_OUTPUTS, PARITY_ATOL, DETECTOR_FILE)
        _report(report, DETECTOR_FILE, "pytorch vs onnxruntime (astronaut)", diffs)
        graphs[DETECTOR_FILE] = detector

        # parser, fed the detector's onnxruntime outputs on both sides
        sess = ort.InferenceSession(str(tmp / DETECTOR_FILE), providers=["CPUExecutionProvider"])
        raw = sess.run(DETECTOR_OUTPUTS, {DETECTOR_INPUTS[0]: x})
        parser = RetinaFaceParser(input_size, landmarks, score_threshold, iou_threshold, max_faces).eval()
        if parser.num_priors != raw[1].shape[1] or parser.num_priors != num_priors(input_size):
            raise verify.VerificationError(f"{PARSER_FILE}: {parser.num_priors} priors, detector gives "
                                           f"{raw[1].shape[1]}")
        parser_model = export_module(parser, tuple(torch.from_numpy(r) for r in raw), PARSER_INPUTS,
                                     PARSER_OUTPUTS, custom_translation_table=CUSTOM_TRANSLATIONS)
        verify.check_model(parser_model, PARSER_FILE)
        save_model(parser_model, tmp / PARSER_FILE)
        with torch.no_grad():
            expected = [t.numpy() for t in parser(*(torch.from_numpy(r) for r in raw))]
        diffs = verify.onnx_parity(expected, tmp / PARSER_FILE, dict(zip(PARSER_INPUTS, raw)),
                                   PARSER_OUTPUTS, PARITY_ATOL, PARSER_FILE)
        _report(report, PARSER_FILE, "pytorch vs onnxruntime (astronaut)", diffs)
        graphs[PARSER_FILE] = parser_model

    detector_manifest = {
        "graph": {"file": DETECTOR_FILE, "provider": "webgl",
                  "inputs": {"image": DETECTOR_INPUTS[0]},
                  "outputs": {r: r for r in DETECTOR_OUTPUTS}},
        "input": input_manifest,
        "parser": {"file": PARSER_FILE, "provider": "wasm",
                   "inputs": dict(zip(DETECTOR_OUTPUTS, PARSER_INPUTS)),
                   "outputs": {r: r for r in PARSER_OUTPUTS},
                   "output_scale": [1, 1], "score_threshold": score_threshold,
                   "iou_threshold": iou_threshold, "max_faces": max_faces},
        "keypoints": keypoints_manifest(landmarks),
        "anchors": {"kind": "retinaface-priors", "min_sizes": [list(m) for m in MIN_SIZES],
                    "steps": list(STEPS), "variance": list(VARIANCES),
                    "order": "level, row, column, size", "count": num_priors(input_size),
                    "decoded_in": PARSER_FILE},
    }
    manifest = {
        "schema": 1,
        "name": f"retinaface-mobilenet0.25-{landmarks}",
        "trained": facts["trained"],
        "source": facts["source"] + f"; preprocessing {preprocessing}"
                  + (f"; FPN upsampling {facts['upsample']}" if "upsample" in facts else ""),
        "detectors": {"retinaface": detector_manifest},
        "defaults": {"camera": "retinaface", "still": "retinaface"},
        "landmarks": None,
    }
    return graphs, manifest
