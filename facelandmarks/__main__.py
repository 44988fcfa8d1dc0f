"""Command line: ``python -m facelandmarks detect IMAGE|FOLDER ... --json OUT.json [--jsonl OUT.jsonl] [--png OUTDIR]``.

Runs the same graphs, manifest and pipeline code as the page, with onnxruntime on the CPU, and writes
``[{"image": path, "width": w, "height": h, "faces": [{"box": [x0,y0,x1,y1], "detector_score": s,
"presence": p, "landmarks": [[x,y] × 98]}]}]`` in the pixels of the picture as a person sees it (EXIF
orientation applied). An image that cannot be read gets ``{"image": path, "error": message}`` and the
batch goes on. Results are written as they come: ``--jsonl`` appends one line per image at once,
``--json`` is rewritten atomically as it grows (at most once a second, and at the end), so Ctrl-C or a
crash keeps what is done. Every output path is checked before any work; nothing the user gave as
input is overwritten.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from .files import write_atomic

MAX_PASSES = 10
MIN_TILED_FACE = 16.0  # below this the tile pyramid runs into the thousands of detector runs
JSON_EVERY_S = 1.0     # how often --json is rewritten during a batch


def _passes(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_PASSES}, not {text!r}")
    if not 1 <= n <= MAX_PASSES:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_PASSES}, not {n}")
    return n


def _number(accept, rule: str):
    """An argparse type: a float for which ``accept`` holds, else ``must be <rule>, not <text>``."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not (math.isfinite(v) and accept(v)):
            raise argparse.ArgumentTypeError(f"must be {rule}, not {text!r}")
        return v
    return parse


_min_face = _number(lambda v: v == 0 or v >= MIN_TILED_FACE,
                    f"0 (no tiles) or a face size of at least {MIN_TILED_FACE:g} pixels")
_megapixels = _number(lambda v: v > 0, "a positive number of megapixels")


def build_parser() -> argparse.ArgumentParser:
    from .locations import describe_search
    from .pipeline.options import PipelineOptions
    from .pipeline.options import MAX_PIXELS

    stills = PipelineOptions.for_stills()
    p = argparse.ArgumentParser(prog="python -m facelandmarks")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("detect", help="find faces and their 98 landmarks in images")
    d.add_argument("images", nargs="+", type=Path,
                   help="image files, or folders (searched recursively for files Pillow opens)")
    d.add_argument("--json", type=Path, help="write the results here (a JSON list)")
    d.add_argument("--jsonl", type=Path, help="also (or instead) stream the results here, one JSON "
                                              "object per line, each written as soon as it is done")
    d.add_argument("--png", type=Path, help="also write annotated pictures into this folder (named "
                                            "after each image; -2, -3, … when names meet or a file "
                                            "not written by this command is there)")
    d.add_argument("--models", type=Path,
                   help=f"folder with the graphs (default: the first export found in {describe_search()})")
    d.add_argument("--manifest", type=Path, help="manifest file (default: MODELS/manifest.json)")
    d.add_argument("--detector", help="detector name or use from the manifest (default: still)")
    d.add_argument("--passes", type=_passes, default=stills.passes,
                   help=f"landmark passes per face, 1 to {MAX_PASSES} (default {stills.passes})")
    d.add_argument("--min-face", type=_min_face, default=stills.min_face,
                   help=f"smallest face to look for, in pixels (default {stills.min_face:g}, at least "
                        f"{MIN_TILED_FACE:g}): photos where that is too small for the detector are "
                        "also searched tile by tile; 0 = no tiles")
    d.add_argument("--no-flip", action="store_true",
                   help="don't average each crop with its mirror image (faster, slightly less stable)")
    d.add_argument("--mesh", action="store_true", help="include the 468-point mesh in the JSON")
    d.add_argument("--max-megapixels", type=_megapixels, default=MAX_PIXELS / 1e6,
                   help=f"refuse larger images (default {MAX_PIXELS / 1e6:g}: about 300 MB of memory "
                        "per image)")
    from .evaluation import add_parser as add_evaluate
    add_evaluate(sub)
    return p


