#!/usr/bin/env python3
"""Your own RetinaFace in the page beside the default pipeline (not a test): in one run on the fake
camera (the astronaut, 640x480) in headless Chromium, all stages on wasm
(``?detector=wasm&landmarks=wasm&parser=wasm``), prints per configuration the frames per second and
the per-frame time while tracking (frames where the full detector did not run) and on detection
frames, then the ratio own / default (the bar: >= 0.5).

    python -m bench.own_model_bench                     # exports the seed's weights first (~45 s)
    python -m bench.own_model_bench --own DIR           # an existing RetinaFace export
    python -m bench.own_model_bench --frames 300 --redetect 30

The own model is the seed's trained RetinaFace-98 weights exported as a user's checkpoint would be
(``export_models.py --model retinaface --weights ../shared/fixtures/seed-retinaface/FaceDetector.onnx``,
with its 160-px tracking detector); the default is this checkout's ``web/models``. Each is served
as the site's ``models/`` (``scripts/serve.py --models``). Uses bench/page_bench.py's recorder and
bench/browser.py's browser and fake camera.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from bench import browser as helpers  # noqa: E402
from bench import page_bench  # noqa: E402

WASM = "detector=wasm&landmarks=wasm&parser=wasm"


def measure(pw, video: Path, models: Path, frames: int, redetect: int) -> dict:
    query = f"?{WASM}&redetect={redetect}"
    with helpers.serve(models) as url, \
            helpers.launch(pw, helpers.browser_args(video, extra=page_bench.NO_SOFTWARE_COMPOSITING)) as ctx:
        page = ctx.new_page()
        page.add_init_script(page_bench.RECORD)
        page.goto(url + query)
        first = page_bench.wait(page, "() => window.faceLandmarks && (window.faceLandmarks.firstLandmarksMs"
                                      " || window.faceLandmarks.error)", 300)
        if isinstance(first, str):
            raise RuntimeError(f"{models}: the page reports {first}")
        page_bench.wait(page, "() => window.__t.length >= 5", 600)
        page.evaluate("() => { window.__t.length = 0; }")
        page_bench.wait(page, f"() => window.__t.length >= {frames}", 3600)
        rec = page.evaluate(f"() => window.__t.slice(0, {frames})")
    tracked = [r["timings"]["total"] for r in rec if not r["detected"]]
    detected = [r["timings"]["total"] for r in rec if r["detected"]]
    stages = {}
    for r in rec:
        if not r["detected"]:
            for k, v in r["timings"].items():
                stages.setdefault(k, []).append(v)
    return {"models": str(models), "query": query, "frames": len(rec),
            "fps": (len(rec) - 1) * 1000 / (rec[-1]["t"] - rec[0]["t"]),
            "with_face": sum(1 for r in rec if r["n"]), "detector_frames": len(detected),
            "tracking_ms": statistics.median(tracked) if tracked else None,
            "detection_ms": statistics.median(detected) if detected else None,
            "tracking_stages_ms": {k: statistics.median(v) for k, v in stages.items()}}


def export_own(out: Path) -> Path:
    from bench import own_models

    if not own_models.SEED_DETECTOR.is_file():
        raise SystemExit(f"the seed's weights are not at {own_models.SEED_DETECTOR} "
                         "(set FACELANDMARKS_SEED_DIR, or give --own DIR)")
    print(f"exporting the seed's weights as a user's checkpoint into {out} ...", flush=True)
    return own_models.export("retinaface98", out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--own", type=Path, help="an existing RetinaFace export (default: export the seed's weights)")
    ap.add_argument("--default", type=Path, default=ROOT / "web" / "models", help="the default export")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--redetect", type=int, default=30, help="frames between full detections (page ?redetect=)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    if helpers.cannot_run():
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        own = args.own or export_own(Path(tmp) / "own-retinaface")
        video = helpers.write_y4m(Path(tmp) / "astronaut.y4m", helpers.astronaut_frame())
        results = {}
        with sync_playwright() as pw:
            for name, models in (("default", args.default), ("own retinaface", own)):
                t0 = time.time()
                results[name] = r = measure(pw, video, models, args.frames, args.redetect)
                track = f"{r['tracking_ms']:.1f}" if r["tracking_ms"] is not None else "-"
                detect = f"{r['detection_ms']:.1f}" if r["detection_ms"] is not None else "-"
                print(f"{name:<16} {r['fps']:6.1f} FPS   per frame while tracking {track} ms, on "
                      f"detection frames {detect} ms   ({r['frames']} frames, {r['with_face']} with a "
                      f"face, full detector on {r['detector_frames']}; {time.time() - t0:.0f} s)")
                print(f"{'':<16} tracking stages (median ms): "
                      + ", ".join(f"{k} {v:.1f}" for k, v in r["tracking_stages_ms"].items()))
    ratio = results["own retinaface"]["fps"] / results["default"]["fps"]
    print(f"own / default FPS = {ratio:.2f} (bar >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'}); "
          f"all wasm, {WASM}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
