"""The page's photo mode on pictures people drop in: a group of faces, a small face in a large photo.
Same options as the CLI (PipelineOptions.for_stills): full-range detector, tiles, two passes."""
from __future__ import annotations

import pytest

import helpers
from test_page import camera_browser, camera_file, frame, new_page, pw, site, wait_for  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser]
_missing = helpers.missing_prerequisites()
if _missing:
    pytestmark.append(pytest.mark.skip(reason=f"browser tests need the built site: {_missing}"))


def test_photo_mode_finds_every_face_once(camera_browser, site, tmp_path):
    from conftest import collage
    from facelandmarks.pipeline.geometry import iou
    image, placed = collage(small_face=True)
    path = tmp_path / "group.png"
    image.save(path)
    page = new_page(camera_browser, site, "?camera=0&detector=wasm&landmarks=wasm")
    try:
        wait_for(page, "() => window.faceLandmarks.ready", 60, "sessions")
        page.set_input_files("#photo", str(path))
        detail = wait_for(page, "() => (window.__faces || []).find(d => d.source === 'still')", 120,
                          "the photo's result")
        boxes = [f["box"] for f in detail["faces"]]
        assert len(boxes) == len(placed), boxes
        for expected in placed:
            assert len([b for b in boxes if iou(b, expected) >= 0.4]) == 1, (expected, boxes)
        assert all(len(f["landmarks"]) == 98 for f in detail["faces"])
    finally:
        page.close()
