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
