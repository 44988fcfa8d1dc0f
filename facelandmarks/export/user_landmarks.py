"""Your own landmark model: any ``nn.Module`` mapping a square face crop [1,3,S,S] to N points,
exported beside a face detector (our BlazeFace, or the detectors of an existing export such as your
RetinaFace) as a verified FaceLandmarks.onnx + manifest.

    graphs, manifest = build(tmp_dir, report, module="mypkg.pfld:PFLD", weights=Path("pfld.pth"),
                             input_size=112, layout="wflw98", points="unit", crop_scale=1.3)

The model is given as ``module:Class`` (``package.module:Class`` or ``path/to/file.py:Class``,
built with no arguments) + a state dict read by :mod:`facelandmarks.checkpoints` (``{"state_dict":
...}`` and ``module.`` prefixes accepted, unreadable files explained), or as a TorchScript / ``torch.export`` (.pt2) file. Its output is [1,N,2] or [1,2N]
(the first output if it returns several), x then y, in one of the ``POINT_UNITS``:

    unit     0..1 across the crop (crop-normalised)
    signed   -1..1 across the crop (x = -1 at the left edge)
    pixels   0..S crop pixels

The exported graph converts them to crop-normalised coordinates (the one convention of every
landmark graph here, :data:`contract.CROP_COORDINATES`); it has no mesh and no presence output.
Tracking takes the next frame's crop from the N points (``track``: ``from: points``, eye points of
the layout, and ``scale`` = crop side / the points' extent, measured on the reference crop unless
given).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ..checkpoints import CheckpointError, read_state_dict
from ..pipeline.layouts import IBUG68_FLIP_PAIRS, WFLW98_FLIP_PAIRS
from . import contract
from .contract import LANDMARK_INPUTS

LANDMARKS_FILE = "FaceLandmarks.onnx"
PARITY_ATOL = 1e-4
POINT_UNITS = ("unit", "signed", "pixels")
#: layout → (manifest layout name, count, flip pairs, right eye, left eye) — the eye points set the
#: tracking crop's rotation (WFLW: the pupils; iBUG: the outer eye corners)
LAYOUTS = {
    "wflw98": ("WFLW-98", 98, WFLW98_FLIP_PAIRS, 96, 97),
    "ibug68": ("iBUG-68", 68, IBUG68_FLIP_PAIRS, 36, 45),
}


class ReferenceCropWarning(UserWarning):
    """The model's points on the reference face crop do not look like a face in the crop."""


class CropToPoints(nn.Module):
    """The user's module + the conversion of its points to crop-normalised [1,N,2] ``points``."""

    def __init__(self, net: nn.Module, count: int, units: str, input_size: int):
        super().__init__()
        if units not in POINT_UNITS:
            raise ValueError(f"points must be one of {POINT_UNITS}, not {units!r}")
        self.net, self.count, self.units, self.input_size = net, int(count), units, float(input_size)

    def forward(self, faceImage):
        out = self.net(faceImage)
        if isinstance(out, (tuple, list)):
            out = out[0]
        points = out.reshape(1, self.count, 2)
        if self.units == "signed":
            return (points + 1.0) * 0.5
        if self.units == "pixels":
            return points / self.input_size
        return points


