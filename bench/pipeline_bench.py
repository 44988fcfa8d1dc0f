#!/usr/bin/env python3
"""Per-stage CPU latency of the exported graphs with onnxruntime (not a test: prints figures).

    python -m bench.pipeline_bench [--models web/models] [--frames 200] [--threads 2] [--export]

Feeds the astronaut photo letterboxed to a 640x480 frame through the same FacePipeline the CLI and the
page use, and prints median / p95 ms per stage. ``--export`` also times a full ``export_models.py``
run into a temporary folder.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from facelandmarks.pipeline.options import PipelineOptions
from facelandmarks.pipeline.stages import FacePipeline
from facelandmarks.runtime_onnx import OnnxRuntime, PILFrame, load_manifest

ROOT = Path(__file__).resolve().parent.parent


def camera_frame():
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.astronaut())           # 512x512
    frame = Image.new("RGB", (640, 480))
    frame.paste(photo.resize((480, 480)), (80, 0))
    return PILFrame(frame)


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--models", type=Path, default=ROOT / "web" / "models")
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--export", action="store_true", help="also time a full export")
    args = p.parse_args()

    manifest = load_manifest(args.models)
    runtime = OnnxRuntime(args.models, manifest, threads=args.threads)
    frame = camera_frame()
    print(f"onnxruntime CPU, {args.threads} threads, 640x480 frame, {args.frames} frames")
    print(f"{'detector':12s} {'stage':12s} {'median ms':>10s} {'p95 ms':>8s}")
    for name in manifest.detectors:
        pipe = FacePipeline(manifest, runtime, PipelineOptions(detector=name, passes=1))
        asyncio.run(pipe.process(frame))                  # warm-up: sessions, allocations
        samples: dict[str, list[float]] = {}
        for _ in range(args.frames):
            result = asyncio.run(pipe.process(frame))
            for stage, ms in result.timings.items():
                samples.setdefault(stage, []).append(ms)
        assert result.faces, "no face found in the benchmark frame"
        for stage, ms in samples.items():
            print(f"{name:12s} {stage:12s} {statistics.median(ms):10.2f} {pct(ms, 0.95):8.2f}")
    if args.export:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "export_models.py"), "--out", tmp],
                           check=True, stdout=subprocess.DEVNULL)
            print(f"export_models.py (all graphs, all checks): {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
