"""How accurate is an export on *your* annotated faces? (``python -m facelandmarks evaluate``)

Reads the common annotation formats, runs an export's pipeline (the CLI's, on onnxruntime) on each
image, matches detected faces to annotated ones and scores them:

* **detection rate**: annotated faces some detection was matched to (:func:`match_faces`);
* **NME** (normalised mean error, %): the mean point-to-point error divided by

  - ``inter-ocular``: the distance between the outer eye corners (iBUG-68: 36–45, WFLW-98: 60–72),
  - ``inter-pupil``: between the eye centres (iBUG-68: the means of the eye rings 36–41 and 42–47;
    WFLW-98: the annotated pupils 96, 97),
  - ``box``: √(w·h) of the annotated points' bounding box;

  overall and per region (jaw, brows, nose, eyes, mouth; WFLW's contour, brows, nose, eyes, mouth,
  pupils);
* **failure rate** at 8 % and 10 % inter-ocular NME, and the **CED** curve (share of faces with NME ≤ x)
  up to 10 % with its **AUC** (area over [0, 10 %], 1 = every face perfect). A missed face counts as
  a failure and never enters the CED: these are end-to-end figures, detector included.

Predictions with 98 WFLW points are scored against 68-point annotations through the standard
WFLW→68 table (:data:`~facelandmarks.pipeline.layouts.WFLW98_TO_68`), and 98 against 98 directly.

Coordinates. Every reader returns **0-based pixel centres** — (0, 0) is the centre of the top-left
pixel, x right, y down (menpo's convention; iBUG ``.pts`` files are 1-based and are shifted by one).
The pipeline's coordinates are continuous (pixel i spans [i, i+1]), so predictions are shifted by
half a pixel before scoring.

Annotation formats (by file name):

* ``NAME.pts`` — iBUG / 300-W: ``version: 1``, ``n_points: 68``, ``{``, ``x y`` per line, ``}``;
* ``NAME.ljson`` — menpo's landmark JSON (v2 or v3; points stored as (y, x));
* ``*.txt`` — WFLW's list files: per face one line of 196 numbers (98 × x y), the face box
  (4), six attribute flags and the image's path relative to WFLW's image folder;
* ``*.json`` — a plain JSON of points in 0-based pixel centres: for one image (``NAME.json``)
  ``[[x, y], ...]`` (one face) or ``[[[x, y], ...], ...]`` (several); for several images a list
  ``[{"image": "file.jpg", "faces": [{"landmarks": [[x, y], ...]}]}]`` (the shape ``detect --json``
  writes: its points are in the pipeline's continuous coordinates, half a pixel off this convention)
  or ``{"file.jpg": [[x, y], ...]}``.

A per-image file (``.pts``, ``.ljson``, ``NAME.json``) belongs to the image with the same stem; a
folder is searched for such files; a multi-image file is matched by file name (WFLW: by the
file name).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

from .pipeline.geometry import iou
from .pipeline.layouts import (IBUG68_GROUPS, IBUG68_INTEROCULAR, N_IBUG, N_WFLW, WFLW98_GROUPS,
                               WFLW98_INTEROCULAR, WFLW98_TO_68)

Point = tuple[float, float]
Box = tuple[float, float, float, float]

NORMS = ("inter-ocular", "inter-pupil", "box")
FAILURE_THRESHOLDS = (8.0, 10.0)         # % inter-ocular NME
CED_MAX = 10.0                            # % : the CED's x range and the AUC's upper limit
FOUND_IOU = 0.3
PER_IMAGE_SUFFIXES = (".pts", ".ljson", ".json")


class AnnotationError(ValueError):
    """An annotation file that cannot be read, or images left without annotation."""


# -- annotated faces --------------------------------------------------------------------------------
@dataclass
class AnnotatedFace:
    name: str
    image_path: Path
    points: list[Point]                           # 0-based pixel centres, the layout's order
    source: str = ""                              # which set or file it came from
    box: Box | None = None                        # the source's own face box, if it has one

    @property
    def points_box(self) -> Box:
        """Bounding box of the annotated points (x0, y0, x1, y1)."""
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        return (min(xs), min(ys), max(xs), max(ys))

    def image(self):
        """The photo as an RGB PIL image."""
        from PIL import Image
        return Image.open(self.image_path).convert("RGB")


def read_pts(path: str | Path) -> list[Point]:
    """Points of an iBUG ``.pts`` file (``x y`` per line, 1-based) as 0-based (x, y)."""
    lines = Path(path).read_text().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("{"))
        pts = []
        for line in lines[start + 1:]:
            if line.strip().startswith("}"):
                break
            if line.strip():
                x, y = line.split()[:2]
                pts.append((float(x) - 1.0, float(y) - 1.0))
    except (StopIteration, ValueError) as e:
        raise AnnotationError(f"{path}: not an iBUG .pts file ({e or 'no opening brace'})") from None
    return pts


def read_ljson(path: str | Path) -> list[Point]:
    """Points of menpo's ``.ljson`` (v2 or v3; main group) as (x, y). The file stores (y, x), 0-based."""
    try:
        d = json.loads(Path(path).read_text())
        if d.get("version") == 3:
            groups = d["groups"]
            group = groups.get("LJSON") or groups.get("PTS") or next(iter(groups.values()))
            raw = group["landmarks"]["points"]
        elif d.get("version") == 2:
            raw = d["landmarks"]["points"]
        else:
            raise AnnotationError(f"{path}: unsupported ljson version {d.get('version')}")
        return [(float(p[1]), float(p[0])) for p in raw]
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, StopIteration) as e:
        if isinstance(e, AnnotationError):
            raise
        raise AnnotationError(f"{path}: not a menpo .ljson file ({e})") from None


