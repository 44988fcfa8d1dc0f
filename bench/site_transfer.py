#!/usr/bin/env python3
"""What a page load costs on the wire (not a test): bytes transferred until the first landmarks,
served with precompressed brotli (scripts/serve.py, like Vercel) and by a plain static host that
sends files as they are (``--no-compress``), in headless Chromium on the fake camera.

    python -m bench.site_transfer [--models DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench import browser as helpers  # noqa: E402
from bench import page_bench  # noqa: E402

BYTES = """(tFirst) => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
  .filter(e => e.responseEnd <= tFirst).reduce((a, e) => a + e.transferSize, 0) / 1e6"""


def transferred(pw, video: Path, models: Path | None, compress: bool) -> float:
    from scripts.serve import serve_in_thread

    server, url = serve_in_thread(port=0, quiet=True, models=models, compress=compress)
    try:
        with helpers.launch(pw, helpers.browser_args(video, extra=page_bench.NO_SOFTWARE_COMPOSITING)) as ctx:
            page = ctx.new_page()
            page.goto(url)
            first = page_bench.wait(page, "() => window.faceLandmarks && (window.faceLandmarks.firstLandmarksMs"
                                          " || window.faceLandmarks.error)", 300)
            if isinstance(first, str):
                raise RuntimeError(f"the page reports {first}")
            return page.evaluate(BYTES, first)
    finally:
        server.shutdown()
        server.server_close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=Path, help="serve this export as models/ (default web/models)")
    args = ap.parse_args(argv)
    if helpers.cannot_run():
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        video = helpers.write_y4m(Path(tmp) / "astronaut.y4m", helpers.astronaut_frame())
        for label, compress in (("brotli (precompressed, as on Vercel)", True),
                                ("plain static host, no compression", False)):
            print(f"{label:<40} {transferred(pw, video, args.models, compress):7.2f} MB before the first landmarks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
