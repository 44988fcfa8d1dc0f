"""MediaPipe's FaceMesh landmark model (``face_landmark.tflite``: 468 3-D landmarks + face presence)
written out in PyTorch.

Same building blocks as the detector (:mod:`.layers`): TFLite-SAME convs, BlazeBlocks (here with
PReLU activations) and the op-order weight loader.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..weights import TFLiteFile, load_tflite
from .layers import BlazeBlock, Stem, TFLiteConv2d, load_tflite_weights

__all__ = ["FaceMesh", "LandmarkHead", "WEIGHTS_FILE"]

WEIGHTS_FILE = "face_landmark.tflite"


def weighted_layers(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    """(qualified name, layer) of the convs and PReLUs in ``module``, in declaration order."""
    return [(f"{prefix}.{name}", m) for name, m in module.named_modules()
            if isinstance(m, (nn.Conv2d, nn.PReLU))]


class LandmarkHead(nn.Module):
    """One output branch on the 6x6x128 trunk features.

    ``blocks`` (BlazeBlocks at 128 channels, the first one stride 2 -> 3x3) -> ``reduce``
    (1x1 conv to 32) + ``reduce_act`` (PReLU) -> ``refine`` (BlazeBlock at 32) -> ``output``
    (3x3 VALID conv, stride 3: 3x3 -> 1x1 with ``out_channels`` values).
    """

    def __init__(self, num_blocks: int, out_channels: int, channels: int = 128,
                 reduced_channels: int = 32):
        super().__init__()
        self.blocks = nn.Sequential(*[
            BlazeBlock(channels, channels, stride=2 if i == 0 else 1, activation="prelu")
            for i in range(num_blocks)])
        self.reduce = TFLiteConv2d(channels, reduced_channels, 1)
        self.reduce_act = nn.PReLU(reduced_channels)
        self.refine = BlazeBlock(reduced_channels, reduced_channels, activation="prelu")
        self.output = TFLiteConv2d(reduced_channels, out_channels, 3, stride=3, padding="valid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(x)
        x = self.reduce_act(self.reduce(x))
        x = self.refine(x)
        return self.output(x)                    # [B, out_channels, 1, 1]


class FaceMesh(nn.Module):
    """MediaPipe FaceMesh (``face_landmark.tflite``, the 468-point model without attention).

    Input: ``[B, 3, 192, 192]`` float32 RGB in [0, 1] -- the face crop (MediaPipe: the detection's
    box enlarged 1.5x, rotated so the eyes are level, resized to 192x192).

    Output ``(mesh, presence_logit)``, as the .tflite emits them:

    * ``mesh [B, 468, 3]``: per vertex ``x, y`` in crop pixels (0..192, x right, y down) and ``z``
      (relative depth on roughly the same pixel scale; smaller = closer to the camera).
      Vertex order is MediaPipe's canonical face mesh (e.g. 1 nose tip, 33/263 eye outer corners).
    * ``presence_logit [B, 1]``: face-presence logit; ``sigmoid`` gives the probability that the
      crop holds a face (MediaPipe re-runs the detector below 0.5).

    Layers: ``stem`` (3x3 conv s2 + PReLU, 96x96), ``backbone`` (BlazeBlocks with PReLU, down to
    6x6x128), ``mesh_head`` and ``presence_head`` (:class:`LandmarkHead` branches).
    """

    input_size = 192
    num_landmarks = 468
    output_names = ("mesh", "presence_logit")        # names of the outputs in exported ONNX
    #: (out_channels, stride) of the trunk's BlazeBlocks
    BACKBONE = ((16, 1), (16, 1),                     # 96x96
                (32, 2), (32, 1), (32, 1),            # 48x48
                (64, 2), (64, 1), (64, 1),            # 24x24
                (128, 2), (128, 1), (128, 1),         # 12x12
                (128, 2), (128, 1), (128, 1))         # 6x6

    def __init__(self):
        super().__init__()
        self.stem = Stem(3, 16, 3, activation="prelu")
        blocks, channels = [], 16
        for out_channels, stride in self.BACKBONE:
            blocks.append(BlazeBlock(channels, out_channels, stride, activation="prelu"))
            channels = out_channels
        self.backbone = nn.Sequential(*blocks)
        self.mesh_head = LandmarkHead(num_blocks=3, out_channels=3 * self.num_landmarks)
        self.presence_head = LandmarkHead(num_blocks=1, out_channels=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(self.stem(x))
        mesh = self.mesh_head(features).reshape(x.shape[0], self.num_landmarks, 3)
        presence = self.presence_head(features).reshape(x.shape[0], 1)
        return mesh, presence

    # -- weights -----------------------------------------------------------------------------------
    def tflite_layers(self) -> list[tuple[str, nn.Module]]:
        """Layers holding weights, in the order the .tflite runs its weighted ops.

        The converter scheduled the two heads interleaved: the mesh head's first two blocks run
        alone, then the remaining mesh-head layers and the presence-head layers alternate
        (presence first), layer by layer -- both tails have the same structure (block, reduce,
        PReLU, refine block, output conv).
        """
        trunk = weighted_layers(self.stem, "stem") + weighted_layers(self.backbone, "backbone")
        mesh = weighted_layers(self.mesh_head, "mesh_head")
        presence = weighted_layers(self.presence_head, "presence_head")
        lead = len(mesh) - len(presence)
        interleaved = [layer for pair in zip(presence, mesh[lead:]) for layer in pair]
        return trunk + mesh[:lead] + interleaved

    def load_tflite_weights(self, tflite_file: TFLiteFile | None = None) -> "FaceMesh":
        """Copy weights from ``face_landmark.tflite`` (default). Raises WeightsError naming the
        layer on any mismatch."""
        load_tflite_weights(self, tflite_file or load_tflite(WEIGHTS_FILE), "facemesh")
        return self

    @classmethod
    def from_tflite(cls) -> "FaceMesh":
        return cls().load_tflite_weights().eval()