def read_wflw(path: str | Path) -> list[tuple[str, list[Point], Box]]:
    """WFLW's list file: ``(image relative path, 98 points, face box)`` per line."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 * N_WFLW + 4 + 6 + 1:
            raise AnnotationError(f"{path}:{n}: {len(fields)} fields, a WFLW line has "
                                  f"{2 * N_WFLW + 11} (196 coordinates, box, 6 attributes, image)")
        try:
            v = [float(x) for x in fields[:2 * N_WFLW + 4]]
        except ValueError as e:
            raise AnnotationError(f"{path}:{n}: {e}") from None
        pts = [(v[2 * i], v[2 * i + 1]) for i in range(N_WFLW)]
        out.append((fields[-1], pts, tuple(v[2 * N_WFLW:2 * N_WFLW + 4])))
    return out


def _as_points(value, where: str) -> list[Point]:
    try:
        pts = [(float(p[0]), float(p[1])) for p in value]
    except (TypeError, ValueError, IndexError, KeyError):
        raise AnnotationError(f"{where}: expected a list of [x, y] points") from None
    if not pts:
        raise AnnotationError(f"{where}: no points")
    return pts


def _faces_of(value, where: str) -> list[list[Point]]:
    """One face ([[x, y], ...]), several ([[[x, y], ...], ...]) or {"faces": [{"landmarks"|"points"}]}."""
    if isinstance(value, dict):
        if "faces" in value:
            return [_as_points(f.get("landmarks", f.get("points")) if isinstance(f, dict) else f, where)
                    for f in value["faces"]]
        return [_as_points(value.get("landmarks", value.get("points")), where)]
    if isinstance(value, list) and value and isinstance(value[0], list) and value[0] \
            and isinstance(value[0][0], list):
        return [_as_points(f, where) for f in value]
    return [_as_points(value, where)]


def read_points_json(path: str | Path) -> dict[str | None, list[list[Point]]]:
    """A plain JSON of points: ``{image name: [face points, ...]}``; the key ``None`` for a file
    that holds one image's faces (matched by its own stem)."""
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise AnnotationError(f"{path}: {e}") from None
    if isinstance(d, list) and d and isinstance(d[0], dict) and "image" in d[0]:
        return {Path(str(e["image"])).name: _faces_of(e, f"{path}: {e['image']}") for e in d}
    if isinstance(d, dict) and d and all(isinstance(v, list) for v in d.values()) and "faces" not in d:
        return {Path(k).name: _faces_of(v, f"{path}: {k}") for k, v in d.items()}
    return {None: _faces_of(d, str(path))}


