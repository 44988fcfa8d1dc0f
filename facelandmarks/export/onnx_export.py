"""torch.onnx.export with the settings every graph here needs, plus the clean-up WebGL wants."""
from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

OPSET = 18


def strip_empty_inputs(model: onnx.ModelProto) -> None:
    """Drop trailing empty optional inputs (''): onnxruntime-web's webgl loader fails on them."""
    for node in model.graph.node:
        while node.input and node.input[-1] == "":
            node.input.pop()


def export_module(module: torch.nn.Module, example_inputs: tuple, input_names: list[str],
                  output_names: list[str]) -> onnx.ModelProto:
    """Export ``module`` (eval mode, fixed shapes) with the dynamo exporter at opset 18, weights
    inline (one file), constants folded; returns the ModelProto (not yet written anywhere)."""
    module = module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, example_inputs, input_names=input_names,
                                    output_names=output_names, opset_version=OPSET, dynamo=True,
                                    external_data=False, optimize=True, verbose=False)
    model = program.model_proto
    strip_empty_inputs(model)
    return model


def save_model(model: onnx.ModelProto, path: Path) -> None:
    onnx.save_model(model, str(path), save_as_external_data=False)
