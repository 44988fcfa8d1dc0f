"""Bad input, layer by layer (CLI, export, checkpoint loading, server): every case gets a clear message
and loses nothing — the files around it hash the same before and after."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image

from facelandmarks.checkpoints import CheckpointError
from facelandmarks.export.site import OutDirError, write_models_dir
from facelandmarks.files import umask
from facelandmarks.models.retinaface import RetinaFace, load_checkpoint
from facelandmarks.pipeline.geometry import iou

from conftest import FACE_BOXES, ROOT, photo, run_cli


def hashes(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (relative path → sha256), hidden ones included."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def mirrored_box(box, width):
    x0, y0, x1, y1 = box
    return (width - x1, y0, width - x0, y1)


# -- the CLI: images --------------------------------------------------------------------------------

def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _grey16(name: str) -> Image.Image:
    return Image.fromarray(np.asarray(photo(name).convert("L")).astype(np.uint16) * 257)


def _with_alpha(name: str, mode: str) -> Image.Image:
    """The photo with a fully transparent 40-px border (what a cut-out portrait looks like)."""
    im = photo(name).convert(mode)
    alpha = Image.new("L", im.size, 0)
    alpha.paste(255, (40, 40, im.width - 40, im.height - 40))
    im.putalpha(alpha)
    return im


# name → (how the file is made, what the entry must say). Boxes are in the picture as a person sees it.
IMAGE_CASES = {
    # a phone photo stored sideways, EXIF tag 6 ("rotate 90° clockwise to view"): 600×512 on disk
    "grace_tag6.jpg": (lambda p: photo("grace_hopper").transpose(Image.Transpose.ROTATE_90)
                       .save(p, exif=_exif(6), quality=95),
                       {"size": (512, 600), "box": FACE_BOXES["grace_hopper"]}),
    # stored mirrored, tag 2: the box must be where the person sees the face, not 60 px off
    "astronaut_tag2.jpg": (lambda p: photo("astronaut").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                           .save(p, exif=_exif(2), quality=95),
                           {"size": (512, 512), "box": FACE_BOXES["astronaut"]}),
    "grace_tag3.png": (lambda p: photo("grace_hopper").transpose(Image.Transpose.ROTATE_180)
                       .save(p, exif=_exif(3)),
                       {"size": (512, 600), "box": FACE_BOXES["grace_hopper"]}),
    # 16-bit greyscale (mode I;16): Pillow's convert would clip it to white
    "grace_16bit.png": (lambda p: _grey16("grace_hopper").save(p),
                        {"size": (512, 600), "box": FACE_BOXES["grace_hopper"]}),
    "astronaut_32bit.tif": (lambda p: Image.fromarray(np.asarray(_grey16("astronaut"), np.int32)).save(p),
                            {"size": (512, 512), "box": FACE_BOXES["astronaut"]}),
    "astronaut_float.tif": (lambda p: Image.fromarray(
                                np.asarray(photo("astronaut").convert("L"), np.float32) / 255).save(p),
                            {"size": (512, 512), "box": FACE_BOXES["astronaut"]}),
    "grace_palette.png": (lambda p: photo("grace_hopper").convert("P", palette=Image.Palette.ADAPTIVE).save(p),
                          {"size": (512, 600), "box": FACE_BOXES["grace_hopper"]}),
    "astronaut_cmyk.jpg": (lambda p: photo("astronaut").convert("CMYK").save(p, quality=95),
                           {"size": (512, 512), "box": FACE_BOXES["astronaut"]}),
    "grace_la.png": (lambda p: _with_alpha("grace_hopper", "L").save(p),
                     {"size": (512, 600), "box": FACE_BOXES["grace_hopper"]}),
    "astronaut_rgba.png": (lambda p: _with_alpha("astronaut", "RGB").save(p),
                           {"size": (512, 512), "box": FACE_BOXES["astronaut"]}),
    "astronaut_bilevel.png": (lambda p: photo("astronaut").convert("1").save(p),
                              {"size": (512, 512), "box": FACE_BOXES["astronaut"]}),
    # the same stem three times, and a photo already inside the --png folder
    "a/grace.jpg": (lambda p: photo("grace_hopper").save(p), {"box": FACE_BOXES["grace_hopper"]}),
    "b/grace.jpg": (lambda p: photo("grace_hopper").save(p), {"box": FACE_BOXES["grace_hopper"]}),
    "grace.webp": (lambda p: photo("grace_hopper").save(p, quality=90), {"box": FACE_BOXES["grace_hopper"]}),
    "annotated/astronaut.png": (lambda p: photo("astronaut").save(p), {"box": FACE_BOXES["astronaut"]}),
    # a picture of the user's in the --png folder that is not an input: kept too
    "annotated/grace.png": (lambda p: photo("grace_hopper").save(p), None),
    # failures: an entry with the error, the batch goes on
    "notes.jpg": (lambda p: p.write_text("shopping list\n"), {"error": "not a readable image"}),
    "half.jpg": (lambda p: p.write_bytes(_jpeg_bytes()[:6000]), {"error": "truncated"}),
    "empty.png": (lambda p: p.write_bytes(b""), {"error": "not a readable image"}),
    # 300 MP (Pillow's DecompressionBombError before): refused from the header, before decoding
    "huge.png": (lambda p: Image.new("L", (20000, 15000)).save(p),
                 {"error": "20000×15000 is 300 megapixels, more than the limit of 100"}),
}


def _jpeg_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    photo("astronaut").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture(scope="module")
def image_batch(tmp_path_factory, models_dir):
    """One CLI run over a folder holding every case (plus the --png folder's own photo)."""
    tmp = tmp_path_factory.mktemp("batch")
    photos = tmp / "photos"
    for name, (make, _) in IMAGE_CASES.items():
        path = (tmp if name.startswith("annotated/") else photos) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        make(path)
    before = hashes(tmp)
    inputs = [photos, tmp / "annotated" / "astronaut.png"]  # annotated/grace.png is not an input
    proc = run_cli("detect", *inputs, "--json", tmp / "out.json", "--jsonl", tmp / "out.jsonl",
                   "--png", tmp / "annotated", "--models", models_dir, check=False)
    entries = {Path(e["image"]).relative_to(tmp).as_posix(): e
               for e in json.loads((tmp / "out.json").read_text())}
    return tmp, before, proc, entries


@pytest.mark.parametrize("name", sorted(n for n, (_, expected) in IMAGE_CASES.items() if expected))
def test_cli_every_image_gets_an_entry_and_no_input_is_touched(name, image_batch):
    tmp, before, proc, entries = image_batch
    expected = IMAGE_CASES[name][1]
    key = name if name.startswith("annotated/") else f"photos/{name}"
    entry = entries[key]
    assert proc.returncode == 1, proc.stderr  # some images failed
    if "error" in expected:
        assert expected["error"] in entry["error"] and entry["image"] in entry["error"], entry
        assert expected["error"] in proc.stderr
        assert "Traceback" not in proc.stderr
    else:
        assert "error" not in entry, entry
        if "size" in expected:
            assert (entry["width"], entry["height"]) == expected["size"]
        [face] = entry["faces"]
        assert iou(face["box"], expected["box"]) >= 0.5, (face["box"], expected["box"])
        png = Path(entry["png"])
        assert png.parent == tmp / "annotated" and png.is_file()
    # nothing lost: every input hashes as before, each annotated picture has a name of its own
    after = hashes(tmp)
    assert {k: after.get(k) for k in before} == before
    pngs = [e["png"] for e in entries.values() if "png" in e]
    assert len(set(pngs)) == len(pngs) == sum(c[1] is not None and "error" not in c[1]
                                              for c in IMAGE_CASES.values())
    # the stream and the list hold the same entries, in the same order
    lines = [json.loads(line) for line in (tmp / "out.jsonl").read_text().splitlines()]
    assert lines == json.loads((tmp / "out.json").read_text())


def test_cli_outputs_follow_the_umask(image_batch):
    tmp, *_ = image_batch
    for path in [tmp / "out.json", tmp / "out.jsonl", *(tmp / "annotated").glob("*-2.png")]:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask(), path
    assert not [p for p in tmp.rglob(".*")], "temporary files left"


def test_cli_rerun_replaces_its_own_pictures_only(tmp_path, models_dir):
    image = tmp_path / "grace.jpg"
    photo("grace_hopper").save(image)
    for _ in range(2):
        [entry] = json.loads((run_cli("detect", image, "--json", tmp_path / "o.json", "--png",
                                      tmp_path / "annotated", "--models", models_dir) and
                              (tmp_path / "o.json")).read_text())
        assert entry["png"] == str(tmp_path / "annotated" / "grace.png")
    assert [p.name for p in (tmp_path / "annotated").iterdir()] == ["grace.png"]


# -- the CLI: arguments and output paths, refused before any work -------------------------------------

def _photo_file(tmp: Path) -> Path:
    path = tmp / "grace.jpg"
    photo("grace_hopper").save(path)
    return path


ARGUMENT_CASES = [
    # (id, extra arguments with {photo} and {tmp}, expected message)
    ("json-is-the-input", ["--json", "{photo}"], "is one of the input images: it would be overwritten"),
    ("jsonl-is-the-input", ["--jsonl", "{photo}"], "is one of the input images"),
    ("json-is-a-folder", ["--json", "{tmp}"], "is a folder: give a file name"),
    ("json-under-a-file", ["--json", "{photo}/out.json"], "is a file, not a folder"),
    ("json-unwritable", ["--json", "/proc/out.json"], "cannot write into /proc"),
    ("png-is-a-file", ["--json", "{tmp}/o.json", "--png", "{photo}"], "is a file: give a folder"),
    ("json-and-jsonl-same", ["--json", "{tmp}/o.json", "--jsonl", "{tmp}/o.json"], "name the same file"),
    ("no-output", [], "give --json OUT.json and/or --jsonl"),
    ("passes-0", ["--json", "{tmp}/o.json", "--passes", "0"], "--passes: must be from 1 to 10, not 0"),
    ("passes-word", ["--json", "{tmp}/o.json", "--passes", "two"], "must be a whole number from 1 to 10"),
    ("min-face-negative", ["--json", "{tmp}/o.json", "--min-face", "-5"],
     "--min-face: must be 0 (no tiles) or a face size of at least 16 pixels, not '-5'"),
    ("min-face-nan", ["--json", "{tmp}/o.json", "--min-face", "nan"], "not 'nan'"),
    ("min-face-tiny", ["--json", "{tmp}/o.json", "--min-face", "2"], "at least 16 pixels"),
    ("megapixels-inf", ["--json", "{tmp}/o.json", "--max-megapixels", "inf"],
     "must be a positive number of megapixels"),
]


@pytest.mark.parametrize("extra,message", [c[1:] for c in ARGUMENT_CASES], ids=[c[0] for c in ARGUMENT_CASES])
def test_cli_bad_arguments_are_refused_before_any_work(extra, message, tmp_path):
    image = _photo_file(tmp_path)
    before = hashes(tmp_path)
    args = [a.format(photo=image, tmp=tmp_path) for a in extra]
    proc = run_cli("detect", image, *args, check=False)
    # one line says it (argparse puts its usage above it)
    assert proc.returncode == 2 and message in proc.stderr.strip().splitlines()[-1], proc.stderr
    assert "Traceback" not in proc.stderr
    assert hashes(tmp_path) == before  # nothing written, nothing changed


def test_cli_empty_folder(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "readme.txt").write_text("no pictures here\n")
    proc = run_cli("detect", tmp_path / "photos", "--json", tmp_path / "o.json", check=False)
    assert proc.returncode == 2 and "no images in" in proc.stderr
    assert not (tmp_path / "o.json").exists()


def test_cli_ctrl_c_keeps_what_is_done(tmp_path, models_dir):
    """SIGINT in the middle of a batch: one line, exit 130, every finished result in both files."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(40):
        photo("astronaut").save(photos / f"p{i:02d}.jpg")
    before = hashes(photos)
    out, stream = tmp_path / "out.json", tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "facelandmarks", "detect", str(photos), "--json", str(out),
         "--jsonl", str(stream), "--models", str(models_dir)], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a shell's `&` ignores it
    deadline = time.monotonic() + 300
    while (not stream.exists() or len(stream.read_text().splitlines()) < 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().startswith("interrupted:") and len(err.strip().splitlines()) == 1, err
    done = json.loads(out.read_text())
    assert 3 <= len(done) < 40 and all(len(e["faces"]) == 1 for e in done)
    assert [json.loads(line) for line in stream.read_text().splitlines()] == done
    assert hashes(photos) == before and not list(tmp_path.glob(".*"))


# -- the export -------------------------------------------------------------------------------------

def tiny_graph() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    return helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]))


def previous_export(folder: Path) -> Path:
    return write_models_dir(folder, {"Old.onnx": tiny_graph()}, {"schema": 1, "name": "old"})


def _foreign(files: dict[str, str]):
    def make(out: Path):
        out.mkdir()
        for name, text in files.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_text(text)
    return make


def _export_plus(extra: str):
    def make(out: Path):
        previous_export(out)
        (out / extra).write_text("my notes\n")
    return make


# (id, how --out is made, the --out given, expected message; None = the export is allowed)
EXPORT_CASES = [
    ("user-folder", _foreign({"notes.txt": "x\n", "thesis.txt": "y\n"}), "out",
     "already holds files that are not an export of ours (notes.txt, thesis.txt)"),
    ("user-photos", _foreign({"sub/photo.jpg": "jpeg\n"}), "out", "not an export of ours (sub)"),
    ("other-manifest", _foreign({"manifest.json": '{"name": "someone else\'s"}\n'}), "out",
     "not an export of ours (manifest.json)"),
    ("our-export-plus-notes", _export_plus("notes.txt"), "out", "not an export of ours (notes.txt)"),
    ("a-file", lambda out: out.write_text("a file\n"), "out", "is a file, not a folder"),
    ("working-folder", _foreign({"notes.txt": "x\n"}), ".", "is the current folder"),
    ("a-parent", _foreign({}), "..", "is the current folder, one of its parents"),
    ("our-export", previous_export, "out", None),
    ("empty-folder", _foreign({}), "out", None),
    ("new-folder", lambda out: None, "out/deeper", None),
]


@pytest.mark.parametrize("make,given,message", [c[1:] for c in EXPORT_CASES], ids=[c[0] for c in EXPORT_CASES])
def test_export_never_deletes_what_it_did_not_write(make, given, message, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("the user's own file\n")
    out = work / "out"
    make(out)
    monkeypatch.chdir(out if given in (".", "..") else work)
    before = hashes(tmp_path)
    if message is None:
        written = write_models_dir(Path(given), {"New.onnx": tiny_graph()}, {"schema": 1, "name": "new"})
        assert sorted(p.name for p in written.iterdir()) == ["New.onnx", "manifest.json"]
        mask = umask()
        assert written.stat().st_mode & 0o777 == 0o777 & ~mask
        assert all(p.stat().st_mode & 0o777 == 0o666 & ~mask for p in written.iterdir())
        assert hashes(work)["keep.txt"] == before["work/keep.txt"]
    else:
        with pytest.raises(OutDirError) as err:
            write_models_dir(Path(given), {"New.onnx": tiny_graph()}, {"schema": 1, "name": "new"})
        assert message in str(err.value), str(err.value)
        assert hashes(tmp_path) == before
        # the command line says the same before any work, and the same nothing is lost
        proc = subprocess.run([sys.executable, str(ROOT / "export_models.py"), "--out", given],
                              capture_output=True, text=True, timeout=120, cwd=Path.cwd(),
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert hashes(tmp_path) == before
    leftovers = [p.name for p in [*tmp_path.rglob(".*")]]
    assert leftovers == [], leftovers


def test_export_replace_is_explicit(tmp_path):
    out = tmp_path / "out"
    _foreign({"notes.txt": "x\n"})(out)
    with pytest.raises(OutDirError):
        write_models_dir(out, {"New.onnx": tiny_graph()}, {"schema": 1})
    write_models_dir(out, {"New.onnx": tiny_graph()}, {"schema": 1}, replace=True)
    assert sorted(p.name for p in out.iterdir()) == ["New.onnx", "manifest.json"]
    with pytest.raises(OutDirError, match="current folder"):
        write_models_dir(Path.cwd(), {"New.onnx": tiny_graph()}, {"schema": 1}, replace=True)


class _InterruptedGraphs(dict):
    """Graphs whose second one is never reached: Ctrl-C arrives while the first is being written."""

    def items(self):
        for i, item in enumerate(super().items()):
            if i == 1:
                raise KeyboardInterrupt
            yield item


@pytest.mark.parametrize("failure", ["ctrl-c", "bad-graph"])
def test_export_failure_leaves_the_previous_folder_and_no_leftovers(failure, tmp_path):
    out = previous_export(tmp_path / "out")
    before = hashes(tmp_path)
    graphs = (_InterruptedGraphs({"A.onnx": tiny_graph(), "B.onnx": tiny_graph()}) if failure == "ctrl-c"
              else {"A.onnx": tiny_graph(), "B.onnx": "not a graph"})
    with pytest.raises((KeyboardInterrupt, Exception)):
        write_models_dir(out, graphs, {"schema": 1})
    assert hashes(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _graphs_built(temp_before: set, count: int = 2, timeout: float = 120.0) -> None:
    """Wait until the export's work folder holds ``count`` graphs: the export is then building, past
    its lazy imports (onnxruntime is imported for the first graph's parity check; a Ctrl-C inside a
    C extension's import comes out as pybind11's ImportError, not KeyboardInterrupt)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for d in set(Path(tempfile.gettempdir()).glob("facelandmarks-export-*")) - temp_before:
            if len(list(d.iterdir())) >= count:
                return
        time.sleep(0.05)
    raise AssertionError(f"the export never wrote {count} graphs")


# Ctrl-C while importing torch (2 s in), and while building the graphs (once two are written: a
# fixed delay could land after the export finished on a fast run)
@pytest.mark.parametrize("when", ["importing", "building"])
def test_export_ctrl_c_is_one_line_and_keeps_the_previous_export(when, tmp_path):
    out = previous_export(tmp_path / "out")
    before = hashes(tmp_path)
    temp_before = set(Path(tempfile.gettempdir()).glob("facelandmarks-export-*"))
    proc = subprocess.Popen([sys.executable, str(ROOT / "export_models.py"), "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    if when == "importing":
        time.sleep(2.0)
    else:
        _graphs_built(temp_before)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    # our one line last (LiteRT may have logged "INFO: Created TensorFlow Lite XNNPACK delegate" above)
    assert err.strip().splitlines()[-1].startswith("interrupted") and "Traceback" not in err, err
    assert hashes(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert set(Path(tempfile.gettempdir()).glob("facelandmarks-export-*")) <= temp_before


# -- checkpoint loading ----------------------------------------------------------------------------

def _save(obj, **kw):
    return lambda p: torch.save(obj, p, **kw)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


_STATE = RetinaFace(5).state_dict()
CHECKPOINT_CASES = [
    # (id, how the file is made, expected message; None = loads)
    ("plain", _save(_STATE), None),
    ("state_dict-wrapper", _save({"state_dict": _STATE, "epoch": 3}), None),
    ("model-wrapper", _save({"model": _STATE}), None),
    ("net-wrapper", _save({"net": _STATE, "optimizer": {"lr": 0.1}}), None),
    ("dataparallel-prefix", _save({"state_dict": {f"module.{k}": v for k, v in _STATE.items()}}), None),
    ("legacy-format", _save(_STATE, _use_new_zipfile_serialization=False), None),
    ("whole-module", _save(RetinaFace(5)), "is a whole pickled model (nn.Module), not a state dict"),
    ("whole-module-legacy", _save(RetinaFace(5), _use_new_zipfile_serialization=False),
     "is a whole pickled model (nn.Module)"),
    ("random-bytes", lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)),
     "is not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle)"),
    ("text-file", lambda p: p.write_text("epoch 10 loss 0.3\n"), "is not a PyTorch checkpoint"),
    ("empty-file", lambda p: p.write_bytes(b""), "is empty"),
    ("truncated", lambda p: (torch.save(_STATE, p), p.write_bytes(p.read_bytes()[:100_000])),
     "is truncated or damaged"),
    ("code-in-pickle", lambda p: torch.save({"x": _RunsCode(p.with_name("RAN"))}, p),
     "holds Python objects other than tensors (posix.system)"),
    ("a-list", _save([torch.zeros(1)]), "holds a list, not a state dict"),
    ("no-tensors", _save({"epoch": 3, "optimizer": {"lr": 0.1}}),
     "epoch, optimizer are not tensors, and none of state_dict, model_state_dict, model, net"),
    ("wrong-model", _save({"state_dict": RetinaFace(98).state_dict()}),
     "has 98 landmarks, the model is built for 5 (export with --landmarks 98)"),
    ("missing", lambda p: None, "no such checkpoint file"),
]


@pytest.mark.parametrize("make,message", [c[1:] for c in CHECKPOINT_CASES], ids=[c[0] for c in CHECKPOINT_CASES])
def test_checkpoint_messages_in_our_words(make, message, tmp_path):
    path = tmp_path / "ckpt.pth"
    make(path)
    before = hashes(tmp_path)
    model = RetinaFace(5)
    if message is None:
        load_checkpoint(model, path)
        assert all(torch.equal(model.state_dict()[k], v) for k, v in _STATE.items())
    else:
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(model, path)
        text = str(err.value)
        assert message in text and str(path) in text, text
        for pytorch_words in ("weights_only", "pop from empty list", "Unpickler", "WeightsUnpickler"):
            assert pytorch_words not in text
        assert "\n" not in text
    assert hashes(tmp_path) == before and not (tmp_path / "RAN").exists()


# -- the server ------------------------------------------------------------------------------------

from scripts import serve  # noqa: E402

SECURITY = {h["key"]: h["value"] for r in json.loads((ROOT / "vercel.json").read_text())["headers"]
            if r["source"] == "/(.*)" for h in r["headers"] if h["key"] != "Cache-Control"}
LONG = "a" * 300
SERVER_CASES = [
    # (id, raw request, status)
    ("page", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200),
    ("not-found", b"GET /nope.txt HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    ("long-name", f"GET /{LONG}.js HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 404),
    ("long-vendor-name", f"GET /vendor/{LONG} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 404),
    ("long-models-name", f"GET /models/{LONG}/x HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 404),
    ("nul-byte", b"GET /index.html%00.png HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    ("escape", b"GET /../pyproject.toml HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    ("uri-too-long", b"GET /" + b"a/" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("header-too-long", b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
    ("too-many-headers", b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n", 431),
    ("bad-syntax", b"GARBAGE\r\n\r\n", 400),
    ("bad-version", b"GET / HTTP/1.x\r\n\r\n", 400),
    ("post", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 501),
]


def _exchange(port: int, raw: bytes) -> tuple[int, list[tuple[str, str]]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    return status, [tuple(h.split(": ", 1)) for h in head[1:]]


@pytest.fixture(scope="module")
def server():
    srv, url = serve.serve_in_thread(port=0, quiet=True)
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("raw,status", [c[1:] for c in SERVER_CASES], ids=[c[0] for c in SERVER_CASES])
def test_server_answers_every_request_with_the_headers(raw, status, server):
    before = hashes(ROOT / "web" / "facelandmarks") if (ROOT / "web" / "facelandmarks").is_dir() else {}
    got, headers = _exchange(server, raw)
    assert got == status
    names = [k.lower() for k, _ in headers]
    for key, value in SECURITY.items():
        assert (key, value) in headers, key
    assert names.count("cache-control") == 1, headers
    assert len(names) == len(set(names)), headers  # no header twice
    if status == 404:  # not vercel.json's caching for files (a /vendor/ 404 must not be immutable)
        assert dict(headers)["Cache-Control"] == "no-store"
    if (ROOT / "web" / "facelandmarks").is_dir():
        assert hashes(ROOT / "web" / "facelandmarks") == before


def test_server_busy_port_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "serve.py"), "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"error: port {port} on 127.0.0.1 is already in use (another server?): "
                                   "stop it or pick another port with --port N (make serve PORT=N)")
