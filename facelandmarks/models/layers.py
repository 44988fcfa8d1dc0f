"""TFLite-faithful building blocks shared by BlazeFace and FaceMesh, and the weight loader.

* :class:`TFLiteConv2d` -- a conv with TFLite's ``SAME`` padding, which at stride 2 pads the
  right/bottom edge more than the left/top one (PyTorch's symmetric ``padding=`` cannot express it);
* :class:`BlazeBlock` -- depthwise 3x3 -> pointwise 1x1 (once, or twice with a narrow "mid" width),
  plus a skip path that max-pools at stride 2 and zero-fills the new channels when the block widens;
* :func:`load_tflite_weights` -- walks the tflite ops that own weights (CONV_2D, DEPTHWISE_CONV_2D,
  PRELU) in execution order alongside the model's layers and copies each tensor, checking kind,
  stride, padding and shape, and failing loudly with the layer's name otherwise.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..weights import TFLiteFile, WeightsError




def tflite_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TFLite/TensorFlow ``SAME`` along one axis: the output has
    ceil(size/stride) samples and any odd total is put on the *after* side."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class TFLiteConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TFLite's padding: ``"same"`` (asymmetric at stride 2) or ``"valid"``.

    ``depthwise=True`` makes it a depthwise conv (groups = channels). The padding is computed from
    the (static) input size in ``forward``; the ONNX exporter folds the ``F.pad`` into the Conv's
    ``pads`` attribute.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: str = "same", depthwise: bool = False):
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', not {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         groups=in_channels if depthwise else 1, bias=True)
        self.tflite_padding = padding
        self.depthwise = depthwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tflite_padding == "same":
            top, bottom = tflite_same_pads(x.shape[-2], self.kernel_size[0], self.stride[0])
            left, right = tflite_same_pads(x.shape[-1], self.kernel_size[1], self.stride[1])
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def make_activation(kind: str, channels: int) -> nn.Module:
    if kind == "relu":
        return nn.ReLU()
    if kind == "prelu":
        return nn.PReLU(channels)
    raise ValueError(f"unknown activation {kind!r}")


class BlazeBlock(nn.Module):
    """BlazeFace's residual block, in TFLite's op order.

    Main path, single form: ``dw`` (3x3 depthwise, stride 1|2) -> ``pw`` (1x1 to out_channels).
    Double form (``mid_channels`` set): ``dw`` -> ``pw`` (1x1 down to mid) -> ``mid_act`` ->
    ``dw2`` (3x3 depthwise) -> ``pw2`` (1x1 up to out_channels).
    Skip path (:meth:`skip`): 2x2 max-pool at stride 2, zero channels appended when the block widens.
    Output: ``act(main + skip)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 mid_channels: int | None = None, activation: str = "relu"):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"BlazeBlock cannot narrow {in_channels} -> {out_channels} channels")
        self.stride = stride
        self.extra_channels = out_channels - in_channels
        self.dw = TFLiteConv2d(in_channels, in_channels, 3, stride, depthwise=True)
        if mid_channels is None:
            self.pw = TFLiteConv2d(in_channels, out_channels, 1)
        else:
            self.pw = TFLiteConv2d(in_channels, mid_channels, 1)
            self.mid_act = make_activation(activation, mid_channels)
            self.dw2 = TFLiteConv2d(mid_channels, mid_channels, 3, depthwise=True)
            self.pw2 = TFLiteConv2d(mid_channels, out_channels, 1)
        self.act = make_activation(activation, out_channels)

    def main(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pw(self.dw(x))
        if hasattr(self, "pw2"):
            x = self.pw2(self.dw2(self.mid_act(x)))
        return x

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            x = F.max_pool2d(x, kernel_size=2, stride=2)
        if self.extra_channels:
            # TFLite's PAD [[0,0],[0,0],[0,0],[0,extra]]: zero channels appended at the end. Written
            # as F.pad (not torch.cat with x.new_zeros(...)): the dynamo exporter turns new_zeros
            # into ConstantOfShape (not in the WebGL op set), while F.pad becomes one Pad whose pads
            # are a constant int64 initializer and which has no empty optional inputs.
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.main(x) + self.skip(x))


