"""Bring your own RetinaFace: a biubug6-layout checkpoint → verified FaceDetector.onnx +
RegressionParser.onnx + manifest (``landmarks: null``: the detector's keypoints are the landmarks),
plus a small-input FaceDetectorROI.onnx + RegressionParserROI.onnx for tracking (``defaults.roi``).

    graphs, manifest = build(tmp_dir, report, weights=Path("mobilenet0.25_Final.pth"), landmarks=5)
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
from . import contract
from .contract import DETECTOR_INPUTS, DETECTOR_OUTPUTS, PARSER_INPUTS, PARSER_OUTPUTS

DETECTOR_FILE = "FaceDetector.onnx"
PARSER_FILE = "RegressionParser.onnx"
ROI_DETECTOR_FILE = "FaceDetectorROI.onnx"
ROI_PARSER_FILE = "RegressionParserROI.onnx"
PARITY_ATOL = 1e-4
SCORE_THRESHOLD = 0.5
IOU_THRESHOLD = 0.4
MAX_FACES = 16

# The tracking ("roi") detector: the same weights at a small input, run on a square crop of
# ROI_CROP_SCALE × the tracked face's box. Measured with the seed's weights on the astronaut and
# Grace Hopper, crop centred on the face and shifted by a quarter face: at 2x, 160 px gives scores
# 0.62-0.71 (box IoU 0.79-0.94 with the full-frame box), 192 px 0.67-0.76, 128 px 0.37-0.59 and
# 96 px under 0.25; at 2.5x, 160 px drops to 0.39. Inside a crop around a face a false positive is
# unlikely, so the roi parser keeps faces from 0.3.
ROI_INPUT_SIZE = 160
ROI_CROP_SCALE = 2.0
ROI_SCORE_THRESHOLD = 0.3

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


def camera_frame() -> np.ndarray:
    """The astronaut as the page's fake camera shows her: 480x480 in a black 640x480 frame (a
    camera-size face, about 85 px wide)."""
    from PIL import Image

    face = Image.fromarray(reference_photo()).resize((480, 480), Image.Resampling.LANCZOS)
    frame = Image.new("RGB", (640, 480))
    frame.paste(face, (80, 0))
    return np.asarray(frame)


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


class ReferencePhotoWarning(UserWarning):
    """The exported detector finds no face on a reference photo that shows one."""


def top_face_score(model: RetinaFace, photo: np.ndarray, input_manifest: dict) -> float:
    """The best prior's face score on ``photo`` prepared per ``input_manifest``."""
    x = photo_tensor(photo, InputSpec.parse(input_manifest, "input"))
    with torch.no_grad():
        return float(model(torch.from_numpy(x))[1].max())


def reference_check(model: RetinaFace, input_manifest: dict, preprocessing: str,
                    score_threshold: float) -> list[str]:
    """Problems found running the model on real faces (the astronaut photo, and the astronaut as a
    camera frame), each with what would help: a lower ``--score-threshold``, the other
    ``--preprocessing``, a larger ``--input-size``. Empty when both are found."""
    problems = []
    other = next(p for p in PREPROCESSING if p != preprocessing)
    for label, photo in (("the astronaut photo (512x512)", reference_photo()),
                         ("the astronaut as a 640x480 camera frame", camera_frame())):
        top = top_face_score(model, photo, input_manifest)
        if top > score_threshold:
            continue
        hints = [f"top face score {top:.2f}, not over --score-threshold {score_threshold}"
                 + (f" (--score-threshold {int(top * 20) / 20:.2f} keeps it)" if top >= 0.2 else "")]
        other_top = top_face_score(model, photo, {**input_manifest, **PREPROCESSING[other]})
        if other_top > score_threshold:
            hints.append(f"with --preprocessing {other} it scores {other_top:.2f}: the checkpoint "
                         f"was probably trained with {other} preprocessing")
        else:
            hints.append(f"--preprocessing {other} does not find it either ({other_top:.2f})")
        if input_manifest["width"] < 640:
            bigger = {**input_manifest, "width": 640, "height": 640}
            hints.append(f"at --input-size 640 it scores {top_face_score(model, photo, bigger):.2f}")
        problems.append(f"no face found on {label}: " + "; ".join(hints))
    return problems


def _export_detector(model: RetinaFace, input_manifest: dict, detector_file: str, parser_file: str,
                     parser: RetinaFaceParser, tmp_dir: Path, report) -> dict[str, onnx.ModelProto]:
    """One detector graph + its parser, checked on the astronaut (the parser is fed the detector's
    onnxruntime outputs on both sides)."""
    import onnxruntime as ort

    size = input_manifest["width"]
    x = photo_tensor(reference_photo(), InputSpec.parse(input_manifest, "input"))
    check = "pytorch vs onnxruntime (astronaut)"
    # export_module also names the empty roi/scales inputs of the bilinear variant's Resize
    graphs = {detector_file: contract.export_checked(
        model, (x,), DETECTOR_INPUTS, DETECTOR_OUTPUTS, detector_file, webgl=True, report=report,
        tmp_dir=tmp_dir, atol=PARITY_ATOL, check=check)}
    sess = ort.InferenceSession(str(tmp_dir / detector_file), providers=["CPUExecutionProvider"])
    raw = sess.run(DETECTOR_OUTPUTS, {DETECTOR_INPUTS[0]: x})
    if parser.num_priors != raw[1].shape[1] or parser.num_priors != num_priors(size):
        raise verify.VerificationError(f"{parser_file}: {parser.num_priors} priors, detector gives "
                                       f"{raw[1].shape[1]}")
    graphs[parser_file] = contract.export_checked(
        parser.eval(), tuple(raw), PARSER_INPUTS, PARSER_OUTPUTS, parser_file, webgl=False,
        report=report, tmp_dir=tmp_dir, atol=PARITY_ATOL,
        custom_translation_table=CUSTOM_TRANSLATIONS, check=check)
    return graphs


