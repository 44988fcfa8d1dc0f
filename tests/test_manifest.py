"""Manifest parsing: what a runtime needs is present, and a bad manifest says what is wrong."""
import copy
import json

import pytest

from facelandmarks.pipeline.manifest import Manifest, ManifestError

GOOD = {
    "schema": 1, "name": "t",
    "detectors": {"short_range": {
        "graph": {"file": "FaceDetector.onnx", "provider": "webgl", "inputs": {"image": "inputImage"},
                  "outputs": {"bbox_regressions": "bbox_regressions", "scores": "scores",
                              "ldm_regressions": "ldm_regressions"}},
        "input": {"width": 128, "height": 128, "mean": [0.5] * 3, "std": [0.5] * 3},
        "parser": {"file": "RegressionParser.onnx", "provider": "wasm",
                   "inputs": {"bbox_regressions": "bbox_regressions", "scores": "scores.1",
                              "ldm_regressions": "landm_regressions"},
                   "outputs": {"boxes": "boxes", "scores": "scores", "landms": "landms"},
                   "output_scale": [640, 480], "iou_threshold": 0.3},
        "keypoints": {"count": 6, "right_eye": 0, "left_eye": 1}}},
    "landmarks": None,
}


def mutated(path, value):
    d = copy.deepcopy(GOOD)
    *parents, last = path
    node = d
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return d


def test_good_manifest_parses_with_defaults():
    m = Manifest.parse(GOOD)
    det = m.detector()
    assert det is m.detector("still") is m.detector("short_range")
    assert det.parser.inputs["scores"] == "scores.1"
    assert det.output_scale == (640.0, 480.0)
    assert det.input.letterbox == "center" and m.landmarks is None and m.trained


@pytest.mark.parametrize("path,value,message", [
    (("schema",), 2, "schema 2"),
    (("detectors",), {}, "no detectors"),
    (("detectors", "short_range", "graph", "provider"), "cuda", "provider 'cuda'"),
    (("detectors", "short_range", "parser", "outputs", "landms"), KeyError, "lacks 'landms'"),
    (("detectors", "short_range", "input", "std"), [0.5, 0, 0.5], "positive stds"),
    (("detectors", "short_range", "keypoints", "left_eye"), KeyError, "lacks 'left_eye'"),
    (("defaults",), {"still": "full_range"}, "unknown detector 'full_range'"),
])
def test_bad_manifest_names_the_problem(path, value, message):
    with pytest.raises(ManifestError, match=message.replace("(", r"\(")):
        Manifest.parse(mutated(path, value))


def test_not_json():
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.loads("{nope")
    assert Manifest.loads(json.dumps(GOOD)).name == "t"


# -- a landmark graph without mesh/presence, and the roi detector ---------------------------------
POINTS_ONLY = {
    "graph": {"file": "FaceLandmarks.onnx", "provider": "webgl", "inputs": {"image": "faceImage"},
              "outputs": {"points": "points"}},
    "input": {"width": 112, "height": 112, "mean": [0] * 3, "std": [1] * 3},
    "crop": {"scale": 1.3}, "layout": "iBUG-68", "count": 68,
    "track": {"from": "points", "right_eye": 36, "left_eye": 45, "scale": 1.6},
}


def _with(landmarks=None, roi=None):
    d = copy.deepcopy(GOOD)
    d["landmarks"] = landmarks
    if roi is not None:
        d["detectors"]["small"] = {**copy.deepcopy(d["detectors"]["short_range"]), **roi}
        d["defaults"] = {"camera": "short_range", "roi": "small"}
    return d


def test_points_only_landmark_graph_and_roi_detector_parse():
    m = Manifest.parse(_with(POINTS_ONLY, roi={"crop": {"scale": 2.0}}))
    lm = m.landmarks
    assert lm.graph.outputs.get("mesh") is None and lm.graph.outputs.get("presence") is None
    assert (lm.presence_threshold, lm.mesh_right_eye, lm.has_mesh) == (None, None, False)
    assert (lm.track_from, lm.track_right_eye, lm.track_left_eye, lm.track_scale) == ("points", 36, 45, 1.6)
    assert m.roi_detector().name == "small" and m.roi_detector().crop_scale == 2.0
    assert m.detector("camera").name == "short_range" and Manifest.parse(GOOD).roi_detector() is None


@pytest.mark.parametrize("change,message", [
    ({"track": {"from": "mesh"}}, "track is from the mesh, but the graph has no mesh"),
    ({"track": {"from": "points", "right_eye": 36, "scale": 1.6}}, "landmarks.track lacks 'left_eye'"),
    ({"track": {"from": "points", "right_eye": 36, "left_eye": 68, "scale": 1.6}}, "eye points must be in 0..67"),
    ({"track": {"from": "box"}}, "must be 'mesh' or 'points'"),
    ({"graph": {**POINTS_ONLY["graph"], "outputs": {"points": "p", "mesh": "m"}}}, "lacks 'mesh'"),
    ({"graph": {**POINTS_ONLY["graph"], "outputs": {"points": "p", "presence": "q"}}},
     "lacks 'presence_threshold'"),
    ({"graph": {**POINTS_ONLY["graph"], "outputs": {"mesh": "m"}}}, "lacks 'points'"),
])
def test_bad_landmark_block_names_the_problem(change, message):
    with pytest.raises(ManifestError, match=message.replace("(", r"\(")):
        Manifest.parse(_with({**POINTS_ONLY, **change}))


def test_roi_detector_needs_its_crop_scale():
    with pytest.raises(ManifestError, match="roi detector 'small' lacks crop.scale"):
        Manifest.parse(_with(roi={}))