class Stem(nn.Module):
    """First conv (stride 2, SAME) + activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, activation: str = "relu"):
        super().__init__()
        self.conv = TFLiteConv2d(in_channels, out_channels, kernel, stride=2)
        self.act = make_activation(activation, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


# --------------------------------------------------------------------------------------------------
# Weight loading (shared with FaceMesh)
# --------------------------------------------------------------------------------------------------
WEIGHTED_OPCODES = ("CONV_2D", "DEPTHWISE_CONV_2D", "PRELU")


def _layer_kind(module: nn.Module) -> str:
    if isinstance(module, nn.PReLU):
        return "PRELU"
    if isinstance(module, nn.Conv2d):
        return "DEPTHWISE_CONV_2D" if module.groups > 1 else "CONV_2D"
    raise TypeError(f"{type(module).__name__} holds no tflite weights")


def load_tflite_weights(model: nn.Module, tflite_file: TFLiteFile, model_name: str = "") -> None:
    """Copy the weights of ``tflite_file`` into ``model``.

    Walks the tflite ops that own weights (CONV_2D, DEPTHWISE_CONV_2D, PRELU), in execution order,
    side by side with ``model.tflite_layers()``; checks op kind, stride, padding and every shape, and
    converts layouts (conv OHWI -> OIHW, depthwise 1HWC -> C1HW, PReLU alpha [1,1,C] -> [C]).
    Raises :class:`WeightsError` naming the layer (and the tflite op) on the first mismatch; nothing
    is copied unless everything matches.
    """
    label = model_name or type(model).__name__
    layers = model.tflite_layers()
    ops = [op for op in tflite_file.operators if op.opcode in WEIGHTED_OPCODES]
    source = tflite_file.path.name
    new_state: dict[str, torch.Tensor] = {}
    for (name, layer), op in zip(layers, ops):
        where = f"{label}: layer '{name}' <- {source} op #{op.index} {op.opcode} " \
                f"({tflite_file.tensor_name(op.outputs[0])})"
        kind = _layer_kind(layer)
        if kind != op.opcode:
            raise WeightsError(f"{where}: layer is a {kind}")
        if kind == "PRELU":
            alpha = tflite_file.tensor(op.inputs[1])
            if alpha.shape[:-1] != (1,) * (alpha.ndim - 1):
                raise WeightsError(f"{where}: alpha shape {alpha.shape} is not per-channel [1,1,C]")
            _check_shape(where, "alpha", alpha.shape[-1:], layer.weight.shape)
            new_state[f"{name}.weight"] = torch.from_numpy(alpha.reshape(-1).copy())
            continue
        opts = op.options
        stride = (opts.StrideH(), opts.StrideW())
        if stride != tuple(layer.stride):
            raise WeightsError(f"{where}: stride {stride}, layer has {tuple(layer.stride)}")
        padding = {0: "same", 1: "valid"}[opts.Padding()]
        if getattr(layer, "tflite_padding", None) != padding and layer.kernel_size != (1, 1):
            raise WeightsError(f"{where}: padding {padding}, layer has "
                               f"{getattr(layer, 'tflite_padding', layer.padding)}")
        weight = tflite_file.tensor(op.inputs[1])
        if kind == "CONV_2D":
            weight = weight.transpose(0, 3, 1, 2)            # OHWI -> OIHW
        else:
            weight = weight.transpose(3, 0, 1, 2)            # 1HWC -> C1HW
        _check_shape(where, "weight", weight.shape, layer.weight.shape)
        new_state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        if len(op.inputs) < 3 or op.inputs[2] < 0 or layer.bias is None:
            raise WeightsError(f"{where}: expected a bias on both sides")
        bias = tflite_file.tensor(op.inputs[2])
        _check_shape(where, "bias", bias.shape, layer.bias.shape)
        new_state[f"{name}.bias"] = torch.from_numpy(bias.copy())
    if len(ops) != len(layers):
        # every pair matched so far: one side has more weighted layers than the other
        if len(layers) > len(ops):
            name = layers[len(ops)][0]
            detail = f"layer '{name}' (and {len(layers) - len(ops) - 1} more) has no tflite op left"
        else:
            op = ops[len(layers)]
            detail = f"op #{op.index} {op.opcode} (and {len(ops) - len(layers) - 1} more) has no layer left"
        raise WeightsError(f"{label}: {source} has {len(ops)} weighted ops, the model "
                           f"{len(layers)} weighted layers: {detail} (wrong weights file?)")
    missing = set(model.state_dict()) - set(new_state)
    if missing:
        raise WeightsError(f"{label}: parameters not covered by {source}: {sorted(missing)}")
    model.load_state_dict(new_state, strict=True)


def _check_shape(where: str, what: str, got, expected) -> None:
    if tuple(got) != tuple(expected):
        raise WeightsError(f"{where}: {what} shape {tuple(got)} from tflite, layer expects "
                           f"{tuple(expected)}")
