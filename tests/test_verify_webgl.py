"""The static WebGL check catches the Conv shader-cache collision of onnxruntime-web's webgl provider
(the bug that made the full-range detector find no face there), and the exported detectors are free
of it."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facelandmarks import verify


def two_convs(second_weight: tuple[int, ...], first_activation: str | None, second_activation: str | None,
              computed_weight: bool = False) -> onnx.ModelProto:
    """x [1,8,12,12] → Conv A (8→4, 1x1) [→ act] and Conv B (8→w0, 1x1) [→ act], both graph outputs."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 8, 1, 1)).astype(np.float32), "wa"),
             numpy_helper.from_array(rng.normal(size=second_weight).astype(np.float32), "wb")]
    nodes = [helper.make_node("Conv", ["x", "wa"], ["a"], kernel_shape=[1, 1])]
    wb = "wb"
    if computed_weight:
        nodes.append(helper.make_node("Identity", ["wb"], ["wb_computed"]))
        wb = "wb_computed"
    nodes.append(helper.make_node("Conv", ["x", wb], ["b"], kernel_shape=[1, 1]))
    outs = {"a": "a", "b": "b"}
    for name, act in (("a", first_activation), ("b", second_activation)):
        if act:
            nodes.append(helper.make_node(act, [name], [name + "_act"]))
            outs[name] = name + "_act"
    graph = helper.make_graph(
        nodes, "two_convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 12, 12])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs.values()], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("second_weight,first_act,second_act,computed,collides", [
    ((4, 8, 1, 1), "Relu", None, False, True),        # the full-range detector's case
    ((4, 8, 1, 1), None, "Sigmoid", False, True),
    ((4, 8, 1, 1), "Relu", "Relu", False, False),     # same shapes, same activation: same program
    ((5, 8, 1, 1), "Relu", None, False, False),       # other weight shape: other program
    ((5, 8, 1, 1), None, None, True, False),          # computed weight: its own complaint
])
def test_conv_cache_collisions_are_found(second_weight, first_act, second_act, computed, collides):
    problems = verify.webgl_problems(two_convs(second_weight, first_act, second_act, computed))
    assert any("caches both as one program" in p for p in problems) == collides, problems
    assert any("computed at run time" in p for p in problems) == computed, problems


@pytest.mark.parametrize("config_name", ["SHORT_RANGE", "FULL_RANGE"])
def test_exported_detectors_pass_the_webgl_check(config_name, tmp_path):
    import torch

    from facelandmarks.export.mediapipe import DETECTOR_INPUTS, DETECTOR_OUTPUTS, FaceDetectorGraph
    from facelandmarks.export.onnx_export import export_module
    from facelandmarks.models import blazeface
    config = getattr(blazeface, config_name)
    net = blazeface.BlazeFace(config).eval()       # random weights: only the graph's shape matters
    x = torch.zeros(1, 3, config.input_size, config.input_size)
    model = export_module(FaceDetectorGraph(net).eval(), (x,), DETECTOR_INPUTS, DETECTOR_OUTPUTS)
    assert verify.webgl_problems(model) == []
    regressors, scores = net.detect(x)
    with torch.no_grad():
        ref_regressors, logits = net(x)
    assert torch.equal(regressors, ref_regressors)
    assert torch.allclose(scores, torch.sigmoid(logits.clamp(-100, 100)).reshape(1, -1))
