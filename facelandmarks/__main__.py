"""Command line: ``python -m facelandmarks detect IMAGE [IMAGE ...] --json OUT.json [--png OUTDIR]``.

Runs the same graphs, manifest and pipeline code as the page, with onnxruntime on the CPU, and writes
``[{"image": path, "faces": [{"box": [x0,y0,x1,y1], "detector_score": s, "presence": p,
"landmarks": [[x,y] × 98]}]}]``
in image pixels.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

DEFAULT_MODELS = Path(__file__).resolve().parent.parent / "web" / "models"


def build_parser() -> argparse.ArgumentParser:
    from .pipeline.options import PipelineOptions
    stills = PipelineOptions.for_stills()
    p = argparse.ArgumentParser(prog="python -m facelandmarks")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("detect", help="find faces and their 98 landmarks in images")
    d.add_argument("images", nargs="+", type=Path)
    d.add_argument("--json", type=Path, required=True, help="write results here")
    d.add_argument("--png", type=Path, help="also write annotated pictures into this folder")
    d.add_argument("--models", type=Path, default=DEFAULT_MODELS,
                   help="folder with the graphs (default: web/models)")
    d.add_argument("--manifest", type=Path, help="manifest file (default: MODELS/manifest.json)")
    d.add_argument("--detector", help="detector name or use from the manifest (default: still)")
    d.add_argument("--passes", type=int, default=stills.passes,
                   help=f"landmark passes per face (default {stills.passes})")
    d.add_argument("--min-face", type=float, default=stills.min_face,
                   help=f"smallest face to look for, in pixels (default {stills.min_face:g}): photos where that is "
                        "too small for the detector are also searched tile by tile; 0 = no tiles")
    d.add_argument("--no-flip", action="store_true",
                   help="don't average each crop with its mirror image (faster, slightly less stable)")
    d.add_argument("--mesh", action="store_true", help="include the 468-point mesh in the JSON")
    return p


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def detect(args) -> int:
    from .draw import draw_faces
    from .pipeline.manifest import Manifest, ManifestError
    from .pipeline.stages import FacePipeline, PipelineOptions
    from .runtime_onnx import ModelFileError, OnnxRuntime, PILFrame, load_manifest

    try:
        manifest = (Manifest.loads(args.manifest.read_text()) if args.manifest
                    else load_manifest(args.models))
        runtime = OnnxRuntime(args.models, manifest)
        options = PipelineOptions.for_stills(passes=args.passes, min_face=args.min_face or None,
                                             flip_average=not args.no_flip)
        if args.detector:
            options.detector = args.detector
        pipeline = FacePipeline(manifest, runtime, options)
    except (ManifestError, ModelFileError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results, failed = [], 0
    for path in args.images:
        try:
            frame = PILFrame.open(path)
            result = asyncio.run(pipeline.process(frame))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        except ModelFileError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        results.append({"image": str(path), "width": frame.width, "height": frame.height,
                        "faces": [f.to_json(mesh=args.mesh) for f in result.faces]})
        print(f"{path}: {len(result.faces)} face(s)")
        if args.png:
            args.png.mkdir(parents=True, exist_ok=True)
            out = args.png / (path.stem + ".png")
            draw_faces(frame.image, result.faces).save(out)
    write_atomic(args.json, json.dumps(results, indent=1) + "\n")
    return 1 if failed else 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "detect":
        return detect(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
