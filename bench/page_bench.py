#!/usr/bin/env python3
"""Benchmark the page in headless Chromium (not a test): prints, per provider configuration,

* time from navigation to the first landmarks, and the same on a second (warm-cache) load;
* bytes transferred before the first landmarks (resource timing: compressed bytes on the wire);
* per-stage median and p95 ms over ``--frames`` frames, and frames per second;
* JS heap before / after the frames (CDP Runtime.getHeapUsage);
* what the Python side adds per frame: the page's whole camera step (Python pipeline + tracking +
  the ORT calls it makes) against the same ORT calls made from a plain JS loop in the same page,
  on the same sessions and the same picture, right after.

    python -m bench.page_bench                        # wasm, then the manifest's providers
    python -m bench.page_bench --configs wasm --frames 300
    python -m bench.page_bench --configs "detector=wasm&landmarks=webgl"

The fake camera shows scikit-image's astronaut (640x480, as in tests/browser). WebGL here is
SwiftShader (a software GPU): webgl figures say nothing about a real GPU.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import browser as helpers

ROOT = Path(__file__).resolve().parent.parent

# Compositing on SwiftShader (this machine's software GPU) costs 30-40 ms per frame to copy the
# video into a canvas and competes with ONNX Runtime for the two cores; a real browser composites on
# its GPU. Off by default so the figures are the page's, not SwiftShader's (--software-compositing
# keeps it on).
EXTRA_ARGS: list[str] = []
NO_SOFTWARE_COMPOSITING = ["--disable-gpu-compositing"]

CONFIGS = {
    "wasm": "detector=wasm&landmarks=wasm&parser=wasm",
    "manifest": "",
}

RECORD = """
window.__t = [];
addEventListener('faces', (e) => { if (e.detail.source === 'camera')
  window.__t.push({t: performance.now(), n: e.detail.faces.length, timings: e.detail.timings,
                   detected: e.detail.detected}); });