def _anchors(input_size: int, parser_file: str) -> dict:
    return {"kind": "retinaface-priors", "min_sizes": [list(m) for m in MIN_SIZES],
            "steps": list(STEPS), "variance": list(VARIANCES), "order": "level, row, column, size",
            "count": num_priors(input_size), "decoded_in": parser_file}


def build(tmp_dir: Path, report=None, *, weights: Path | None, landmarks: int = 98,
          input_size: int = 640, random_weights: bool = False, preprocessing: str | None = None,
          score_threshold: float = SCORE_THRESHOLD, iou_threshold: float = IOU_THRESHOLD,
          max_faces: int = MAX_FACES, roi_size: int | None = ROI_INPUT_SIZE,
          ) -> tuple[dict[str, onnx.ModelProto], dict]:
    """Build and verify the RetinaFace detector + parser, and (``roi_size``, None for none) the
    small-input tracking detector from the same weights; returns ({file name: graph}, manifest).

    ``preprocessing``: "biubug6" (BGR − (104,117,123), biubug6's training) or "imagenet" (RGB,
    ImageNet mean/std, the seed's training); None picks biubug6 for 5 landmarks and imagenet
    otherwise (and always imagenet for the seed's .onnx). ``report``: optional object with
    ``add(graph, check, diffs)`` receiving the measured parities. Raises
    :class:`CheckpointError` / ``verify.VerificationError`` before anything is written. When the
    trained model finds no face on the reference photos it warns (:class:`ReferencePhotoWarning`,
    printed loudly) and the manifest's ``reference_check`` keeps the reason.
    """
    for label, size in (("input size", input_size), ("roi size", roi_size or 32)):
        if size < 32 or size % 32:
            raise ValueError(f"{label} {size}: must be a positive multiple of 32 "
                             "(the FPN upsamples by exactly 2 at each level)")
    if not 0.0 <= score_threshold < 1.0 or not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"--score-threshold {score_threshold} must be in [0, 1) and --nms-iou "
                         f"{iou_threshold} in (0, 1]")
    model, facts = make_model(weights, landmarks, random_weights)
    if preprocessing is None:
        preprocessing = facts.get("preprocessing") or ("biubug6" if landmarks == 5 else "imagenet")
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {sorted(PREPROCESSING)}, not {preprocessing!r}")
    norm = PREPROCESSING[preprocessing]
    input_manifest = {"width": input_size, "height": input_size, **norm, "letterbox": "top-left"}
    keypoints = keypoints_manifest(landmarks)

    tmp_dir = Path(tmp_dir)
    graphs = _export_detector(model, input_manifest, DETECTOR_FILE, PARSER_FILE,
                              RetinaFaceParser(input_size, landmarks, score_threshold, iou_threshold,
                                               max_faces), tmp_dir, report)
    detectors = {"retinaface": contract.detector_block(
        DETECTOR_FILE, PARSER_FILE, input_manifest, score_threshold=score_threshold,
        iou_threshold=iou_threshold, max_faces=max_faces, keypoints=keypoints,
        anchors=_anchors(input_size, PARSER_FILE))}
    defaults = {"camera": "retinaface", "still": "retinaface"}
    if roi_size:
        roi_input = {**input_manifest, "width": roi_size, "height": roi_size}
        roi_threshold = min(score_threshold, ROI_SCORE_THRESHOLD)
        graphs.update(_export_detector(model, roi_input, ROI_DETECTOR_FILE, ROI_PARSER_FILE,
                                       RetinaFaceParser(roi_size, landmarks, roi_threshold,
                                                        iou_threshold, 1), tmp_dir, report))
        detectors["retinaface-roi"] = contract.detector_block(
            ROI_DETECTOR_FILE, ROI_PARSER_FILE, roi_input, score_threshold=roi_threshold,
            iou_threshold=iou_threshold, max_faces=1, keypoints=keypoints,
            anchors=_anchors(roi_size, ROI_PARSER_FILE), crop={"scale": ROI_CROP_SCALE})
        defaults["roi"] = "retinaface-roi"

    problems = reference_check(model, input_manifest, preprocessing, score_threshold) \
        if facts["trained"] else []
    for problem in problems:
        print("\n" + "!" * 100 + f"\n!! {problem}\n" + "!" * 100 + "\n", file=sys.stderr)
        warnings.warn(problem, ReferencePhotoWarning, stacklevel=2)
    manifest = contract.manifest(
        f"retinaface-mobilenet0.25-{landmarks}", facts["trained"],
        facts["source"] + f"; preprocessing {preprocessing}"
        + (f"; FPN upsampling {facts['upsample']}" if "upsample" in facts else ""),
        detectors, defaults, None)
    if facts["trained"]:
        manifest["reference_check"] = problems or ["faces found on the astronaut photo and camera frame"]
    return graphs, manifest
