"""torch.onnx.export with the settings every graph here needs, plus the clean-up WebGL wants."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import onnx
import torch

OPSET = 18


def name_empty_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop trailing empty optional inputs ('') and give inner ones a named empty initializer.

    onnxruntime-web's webgl loader fails on '' inputs. The dynamo exporter writes
    ``Resize(x, '', scales)`` (no roi); an empty float tensor means the same there (roi is only read
    for tf_crop_and_resize). Modifies ``model`` in place and returns it.
    """
    counter = 0
    for node in model.graph.node:
        while len(node.input) and node.input[-1] == "":
            del node.input[-1]
        for i, name in enumerate(node.input):
            if name == "":
                new = f"{node.name or node.op_type}_empty_input{i}_{counter}"
                counter += 1
                model.graph.initializer.append(onnx.helper.make_tensor(new, onnx.TensorProto.FLOAT, [0], []))
                node.input[i] = new
    return model


INT32_MAX, INT32_MIN = 2**31 - 1, -2**31


def clamp_int64_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Clamp int64 initializers into the int32 range.

    onnxruntime-web's webgl backend converts int64 tensors to int32 when it loads a graph and fails
    ("int64 is not supported") on a value outside that range. The exporter writes such values for
    open-ended slices (``x[..., 4:]`` ends at INT64_MAX); clamped, they mean the same, since Slice
    clamps its ends to the dimension anyway. Modifies ``model`` in place and returns it.
    """
    from onnx import numpy_helper

    for i, init in enumerate(model.graph.initializer):
        if init.data_type != onnx.TensorProto.INT64:
            continue
        values = numpy_helper.to_array(init)
        if values.size and (values.max() > INT32_MAX or values.min() < INT32_MIN):
            clamped = values.clip(INT32_MIN, INT32_MAX)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(clamped, init.name))
    return model


def export_module(module: torch.nn.Module, example_inputs: tuple, input_names: list[str],
                  output_names: list[str], custom_translation_table: dict | None = None) -> onnx.ModelProto:
    """Export ``module`` (eval mode, fixed shapes) with the dynamo exporter at opset 18, weights
    inline (one file), constants folded; returns the ModelProto (not yet written anywhere)."""
    module = module.eval()
    # the exporter logs, for every export, that torchvision (not installed, not needed) is absent
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, example_inputs, input_names=input_names,
                                    output_names=output_names, opset_version=OPSET, dynamo=True,
                                    external_data=False, optimize=True, verbose=False,
                                    custom_translation_table=custom_translation_table)
    model = program.model_proto
    return clamp_int64_constants(name_empty_inputs(model))


def save_model(model: onnx.ModelProto, path: Path) -> None:
    onnx.save_model(model, str(path), save_as_external_data=False)
