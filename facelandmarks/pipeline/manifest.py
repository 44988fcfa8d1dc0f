"""The manifest: everything a runtime needs to know about the exported graphs, and nothing more.

``export_models.py`` writes ``manifest.json`` beside the graphs; the CLI and the page read it and
nothing else about the models. Pure Python (json + dataclasses) so Pyodide reads it too.

Layout (schema 1)::

    {
      "schema": 1,
      "name": "...", "trained": true,
      "detectors": {"<name>": Detector, ...},
      "defaults": {"camera": "<detector name>", "still": "<detector name>"},
      "landmarks": Landmarks | null,          # null: the detector's keypoints are the landmarks
      "files": {"<file name>": "<sha256>", ...}
    }

    Graph    = {"file", "provider": "webgl"|"wasm"|..., "inputs": {role: tensor name},
                "outputs": {role: tensor name}}
    Input    = {"width", "height", "channels": "RGB", "mean": [3], "std": [3],
                "letterbox": "center"|"top-left"|"stretch"}
               # model value = (pixel / 255 - mean) / std, NCHW float32
    Detector = {"graph": Graph (roles: image → bbox_regressions, scores, ldm_regressions),
                "input": Input,
                "parser": Graph (same three roles in → boxes, scores, landms) + {
                    "output_scale": [sx, sy],   # divide outputs by this → normalised input coords
                    "score_threshold", "iou_threshold", "max_faces"},
                "keypoints": {"count", "names": [...], "right_eye": i, "left_eye": j, "layout"},
                "anchors": {...}}               # documentation of how the graph decodes
    Landmarks = {"graph": Graph (image → mesh, presence, points), "input": Input,
                 "crop": {"scale", "shift_y"}, "presence_threshold",
                 "mesh": {"count", "right_eye": i, "left_eye": j},   # tracking/second-pass crop
                 "layout": "WFLW-98", "count": 98,
                 "flip_pairs": [[i, j], ...]}    # left/right point pairs (mirroring)
    Outputs of the landmark graph are in crop-normalised coordinates (0..1 across the crop).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SCHEMA = 1
PROVIDERS = ("webgl", "wasm", "webgpu", "cpu")


class ManifestError(ValueError):
    """The manifest is missing something a runtime needs, or contradicts itself."""


def _req(d: dict, key: str, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise ManifestError(f"manifest: {where} lacks {key!r}")
    return d[key]


@dataclass(frozen=True)
class GraphSpec:
    file: str
    provider: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def parse(d: dict, where: str, input_roles: tuple[str, ...], output_roles: tuple[str, ...]) -> "GraphSpec":
        spec = GraphSpec(
            file=_req(d, "file", where), provider=_req(d, "provider", where),
            inputs=dict(_req(d, "inputs", where)), outputs=dict(_req(d, "outputs", where)),
            extra={k: v for k, v in d.items() if k not in ("file", "provider", "inputs", "outputs")})
        if spec.provider not in PROVIDERS:
            raise ManifestError(f"manifest: {where}.provider {spec.provider!r} is not one of {PROVIDERS}")
        for role in input_roles:
            _req(spec.inputs, role, f"{where}.inputs")
        for role in output_roles:
            _req(spec.outputs, role, f"{where}.outputs")
        return spec


@dataclass(frozen=True)
class InputSpec:
    width: int
    height: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channels: str = "RGB"
    letterbox: str = "center"

    @staticmethod
    def parse(d: dict, where: str) -> "InputSpec":
        spec = InputSpec(int(_req(d, "width", where)), int(_req(d, "height", where)),
                         tuple(_req(d, "mean", where)), tuple(_req(d, "std", where)),
                         d.get("channels", "RGB"), d.get("letterbox", "center"))
        if spec.channels not in ("RGB", "BGR"):
            raise ManifestError(f"manifest: {where}.channels must be RGB or BGR")
        if len(spec.mean) != 3 or len(spec.std) != 3 or min(spec.std) <= 0:
            raise ManifestError(f"manifest: {where} needs 3 means and 3 positive stds")
        return spec


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    graph: GraphSpec
    input: InputSpec
    parser: GraphSpec
    keypoints: dict[str, Any]
    min_face_fraction: float = 0.1     # smallest face (share of the input's side) found reliably

    @property
    def output_scale(self) -> tuple[float, float]:
        sx, sy = self.parser.extra.get("output_scale", (1.0, 1.0))
        return float(sx), float(sy)


@dataclass(frozen=True)
class LandmarkSpec:
    graph: GraphSpec
    input: InputSpec
    crop_scale: float
    crop_shift_y: float
    presence_threshold: float
    mesh_right_eye: int
    mesh_left_eye: int
    layout: str
    count: int
    flip_pairs: tuple[tuple[int, int], ...] = ()   # left/right point pairs of the layout (mirroring)


@dataclass(frozen=True)
class Manifest:
    name: str
    trained: bool
    detectors: dict[str, DetectorSpec]
    defaults: dict[str, str]
    landmarks: LandmarkSpec | None
    files: dict[str, str]

    def detector(self, name_or_use: str | None = None) -> DetectorSpec:
        """A detector by name, or the default for a use ("camera", "still"); None → camera."""
        key = name_or_use or "camera"
        key = self.defaults.get(key, key)
        if key not in self.detectors:
            raise ManifestError(f"no detector {name_or_use!r}; have {sorted(self.detectors)}")
        return self.detectors[key]

    def graphs(self) -> list[GraphSpec]:
        out = []
        for det in self.detectors.values():
            out += [det.graph, det.parser]
        if self.landmarks:
            out.append(self.landmarks.graph)
        return out

    @staticmethod
    def parse(d: dict) -> "Manifest":
        if not isinstance(d, dict):
            raise ManifestError("manifest: not a JSON object")
        if d.get("schema") != SCHEMA:
            raise ManifestError(f"manifest: schema {d.get('schema')!r}, this runtime reads schema {SCHEMA}")
        detectors = {}
        for name, det in _req(d, "detectors", "manifest").items():
            where = f"detectors.{name}"
            kp = dict(_req(det, "keypoints", where))
            for key in ("count", "right_eye", "left_eye"):
                _req(kp, key, f"{where}.keypoints")
            detectors[name] = DetectorSpec(
                name=name,
                graph=GraphSpec.parse(_req(det, "graph", where), f"{where}.graph", ("image",),
                                      ("bbox_regressions", "scores", "ldm_regressions")),
                input=InputSpec.parse(_req(det, "input", where), f"{where}.input"),
                parser=GraphSpec.parse(_req(det, "parser", where), f"{where}.parser",
                                       ("bbox_regressions", "scores", "ldm_regressions"),
                                       ("boxes", "scores", "landms")),
                keypoints=kp,
                min_face_fraction=float(det.get("min_face_fraction") or 0.1))
        if not detectors:
            raise ManifestError("manifest: no detectors")
        defaults = dict(d.get("defaults") or {})
        first = next(iter(detectors))
        defaults.setdefault("camera", first)
        defaults.setdefault("still", defaults["camera"])
        for use, name in defaults.items():
            if name not in detectors:
                raise ManifestError(f"manifest: defaults.{use} names unknown detector {name!r}")
        lm = d.get("landmarks")
        landmarks = None
        if lm:
            crop = _req(lm, "crop", "landmarks")
            mesh = _req(lm, "mesh", "landmarks")
            landmarks = LandmarkSpec(
                graph=GraphSpec.parse(_req(lm, "graph", "landmarks"), "landmarks.graph", ("image",),
                                      ("mesh", "presence", "points")),
                input=InputSpec.parse(_req(lm, "input", "landmarks"), "landmarks.input"),
                crop_scale=float(_req(crop, "scale", "landmarks.crop")),
                crop_shift_y=float(crop.get("shift_y", 0.0)),
                presence_threshold=float(_req(lm, "presence_threshold", "landmarks")),
                mesh_right_eye=int(_req(mesh, "right_eye", "landmarks.mesh")),
                mesh_left_eye=int(_req(mesh, "left_eye", "landmarks.mesh")),
                layout=str(_req(lm, "layout", "landmarks")), count=int(_req(lm, "count", "landmarks")),
                flip_pairs=tuple((int(a), int(b)) for a, b in lm.get("flip_pairs") or ()))
        files = dict(d.get("files") or {})
        return Manifest(name=str(d.get("name", "")), trained=bool(d.get("trained", True)),
                        detectors=detectors, defaults=defaults, landmarks=landmarks, files=files)

    @staticmethod
    def loads(text: str) -> "Manifest":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ManifestError(f"manifest is not valid JSON: {e}") from None
        return Manifest.parse(data)
