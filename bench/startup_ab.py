#!/usr/bin/env python3
"""Interleaved A/B of the page's start-up (not a test): cold loads of two variants of some of web/'s
files, alternating A B, B A, ... so that the machine's drift hits both alike, printing the medians of
window.faceBoot.marks and the first landmarks (ms since navigation) per variant.

    python -m bench.startup_ab --runs 6 --a /tmp/ab/A --b /tmp/ab/B --chromium-arg=--disable-gpu-compositing

Each variant folder holds files at their paths under web/ (e.g. ``index.html``, ``pyscript.toml``);
they are copied over web/ before each of that variant's loads. web/'s own files are put back at the
end, also on failure. Loads are those of ``bench/startup_bench.py`` (fresh profile, fake camera fed by
the astronaut, all stages on wasm). On this 2-core machine single loads vary by ±0.5 s: a difference
under ~0.15 s needs more than 6 pairs.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import browser as helpers
from bench import startup_bench

WEB = Path(__file__).resolve().parent.parent / "web"
KEYS = ["boot", "pyscript", "pyodide:ready", "ort:backend", "py:Loading Pyodide", "py:Loaded Storage",
        "py:Loaded files", "py:ready", "main_start", "main_imported", "sessions_ready", "first_frame",
        "first_landmarks"]


def variant_files(folder: Path) -> list[Path]:
    files = [f.relative_to(folder) for f in sorted(folder.rglob("*")) if f.is_file()]
    missing = [str(f) for f in files if not (WEB / f).is_file()]
    if missing:
        raise SystemExit(f"{folder}: {', '.join(missing)} not in web/ (a variant replaces web/'s files)")
    return files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", type=Path, required=True, help="folder of variant A's files (paths under web/)")
    ap.add_argument("--b", type=Path, required=True, help="folder of variant B's files")
    ap.add_argument("--runs", type=int, default=6, help="loads of each variant")
    ap.add_argument("--chromium-arg", action="append", default=[], help="extra Chromium switch")
    args = ap.parse_args(argv)
    if helpers.cannot_run():
        return 2
    from playwright.sync_api import sync_playwright
    folders = {"A": args.a, "B": args.b}
    files = {v: variant_files(f) for v, f in folders.items()}
    originals = {p: (WEB / p).read_bytes() for p in set(files["A"]) | set(files["B"])}
    marks: dict[str, list[dict]] = {"A": [], "B": []}
    try:
        with tempfile.TemporaryDirectory() as tmp, helpers.serve() as url, sync_playwright() as pw:
            video = helpers.write_y4m(Path(tmp) / "astronaut.y4m", helpers.astronaut_frame())
            for i in range(args.runs):
                for v in ("AB" if i % 2 == 0 else "BA"):
                    for p, data in originals.items():        # a file only one variant changes
                        (WEB / p).write_bytes(data)
                    for p in files[v]:
                        shutil.copyfile(folders[v] / p, WEB / p)
                    time.sleep(0.5)
                    marks[v].append(startup_bench.one_load(pw, url, video, args.chromium_arg))
    finally:
        for p, data in originals.items():
            (WEB / p).write_bytes(data)
    for v in "AB":
        print(f"{v}: {folders[v]}  ({len(marks[v])} cold loads; median, then each load)")
        for k in KEYS:
            vals = [m[k] for m in marks[v] if k in m]
            if vals:
                print(f"  {k:22s} {statistics.median(vals):6.0f}   " + " ".join(f"{x:.0f}" for x in vals))
    pairs = [b["first_landmarks"] - a["first_landmarks"] for a, b in zip(marks["A"], marks["B"])]
    print(f"first landmarks, B − A per pair: " + " ".join(f"{d:+.0f}" for d in pairs) +
          f"  (median {statistics.median(pairs):+.0f} ms, B sooner in {sum(d < 0 for d in pairs)} of {len(pairs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