def _read_per_image(path: Path) -> list[list[Point]]:
    if path.suffix == ".pts":
        return [read_pts(path)]
    if path.suffix == ".ljson":
        return [read_ljson(path)]
    found = read_points_json(path)
    if list(found) != [None]:
        raise AnnotationError(f"{path}: holds several images' points; give it as --annotations")
    return found[None]


def load_annotations(images: Sequence[str | Path],
                     annotations: Sequence[str | Path] = ()) -> list[AnnotatedFace]:
    """The annotated faces of ``images``, from ``annotations`` (files or folders; none: beside each
    image). Raises :class:`AnnotationError` naming every image left without an annotation."""
    images = [Path(p) for p in images]
    sources = [Path(p) for p in annotations] or sorted({p.parent for p in images})
    by_image: dict[Path, list[tuple[list[Point], str, Box | None]]] = {}
    by_name = {}
    for img in images:
        by_name.setdefault(img.name, []).append(img)

    def add(img: Path, faces: Iterable[list[Point]], source: str, box: Box | None = None):
        by_image.setdefault(img, []).extend((pts, source, box) for pts in faces)

    for src in sources:
        if src.is_dir():
            for img in images:
                for suffix in PER_IMAGE_SUFFIXES:
                    f = src / (img.stem + suffix)
                    if f.is_file() and img not in by_image:
                        add(img, _read_per_image(f), str(f))
        elif not src.is_file():
            raise AnnotationError(f"{src}: no such file or folder")
        elif src.suffix == ".txt":
            for rel, pts, box in read_wflw(src):
                for img in by_name.get(Path(rel).name, []):
                    add(img, [pts], str(src), box)
        elif src.suffix == ".json" and not any(img.stem == src.stem for img in images):
            for name, faces in read_points_json(src).items():
                if name is None:
                    raise AnnotationError(f"{src}: one image's points, but no image is named {src.stem}.*")
                for img in by_name.get(name, []):
                    add(img, faces, str(src))
        elif src.suffix in PER_IMAGE_SUFFIXES:
            matches = [img for img in images if img.stem == src.stem]
            if not matches:
                raise AnnotationError(f"{src}: no image named {src.stem}.* among the images given")
            for img in matches:
                add(img, _read_per_image(src), str(src))
        else:
            raise AnnotationError(f"{src}: unknown annotation format (.pts, .ljson, .txt, .json)")
    missing = [str(img) for img in images if img not in by_image]
    if missing:
        raise AnnotationError("no annotation for " + ", ".join(missing) + " (looked for "
                              + "/".join(PER_IMAGE_SUFFIXES) + " files of the same name in "
                              + ", ".join(map(str, sources)) + ")")
    faces = []
    for img in images:
        entries = by_image[img]
        for k, (pts, source, box) in enumerate(entries):
            if len(pts) not in LAYOUTS:
                raise AnnotationError(f"{source}: {len(pts)} points; the layouts scored are "
                                      + ", ".join(f"{l.name} ({l.count} points)" for l in LAYOUTS.values()))
            name = img.stem if len(entries) == 1 else f"{img.stem}#{k}"
            faces.append(AnnotatedFace(name, img, pts, source, box))
    return faces


# -- layouts and NME --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    name: str
    count: int
    groups: dict[str, range]
    outer_eyes: tuple[int, int]
    eye_centres: tuple[tuple[int, ...], tuple[int, ...]]    # points averaged into each eye centre


IBUG68 = Layout("iBUG-68", N_IBUG, IBUG68_GROUPS, IBUG68_INTEROCULAR,
                (tuple(range(36, 42)), tuple(range(42, 48))))       # the two eye rings
WFLW98 = Layout("WFLW-98", N_WFLW, WFLW98_GROUPS, WFLW98_INTEROCULAR, ((96,), (97,)))   # the pupils
LAYOUTS = {l.count: l for l in (IBUG68, WFLW98)}


def comparison(pred_count: int, gt_count: int) -> tuple[Layout, list[int] | None, list[int] | None]:
    """How to score ``pred_count`` predicted points against ``gt_count`` annotated ones:
    (the layout scored in, index map of the predictions or None, of the annotations or None)."""
    if pred_count == gt_count and gt_count in LAYOUTS:
        return LAYOUTS[gt_count], None, None
    if {pred_count, gt_count} == {N_WFLW, N_IBUG}:
        to68 = list(WFLW98_TO_68)
        return IBUG68, (to68 if pred_count == N_WFLW else None), (to68 if gt_count == N_WFLW else None)
    raise ValueError(f"cannot score {pred_count} predicted points against {gt_count} annotated ones "
                     f"(known layouts: {', '.join(f'{l.name} ({l.count})' for l in LAYOUTS.values())})")


