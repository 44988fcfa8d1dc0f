"""Every graph an export sends to onnxruntime-web's webgl provider, run on the real provider in
headless Chromium (WebGL on SwiftShader here) and compared with onnxruntime on the same real input.

The static check (facelandmarks.verify.webgl_problems) only approximates the provider: the
full-range detector once passed it and still found no face on webgl (a Conv ran another Conv's
shader, ReLU included). Only a run on the provider tells, so each webgl-bound graph of each export
in the site runs here: the default export in web/models/ and every export listed in
web/models/index.json.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import browser as helpers
from test_page import on_software_webgl, pw  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser]
_missing = helpers.missing_prerequisites()
if _missing:
    pytestmark.append(pytest.mark.skip(reason=f"browser tests need the built site: {_missing}"))

# float32 on a GPU (SwiftShader measured 7e-5 on outputs up to 91): a hundredth of a percent of the
# output's range, and never below 1e-4 (probabilities near 0)
RELATIVE_TOLERANCE = 1e-4
ABSOLUTE_FLOOR = 1e-4


def exports() -> list[Path]:
    """The model folders the site serves: web/models itself and the entries of its index.json."""
    models = helpers.WEB / "models"
    folders = [models] if (models / "manifest.json").is_file() else []
    index = models / "index.json"
    if index.is_file():
        for entry in json.loads(index.read_text()).get("models", []):
            folder = (models / entry.get("path", "")).resolve()
            if folder not in folders and (folder / "manifest.json").is_file():
                folders.append(folder)
    return folders


def webgl_graphs(folder: Path) -> list[tuple[dict, dict, bool]]:
    """(graph block, input block, takes a face crop) of every webgl-bound graph in the folder's
    manifest: each detector (the whole picture) and the landmark graph (a face crop)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    blocks = [(d["graph"], d["input"], False) for d in manifest.get("detectors", {}).values()]
    if manifest.get("landmarks"):
        blocks.append((manifest["landmarks"]["graph"], manifest["landmarks"]["input"], True))
    return [b for b in blocks if b[0].get("provider") == "webgl"]


def real_input(spec: dict, face_crop: bool) -> np.ndarray:
    """scikit-image's astronaut (the whole picture for a detector, the face for a landmark graph)
    at the graph's input size, normalised as the manifest says, NCHW float32."""
    from PIL import Image
    from skimage import data
    im = Image.fromarray(data.astronaut())
    if face_crop:
        im = im.crop((130, 40, 330, 240))
    x = np.asarray(im.resize((spec["width"], spec["height"]), Image.Resampling.BILINEAR), np.float32) / 255
    if spec.get("channels") == "BGR":
        x = x[..., ::-1]
    x = (x - np.asarray(spec["mean"], np.float32)) / np.asarray(spec["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32)


CASES = [(folder, *block) for folder in exports() for block in webgl_graphs(folder)]


@pytest.mark.parametrize("folder,graph,spec,face_crop", CASES,
                         ids=[f"{f.name}/{g['file']}" for f, g, _, _ in CASES])
def test_webgl_graph_equals_onnxruntime(pw, folder, graph, spec, face_crop):  # noqa: F811
    import onnxruntime as ort
    file = graph["file"]
    feeds = {graph["inputs"]["image"]: real_input(spec, face_crop)}
    session = ort.InferenceSession(str(folder / file), providers=["CPUExecutionProvider"])
    want = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))

    def check():
        with helpers.serve(folder) as url, helpers.launch(pw, helpers.browser_args()) as ctx:
            page = ctx.new_page()
            page.goto(url + "vendor/VENDORED.json")       # any page of the site's origin
            got = helpers.run_graph_in_browser(page, file, feeds, "webgl")
        assert set(got) == set(want)
        for name, ref in want.items():
            diff = float(np.max(np.abs(got[name] - ref)))
            limit = max(ABSOLUTE_FLOOR, RELATIVE_TOLERANCE * float(np.max(np.abs(ref))))
            assert diff <= limit, (f"{file} output {name} on webgl differs from onnxruntime by {diff:.3g} "
                                   f"(limit {limit:.3g}, outputs up to {np.max(np.abs(ref)):.3g})")
    on_software_webgl(check)
