"""Shared fixtures: the exported models, real photos, and their hand-annotated face boxes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.datasets import real_photo

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
from bench.own_models import SEED_DIR  # noqa: E402  (one home: the tests and the benches use it)


# Face boxes (x0, y0, x1, y1) annotated once by hand on the original photos: brow-to-chin, ear to ear.
FACE_BOXES = {
    "astronaut": (182, 68, 272, 180),        # scikit-image's astronaut, 512x512
    "grace_hopper": (170, 140, 360, 335),    # matplotlib's grace_hopper.jpg, 512x600
}


photo = real_photo


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """web/models as exported by `make models`; exported afresh into a temporary folder if absent."""
    default = ROOT / "web" / "models"
    if (default / "manifest.json").is_file():
        return default
    out = tmp_path_factory.mktemp("models")
    subprocess.run([sys.executable, str(ROOT / "export_models.py"), "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out


@pytest.fixture(scope="session")
def photo_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in FACE_BOXES:
        paths[name] = folder / f"{name}.png"
        photo(name).save(paths[name])
    return paths


def run_cli(*args, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "facelandmarks", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"CLI failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def detect_json(tmp_path: Path, images, *extra) -> list[dict]:
    out = tmp_path / "faces.json"
    run_cli("detect", *images, "--json", out, *extra)
    return json.loads(out.read_text())


def paste(background: Image.Image, face_photo: str, face_width: float, at: tuple[float, float],
          mirror: bool = False) -> tuple[float, float, float, float]:
    """Paste the region around ``face_photo``'s face so its annotated box is ``face_width`` px wide
    with its top-left corner at ``at``; returns where the annotated box now lies."""
    x0, y0, x1, y1 = FACE_BOXES[face_photo]
    w, h = x1 - x0, y1 - y0
    margin = 0.4
    region = photo(face_photo).crop((int(x0 - margin * w), int(y0 - margin * h),
                                     int(x1 + margin * w), int(y1 + margin * h)))
    if mirror:
        region = region.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    s = face_width / w
    region = region.resize((round(region.width * s), round(region.height * s)), Image.Resampling.LANCZOS)
    px, py = round(at[0] - margin * w * s), round(at[1] - margin * h * s)
    background.paste(region, (px, py))
    return (at[0], at[1], at[0] + w * s, at[1] + h * s)


def collage(small_face: bool = False) -> tuple[Image.Image, list[tuple[float, float, float, float]]]:
    """Six real faces of different sizes (some mirrored) on a real background, 1600x1000; with
    ``small_face`` a seventh, 45 px wide, that only tiling finds. Returns the picture and the boxes."""
    canvas = photo("rocket").resize((1600, 1000))
    placed = [paste(canvas, "astronaut", 150, (80, 120)),
              paste(canvas, "grace_hopper", 200, (420, 90), mirror=True),
              paste(canvas, "astronaut", 110, (800, 140), mirror=True),
              paste(canvas, "grace_hopper", 130, (1150, 160)),
              paste(canvas, "astronaut", 180, (250, 600)),
              paste(canvas, "grace_hopper", 160, (1000, 620), mirror=True)]
    if small_face:
        placed.append(paste(canvas, "astronaut", 45, (1400, 800)))
    return canvas, placed


def inter_ocular(landmarks) -> float:
    pts = np.asarray(landmarks)
    return float(np.linalg.norm(pts[60] - pts[72]))
