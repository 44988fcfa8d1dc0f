"""The manifest: everything a runtime needs to know about the exported graphs, and nothing more.

``export_models.py`` writes ``manifest.json`` beside the graphs; the CLI and the page read it and
nothing else about the models. Pure Python (json + dataclasses) so Pyodide reads it too.

Layout (schema 1)::

    {
      "schema": 1,
      "name": "...", "trained": true,
      "detectors": {"<name>": Detector, ...},
      "defaults": {"camera": "<detector name>", "still": "<detector name>",
                   "roi": "<detector name>"},    # optional: the tracking detector (see below)
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
                "anchors": {...},               # documentation of how the graph decodes
                "crop": {"scale"}}              # roi detector only: crop side / tracked box side
    Landmarks = {"graph": Graph (image → points [+ mesh] [+ presence]), "input": Input,
                 "crop": {"scale", "shift_y"},   # detection box → crop
                 "presence_threshold",           # with a presence output only
                 "mesh": {"count", "right_eye": i, "left_eye": j},   # with a mesh output only
                 "track": {"from": "mesh"} | {"from": "points", "right_eye": i, "left_eye": j,
                                              "scale": s},   # next crop from the last result
                 "layout": "WFLW-98", "count": 98,
                 "flip_pairs": [[i, j], ...]}    # left/right point pairs (mirroring)
    Outputs of the landmark graph are in crop-normalised coordinates (0..1 across the crop). A
    graph without ``mesh``/``presence`` (a user's crop → N points model) has neither output role:
    ``landmarks.graph.outputs.get("mesh")`` is None. ``track`` defaults to ``from: mesh``.

    The roi detector (``defaults.roi``, optional): the same detector at a small input, run while
    tracking a detector-only pipeline on a square crop of ``crop.scale`` × the tracked face's box.
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
    crop_scale: float | None = None    # roi detector: crop side / the tracked face box's long side

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
    presence_threshold: float | None    # None: the graph has no presence output
    mesh_right_eye: int | None          # None: the graph has no mesh output
    mesh_left_eye: int | None
    layout: str
    count: int
    flip_pairs: tuple[tuple[int, int], ...] = ()   # left/right point pairs of the layout (mirroring)
    track_from: str = "mesh"            # the next crop follows "mesh" or "points"
    track_right_eye: int | None = None  # points: the eye points that level the crop
    track_left_eye: int | None = None
    track_scale: float | None = None    # points: crop side / the points' extent
    mesh_count: int | None = None       # vertices of the mesh output (None: no mesh, or not stated)

    @property
    def has_mesh(self) -> bool:
        return "mesh" in self.graph.outputs


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

    def roi_detector(self) -> DetectorSpec | None:
        """The small-input detector for tracking a detector-only pipeline, if the export has one."""
        name = self.defaults.get("roi")
        return self.detectors[name] if name else None

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
                min_face_fraction=float(det.get("min_face_fraction") or 0.1),
                crop_scale=float(_req(det["crop"], "scale", f"{where}.crop")) if det.get("crop") else None)
        if not detectors:
            raise ManifestError("manifest: no detectors")
        defaults = dict(d.get("defaults") or {})
        first = next(iter(detectors))
        defaults.setdefault("camera", first)
        defaults.setdefault("still", defaults["camera"])
        for use, name in defaults.items():
            if name not in detectors:
                raise ManifestError(f"manifest: defaults.{use} names unknown detector {name!r}")
        if "roi" in defaults and detectors[defaults["roi"]].crop_scale is None:
            raise ManifestError(f"manifest: the roi detector {defaults['roi']!r} lacks crop.scale")
        lm = d.get("landmarks")
        landmarks = None
        if lm:
            landmarks = _parse_landmarks(lm)
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


def _parse_landmarks(lm: dict) -> LandmarkSpec:
    crop = _req(lm, "crop", "landmarks")
    graph = GraphSpec.parse(_req(lm, "graph", "landmarks"), "landmarks.graph", ("image",), ("points",))
    mesh = lm.get("mesh") if "mesh" in graph.outputs else None
    if "mesh" in graph.outputs and mesh is None:
        raise ManifestError("manifest: landmarks.graph has a mesh output but landmarks lacks 'mesh'")
    presence = None
    if "presence" in graph.outputs:
        presence = float(_req(lm, "presence_threshold", "landmarks"))
    track = dict(lm.get("track") or {"from": "mesh"})
    track_from = track.get("from")
    count = int(_req(lm, "count", "landmarks"))
    if track_from == "mesh" and mesh is None:
        raise ManifestError("manifest: landmarks.track is from the mesh, but the graph has no mesh")
    if track_from == "points":
        for key in ("right_eye", "left_eye", "scale"):
            _req(track, key, "landmarks.track")
        if not all(0 <= int(track[k]) < count for k in ("right_eye", "left_eye")):
            raise ManifestError(f"manifest: landmarks.track eye points must be in 0..{count - 1}")
    elif track_from != "mesh":
        raise ManifestError(f"manifest: landmarks.track.from must be 'mesh' or 'points', not {track_from!r}")
    return LandmarkSpec(
        graph=graph,
        input=InputSpec.parse(_req(lm, "input", "landmarks"), "landmarks.input"),
        crop_scale=float(_req(crop, "scale", "landmarks.crop")),
        crop_shift_y=float(crop.get("shift_y", 0.0)),
        presence_threshold=presence,
        mesh_right_eye=int(_req(mesh, "right_eye", "landmarks.mesh")) if mesh else None,
        mesh_left_eye=int(_req(mesh, "left_eye", "landmarks.mesh")) if mesh else None,
        mesh_count=int(mesh["count"]) if mesh and mesh.get("count") else None,
        layout=str(_req(lm, "layout", "landmarks")), count=count,
        flip_pairs=tuple((int(a), int(b)) for a, b in lm.get("flip_pairs") or ()),
        track_from=track_from,
        track_right_eye=int(track["right_eye"]) if track_from == "points" else None,
        track_left_eye=int(track["left_eye"]) if track_from == "points" else None,
        track_scale=float(track["scale"]) if track_from == "points" else None)