def _centre(points: Sequence[Point], idx: Sequence[int]) -> Point:
    return (sum(points[i][0] for i in idx) / len(idx), sum(points[i][1] for i in idx) / len(idx))


def normalisers(gt: Sequence[Point], layout: Layout) -> dict[str, float]:
    """The distances NME is divided by, in pixels (see the module docstring)."""
    xs, ys = [p[0] for p in gt], [p[1] for p in gt]
    return {"inter-ocular": math.dist(gt[layout.outer_eyes[0]], gt[layout.outer_eyes[1]]),
            "inter-pupil": math.dist(_centre(gt, layout.eye_centres[0]), _centre(gt, layout.eye_centres[1])),
            "box": math.sqrt((max(xs) - min(xs)) * (max(ys) - min(ys)))}


def face_nme(pred: Sequence[Point], gt: Sequence[Point], layout: Layout) -> dict[str, dict[str, float]]:
    """normalisation → region (+ ``"all"``) → NME in %, for points already in one layout."""
    if len(pred) != len(gt) or len(gt) != layout.count:
        raise ValueError(f"{len(pred)} predicted vs {len(gt)} annotated points, layout {layout.name}")
    err = [math.dist(p[:2], g[:2]) for p, g in zip(pred, gt)]
    out = {}
    for norm, d in normalisers(gt, layout).items():
        if d <= 0:
            raise ValueError(f"zero {norm} distance in the annotation")
        per = {g: 100.0 * sum(err[i] for i in idx) / (len(idx) * d) for g, idx in layout.groups.items()}
        per["all"] = 100.0 * sum(err) / (len(err) * d)
        out[norm] = per
    return out


def nme_by_group(pred68: Sequence[Point], gt68: Sequence[Point]) -> dict[str, float]:
    """iBUG-68 inter-ocular NME (%) per region and ``"all"``."""
    return face_nme(pred68, gt68, IBUG68)["inter-ocular"]


def score_points(pred: Sequence[Point], gt: Sequence[Point]) -> tuple[Layout, dict[str, dict[str, float]]]:
    """Predicted points (any supported layout, 0-based pixel centres) against annotated ones."""
    layout, pmap, gmap = comparison(len(pred), len(gt))
    p = [pred[i] for i in pmap] if pmap else list(pred)
    g = [gt[i] for i in gmap] if gmap else list(gt)
    return layout, face_nme(p, g, layout)


def to_pixel_centres(points: Iterable[Sequence[float]]) -> list[Point]:
    """The pipeline's continuous coordinates → 0-based pixel centres (the annotations')."""
    return [(p[0] - 0.5, p[1] - 0.5) for p in points]


def match_faces(faces: Sequence[AnnotatedFace], boxes: Sequence[Box]) -> list[int | None]:
    """For each annotated face the index of its detection, or None. A detection is a face's if its
    box overlaps the annotated points' box (IoU ≥ 0.3) or its centre lies inside it; each detection
    goes to at most one face, best overlap first."""
    pairs = []
    for fi, f in enumerate(faces):
        gt = f.points_box
        for bi, b in enumerate(boxes):
            o = iou(b, gt)
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            if o >= FOUND_IOU or (gt[0] <= cx <= gt[2] and gt[1] <= cy <= gt[3]):
                pairs.append((o, fi, bi))
    out: list[int | None] = [None] * len(faces)
    taken = set()
    for o, fi, bi in sorted(pairs, key=lambda t: -t[0]):
        if out[fi] is None and bi not in taken:
            out[fi] = bi
            taken.add(bi)
    return out


# -- running an export ------------------------------------------------------------------------------
@dataclass
class FaceScore:
    """One annotated face under one export."""
    face: AnnotatedFace
    layout: str = ""
    nme: dict[str, dict[str, float]] | None = None    # normalisation → region → %; None: missed
    points: list[Point] | None = None                 # the prediction, 0-based pixel centres
    mesh: list[Point] | None = None                   # its mesh (x, y), same convention, if any

    @property
    def found(self) -> bool:
        return self.nme is not None

    @property
    def error(self) -> float:
        """Inter-ocular NME over all points (%); inf when missed."""
        return self.nme["inter-ocular"]["all"] if self.nme else math.inf