"""

# The same ORT work as one tracked camera frame, from JS alone: preprocess (pixels.js) + session.run,
# on the page's own sessions and picture; the detector + parser every `every` frames like the tracker.
JS_LOOP = """
async ([frames, every]) => {
  const fl = window.faceLandmarks, boot = window.faceBoot, px = boot.pixels;
  const m = JSON.parse(await boot.manifestText);
  const det = m.detectors[m.defaults.camera], lm = m.landmarks;
  const sess = (file) => fl.sessions[file];
  const ortOf = async (file) => boot.loadOrt(fl.providers[{[det.graph.file]: 'detector',
      [det.parser.file]: 'parser', [lm.graph.file]: 'landmarks'}[file]]);
  const [oDet, oPar, oLm] = await Promise.all([ortOf(det.graph.file), ortOf(det.parser.file), ortOf(lm.graph.file)]);
  const src = fl.canvas, W = src.width, H = src.height;
  const s = Math.min(det.input.width / W, det.input.height / H);
  const detT = [s, 0, 0, s, (det.input.width - W * s) / 2, (det.input.height - H * s) / 2];
  const box = fl.last.faces[0].box, cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2;
  const size = 1.5 * Math.max(box[2] - box[0], box[3] - box[1]), k = lm.input.width / size;
  const lmT = [k, 0, 0, k, lm.input.width / 2 - k * cx, lm.input.height / 2 - k * cy];
  const times = [];
  for (let i = 0; i < frames; i++) {
    const t0 = performance.now();
    if (i % every === 0) {
      const x = px.toInput(src, ...detT, det.input.width, det.input.height, det.input.mean, det.input.std, false);
      const raw = await boot.runGraph(sess(det.graph.file), oDet,
        {[det.graph.inputs.image]: {type: 'float32', data: x, dims: [1, 3, det.input.height, det.input.width]}});
      const feeds = {};
      for (const role of ['bbox_regressions', 'scores', 'ldm_regressions'])
        feeds[det.parser.inputs[role]] = raw.outputs[det.graph.outputs[role]];
      await boot.runGraph(sess(det.parser.file), oPar, feeds);
    }
    const y = px.toInput(src, ...lmT, lm.input.width, lm.input.height, lm.input.mean, lm.input.std, false);
    await boot.runGraph(sess(lm.graph.file), oLm,
      {[lm.graph.inputs.image]: {type: 'float32', data: y, dims: [1, 3, lm.input.height, lm.input.width]}});
    times.push(performance.now() - t0);
  }
  return times;
}
"""


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else float("nan")


def wait(page, js, timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = page.evaluate(js)
        if v:
            return v
        time.sleep(0.1)
    raise TimeoutError(js)


def heap(cdp) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    return cdp.send("Runtime.getHeapUsage")["usedSize"] / 1e6


def heap_paused(page, cdp, resume: bool) -> float:
    """JS heap with the page's loop paused: a frame in flight holds its input tensors and canvas
    data (0.5-2 MB), so a heap read while the loop runs says more about when it was taken than about
    growth."""
    page.evaluate("() => window.faceLandmarks.pause()")
    time.sleep(0.3)                        # let the frame in flight finish
    mb = heap(cdp)
    if resume:
        page.evaluate("() => window.faceLandmarks.resume()")
    return mb


def run_config(pw, url, video, name, query, frames, redetect):
    q = "?" + "&".join(p for p in (query, f"redetect={redetect}") if p)
    out = {"config": name, "query": q}
    with helpers.launch(pw, helpers.browser_args(video, extra=["--enable-precise-memory-info"] + EXTRA_ARGS)) as ctx:
        page = ctx.new_page()
        page.add_init_script(RECORD)
        cdp = ctx.new_cdp_session(page)
        t_nav = time.time()
        page.goto(url + q)
        first = wait(page, "() => window.faceLandmarks && (window.faceLandmarks.firstLandmarksMs || window.faceLandmarks.error)", 300)
        if isinstance(first, str):
            raise RuntimeError(f"{name}: the page reports {first}")
        out["first_landmarks_s"] = first / 1000
        out["wall_first_s"] = time.time() - t_nav
        out["bytes_before_first_MB"] = page.evaluate(
            """(tFirst) => (performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
                 .filter(e => e.responseEnd <= tFirst).reduce((a, e) => a + e.transferSize, 0)) / 1e6""", first)
        out["bytes_total_MB"] = page.evaluate(
            "() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).reduce((a, e) => a + e.transferSize, 0) / 1e6")
        out["providers"] = page.evaluate("() => window.faceLandmarks.last && window.faceLandmarks.last.providers")
        out["boot_marks_ms"] = page.evaluate("() => window.faceBoot.marks")
        # warm up a few frames, then measure
        wait(page, "() => window.__t.length >= 5", 600)
        page.evaluate("() => { window.__t.length = 0; }")
        out["heap_before_MB"] = heap_paused(page, cdp, resume=True)
        start = page.evaluate("() => window.__t.length")
        wait(page, f"() => window.__t.length >= {start + frames}", 3600)
        rec = page.evaluate(f"() => window.__t.slice({start}, {start + frames})")
        # the bench's own per-frame records (~240 bytes each) are not the page's: drop them first
        page.evaluate("() => { window.__t.length = 0; }")
        out["heap_after_MB"] = heap_paused(page, cdp, resume=False)
        out["frames"] = len(rec)
        out["fps"] = (len(rec) - 1) * 1000 / (rec[-1]["t"] - rec[0]["t"])
        out["frames_with_face"] = sum(1 for r in rec if r["n"])
        out["detector_frames"] = sum(1 for r in rec if r["detected"])
        stages = {}
        for r in rec:
            for k, v in r["timings"].items():
                stages.setdefault(k, []).append(v)
        out["stages_ms"] = {k: {"median": statistics.median(v), "p95": pct(v, 0.95), "n": len(v)}
                            for k, v in stages.items()}
        # the page's loop is paused (the camera keeps playing: same load on the machine); now the
        # same ORT work from JS alone
        time.sleep(0.2)
        js_times = page.evaluate(JS_LOOP, [frames, redetect + 1 if redetect > 0 else 1])
        page_total = [r["timings"]["total"] for r in rec]
        out["ort_alone_ms"] = {"median": statistics.median(js_times), "p95": pct(js_times, 0.95)}
        out["page_step_ms"] = {"median": statistics.median(page_total), "p95": pct(page_total, 0.95)}
        out["python_adds_ms"] = out["page_step_ms"]["median"] - out["ort_alone_ms"]["median"]
        # a frame as the anchors count it: the snapshot plus the tracker step
        frame_ms = [r["timings"].get("snapshot", 0.0) + r["timings"]["total"] for r in rec]
        out["frame_ms"] = {"median": statistics.median(frame_ms), "p95": pct(frame_ms, 0.95)}
        # a second load in the same profile: HTTP cache + V8's wasm code cache
        page.close()
        page = ctx.new_page()
        page.add_init_script(RECORD)
        page.goto(url + q)
        out["warm_first_landmarks_s"] = wait(
            page, "() => window.faceLandmarks && window.faceLandmarks.firstLandmarksMs", 300) / 1000
        out["warm_bytes_MB"] = page.evaluate(
            "() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).reduce((a, e) => a + e.transferSize, 0) / 1e6")
    return out


def report(r):
    print(f"\n== {r['config']}  ({r['query']})  providers {r['providers']}")
    print(f"first landmarks   {r['first_landmarks_s']:.2f} s after navigation (cold); "
          f"{r['warm_first_landmarks_s']:.2f} s on a second load (warm cache, {r['warm_bytes_MB']:.2f} MB)")
    print(f"transferred       {r['bytes_before_first_MB']:.2f} MB before first landmarks, "
          f"{r['bytes_total_MB']:.2f} MB in all")
    print(f"boot marks (ms)   {json.dumps({k: round(v) for k, v in r['boot_marks_ms'].items()})}")
    print(f"frames            {r['frames']} ({r['frames_with_face']} with a face, detector on "
          f"{r['detector_frames']}), {r['fps']:.1f} frames/s")
    print(f"{'stage':<12}{'median ms':>10}{'p95 ms':>10}{'frames':>8}")
    order = ["preprocess", "detector", "parser", "landmarks", "python", "draw", "total"]
    for k in order + sorted(set(r["stages_ms"]) - set(order)):
        if k in r["stages_ms"]:
            s = r["stages_ms"][k]
            print(f"{k:<12}{s['median']:>10.2f}{s['p95']:>10.2f}{s['n']:>8}")
    print(f"JS heap           {r['heap_before_MB']:.1f} MB before, {r['heap_after_MB']:.1f} MB after")
    print(f"Python's share    page step {r['page_step_ms']['median']:.2f} ms (p95 {r['page_step_ms']['p95']:.2f}) "
          f"vs the same ORT calls from JS {r['ort_alone_ms']['median']:.2f} ms (p95 {r['ort_alone_ms']['p95']:.2f}): "
          f"Python adds {r['python_adds_ms']:.2f} ms per frame")
    py = r["stages_ms"].get("python", {}).get("median", float("nan"))
    frame = r["frame_ms"]["median"]
    print(f"Python's own work {py:.2f} ms of a {frame:.2f} ms frame (snapshot + step, median) = "
          f"{100 * py / frame:.1f} % (the page's 'python' timing: step minus ORT and pixels.js); "
          f"by the JS-alone loop {100 * max(0.0, r['python_adds_ms']) / frame:.1f} %  [bar: <= 10 %]")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="wasm,manifest",
                    help="comma-separated: wasm, manifest, or a query string like detector=wasm&landmarks=webgl")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--redetect", type=int, default=30, help="frames between detector runs (page ?redetect=)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--software-compositing", action="store_true",
                    help="keep Chromium's compositing on SwiftShader (slow here; off by default)")
    ap.add_argument("--chromium-arg", action="append", default=[],
                    help="extra Chromium switch, e.g. --chromium-arg=--disable-accelerated-2d-canvas")
    args = ap.parse_args(argv)
    if helpers.cannot_run():
        return 2
    from playwright.sync_api import sync_playwright
    EXTRA_ARGS[:] = args.chromium_arg + ([] if args.software_compositing else NO_SOFTWARE_COMPOSITING)
    results = []
    with tempfile.TemporaryDirectory() as tmp, helpers.serve() as url, sync_playwright() as pw:
        video = helpers.write_y4m(Path(tmp) / "astronaut.y4m", helpers.astronaut_frame())
        for c in [c.strip() for c in args.configs.split(",") if c.strip()]:
            r = run_config(pw, url, video, c, CONFIGS.get(c, c), args.frames, args.redetect)
            report(r)
            results.append(r)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