def _import_class(spec: str) -> type:
    if ":" not in spec:
        raise ValueError(f"--module {spec!r}: give it as package.module:Class or path/to/file.py:Class")
    where, name = spec.rsplit(":", 1)
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise ValueError(f"--module {spec!r}: no such file {path}")
            loader = importlib.util.spec_from_file_location(path.stem, path)
            mod = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(mod)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))       # like `python -m`: the current folder
            mod = importlib.import_module(where)
    except ImportError as e:
        raise ValueError(f"--module {spec!r}: cannot import {where} ({e})") from None
    cls = getattr(mod, name, None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise ValueError(f"--module {spec!r}: {where} has no nn.Module subclass {name!r}")
    return cls


def load_module(module: str | None, weights: Path | None, program: Path | None) -> tuple[nn.Module, str]:
    """(the user's model in eval mode, a provenance line) from ``module`` + ``weights`` or a
    TorchScript / torch.export ``program`` file."""
    from ..weights import sha256_of

    if (module is None) == (program is None):
        raise ValueError("a landmark model is --module package.module:Class with --weights, or --program FILE")
    if program is not None:
        program = Path(program)
        if not program.is_file():
            raise CheckpointError(f"{program}: no such file")
        digest = sha256_of(program)
        try:
            if program.suffix == ".pt2":
                net = torch.export.load(str(program)).module()
            else:
                net = torch.jit.load(str(program), map_location="cpu")
        except Exception as e:   # a zip of the wrong kind, a pickle, a truncated file
            raise CheckpointError(f"{program}: not a TorchScript or torch.export (.pt2) file ({e})") from None
        return net.eval() if hasattr(net, "eval") else net, f"{program.name} (sha256 {digest})"
    if weights is None:
        raise ValueError(f"--module {module} needs --weights (its state dict)")
    net = _import_class(module)()
    state = read_state_dict(weights)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{weights} does not fit {module}: {e}") from None
    return net.eval(), f"{module} with {Path(weights).name} (sha256 {sha256_of(Path(weights))})"


def reference_crop(input_size: int) -> np.ndarray:
    """The astronaut's face as a detector's crop would show it, S×S uint8 RGB."""
    from .mediapipe import face_crop_photo

    return face_crop_photo(input_size)


def layout_facts(layout: str, flip_pairs=None, eye_points=None) -> tuple[str, int, list, int, int]:
    """(layout name, count, flip pairs, right eye, left eye) for ``wflw98``, ``ibug68`` or N."""
    if layout in LAYOUTS:
        return LAYOUTS[layout]
    try:
        count = int(layout)
    except ValueError:
        raise ValueError(f"--layout {layout!r}: wflw98, ibug68 or a point count") from None
    if count < 2 or eye_points is None:
        raise ValueError(f"--layout {count}: give --eye-points I,J (the image-left and image-right "
                         "eye points: they set the crop's rotation)")
    pairs = [tuple(p) for p in flip_pairs or ()]
    for i in [*eye_points, *(k for p in pairs for k in p)]:
        if not 0 <= i < count:
            raise ValueError(f"point index {i} is outside 0..{count - 1}")
    return f"points-{count}", count, pairs, int(eye_points[0]), int(eye_points[1])


def paired_detectors(detector: str, tmp_dir: Path, report) -> tuple[dict, dict, dict, str]:
    """(graphs, manifest ``detectors``, ``defaults``, source line) for ``mediapipe`` (our BlazeFace,
    exported here) or an existing export folder (its detector graphs, copied as they are)."""
    if detector == "mediapipe":
        from .mediapipe import DETECTOR_DEFAULTS, blazeface_detectors

        graphs, detectors = blazeface_detectors(tmp_dir, report)
        return graphs, detectors, dict(DETECTOR_DEFAULTS), "MediaPipe BlazeFace detectors"
    folder = Path(detector)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise ValueError(f"--detector {detector}: neither 'mediapipe' nor an export folder "
                         f"(no {manifest_path})")
    theirs = json.loads(manifest_path.read_text())
    graphs = {}
    for det in theirs["detectors"].values():
        for g in (det["graph"], det["parser"]):
            graphs[g["file"]] = onnx.load(str(folder / g["file"]))
    defaults = {k: v for k, v in (theirs.get("defaults") or {}).items() if v in theirs["detectors"]}
    return graphs, theirs["detectors"], defaults, f"detectors of {theirs.get('name', folder.name)}"


def build(tmp_dir: Path, report=None, *, input_size: int, module: str | None = None,
          weights: Path | None = None, program: Path | None = None, layout: str = "wflw98",
          points: str = "unit", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), channels: str = "RGB",
          crop_scale: float = 1.5, track_scale: float | None = None, flip_pairs=None,
          eye_points=None, detector: str = "mediapipe", name: str | None = None,
          ) -> tuple[dict[str, onnx.ModelProto], dict]:
    """Export the user's landmark model (checked on the astronaut's face crop) + the detectors it
    pairs with; returns ({file name: graph}, manifest)."""
    from ..pipeline.manifest import InputSpec
    from ..runtime_onnx import to_input_tensor

    if not input_size or input_size < 8:
        raise ValueError("--input-size S (the model's square crop side) is required for a landmark model")
    if crop_scale <= 0 or (track_scale is not None and track_scale <= 0):
        raise ValueError("--crop-scale and --track-scale must be positive")
    layout_name, count, pairs, right_eye, left_eye = layout_facts(layout, flip_pairs, eye_points)
    net, source = load_module(module, weights, program)
    graph = CropToPoints(net, count, points, input_size).eval()
    input_manifest = {"width": input_size, "height": input_size, "channels": channels,
                      "mean": [float(v) for v in mean], "std": [float(v) for v in std]}
    x = to_input_tensor(reference_crop(input_size), InputSpec.parse(input_manifest, "input"))
    try:
        (got,) = contract.torch_run(graph, x)
    except RuntimeError as e:   # wrong point count, wrong input size for the net
        raise ValueError(f"the landmark model does not map [1,3,{input_size},{input_size}] to "
                         f"{count} points: {e}") from None
    tmp_dir = Path(tmp_dir)
    graphs, detectors, defaults, detector_source = paired_detectors(detector, tmp_dir, report)
    graphs[LANDMARKS_FILE] = contract.export_checked(
        graph, (x,), LANDMARK_INPUTS, ["points"], LANDMARKS_FILE, webgl=False, report=report,
        tmp_dir=tmp_dir, atol=PARITY_ATOL, check="pytorch vs onnxruntime (astronaut crop)")

    pts = got.reshape(count, 2)
    inside = float(np.mean((pts >= -0.05) & (pts <= 1.05)))
    extent = float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1])))
    if inside < 0.9 or extent < 0.15:
        msg = (f"on the astronaut's face crop only {inside:.0%} of the points fall inside the crop "
               f"(extent {extent:.2f} of the crop side): are --points {points}, --mean/--std and "
               f"--channels what the model was trained with?")
        print("\n" + "!" * 100 + f"\n!! {msg}\n" + "!" * 100 + "\n", file=sys.stderr)
        warnings.warn(msg, ReferenceCropWarning, stacklevel=2)
    if track_scale is None:
        track_scale = round(1.0 / max(extent, 1e-3), 3)
    landmarks = contract.landmarks_block(
        LANDMARKS_FILE, input_manifest, {"points": "points"}, layout=layout_name, count=count,
        flip_pairs=pairs, crop_scale=crop_scale, provider="webgl" if _webgl_ok(graphs[LANDMARKS_FILE]) else "wasm",
        track={"from": "points", "right_eye": right_eye, "left_eye": left_eye, "scale": track_scale})
    manifest = contract.manifest(
        name or f"user-landmarks-{layout_name.lower()}", True,
        f"landmarks: {source}, points {points}; {detector_source}", detectors, defaults, landmarks)
    return graphs, manifest


