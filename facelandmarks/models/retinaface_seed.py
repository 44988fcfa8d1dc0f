"""Import the seed's published FaceDetector.onnx into our PyTorch :class:`RetinaFace`.

What the seed graph is (checked by :func:`inspect_seed_graph`, which refuses anything else):
biubug6's RetinaFace-MobileNet0.25 exported by PyTorch 1.12 at opset 11 with BatchNorm folded into
the convolutions (56 Conv nodes, each with a bias; 38 LeakyRelu α=0.1; 3 Relu after the SSH
concats), the three heads' initializers still carrying biubug6's names
(``ClassHead.0.conv1x1.weight`` …), 98 landmarks (LandmarkHead 392 = 2 anchors × 196), and one
deviation from biubug6: the FPN upsamples with ``Resize`` linear/align_corners (bilinear) instead
of nearest. Softmax + Gather(face column) close the graph.

The Conv nodes appear in PyTorch execution order, which is also our module's execution order, so
each node maps onto one of our Conv2d layers (shapes, groups, strides and padding are checked
one by one). A folded conv (W, b) becomes our conv weight W plus an identity BatchNorm carrying b
(running mean 0, var 1, γ = √(1+ε), β = b), so the result is an ordinary biubug6-layout state dict
that :func:`facelandmarks.models.retinaface.load_checkpoint` loads like any checkpoint.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from .retinaface import CheckpointError, RetinaFace, load_checkpoint


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def inspect_seed_graph(path: str | Path) -> dict:
    """Structure facts of a seed-style FaceDetector.onnx (op counts, upsampling, landmarks)."""
    model = onnx.load(str(path))
    g = model.graph
    ops = Counter(n.op_type for n in g.node)
    resize = [_attrs(n) for n in g.node if n.op_type == "Resize"]
    modes = {(a.get("mode", b"nearest").decode(), a.get("coordinate_transformation_mode", b"half_pixel").decode())
             for a in resize}
    inits = {t.name: t for t in g.initializer}
    lm = inits.get("LandmarkHead.0.conv1x1.weight")
    alphas = {round(float(_attrs(n).get("alpha", 0.01)), 6) for n in g.node if n.op_type == "LeakyRelu"}
    dims = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    return {
        "opset": next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
        "producer": f"{model.producer_name} {model.producer_version}",
        "ops": dict(ops), "resize": sorted(modes), "leaky_alphas": sorted(alphas),
        "num_landmarks": (lm.dims[0] // 4) if lm is not None else None,
        "input": g.input[0].name, "input_shape": dims,
        "outputs": [o.name for o in g.output],
        "batchnorm_folded": ops.get("BatchNormalization", 0) == 0,
        "parameters": int(sum(np.prod(inits[i].dims) for n in g.node if n.op_type == "Conv"
                              for i in n.input[1:] if i in inits)),
    }


def _conv_order(model: RetinaFace, size: int) -> list[tuple[str, nn.Conv2d]]:
    """Our Conv2d layers in execution order (forward hooks on one run)."""
    order: list[tuple[str, nn.Conv2d]] = []
    hooks = [m.register_forward_hook(lambda mod, i, o, name=name: order.append((name, mod)))
             for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    return order


def import_seed_detector(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(biubug6-layout state dict, facts) from the seed's FaceDetector.onnx.

    facts: ``num_landmarks``, ``upsample`` ("bilinear" for the seed), ``input_size`` and the
    structure found (see :func:`inspect_seed_graph`). Raises :class:`CheckpointError` naming the
    node where the graph stops matching RetinaFace-MobileNet0.25.
    """
    path = Path(path)
    facts = inspect_seed_graph(path)
    if not facts["batchnorm_folded"]:
        raise CheckpointError(f"{path}: has BatchNormalization nodes; expected BN folded into Conv")
    if facts["num_landmarks"] is None:
        raise CheckpointError(f"{path}: no LandmarkHead.0.conv1x1.weight initializer")
    modes = facts["resize"]
    if modes == [("linear", "align_corners")]:
        upsample = "bilinear"
    elif all(m == "nearest" for m, _ in modes):
        upsample = "nearest"
    else:
        raise CheckpointError(f"{path}: FPN Resize modes {modes} are neither nearest nor bilinear/align_corners")
    size = facts["input_shape"][2]
    facts.update(upsample=upsample, input_size=size)

    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    ours = RetinaFace(facts["num_landmarks"], upsample).eval()
    order = _conv_order(ours, size)
    if len(convs) != len(order):
        raise CheckpointError(f"{path}: {len(convs)} Conv nodes, RetinaFace-MobileNet0.25 has {len(order)}")
    modules = dict(ours.named_modules())
    state: dict[str, torch.Tensor] = {}
    for node, (name, conv) in zip(convs, order):
        a = _attrs(node)
        w = inits.get(node.input[1])
        b = inits.get(node.input[2]) if len(node.input) > 2 else None
        where = f"{path.name}: Conv node {node.name or node.output[0]} ↔ {name}"
        if w is None or b is None:
            raise CheckpointError(f"{where}: weight/bias are not initializers")
        if tuple(w.shape) != tuple(conv.weight.shape):
            raise CheckpointError(f"{where}: weight {w.shape} vs {tuple(conv.weight.shape)}")
        if (a.get("group", 1) != conv.groups or tuple(a.get("strides", (1, 1))) != conv.stride
                or tuple(a.get("pads", (0, 0, 0, 0)))[:2] != conv.padding):
            raise CheckpointError(f"{where}: group/stride/pads {a} differ from {conv}")
        state[f"{name}.weight"] = torch.from_numpy(w.copy())
        if conv.bias is not None:
            state[f"{name}.bias"] = torch.from_numpy(b.copy())
            continue
        parent, idx = name.rsplit(".", 1)
        bn_name = f"{parent}.{int(idx) + 1}"
        bn = modules.get(bn_name)
        if not isinstance(bn, nn.BatchNorm2d):
            raise CheckpointError(f"{where}: no BatchNorm after it in our model")
        c = b.shape[0]
        state[f"{bn_name}.weight"] = torch.full((c,), math.sqrt(1.0 + bn.eps), dtype=torch.float32)
        state[f"{bn_name}.bias"] = torch.from_numpy(b.copy())
        state[f"{bn_name}.running_mean"] = torch.zeros(c)
        state[f"{bn_name}.running_var"] = torch.ones(c)
        state[f"{bn_name}.num_batches_tracked"] = torch.tensor(0)
    # the heads kept their names in the graph: check the execution-order mapping against them
    for key in [k for k in inits if k.startswith(("ClassHead.", "BboxHead.", "LandmarkHead."))]:
        if key not in state or not np.array_equal(state[key].numpy(), inits[key]):
            raise CheckpointError(f"{path.name}: head initializer {key} does not land on {key}")
    return state, facts


def load_seed_detector(path: str | Path) -> tuple[RetinaFace, dict]:
    """Our RetinaFace carrying the seed graph's weights (eval mode), plus the structure facts."""
    state, facts = import_seed_detector(path)
    model = RetinaFace(facts["num_landmarks"], facts["upsample"])
    load_checkpoint(model, state, label=str(path))
    return model.eval(), facts
