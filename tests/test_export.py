"""export_models.py: what it writes, the checks it runs, and that a failed run changes nothing."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import export_models
from facelandmarks import verify
from facelandmarks.pipeline.manifest import Manifest
from facelandmarks.weights import sha256_of


def test_manifest_describes_every_graph(models_dir):
    raw = json.loads((models_dir / "manifest.json").read_text())
    manifest = Manifest.parse(raw)
    assert manifest.trained and manifest.defaults == {"camera": "short_range", "still": "full_range"}
    graphs = manifest.graphs()
    assert {g.file for g in graphs} == set(manifest.files) == {
        "FaceDetector.onnx", "RegressionParser.onnx", "FaceDetectorFullRange.onnx",
        "RegressionParserFullRange.onnx", "FaceLandmarks.onnx"}
    for g in graphs:
        assert sha256_of(models_dir / g.file) == manifest.files[g.file]
        model = onnx.load(str(models_dir / g.file))
        names_in = {i.name for i in model.graph.input}
        names_out = {o.name for o in model.graph.output}
        assert set(g.inputs.values()) == names_in and set(g.outputs.values()) == names_out
        if g.provider == "webgl":
            assert verify.webgl_problems(model) == [], g.file
        else:
            assert "NonMaxSuppression" in {n.op_type for n in model.graph.node}
    short = manifest.detector("camera")
    assert short.graph.inputs["image"] == "inputImage"
    assert (short.input.width, short.input.height) == (128, 128)
    assert manifest.detector("still").input.width == 192
    # 98 points, 10 on the mid-line (chin, nose bridge and tip, mouth centres): 44 left/right pairs
    assert len(manifest.landmarks.flip_pairs) == 44 and manifest.landmarks.count == 98


def test_failed_export_leaves_previous_models_untouched(tmp_path, monkeypatch, capsys):
    out = tmp_path / "models"
    out.mkdir()
    previous = {"schema": 1, "files": {}, "previous": True}  # an export of ours: it may be replaced
    (out / "manifest.json").write_text(json.dumps(previous))
    import facelandmarks.export.mediapipe as mediapipe

    monkeypatch.setattr(mediapipe, "PARITY_ATOL", 0.0)       # no real port is that exact
    assert export_models.main(["--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "left as it was" in err and "differs from LiteRT" in err
    assert [p.name for p in tmp_path.iterdir()] == ["models"]   # no staging folder left behind
    assert [p.name for p in out.iterdir()] == ["manifest.json"]
    assert json.loads((out / "manifest.json").read_text()) == previous


def test_retinaface_needs_weights_or_random(capsys):
    assert export_models.main(["--model", "retinaface"]) == 2
    assert "--weights" in capsys.readouterr().err


def graph(nodes, inputs, outputs, initializers=(), opset=18):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


F = TensorProto.FLOAT
X = helper.make_tensor_value_info("x", F, [1, 4])


@pytest.mark.parametrize("model,reason", [
    (graph([helper.make_node("NonMaxSuppression", ["b", "s"], ["y"], name="nms")],
           [helper.make_tensor_value_info("b", F, [1, 4, 4]), helper.make_tensor_value_info("s", F, [1, 1, 4])],
           [helper.make_tensor_value_info("y", TensorProto.INT64, [None, 3])]),
     "node nms (NonMaxSuppression): not a WebGL op"),
    (graph([helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="sum")], [X],
           [helper.make_tensor_value_info("y", F, [1, 1])],
           [helper.make_tensor("axes", TensorProto.INT64, [1], [1])]),
     "node sum (ReduceSum): webgl has it only for opsets 1-12"),
    (graph([helper.make_node("Shape", ["x"], ["shape"], name="shape"),
            helper.make_node("ConstantOfShape", ["shape"], ["zeros"], name="zeros",
                             value=helper.make_tensor("v", F, [1], [0.0])),
            helper.make_node("Add", ["x", "zeros"], ["y"], name="add")], [X],
           [helper.make_tensor_value_info("y", F, [1, 4])]),
     "node zeros (ConstantOfShape): not a WebGL op"),
    (graph([helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="nearest")],
           [helper.make_tensor_value_info("x", F, [1, 1, 2, 2])],
           [helper.make_tensor_value_info("y", F, [1, 1, 4, 4])],
           [helper.make_tensor("scales", F, [4], [1, 1, 2, 2])]),
     "node up (Resize): Resize mode 'nearest'; webgl runs linear only"),
    (graph([helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="linear")],
           [helper.make_tensor_value_info("x", F, [1, 1, 2, 2])],
           [helper.make_tensor_value_info("y", F, [1, 1, 4, 4])],
           [helper.make_tensor("scales", F, [4], [1, 1, 2, 2])]),
     "node up (Resize): empty optional input name"),
    (graph([helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"], name="tail")], [X],
           [helper.make_tensor_value_info("y", F, [1, 3])],
           [helper.make_tensor("starts", TensorProto.INT64, [1], [1]),
            helper.make_tensor("ends", TensorProto.INT64, [1], [2**63 - 1]),
            helper.make_tensor("axes", TensorProto.INT64, [1], [1])]),
     "int64 constant ends holds 9223372036854775807: outside int32"),
    (graph([helper.make_node("Pad", ["x", "pads"], ["y"], name="pad")],
           [X, helper.make_tensor_value_info("pads", TensorProto.INT64, [4])],
           [helper.make_tensor_value_info("y", F, [1, 6])]),
     "node pad (Pad): input 1 (pads) is computed at run time"),
])
def test_webgl_check_names_node_and_reason(model, reason):
    problems = verify.webgl_problems(model)
    assert any(reason in p for p in problems), problems
    with pytest.raises(verify.VerificationError, match="webgl provider"):
        verify.check_webgl(model, "test.onnx")


def test_webgl_check_accepts_constant_shape_chains():
    # Shape → Gather → Concat → Reshape: int64, but computed from shapes (the CPU side), as in the seed
    model = graph([helper.make_node("Shape", ["x"], ["s"]),
                   helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
                   helper.make_node("Concat", ["n", "minus1"], ["shape"], axis=0),
                   helper.make_node("Reshape", ["x", "shape"], ["y"])], [X],
                  [helper.make_tensor_value_info("y", F, [1, 4])],
                  [helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
                   helper.make_tensor("minus1", TensorProto.INT64, [1], [-1])])
    assert verify.webgl_problems(model) == []


def test_export_clamps_open_ended_slices_for_webgl():
    import torch

    from facelandmarks.export.onnx_export import export_module

    class Tail(torch.nn.Module):
        def forward(self, x):
            return x[:, 4:] * 2

    model = export_module(Tail(), (torch.ones(1, 16),), ["x"], ["y"])
    assert "Slice" in {n.op_type for n in model.graph.node}
    assert verify.webgl_problems(model) == []


def test_parity_check_fails_loudly(tmp_path):
    model = graph([helper.make_node("Relu", ["x"], ["y"])], [X], [helper.make_tensor_value_info("y", F, [1, 4])])
    onnx.save(model, str(tmp_path / "relu.onnx"))
    x = np.array([[-1, 0, 1, 2]], np.float32)
    assert verify.onnx_parity([np.maximum(x, 0)], tmp_path / "relu.onnx", {"x": x}, ["y"], 1e-6, "relu") == {"y": 0.0}
    with pytest.raises(verify.VerificationError, match="relu: onnxruntime differs"):
        verify.onnx_parity([x], tmp_path / "relu.onnx", {"x": x}, ["y"], 1e-6, "relu")
