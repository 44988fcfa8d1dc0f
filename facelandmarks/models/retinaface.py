"""RetinaFace (MobileNet-0.25 backbone + FPN + SSH + class/box/landmark heads), biubug6 layout.

The module tree and every parameter name follow biubug6/Pytorch_Retinaface (``models/net.py``,
``models/retinaface.py``, ``cfg_mnet``), so its checkpoints load as they are::

    body.stage1.0.0.weight  body.stage1.0.1.running_mean  ...  body.stage3.1.5.weight
    fpn.output1.0.weight  fpn.merge1.1.bias  ssh1.conv3X3.0.weight  ssh3.conv7x7_3.1.weight
    ClassHead.0.conv1x1.weight  BboxHead.2.conv1x1.bias  LandmarkHead.2.conv1x1.bias

(``body`` is biubug6's ``IntermediateLayerGetter`` over MobileNetV1 stages 1–3; its ``avg``/``fc``
layers are not part of the detector and not part of the checkpoints.)

Differences from biubug6, none of which changes the numbers:

* ``num_landmarks`` is configurable (5 for the classic checkpoints, 98 for WFLW-98 training);
  the landmark head has ``anchors × 2K`` output channels.
* The FPN's nearest-neighbour ×2 upsampling is written with Reshape + Concat (webgl's Resize is
  linear only), which is bit-identical to ``F.interpolate(mode="nearest")`` for an exact ×2
  (input sizes that are multiples of 32). ``upsample="bilinear"`` (align_corners) reproduces the
  seed's graph, whose FPN was trained that way.
* ``forward`` is the inference form only: ``(bbox_regressions [1,N,4], scores [1,N] = softmax face
  column, ldm_regressions [1,N,2K])``.

Loading (:func:`load_checkpoint`) reads the file with :mod:`facelandmarks.checkpoints` (the usual
wrappers and the ``module.`` prefix taken off) and refuses anything that does not fit exactly,
naming the keys.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import CheckpointError, read_state_dict  # noqa: F401 — CheckpointError is re-exported

#: biubug6 cfg_mnet: prior boxes per level, strides, variances
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)
ANCHORS_PER_CELL = 2


# -- building blocks (biubug6 models/net.py, same Sequential indices) ------------------------------

def conv_bn(inp: int, oup: int, stride: int = 1, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup),
                         nn.LeakyReLU(negative_slope=leaky, inplace=True))


def conv_bn_no_relu(inp: int, oup: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup))


def conv_bn1x1(inp: int, oup: int, stride: int, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 1, stride, padding=0, bias=False), nn.BatchNorm2d(oup),
                         nn.LeakyReLU(negative_slope=leaky, inplace=True))


def conv_dw(inp: int, oup: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True))


class MobileNetV1Body(nn.Module):
    """MobileNetV1 ×0.25 stages 1–3 (what biubug6's IntermediateLayerGetter keeps); returns the
    three stage outputs (strides 8, 16, 32)."""

    def __init__(self):
        super().__init__()
        self.stage1 = nn.Sequential(conv_bn(3, 8, 2, leaky=0.1), conv_dw(8, 16, 1), conv_dw(16, 32, 2),
                                    conv_dw(32, 32, 1), conv_dw(32, 64, 2), conv_dw(64, 64, 1))
        self.stage2 = nn.Sequential(conv_dw(64, 128, 2), *[conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(conv_dw(128, 256, 2), conv_dw(256, 256, 1))

    def forward(self, x):
        c3 = self.stage1(x)
        c4 = self.stage2(c3)
        c5 = self.stage3(c4)
        return c3, c4, c5


def upsample_nearest2x(x: torch.Tensor) -> torch.Tensor:
    """Exactly ``F.interpolate(x, scale_factor=2, mode="nearest")``, with Reshape + Concat only
    (all rank 4, constant shapes) so the webgl provider runs it."""
    n, c, h, w = x.shape
    x = x.reshape(n, c * h, w, 1)
    x = torch.cat([x, x], dim=3).reshape(n, c * h, 1, 2 * w)       # repeat each column
    return torch.cat([x, x], dim=2).reshape(n, c, 2 * h, 2 * w)     # repeat each row


class FPN(nn.Module):
    def __init__(self, in_channels_list, out_channels: int, upsample: str = "nearest"):
        super().__init__()
        leaky = 0.1 if out_channels <= 64 else 0.0
        self.output1 = conv_bn1x1(in_channels_list[0], out_channels, stride=1, leaky=leaky)
        self.output2 = conv_bn1x1(in_channels_list[1], out_channels, stride=1, leaky=leaky)
        self.output3 = conv_bn1x1(in_channels_list[2], out_channels, stride=1, leaky=leaky)
        self.merge1 = conv_bn(out_channels, out_channels, leaky=leaky)
        self.merge2 = conv_bn(out_channels, out_channels, leaky=leaky)
        if upsample not in ("nearest", "bilinear"):
            raise ValueError(f"upsample must be 'nearest' or 'bilinear', not {upsample!r}")
        self.upsample = upsample

    def _up(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        size = (like.shape[2], like.shape[3])
        if self.upsample == "bilinear":
            return F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        if size != (2 * x.shape[2], 2 * x.shape[3]):
            raise ValueError(f"FPN nearest upsampling needs an exact ×2 ({tuple(x.shape[2:])} → {size}): "
                             "use an input size that is a multiple of 32")
        return upsample_nearest2x(x)

    def forward(self, feats):
        output1 = self.output1(feats[0])
        output2 = self.output2(feats[1])
        output3 = self.output3(feats[2])
        output2 = self.merge2(output2 + self._up(output3, output2))
        output1 = self.merge1(output1 + self._up(output2, output1))
        return output1, output2, output3


class SSH(nn.Module):
    def __init__(self, in_channel: int, out_channel: int):
        super().__init__()
        assert out_channel % 4 == 0
        leaky = 0.1 if out_channel <= 64 else 0.0
        self.conv3X3 = conv_bn_no_relu(in_channel, out_channel // 2, stride=1)
        self.conv5X5_1 = conv_bn(in_channel, out_channel // 4, stride=1, leaky=leaky)
        self.conv5X5_2 = conv_bn_no_relu(out_channel // 4, out_channel // 4, stride=1)
        self.conv7X7_2 = conv_bn(out_channel // 4, out_channel // 4, stride=1, leaky=leaky)
        self.conv7x7_3 = conv_bn_no_relu(out_channel // 4, out_channel // 4, stride=1)

    def forward(self, x):
        conv3x3 = self.conv3X3(x)
        conv5x5_1 = self.conv5X5_1(x)
        conv5x5 = self.conv5X5_2(conv5x5_1)
        conv7x7 = self.conv7x7_3(self.conv7X7_2(conv5x5_1))
        return F.relu(torch.cat([conv3x3, conv5x5, conv7x7], dim=1))


class _Head(nn.Module):
    """1×1 conv → [N, H·W·anchors, per_anchor] (biubug6's ClassHead/BboxHead/LandmarkHead)."""

    def __init__(self, inchannels: int, num_anchors: int, per_anchor: int):
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(inchannels, num_anchors * per_anchor, kernel_size=(1, 1), stride=1,
                                 padding=0)

    def forward(self, x):
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        n, h, w, c = out.shape
        return out.reshape(n, h * w * (c // self.per_anchor), self.per_anchor)


class RetinaFace(nn.Module):
    """RetinaFace, MobileNet-0.25 (biubug6 ``cfg_mnet``: in_channel 32, out_channel 64).

    ``forward(image [1,3,H,W])`` → ``(bbox_regressions [1,N,4], scores [1,N], ldm_regressions
    [1,N,2K])``, N = priors (16800 at 640×640), scores = softmax face probability.
    """

    def __init__(self, num_landmarks: int = 98, upsample: str = "nearest"):
        super().__init__()
        if num_landmarks < 1:
            raise ValueError("num_landmarks must be >= 1")
        self.num_landmarks = num_landmarks
        in_channel, out_channel = 32, 64
        self.body = MobileNetV1Body()
        self.fpn = FPN([in_channel * 2, in_channel * 4, in_channel * 8], out_channel, upsample)
        self.ssh1 = SSH(out_channel, out_channel)
        self.ssh2 = SSH(out_channel, out_channel)
        self.ssh3 = SSH(out_channel, out_channel)
        a = ANCHORS_PER_CELL
        self.ClassHead = nn.ModuleList([_Head(out_channel, a, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([_Head(out_channel, a, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([_Head(out_channel, a, 2 * num_landmarks) for _ in range(3)])

    def features(self, image):
        fpn = self.fpn(self.body(image))
        return self.ssh1(fpn[0]), self.ssh2(fpn[1]), self.ssh3(fpn[2])

    def forward(self, image):
        feats = self.features(image)
        bbox = torch.cat([self.BboxHead[i](f) for i, f in enumerate(feats)], dim=1)
        logits = torch.cat([self.ClassHead[i](f) for i, f in enumerate(feats)], dim=1)
        ldm = torch.cat([self.LandmarkHead[i](f) for i, f in enumerate(feats)], dim=1)
        scores = F.softmax(logits, dim=-1)[:, :, 1]
        return bbox, scores, ldm


def feature_sizes(input_size: int) -> list[int]:
    """Feature-map side per level (biubug6 PriorBox: ceil(size / step))."""
    return [math.ceil(input_size / s) for s in STEPS]


def num_priors(input_size: int) -> int:
    return sum(f * f * len(m) for f, m in zip(feature_sizes(input_size), MIN_SIZES))


# -- checkpoints ----------------------------------------------------------------------------------

def landmarks_in(state: Mapping[str, torch.Tensor]) -> int | None:
    """The landmark count a RetinaFace state dict was trained with (from LandmarkHead.0), or None."""
    w = state.get("LandmarkHead.0.conv1x1.weight")
    if w is None or w.ndim != 4 or w.shape[0] % (2 * ANCHORS_PER_CELL):
        return None
    return w.shape[0] // (2 * ANCHORS_PER_CELL)


def _names(keys, limit: int = 8) -> str:
    keys = sorted(keys)
    more = f" … and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_checkpoint(model: RetinaFace, source: str | Path | Mapping, label: str | None = None) -> None:
    """Load a biubug6-layout checkpoint into ``model`` strictly; raise :class:`CheckpointError`
    naming every missing/unexpected/mis-shaped key (and the landmark-count mismatch) otherwise."""
    label = label or (str(source) if not isinstance(source, Mapping) else "checkpoint")
    state = read_state_dict(source, label)
    expected = model.state_dict()
    # BatchNorm's num_batches_tracked is bookkeeping (absent from checkpoints saved by old PyTorch)
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = set(expected) - set(state) - optional
    unexpected = set(state) - set(expected)
    problems = []
    k = landmarks_in(state)
    if k is not None and k != model.num_landmarks:
        problems.append(f"it has {k} landmarks, the model is built for {model.num_landmarks} "
                        f"(export with --landmarks {k})")
    if any(key.startswith(("body.conv1.", "body.layer1.")) for key in unexpected):
        problems.append("it looks like a ResNet-50 RetinaFace; only the MobileNet-0.25 backbone is supported")
    if missing:
        problems.append(f"{len(missing)} missing keys: {_names(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_names(unexpected)}")
    shapes = [f"{key} {tuple(state[key].shape)} (model {tuple(expected[key].shape)})"
              for key in sorted(set(state) & set(expected)) if state[key].shape != expected[key].shape]
    if shapes and not (k is not None and k != model.num_landmarks and
                       all(s.startswith("LandmarkHead.") for s in shapes)):
        problems.append(f"{len(shapes)} keys with other shapes: {'; '.join(shapes[:6])}"
                        + (" …" if len(shapes) > 6 else ""))
    if problems:
        raise CheckpointError(f"{label} does not fit RetinaFace-MobileNet0.25 with "
                              f"{model.num_landmarks} landmarks: " + "; ".join(problems))
    full = {key: state.get(key, expected[key]) for key in expected}
    model.load_state_dict(full, strict=True)


def load_retinaface(source: str | Path | Mapping, num_landmarks: int = 98,
                    upsample: str = "nearest") -> RetinaFace:
    model = RetinaFace(num_landmarks, upsample)
    load_checkpoint(model, source)
    return model.eval()
