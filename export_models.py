#!/usr/bin/env python3
"""Build the PyTorch face models, load pretrained weights, export verified ONNX graphs + manifest.

    python export_models.py                       # default: MediaPipe BlazeFace + FaceMesh → web/models/
    python export_models.py --model retinaface --weights CKPT.pth [--landmarks 98] [--input-size 640]
    python export_models.py --model retinaface --random-weights   # try the path without a checkpoint

Every export runs the checks (onnx.checker, PyTorch vs LiteRT for the MediaPipe ports, PyTorch vs
onnxruntime, the WebGL check of webgl-bound graphs) and prints the max differences found. The output
folder is replaced only when everything passed: a failed run leaves the previous one untouched.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "web" / "models"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["mediapipe", "retinaface"], default="mediapipe",
                   help="which pipeline to export (default: mediapipe)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    p.add_argument("--replace", action="store_true",
                   help="replace --out even if it holds files that are not an export of ours (they are "
                        "deleted); without it such a folder is refused before any work")
    p.add_argument("--weights", type=Path, help="retinaface: a biubug6-layout checkpoint (.pth), or "
                                                 "the seed's FaceDetector.onnx to re-export its weights")
    p.add_argument("--landmarks", type=int, default=98, help="retinaface: landmark count (default 98)")
    p.add_argument("--input-size", type=int, default=640, help="retinaface: square input size (default 640)")
    p.add_argument("--preprocessing", choices=["biubug6", "imagenet"],
                   help="retinaface: how the checkpoint was trained to see pixels (default: biubug6 "
                        "for 5 landmarks, imagenet otherwise)")
    p.add_argument("--random-weights", action="store_true",
                   help="retinaface: export an untrained model (for trying the path only)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from facelandmarks import verify
    from facelandmarks.export.site import OutDirError, check_out_dir, write_models_dir
    from facelandmarks.models.retinaface import CheckpointError
    from facelandmarks.weights import WeightsError

    if args.model == "retinaface" and (args.weights is None) == (not args.random_weights):
        print("error: --model retinaface needs exactly one of --weights CKPT.pth or --random-weights",
              file=sys.stderr)
        return 2

    try:
        check_out_dir(args.out, args.replace)  # before the export's minute of work
    except OutDirError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="facelandmarks-export-") as tmp:
            report = verify.ParityReport()
            if args.model == "mediapipe":
                from facelandmarks.export.mediapipe import build

                graphs, manifest = build(Path(tmp), report)
            else:
                from facelandmarks.export.retinaface import build

                graphs, manifest = build(args.weights, args.landmarks, args.input_size,
                                         args.random_weights, preprocessing=args.preprocessing,
                                         report=report)
            print(report.format())
            out = write_models_dir(args.out, graphs, manifest, replace=args.replace)
    except (verify.VerificationError, WeightsError, CheckpointError, ValueError, OSError) as e:
        print(f"export failed, {args.out} left as it was:\n{e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted, {args.out} left as it was", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - t0
    for name in sorted(graphs):
        print(f"wrote {out / name} ({(out / name).stat().st_size / 1e6:.2f} MB)")
    print(f"wrote {out / 'manifest.json'}")
    print(f"export time: {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # while importing torch & co., before anything is written
        print("interrupted, nothing written", file=sys.stderr)
        sys.exit(130)