def _webgl_ok(model: onnx.ModelProto) -> bool:
    from .. import verify

    return not verify.webgl_problems(model)


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("--model landmarks (your crop → N points model)")
    g.add_argument("--module", help="package.module:Class or path/to/file.py:Class (built with no "
                                    "arguments; weights from --weights)")
    g.add_argument("--program", type=Path, help="instead of --module: a TorchScript or torch.export "
                                                "(.pt2) file")
    g.add_argument("--layout", default="wflw98", help="wflw98, ibug68, or a point count N (then "
                                                      "--eye-points and --flip-pairs)")
    g.add_argument("--points", choices=POINT_UNITS, default="unit",
                   help="how the model's points are normalised: unit 0..1, signed -1..1, pixels 0..S")
    g.add_argument("--mean", type=float, nargs=3, default=[0.0, 0.0, 0.0],
                   help="input value = (pixel/255 - mean) / std (default 0 0 0)")
    g.add_argument("--std", type=float, nargs=3, default=[1.0, 1.0, 1.0], help="(default 1 1 1)")
    g.add_argument("--channels", choices=["RGB", "BGR"], default="RGB")
    g.add_argument("--crop-scale", type=float, default=1.5,
                   help="crop side / the detector box's long side (default 1.5)")
    g.add_argument("--track-scale", type=float,
                   help="tracking crop side / the points' extent (default: measured on the reference crop)")
    g.add_argument("--eye-points", type=lambda s: [int(v) for v in s.split(",")],
                   help="N layout: I,J the image-left and image-right eye points")
    g.add_argument("--flip-pairs", type=lambda s: [tuple(int(v) for v in pair.split("-"))
                                                   for pair in s.split(",") if pair],
                   help="N layout: mirror pairs as 0-16,1-15,...")
    g.add_argument("--detector", default="mediapipe",
                   help="the detector to pair with: mediapipe (default) or an export folder (e.g. your RetinaFace's)")
    g.add_argument("--name", help="the manifest's name (default user-landmarks-<layout>)")


def options_from_args(args: argparse.Namespace) -> dict:
    return {"input_size": args.input_size, "module": args.module, "weights": args.weights,
            "program": args.program, "layout": args.layout, "points": args.points,
            "mean": args.mean, "std": args.std, "channels": args.channels,
            "crop_scale": args.crop_scale, "track_scale": args.track_scale,
            "flip_pairs": args.flip_pairs, "eye_points": args.eye_points,
            "detector": args.detector, "name": args.name}