@dataclass
class Export:
    """An export to evaluate: its folder and (if not ``DIR/manifest.json``) its manifest."""
    models: Path
    manifest: Path | None = None
    label: str = ""

    def load(self, options=None):
        """A :class:`FacePipeline` on onnxruntime for this export (sets ``label`` if empty)."""
        from .pipeline.manifest import Manifest
        from .pipeline.options import PipelineOptions
        from .pipeline.stages import FacePipeline
        from .runtime_onnx import OnnxRuntime, load_manifest
        manifest = (Manifest.loads(Path(self.manifest).read_text()) if self.manifest
                    else load_manifest(self.models))
        self.label = self.label or manifest.name or Path(self.models).name
        return FacePipeline(manifest, OnnxRuntime(self.models, manifest),
                            options or PipelineOptions.for_stills())


def run_faces(faces: Sequence[AnnotatedFace], pipelines: dict, keep_points: bool = False,
              frames=None) -> dict[object, list[FaceScore]]:
    """Run each pipeline (key → FacePipeline) once per image; → key → one FaceScore per face, in
    the order of ``faces``. ``frames``: optional ``path → FrameSource`` (default: ``PILFrame.open``)."""
    from .runtime_onnx import PILFrame
    by_image: dict[Path, list[int]] = {}
    for k, f in enumerate(faces):
        by_image.setdefault(f.image_path, []).append(k)
    out: dict[object, list[FaceScore]] = {key: [FaceScore(f) for f in faces] for key in pipelines}
    for path, ks in by_image.items():
        frame = frames(path) if frames else PILFrame.open(path)
        for key, pipe in pipelines.items():
            result = asyncio.run(pipe.process(frame))
            matched = match_faces([faces[k] for k in ks], [d.box for d in result.faces])
            for k, i in zip(ks, matched):
                if i is None:
                    continue
                score = out[key][k]
                pred = to_pixel_centres(result.faces[i].landmarks)
                layout, score.nme = score_points(pred, score.face.points)
                score.layout = layout.name
                if keep_points:
                    score.points = pred
                    score.mesh = to_pixel_centres(result.faces[i].mesh or [])
    return out


def evaluate(faces: Sequence[AnnotatedFace], exports: Sequence[Export], options=None,
             keep_points: bool = False) -> dict[str, list[FaceScore]]:
    """Score every export on the same annotated faces: label → one FaceScore per face (in the
    order of ``faces``). ``options``: a PipelineOptions (default: the CLI's, ``for_stills()``).

        faces = load_annotations(["a.jpg", "b.jpg"])            # a.pts, b.pts beside them
        results = evaluate(faces, [Export(Path("web/models")), Export(Path("mine"))])
        print(markdown(results))
    """
    pipelines = {}
    for x in exports:
        pipe = x.load(options)
        label, k = x.label, 2
        while label in pipelines:                    # two exports of one name: keep both columns
            label, k = f"{x.label} ({k})", k + 1
        pipelines[label] = pipe
    return run_faces(faces, pipelines, keep_points)


# -- summaries ----------------------------------------------------------------------------------------
def ced(errors: Sequence[float], x_max: float = CED_MAX, steps: int = 1000) -> tuple[list[float], list[float]]:
    """Cumulative error distribution: x in [0, x_max] (%), y = share of faces with error ≤ x."""
    n = len(errors)
    xs = [x_max * i / steps for i in range(steps + 1)]
    return xs, [sum(e <= x for e in errors) / n if n else 0.0 for x in xs]


def auc(errors: Sequence[float], x_max: float = CED_MAX) -> float:
    """Area under the CED over [0, x_max], divided by x_max (exact: the mean of (1 - e / x_max)⁺)."""
    if not errors:
        return float("nan")
    return sum(max(0.0, 1.0 - e / x_max) for e in errors) / len(errors)


