"""Our FaceMesh + WFLW-98 map dressed as a user's landmark model (the proof of
``export_models.py --model landmarks``): a plain ``nn.Module`` from a 192x192 RGB crop in [0, 1] to
98 points in [-1, 1] across the crop, with a plain state dict, nothing of this project's export
contract (no mesh, no presence, its own coordinate convention).

    python examples/facemesh_wflw98.py facemesh_wflw98.pt      # writes the state dict
    python export_models.py --model landmarks --module examples.facemesh_wflw98:FaceMeshWFLW98 \\
        --weights facemesh_wflw98.pt --input-size 192 --layout wflw98 --points signed --out /tmp/m
"""
from __future__ import annotations

import sys

import torch
from torch import nn

from facelandmarks.models.facemesh import FaceMesh
from facelandmarks.models.wflw98 import MeshToWFLW98


class FaceMeshWFLW98(nn.Module):
    input_size = 192

    def __init__(self):
        super().__init__()
        self.mesh = FaceMesh()
        self.to_wflw = MeshToWFLW98()

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        mesh, _presence = self.mesh(crop)
        unit = self.to_wflw(mesh.reshape(1, 468, 3) / self.input_size)      # [1, 98, 2] in 0..1
        return unit * 2.0 - 1.0


def pretrained() -> FaceMeshWFLW98:
    """The model with MediaPipe's face_landmark.tflite weights (as in the default export)."""
    model = FaceMeshWFLW98()
    model.mesh.load_tflite_weights()
    return model.eval()


if __name__ == "__main__":
    torch.save(pretrained().state_dict(), sys.argv[1])
    print(f"wrote {sys.argv[1]}")
