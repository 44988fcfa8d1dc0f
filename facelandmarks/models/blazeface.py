"""BlazeFace face detectors (MediaPipe's short- and full-range models) written out in PyTorch.

The layers mirror the ops of MediaPipe's ``face_detection_short_range.tflite`` and
``face_detection_full_range.tflite`` one to one, so the .tflite weights load straight into them
(:func:`load_tflite_weights`) and the outputs equal LiteRT's to float rounding.

The building blocks (TFLite-SAME convs, BlazeBlocks) and the weight loader live in :mod:`.layers`.

ONNX / WebGL notes (checked with ``torch.onnx.export(..., dynamo=True, opset_version=18)`` and
:func:`facelandmarks.verify.webgl_problems`): the explicit ``F.pad`` of TFLiteConv2d is folded
by the exporter into the Conv's own ``pads`` attribute; the channel padding of the skip path is an
``F.pad`` that becomes one ``Pad`` with a constant int64 ``pads`` initializer (a concat with
``new_zeros`` would export as ConstantOfShape, which WebGL lacks); the bilinear upsampling is a
``Resize`` (linear, half_pixel) with constant float scales. The only thing the plain export leaves
that the WebGL checklist objects to is the empty ``roi`` input name of Resize (full range only),
which :func:`facelandmarks.export.onnx_export.name_empty_inputs` replaces with a named empty initializer.
Two things the static check cannot see made the full-range model wrong on the real webgl provider
(0 faces): see :meth:`BlazeFace.merge_heads` (one conv per anchor grid for both heads) and
:meth:`BlazeFace.detect` (probabilities computed before the flatten);
``tests/browser/test_webgl_parity.py`` compares every webgl-bound graph with onnxruntime.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..weights import TFLiteFile, load_tflite
from .layers import BlazeBlock, Stem, TFLiteConv2d, load_tflite_weights

__all__ = [
    "BlazeBlockSpec", "FPNLevelSpec", "BlazeFaceConfig", "SHORT_RANGE", "FULL_RANGE", "BlazeFace",
    "generate_anchors", "anchors_per_cell", "KEYPOINT_NAMES",
]

#: The 6 keypoints of the regressor output, in order. "Right" is the person's right (image left
#: on an unmirrored photo).
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion",
                  "left_ear_tragion")


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BlazeBlockSpec:
    """One BlazeBlock: ``out_channels``, ``stride`` (1 or 2), and ``mid_channels`` for the "double"
    (bottleneck) form dw->1x1(down)->act->dw->1x1(up) used by the full-range model (None = the single
    form dw->1x1)."""
    out_channels: int
    stride: int = 1
    mid_channels: int | None = None


@dataclass(frozen=True)
class FPNLevelSpec:
    """One top-down level of the full-range model's feature pyramid.

    The coarser map goes through 1x1 conv+ReLU to ``channels`` and is upsampled x2 (bilinear); the
    backbone map tapped after block ``lateral_tap`` goes through its own 1x1 conv+ReLU to
    ``channels``; the two are added and refined by ``num_blocks`` double BlazeBlocks of width
    ``channels`` (bottleneck ``mid_channels``)."""
    lateral_tap: int
    channels: int
    mid_channels: int
    num_blocks: int = 2


@dataclass(frozen=True)
class BlazeFaceConfig:
    """Architecture, weights and anchor scheme of one BlazeFace variant.

    The anchor fields follow MediaPipe's ``SsdAnchorsCalculatorOptions`` (face_detection graphs):
    ``num_layers`` SSD layers with ``strides``; layers sharing a stride are merged onto one grid;
    each layer puts one anchor per aspect ratio plus one more when
    ``interpolated_scale_aspect_ratio > 0``. With ``fixed_anchor_size`` every anchor is 1x1 (in
    normalised units), so an anchor is just its centre.
    """
    name: str
    weights_file: str
    input_size: int
    stem_channels: int
    stem_kernel: int
    blocks: tuple[BlazeBlockSpec, ...]
    #: indices into ``blocks`` whose outputs feed the heads when there is no FPN (coarsest last)
    head_taps: tuple[int, ...] = ()
    #: top-down pyramid levels, coarse to fine (empty: heads sit on ``head_taps`` directly)
    fpn: tuple[FPNLevelSpec, ...] = ()
    # --- SsdAnchorsCalculator options ---
    num_layers: int = 4
    strides: tuple[int, ...] = (8, 16, 16, 16)
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    fixed_anchor_size: bool = True
    #: decoding scales (MediaPipe's TensorsToDetections x/y/w/h_scale) = input size in pixels
    x_scale: float = field(default=0.0)
    y_scale: float = field(default=0.0)
    w_scale: float = field(default=0.0)
    h_scale: float = field(default=0.0)

    def __post_init__(self):
        for attr in ("x_scale", "y_scale", "w_scale", "h_scale"):
            if not getattr(self, attr):
                object.__setattr__(self, attr, float(self.input_size))
        if len(self.strides) != self.num_layers:
            raise ValueError(f"{self.name}: {self.num_layers} anchor layers but strides {self.strides}")

    @property
    def num_keypoints(self) -> int:
        return len(KEYPOINT_NAMES)

    @property
    def num_coords(self) -> int:
        """Values per anchor in the regressor output: box (4) + keypoints (2 each) = 16."""
        return 4 + 2 * self.num_keypoints

    @property
    def num_anchors(self) -> int:
        return sum(n * math.ceil(self.input_size / s) ** 2
                   for s, n in zip(*self.anchor_grids()))

    def anchor_grids(self) -> tuple[list[int], list[int]]:
        """(strides, anchors per cell) of the merged anchor grids, finest first."""
        strides, per_cell = [], []
        per_layer = len(self.aspect_ratios) + (1 if self.interpolated_scale_aspect_ratio > 0 else 0)
        for stride in self.strides:
            if strides and strides[-1] == stride:
                per_cell[-1] += per_layer      # consecutive layers with one stride share a grid
            else:
                strides.append(stride)
                per_cell.append(per_layer)
        return strides, per_cell


#: MediaPipe's short-range ("front camera") detector: 128x128, anchors 16x16x2 + 8x8x6 = 896.
SHORT_RANGE = BlazeFaceConfig(
    name="short_range",
    weights_file="face_detection_short_range.tflite",
    input_size=128,
    stem_channels=24, stem_kernel=5,
    blocks=(
        BlazeBlockSpec(24), BlazeBlockSpec(28),                                     # 64x64
        BlazeBlockSpec(32, 2), BlazeBlockSpec(36), BlazeBlockSpec(42),              # 32x32
        BlazeBlockSpec(48, 2), BlazeBlockSpec(56), BlazeBlockSpec(64), BlazeBlockSpec(72),
        BlazeBlockSpec(80), BlazeBlockSpec(88),                                     # 16x16 (tap 10)
        BlazeBlockSpec(96, 2), BlazeBlockSpec(96), BlazeBlockSpec(96), BlazeBlockSpec(96),
        BlazeBlockSpec(96),                                                         # 8x8 (tap 15)
    ),
    head_taps=(10, 15),
    num_layers=4, strides=(8, 16, 16, 16), interpolated_scale_aspect_ratio=1.0,
)

#: MediaPipe's full-range detector: 192x192, a feature pyramid down to 6x6 and back up to one
#: 48x48 grid with one anchor per cell = 2304 anchors.
FULL_RANGE = BlazeFaceConfig(
    name="full_range",
    weights_file="face_detection_full_range.tflite",
    input_size=192,
    stem_channels=32, stem_kernel=3,
    blocks=(
        BlazeBlockSpec(32, 1, 8), BlazeBlockSpec(32, 1, 8),                         # 96x96
        BlazeBlockSpec(48, 2, 12), BlazeBlockSpec(48, 1, 12), BlazeBlockSpec(64, 1, 16),  # 48 (tap 4)
        BlazeBlockSpec(96, 2, 24), BlazeBlockSpec(128, 1, 32), BlazeBlockSpec(128, 1, 32),  # 24 (tap 7)
        BlazeBlockSpec(144, 2, 36), BlazeBlockSpec(192, 1, 48), BlazeBlockSpec(256, 1, 64),  # 12 (tap 10)
        BlazeBlockSpec(384, 2, 96), BlazeBlockSpec(384, 1, 96), BlazeBlockSpec(384, 1, 96),
        BlazeBlockSpec(384, 1, 96),                                                 # 6x6
    ),
    fpn=(
        FPNLevelSpec(lateral_tap=10, channels=96, mid_channels=48),                 # -> 12x12
        FPNLevelSpec(lateral_tap=7, channels=64, mid_channels=32),                  # -> 24x24
        FPNLevelSpec(lateral_tap=4, channels=48, mid_channels=24, num_blocks=1),    # -> 48x48
    ),
    num_layers=1, strides=(4,), interpolated_scale_aspect_ratio=0.0,
)


# --------------------------------------------------------------------------------------------------
# Anchors
# --------------------------------------------------------------------------------------------------
def anchors_per_cell(config: BlazeFaceConfig) -> list[int]:
    """Anchors per grid cell for each head (finest grid first), e.g. [2, 6] for SHORT_RANGE."""
    return config.anchor_grids()[1]


def generate_anchors(config: BlazeFaceConfig) -> np.ndarray:
    """Anchor centres ``[N, 2]`` (x, y), normalised 0..1, in the order of the model's outputs.

    Same as MediaPipe's SsdAnchorsCalculator with ``fixed_anchor_size: true``: for each merged grid
    (stride s, feature map ceil(input/s) square), row-major over cells, ``per_cell`` anchors per cell
    all centred at ``((x + anchor_offset_x) / W, (y + anchor_offset_y) / H)``. Width and height are
    1 for every anchor, so they are not returned.
    """
    if not config.fixed_anchor_size:
        raise NotImplementedError("only fixed_anchor_size anchors (all BlazeFace variants use them)")
    centres = []
    for stride, per_cell in zip(*config.anchor_grids()):
        size = math.ceil(config.input_size / stride)
        ys, xs = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        grid = np.stack([(xs + config.anchor_offset_x) / size,
                         (ys + config.anchor_offset_y) / size], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# The full-range model's top-down pyramid
# --------------------------------------------------------------------------------------------------
class FPNLevel(nn.Module):
    """One top-down pyramid level: ``relu(topdown(coarse))`` upsampled x2 + ``relu(lateral(tap))``,
    then ``blocks``. The two 1x1 convs are declared in TFLite's execution order (top-down first)."""

    def __init__(self, coarse_channels: int, lateral_channels: int, spec: FPNLevelSpec):
        super().__init__()
        self.topdown = TFLiteConv2d(coarse_channels, spec.channels, 1)
        self.lateral = TFLiteConv2d(lateral_channels, spec.channels, 1)
        self.blocks = nn.Sequential(*[
            BlazeBlock(spec.channels, spec.channels, mid_channels=spec.mid_channels)
            for _ in range(spec.num_blocks)])

    @staticmethod
    def upsample(x: torch.Tensor) -> torch.Tensor:
        """x2 bilinear upsampling, equal to TFLite's RESIZE_BILINEAR(align_corners=False,
        half_pixel_centers=True): PyTorch's align_corners=False uses half-pixel centres and clamps
        source coordinates at the edges exactly like TFLite.

        Given as ``scale_factor`` rather than ``size`` on purpose: it exports as
        ``Resize(x, roi='', scales=[1,1,2,2])`` (linear, half_pixel). onnxruntime-web's WebGL loader
        skips an empty roi name on a 3-input Resize and then reads input 1 as the scales, which is
        right; with ``size`` the node is ``Resize(x, '', '', sizes)`` and the same loader would take
        the int64 sizes for the scales. :func:`facelandmarks.export.onnx_export.name_empty_inputs` gives the roi a real (empty) name.
        """
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)

    def forward(self, coarse: torch.Tensor, tap: torch.Tensor) -> torch.Tensor:
        top = F.relu(self.topdown(coarse))
        lat = F.relu(self.lateral(tap))
        if (2 * top.shape[2], 2 * top.shape[3]) != tuple(lat.shape[2:]):
            raise ValueError(f"FPN level: {tuple(top.shape[2:])} does not upsample x2 to "
                             f"{tuple(lat.shape[2:])}")
        x = lat + self.upsample(top)
        return self.blocks(x)