@dataclass
class Summary:
    n: int
    found: int
    mean: dict[str, dict[str, float]] = field(default_factory=dict)   # norm → region → mean % (found faces)
    failure: dict[float, float] = field(default_factory=dict)         # threshold % → share of faces
    auc: float = float("nan")
    worst: FaceScore | None = None

    @property
    def detection_rate(self) -> float:
        return self.found / self.n if self.n else float("nan")


def summarise(scores: Sequence[FaceScore]) -> Summary:
    """Means over the found faces; failure rates and AUC over all faces (a missed face fails)."""
    found = [s for s in scores if s.found]
    out = Summary(len(scores), len(found))
    if found:
        for norm in NORMS:
            # regions of the layout scored in (68- and 98-point annotations mixed: "all" only)
            regions = [g for g in found[0].nme[norm] if all(g in f.nme[norm] for f in found)]
            out.mean[norm] = {g: sum(s.nme[norm][g] for s in found) / len(found) for g in regions}
        out.worst = max(found, key=lambda s: s.error)
    errors = [s.error for s in scores]
    out.failure = {t: sum(e > t for e in errors) / len(errors) for t in FAILURE_THRESHOLDS} if errors else {}
    out.auc = auc(errors)
    return out


def _fmt(v: float) -> str:
    return "–" if v != v else f"{v:.2f}"


