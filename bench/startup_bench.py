#!/usr/bin/env python3
"""Where the page's start-up goes: cold loads in fresh headless Chromium profiles (fake camera fed
by the astronaut photo, all stages on wasm), printing window.faceBoot.marks — boot.js's own marks,
PyScript's py:progress steps and py:ready, main.py's start and the end of its imports — and the
first landmarks, in ms since navigation. Medians over --runs.

    PYTHONPATH=$PWD python bench/startup_bench.py --runs 3
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

QUERY = "?detector=wasm&landmarks=wasm&parser=wasm"
FIRST = "first frame: "     # prefix of the first camera frame's own stage timings among the marks


def wait_first_landmarks(page, timeout: float = 180.0) -> float:
    """Poll until the page reports its first landmarks (ms since navigation); its error, raised."""
    deadline = time.time() + timeout
    while True:
        state = page.evaluate("() => window.faceLandmarks && (window.faceLandmarks.firstLandmarksMs"
                              " || window.faceLandmarks.error)")
        if isinstance(state, str):
            raise RuntimeError(f"the page reports {state}")
        if state:
            return float(state)
        if time.time() > deadline:
            raise TimeoutError(f"no first landmarks within {timeout:.0f} s")
        time.sleep(0.05)


def one_load(pw, url: str, video: Path, chromium_args: list[str] = ()) -> dict[str, float]:
    """One cold load in a fresh profile (``chromium_args``: extra switches); its marks."""
    with helpers.launch(pw, helpers.browser_args(video) + list(chromium_args)) as ctx:
        page = ctx.new_page()
        # the first camera frame's own timings (grab, stages, Python), from its "faces" event
        page.add_init_script("addEventListener('faces', (e) => { if (e.detail.source === 'camera' &&"
                             " !window.__firstTimings) window.__firstTimings = e.detail.timings; })")
        page.goto(url + QUERY)
        first = wait_first_landmarks(page)
        marks = page.evaluate("() => window.faceBoot.marks")
        marks["first_landmarks"] = first
        for k, v in (page.evaluate("() => window.__firstTimings") or {}).items():
            marks[FIRST + k] = v
        return marks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write every run's marks here")
    args = ap.parse_args(argv)
    if helpers.cannot_run():
        return 2
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp, helpers.serve() as url, sync_playwright() as pw:
        video = helpers.write_y4m(Path(tmp) / "astronaut.y4m", helpers.astronaut_frame())
        runs = []
        for i in range(args.runs):
            runs.append(one_load(pw, url, video))
            print(f"run {i + 1}: " + json.dumps({k: round(v) for k, v in sorted(runs[-1].items(), key=lambda kv: kv[1])
                                                 if not k.startswith(FIRST)}),
                  flush=True)
    keys = {k for r in runs for k in r}
    names = sorted((k for k in keys if not k.startswith(FIRST)),
                   key=lambda k: statistics.median(r[k] for r in runs if k in r))
    names += sorted(k for k in keys if k.startswith(FIRST))
    print("median ms since navigation (first frame: ms that stage took on the first camera frame):")
    for k in names:
        vals = [r[k] for r in runs if k in r]
        print(f"  {k:28s} {statistics.median(vals):7.0f}   ({', '.join(f'{v:.0f}' for v in vals)})")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