def find_images(paths: list[Path], skip: Path | None = None) -> list[Path]:
    """Files as given (even unreadable ones: they get an error entry), folders searched recursively
    for the extensions Pillow opens (not hidden ones, not the ``skip`` folder: the --png output);
    each file once, in the order given (folders sorted)."""
    from PIL import Image

    Image.init()
    extensions = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    skip_real = os.path.realpath(skip) if skip else None

    def wanted(p: Path, top: Path) -> bool:
        return (p.suffix.lower() in extensions and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(top).parts)
                and not (skip_real and os.path.realpath(p).startswith(skip_real + os.sep)))

    found, seen = [], set()
    for path in paths:
        if path.is_dir():
            batch = sorted(p for p in path.rglob("*") if wanted(p, path))
        else:
            batch = [path]
        for p in batch:
            key = os.path.realpath(p)
            if key not in seen:
                seen.add(key)
                found.append(p)
    return found


class OutputError(ValueError):
    """An output path that cannot be written, or would overwrite an input."""


def _writable_folder(folder: Path, flag: str) -> None:
    """``folder`` exists and a file can be made in it, or it can be made (its nearest existing
    parent is writable)."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{flag}: {probe} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise OutputError(f"{flag}: cannot write into {probe} ({e.strerror})") from None


def check_outputs(args, inputs: list[Path]) -> dict[Path, Path]:
    """Refuse unusable output paths before any work; returns the annotated picture's path of each
    input (for ``--png``): never an input, never the same for two inputs."""
    inputs_real = {os.path.realpath(p) for p in inputs}
    files = [(flag, path) for flag, path in (("--json", args.json), ("--jsonl", args.jsonl)) if path]
    if not files:
        raise OutputError("give --json OUT.json and/or --jsonl OUT.jsonl for the results")
    if len(files) == 2 and os.path.realpath(files[0][1]) == os.path.realpath(files[1][1]):
        raise OutputError("--json and --jsonl name the same file")
    for flag, path in files:
        if os.path.realpath(path) in inputs_real:
            raise OutputError(f"{flag} {path} is one of the input images: it would be overwritten")
        if path.is_dir():
            raise OutputError(f"{flag} {path} is a folder: give a file name")
        if path.exists() and not os.access(path, os.W_OK):
            raise OutputError(f"{flag} {path} is not writable")
        _writable_folder(path.parent, f"{flag} {path}")
    pngs: dict[Path, Path] = {}
    if args.png:
        if args.png.exists() and not args.png.is_dir():
            raise OutputError(f"--png {args.png} is a file: give a folder")
        _writable_folder(args.png, f"--png {args.png}")
        taken = set(inputs_real) | {os.path.realpath(path) for _, path in files}
        for image in inputs:
            n, name = 1, f"{image.stem}.png"
            while os.path.realpath(args.png / name) in taken or not _replaceable(args.png / name):
                n += 1
                name = f"{image.stem}-{n}.png"
            taken.add(os.path.realpath(args.png / name))
            pngs[image] = args.png / name
    return pngs


#: written into every annotated picture, so a later run knows it may replace it
PNG_SOFTWARE = "facelandmarks detect"


def _replaceable(path: Path) -> bool:
    """Nothing is there, or an annotated picture an earlier run wrote (not the user's own file)."""
    if not os.path.lexists(path):
        return True
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.format == "PNG" and im.text.get("Software") == PNG_SOFTWARE
    except Exception:  # noqa: BLE001 — whatever it is, it is not ours
        return False


def save_annotated(picture, f) -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", PNG_SOFTWARE)
    picture.save(f, format="PNG", pnginfo=info)


class ResultWriter:
    """Keeps every finished result on disk as the batch goes: a --jsonl line at once, the --json
    list rewritten atomically at most every JSON_EVERY_S seconds and at :meth:`close`."""

    def __init__(self, json_path: Path | None, jsonl_path: Path | None):
        self.json_path, self.results, self.last_write = json_path, [], 0.0
        self.jsonl = None
        if jsonl_path:
            jsonl_path.parent.mkdir(parents=True, exist_ok=True)
            self.jsonl = open(jsonl_path, "w")  # noqa: SIM115 — closed in close()
        if json_path:
            self._write_json()

    def add(self, entry: dict) -> None:
        self.results.append(entry)
        if self.jsonl:
            self.jsonl.write(json.dumps(entry) + "\n")
            self.jsonl.flush()
        if self.json_path and time.monotonic() - self.last_write >= JSON_EVERY_S:
            self._write_json()

    def _write_json(self) -> None:
        write_atomic(self.json_path, json.dumps(self.results, indent=1) + "\n")
        self.last_write = time.monotonic()

    def close(self) -> None:
        if self.jsonl and not self.jsonl.closed:
            self.jsonl.close()
        if self.json_path and self.last_write < float("inf"):
            self._write_json()
            self.last_write = float("inf")  # closed: written once more only


def detect(args) -> int:
    from tqdm import tqdm

    from .draw import draw_faces
    from .pipeline.manifest import Manifest, ManifestError
    from .pipeline.options import PipelineOptions
    from .pipeline.stages import FacePipeline
    from .runtime_onnx import ModelFileError, OnnxRuntime, PILFrame, load_manifest

    from .locations import find_models

    inputs = find_images(args.images, skip=args.png)
    if not inputs:
        print(f"error: no images in {', '.join(map(str, args.images))}", file=sys.stderr)
        return 2
    try:
        args.models = args.models or find_models()
        pngs = check_outputs(args, inputs)
        manifest = (Manifest.loads(args.manifest.read_text()) if args.manifest
                    else load_manifest(args.models))
        runtime = OnnxRuntime(args.models, manifest)
        options = PipelineOptions.for_stills(passes=args.passes, min_face=args.min_face or None,
                                             flip_average=not args.no_flip)
        if args.detector:
            options.detector = args.detector
        pipeline = FacePipeline(manifest, runtime, options)
        writer = ResultWriter(args.json, args.jsonl)
    except (OutputError, ManifestError, ModelFileError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    max_pixels = int(args.max_megapixels * 1e6)
    failed = 0
    progress = tqdm(inputs, unit="image", disable=None if len(inputs) > 1 else True, file=sys.stderr)
    try:
        for path in progress:
            try:
                frame = PILFrame.open(path, max_pixels)
                result = asyncio.run(pipeline.process(frame))
                entry = {"image": str(path), "width": frame.width, "height": frame.height,
                         "faces": [f.to_json(mesh=args.mesh) for f in result.faces]}
                if args.png:
                    picture = draw_faces(frame.image, result.faces)
                    write_atomic(pngs[path], save=lambda f: save_annotated(picture, f))
                    entry["png"] = str(pngs[path])
            except ModelFileError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            except Exception as e:  # noqa: BLE001 — one image's failure must not lose the batch
                message = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
                if str(path) not in message:
                    message = f"{path}: {message}"
                tqdm.write(f"error: {message}", file=sys.stderr)
                writer.add({"image": str(path), "error": message})
                failed += 1
                continue
            writer.add(entry)
            tqdm.write(f"{path}: {len(result.faces)} face(s)", file=sys.stdout)
    except KeyboardInterrupt:
        progress.close()
        writer.close()
        kept = ", ".join(str(p) for p in (args.json, args.jsonl) if p)
        print(f"interrupted: {len(writer.results)} of {len(inputs)} images done, kept in {kept}",
              file=sys.stderr)
        return 130
    finally:
        progress.close()
        writer.close()
    return 1 if failed else 0


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "detect":
            return detect(args)
        if args.command == "evaluate":
            from .evaluation import command as evaluate
            return evaluate(args)
    except KeyboardInterrupt:  # while starting up (imports, model loading)
        print("interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