def markdown(results: dict[str, list[FaceScore]]) -> str:
    """One table of exports side by side (label → scores on the same faces), then one per face."""
    summaries = {label: summarise(s) for label, s in results.items()}
    regions = next((list(s.mean["inter-ocular"]) for s in summaries.values() if s.mean), [])
    head = (["export", "found", "NME io", "NME ip", "NME box", *[f"{g} (io)" for g in regions if g != "all"]]
            + [f"FR@{t:g}%" for t in FAILURE_THRESHOLDS] + [f"AUC@{CED_MAX:g}%", "worst face"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, s in summaries.items():
        io = s.mean.get("inter-ocular", {})
        cells = [label, f"{s.found}/{s.n}"]
        cells += [_fmt(s.mean.get(n, {}).get("all", float("nan"))) for n in NORMS]
        cells += [_fmt(io.get(g, float("nan"))) for g in regions if g != "all"]
        cells += [f"{100 * s.failure.get(t, float('nan')):.0f} %" for t in FAILURE_THRESHOLDS]
        cells += [f"{s.auc:.3f}", f"{s.worst.face.name} ({s.worst.error:.2f})" if s.worst else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    labels = list(results)
    lines += ["", "| face | image | IOD px | " + " | ".join(f"NME io {l}" for l in labels) + " |",
              "|" + "---|" * (3 + len(labels))]
    first = results[labels[0]]
    for k, s in enumerate(first):
        iod = normalisers(s.face.points, LAYOUTS[len(s.face.points)])["inter-ocular"]
        cells = [s.face.name, s.face.image_path.name, f"{iod:.0f}"]
        cells += [_fmt(results[l][k].error) if results[l][k].found else "missed" for l in labels]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_json(results: dict[str, list[FaceScore]]) -> dict:
    """The figures as plain data: per export a summary and every face."""
    out = {}
    for label, scores in results.items():
        s = summarise(scores)
        out[label] = {"faces": s.n, "found": s.found, "detection_rate": s.detection_rate,
                      "mean_nme": s.mean, "failure_rate": {f"{t:g}%": v for t, v in s.failure.items()},
                      "auc": s.auc,
                      "per_face": [{"face": f.face.name, "image": str(f.face.image_path),
                                    "layout": f.layout, "nme": f.nme} for f in scores]}
    return out


class MissingDependency(RuntimeError):
    pass


def write_ced_png(results: dict[str, list[FaceScore]], path: str | Path) -> None:
    """The CED curves of every export in one PNG, written atomically. Needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependency("the CED curve needs matplotlib (pip install matplotlib)") from None
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for label, scores in results.items():
        xs, ys = ced([s.error for s in scores])
        ax.plot(xs, ys, label=f"{label} (AUC {auc([s.error for s in scores]):.3f})")
    ax.set_xlabel("NME, inter-ocular (%)")
    ax.set_ylabel("share of faces")
    ax.set_xlim(0, CED_MAX)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    finally:
        plt.close(fig)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- command line ---------------------------------------------------------------------------------------
class _AddExport(argparse.Action):
    """``--models DIR``: one more export to score."""
    def __call__(self, parser, namespace, value, option_string=None):
        getattr(namespace, self.dest).append(Export(Path(value)))


class _SetManifest(argparse.Action):
    """``--manifest FILE``: the manifest of the ``--models DIR`` given just before it."""
    def __call__(self, parser, namespace, value, option_string=None):
        exports = getattr(namespace, self.dest)
        if not exports or exports[-1].manifest is not None:
            parser.error("--manifest FILE goes right after the --models DIR it describes")
        exports[-1].manifest = Path(value)


def add_parser(sub) -> None:
    """The ``evaluate`` subcommand (registered by ``facelandmarks.__main__``)."""
    from .locations import describe_search
    from .pipeline.options import PipelineOptions
    stills = PipelineOptions.for_stills()
    e = sub.add_parser("evaluate", help="score exports on your annotated faces (NME, CED, AUC)",
                       description="Run exports on annotated images and print their accuracy side by "
                                   "side. Annotations: iBUG .pts, menpo .ljson, WFLW list .txt, or a "
                                   "JSON of points (0-based pixel centres); default: files named like "
                                   "each image beside it.")
    e.add_argument("images", nargs="+", type=Path)
    e.add_argument("--annotations", nargs="+", type=Path, default=[], metavar="PATH",
                   help="annotation files or folders (default: beside each image)")
    e.add_argument("--models", dest="exports", action=_AddExport, default=[], metavar="DIR",
                   help="an export to score beside the default one (the first found in "
                        f"{describe_search()}); repeatable")
    e.add_argument("--manifest", dest="exports", action=_SetManifest, metavar="FILE",
                   help="the manifest of the --models just before (default: DIR/manifest.json)")
    e.add_argument("--detector", help="detector name or use from each manifest (default: still)")
    e.add_argument("--passes", type=int, default=stills.passes,
                   help=f"landmark passes per face (default {stills.passes})")
    e.add_argument("--min-face", type=float, default=stills.min_face,
                   help=f"smallest face to look for, px (default {stills.min_face:g}; 0 = no tiles)")
    e.add_argument("--no-flip", action="store_true", help="don't average each crop with its mirror image")
    e.add_argument("--json", type=Path, help="also write the figures (per export and face) here")
    e.add_argument("--ced", type=Path, metavar="PNG", help="draw the CED curves into this PNG")


def command(args) -> int:
    """``python -m facelandmarks evaluate``: 0 when every figure was produced, 2 on bad input."""
    import sys
    from .locations import ModelsNotFound, find_models
    from .pipeline.manifest import ManifestError
    from .pipeline.options import PipelineOptions
    from .runtime_onnx import ModelFileError

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return 2

    exports = list(args.exports)
    try:
        default = find_models()
    except ModelsNotFound as e:
        if not exports:
            return fail(str(e))
        print(f"note: {e}\nnote: scoring the --models given only", file=sys.stderr)
    else:
        if not any(x.models.resolve() == default.resolve() and x.manifest is None for x in exports):
            exports.insert(0, Export(default))
    try:
        faces = load_annotations(args.images, args.annotations)
    except (AnnotationError, OSError) as e:
        return fail(str(e))
    options = PipelineOptions.for_stills(passes=args.passes, min_face=args.min_face or None,
                                         flip_average=not args.no_flip)
    if args.detector:
        options = replace(options, detector=args.detector)
    try:
        results = evaluate(faces, exports, options)
    except (ManifestError, ModelFileError, OSError, ValueError) as e:
        return fail(str(e))
    print(f"{len(faces)} annotated face(s) in {len(set(f.image_path for f in faces))} image(s); "
          f"NME in % (io: inter-ocular, ip: inter-pupil, box: sqrt(w·h)); FR: share of faces above "
          f"the threshold or missed")
    print(markdown(results))
    status = 0
    if args.json:
        from .__main__ import write_atomic
        write_atomic(args.json, json.dumps(to_json(results), indent=1) + "\n")
    if args.ced:
        try:
            write_ced_png(results, args.ced)
            print(f"CED curve: {args.ced}")
        except MissingDependency as e:
            print(f"error: {args.ced} not written: {e}", file=sys.stderr)
            status = 1
    return status
