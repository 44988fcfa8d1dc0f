#!/usr/bin/env python3
"""Build the PyTorch face models, load pretrained weights, export verified ONNX graphs + manifest.

    python export_models.py                       # default: MediaPipe BlazeFace + FaceMesh → web/models/
    python export_models.py --model retinaface --weights CKPT.pth [--landmarks 98] [--input-size 640]
    python export_models.py --model retinaface --random-weights   # try the path without a checkpoint
    python export_models.py --model landmarks --module pkg.mod:Class --weights W.pt \\
        --input-size 256 --layout wflw98 --points unit --crop-scale 1.3 [--detector DIR]

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
    from facelandmarks.export import retinaface

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["mediapipe", "retinaface", "landmarks"], default="mediapipe",
                   help="which pipeline to export (default: mediapipe); landmarks: your own crop → "
                        "N points model")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    p.add_argument("--replace", action="store_true",
                   help="replace --out even if it holds files that are not an export of ours (they are "
                        "deleted); without it such a folder is refused before any work")
    p.add_argument("--weights", type=Path, help="retinaface: a biubug6-layout checkpoint (.pth), or "
                                                 "the seed's FaceDetector.onnx to re-export its weights; "
                                                 "landmarks: the --module's state dict")
    p.add_argument("--landmarks", type=int, default=98, help="retinaface: landmark count (default 98)")
    p.add_argument("--input-size", type=int, help="retinaface: square input size (default 640); "
                                                  "landmarks: the crop side S of [1,3,S,S] (required)")
    p.add_argument("--preprocessing", choices=sorted(retinaface.PREPROCESSING),
                   help="retinaface: how the checkpoint was trained to see pixels (default: biubug6 "
                        "for 5 landmarks, imagenet otherwise)")
    p.add_argument("--score-threshold", type=float, default=retinaface.SCORE_THRESHOLD,
                   help=f"retinaface: keep faces scoring over this (default {retinaface.SCORE_THRESHOLD})")
    p.add_argument("--nms-iou", type=float, default=retinaface.IOU_THRESHOLD,
                   help=f"retinaface: NMS overlap threshold (default {retinaface.IOU_THRESHOLD})")
    p.add_argument("--roi-size", type=int, default=retinaface.ROI_INPUT_SIZE,
                   help=f"retinaface: input size of the tracking detector (default "
                        f"{retinaface.ROI_INPUT_SIZE}; 0: none)")
    p.add_argument("--random-weights", action="store_true",
                   help="retinaface: export an untrained model (for trying the path only)")
    from facelandmarks.export import user_landmarks

    user_landmarks.add_arguments(p)
    return p.parse_args(argv)


def build(args: argparse.Namespace, tmp: Path, report):
    """The chosen family's ``build(tmp_dir, report, **options)`` (see facelandmarks.export.contract)."""
    if args.model == "mediapipe":
        from facelandmarks.export.mediapipe import build

        return build(tmp, report)
    if args.model == "retinaface":
        from facelandmarks.export.retinaface import build

        return build(tmp, report, weights=args.weights, landmarks=args.landmarks,
                     input_size=args.input_size or 640, random_weights=args.random_weights,
                     preprocessing=args.preprocessing, score_threshold=args.score_threshold,
                     iou_threshold=args.nms_iou, roi_size=args.roi_size or None)
    from facelandmarks.export.user_landmarks import build, options_from_args

    return build(tmp, report, **options_from_args(args))


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
            graphs, manifest = build(args, Path(tmp), report)
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