# --------------------------------------------------------------------------------------------------
# The detector
# --------------------------------------------------------------------------------------------------
class BlazeFace(nn.Module):
    """MediaPipe BlazeFace face detector (short- or full-range, see :data:`SHORT_RANGE`,
    :data:`FULL_RANGE`).

    Input: ``[B, 3, S, S]`` float32 RGB scaled to [-1, 1] (``pixel / 127.5 - 1``), S =
    ``config.input_size`` (128 short range, 192 full range). No letterboxing or normalisation is done
    inside the model.

    Output ``(regressors, classificators)`` exactly as the .tflite emits them:

    * ``regressors [B, N, 16]``, N = ``config.num_anchors`` (896 / 2304), anchors in the order of
      :func:`generate_anchors` (grid by grid, finest first; row-major cells; anchors of a cell
      adjacent). Per anchor, in *input pixels* (0..S), relative to the anchor centre:
      ``[0:4]`` box ``dx_center, dy_center, w, h`` and ``[4:16]`` six keypoints ``dx, dy`` in the
      order of :data:`KEYPOINT_NAMES` (right eye, left eye, nose tip, mouth centre, right ear
      tragion, left ear tragion; "right" = the person's right). Decode (MediaPipe,
      ``reverse_output_order``): ``cx = reg[0] / config.x_scale + anchor_x`` (normalised),
      ``w = reg[2] / config.w_scale``; keypoint ``k``: ``reg[4+2k] / x_scale + anchor_x``, etc.
    * ``classificators [B, N, 1]``: raw face logits (MediaPipe clips to [-100, 100] then sigmoid;
      it keeps detections with score >= 0.5 and does weighted NMS).

    Layers: ``stem`` (conv s2 + ReLU), ``backbone`` (BlazeBlocks), ``fpn`` (full range only:
    top-down levels), ``classifier_heads`` / ``regressor_heads`` (1x1 convs, one per anchor grid).
    """

    output_names = ("regressors", "classificators")   # names of the outputs in exported ONNX

    def __init__(self, config: BlazeFaceConfig = SHORT_RANGE):
        super().__init__()
        self.config = config
        self.stem = Stem(3, config.stem_channels, config.stem_kernel)
        self.backbone = nn.ModuleList()
        channels = [config.stem_channels]
        for spec in config.blocks:
            self.backbone.append(BlazeBlock(channels[-1], spec.out_channels, spec.stride,
                                            spec.mid_channels))
            channels.append(spec.out_channels)
        block_channels = channels[1:]             # output width of each backbone block

        self.fpn = nn.ModuleList()
        if config.fpn:
            coarse = block_channels[-1]
            for spec in config.fpn:
                self.fpn.append(FPNLevel(coarse, block_channels[spec.lateral_tap], spec))
                coarse = spec.channels
            head_channels = [coarse]
        else:
            head_channels = [block_channels[i] for i in config.head_taps]

        per_cell = anchors_per_cell(config)
        if len(per_cell) != len(head_channels):
            raise ValueError(f"{config.name}: {len(per_cell)} anchor grids but "
                             f"{len(head_channels)} head feature maps")
        self.classifier_heads = nn.ModuleList(
            TFLiteConv2d(c, n, 1) for c, n in zip(head_channels, per_cell))
        self.regressor_heads = nn.ModuleList(
            TFLiteConv2d(c, n * config.num_coords, 1) for c, n in zip(head_channels, per_cell))
        self.merge_heads()
        self.register_load_state_dict_post_hook(lambda module, _keys: module.merge_heads())

    # -- feature extraction ------------------------------------------------------------------------
    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps the heads read, finest first."""
        x = self.stem(x)
        taps = []
        for block in self.backbone:
            x = block(x)
            taps.append(x)
        if not self.config.fpn:
            return [taps[i] for i in self.config.head_taps]
        for level, spec in zip(self.fpn, self.config.fpn):
            x = level(x, taps[spec.lateral_tap])
        return [x]

    @staticmethod
    def flatten_head(x: torch.Tensor, values_per_anchor: int) -> torch.Tensor:
        """``[B, A*V, H, W]`` -> ``[B, H*W*A, V]`` (TFLite's NHWC reshape order)."""
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, values_per_anchor)

    def merge_heads(self) -> None:
        """Copy both heads of every grid into one 1x1 conv's weights (classifier filters first), kept
        as non-persistent buffers that :meth:`head_maps` runs and the exporter writes as one
        initializer each. Called whenever weights are loaded (a ``load_state_dict`` hook).

        Why one conv: onnxruntime-web 1.30's webgl provider keys its compiled Conv programs without
        the activation it fuses into them (``ConvDotProduct`` sets ``cacheKey``, which the key
        builder never reads, not ``cacheHint``), so a head conv with the input and weight shapes of
        a backbone conv that is followed by ReLU ran that conv's shader, ReLU included. The
        full-range regressor head ([16, 48, 1, 1] on 48x48) matched its 48->16 bottleneck conv and
        found no faces on webgl. A merged head (A*17 filters) has a shape no backbone conv has; the
        sums are the same. (Concatenating the weights inside ``forward`` instead leaves a run-time
        Concat in the graph when it is too big for the exporter's constant folding, and webgl
        mis-reads a Conv weight that is not an initializer.)"""
        with torch.no_grad():
            for i, (cls, reg) in enumerate(zip(self.classifier_heads, self.regressor_heads)):
                self.register_buffer(f"head_weight_{i}", torch.cat([cls.weight, reg.weight]),
                                     persistent=False)
                self.register_buffer(f"head_bias_{i}", torch.cat([cls.bias, reg.bias]),
                                     persistent=False)

    def head_maps(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per anchor grid (finest first): ``(regressor map [B, A*16, H, W], logit map [B, A, H, W])``,
        both from the grid's merged head conv (:meth:`merge_heads`)."""
        maps = []
        for i, (feat, cls) in enumerate(zip(self.features(x), self.classifier_heads)):
            both = F.conv2d(feat, getattr(self, f"head_weight_{i}"), getattr(self, f"head_bias_{i}"))
            maps.append((both[:, cls.out_channels:], both[:, :cls.out_channels]))
        return maps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.head_maps(x)
        boxes = [self.flatten_head(r, self.config.num_coords) for r, _ in maps]
        scores = [self.flatten_head(s, 1) for _, s in maps]
        return torch.cat(boxes, dim=1), torch.cat(scores, dim=1)

    def detect(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(regressors [B, N, 16], scores [B, N])``: :meth:`forward` with the logits turned into
        MediaPipe's probabilities, ``sigmoid(clip(logit, -100, 100))``.

        The clip and sigmoid run on the head maps *before* they are flattened: on onnxruntime-web's
        webgl provider an element-wise op reading a Reshape's output keeps the old texture layout
        under the new shape and reads the wrong texels (the full-range model, one grid, no Concat in
        between, gave one value for all 2304 anchors)."""
        maps = self.head_maps(x)
        boxes = [self.flatten_head(r, self.config.num_coords) for r, _ in maps]
        scores = [self.flatten_head(torch.sigmoid(s.clamp(-100.0, 100.0)), 1) for _, s in maps]
        return torch.cat(boxes, dim=1), torch.cat(scores, dim=1).reshape(x.shape[0], -1)

    # -- weights -----------------------------------------------------------------------------------
    def tflite_layers(self) -> list[tuple[str, nn.Module]]:
        """Layers holding weights, in the order the .tflite runs its weighted ops. For BlazeFace this
        is the declaration order (heads: all classifiers, then all regressors)."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, (nn.Conv2d, nn.PReLU))]

    def load_tflite_weights(self, tflite_file: TFLiteFile | None = None) -> "BlazeFace":
        """Copy weights from the .tflite (default: the config's file). Raises WeightsError naming
        the layer on any mismatch."""
        load_tflite_weights(self, tflite_file or load_tflite(self.config.weights_file),
                            self.config.name)
        return self

    @classmethod
    def from_tflite(cls, config: BlazeFaceConfig = SHORT_RANGE) -> "BlazeFace":
        return cls(config).load_tflite_weights().eval()
