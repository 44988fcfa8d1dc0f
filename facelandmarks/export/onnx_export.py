"""torch.onnx.export with the settings every graph here needs, plus the clean-up WebGL wants."""
from __future__ import annotations

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


def export_module(module: torch.nn.Module, example_inputs: tuple, input_names: list[str],
                  output_names: list[str], custom_translation_table: dict | None = None) -> onnx.ModelProto:
    """Export ``module`` (eval mode, fixed shapes) with the dynamo exporter at opset 18, weights
    inline (one file), constants folded; returns the ModelProto (not yet written anywhere)."""
    module = module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, example_inputs, input_names=input_names,
                                    output_names=output_names, opset_version=OPSET, dynamo=True,
                                    external_data=False, optimize=True, verbose=False,
                                    custom_translation_table=custom_translation_table)
    model = program.model_proto
    return name_empty_inputs(model)


def save_model(model: onnx.ModelProto, path: Path) -> None:
    onnx.save_model(model, str(path), save_as_external_data=False)
