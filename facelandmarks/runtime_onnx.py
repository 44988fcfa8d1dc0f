"""The CPython runtime: onnxruntime sessions and PIL frames behind the pipeline's interfaces."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import warnings

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

from .pipeline.geometry import Affine
from .pipeline.manifest import GraphSpec, InputSpec, Manifest
from .pipeline.options import MAX_PIXELS
from .weights import sha256_of




class ModelFileError(RuntimeError):
    """A graph named by the manifest is missing, altered or unreadable."""


def load_manifest(models_dir: str | Path) -> Manifest:
    path = Path(models_dir) / "manifest.json"
    if not path.is_file():
        raise ModelFileError(f"{path} not found: run `python export_models.py` first")
    return Manifest.loads(path.read_text())


class OnnxRuntime:
    """Runs the manifest's graphs with onnxruntime on the CPU; sessions are made once, on first use."""

    def __init__(self, models_dir: str | Path, manifest: Manifest, verify_files: bool = True,
                 threads: int | None = None):
        self.models_dir = Path(models_dir)
        self.manifest = manifest
        self.verify_files = verify_files
        self.threads = threads
        self._sessions: dict[str, ort.InferenceSession] = {}

    def session(self, graph: GraphSpec) -> ort.InferenceSession:
        if graph.file not in self._sessions:
            path = self.models_dir / graph.file
            if not path.is_file():
                raise ModelFileError(f"{path} is missing (named in the manifest)")
            expected = self.manifest.files.get(graph.file)
            if self.verify_files and expected and sha256_of(path) != expected:
                raise ModelFileError(f"{path} does not match the manifest's sha256: re-export the models")
            opts = ort.SessionOptions()
            if self.threads:
                opts.intra_op_num_threads = self.threads
            try:
                self._sessions[graph.file] = ort.InferenceSession(
                    str(path), opts, providers=["CPUExecutionProvider"])
            except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
                raise ModelFileError(f"{path} cannot be loaded: {e}") from None
        return self._sessions[graph.file]

    async def run(self, graph: GraphSpec, feeds: dict[str, Any]) -> dict[str, Any]:
        return self.run_sync(graph, feeds)

    def run_sync(self, graph: GraphSpec, feeds: dict[str, Any]) -> dict[str, Any]:
        sess = self.session(graph)
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, feeds)))

    def read(self, tensor: Any) -> Sequence[float]:
        return np.asarray(tensor, dtype=np.float64).ravel().tolist()

    def release(self, tensors: dict[str, Any]) -> None:
        pass


class PILFrame:
    """A still image (or video frame) as a pipeline frame source."""

    def __init__(self, image: Image.Image):
        self.image = to_rgb(image)
        self.width, self.height = self.image.size
        self._reduced: dict[int, Image.Image] = {1: self.image}

    @staticmethod
    def open(path: str | Path, max_pixels: int = MAX_PIXELS) -> "PILFrame":
        """The image as a person sees it (EXIF orientation applied), any Pillow mode, as RGB.

        Raises ValueError (naming the file) for what is not a readable image, and for images of
        more than ``max_pixels`` (checked from the header, before decoding)."""
        try:
            with warnings.catch_warnings():
                # the size is checked below, with our message; Pillow's bomb check would come first
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    im = Image.open(path)
                finally:
                    Image.MAX_IMAGE_PIXELS = limit
            with im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ValueError(f"{path}: {w}×{h} is {w * h / 1e6:.0f} megapixels, more than the "
                                     f"limit of {max_pixels / 1e6:.0f}: shrink it first (or raise "
                                     "--max-megapixels if the memory is there)")
                im.load()
                return PILFrame(ImageOps.exif_transpose(im))
        except (OSError, SyntaxError, Image.DecompressionBombError) as e:
            raise ValueError(f"{path}: not a readable image ({e})") from None

    def reduced(self, factor: int) -> Image.Image:
        """The image shrunk by an integer factor (box filter), made once per factor."""
        if factor not in self._reduced:
            self._reduced[factor] = self.image.reduce(factor)
        return self._reduced[factor]

    def sample(self, to_frame: Affine, width: int, height: int) -> np.ndarray:
        """uint8 HxWx3 of the region, bilinear, black outside the frame.

        Bilinear sampling alone aliases when it shrinks a lot (a 4000-px photo into a 192-px
        detector input), so a region sampled at more than 2 frame pixels per input pixel is taken
        from a copy shrunk by a power of two first — what a browser's drawImage does with mipmaps.
        """
        factor = 1
        while to_frame.scale / (factor * 2) >= 1.0 and factor < 64:
            factor *= 2
        source = self.reduced(factor)
        t = to_frame.then(Affine(1.0 / factor, 0.0, 0.0, 0.0, 1.0 / factor, 0.0))
        out = source.transform((width, height), Image.Transform.AFFINE, t.pil_data(),
                               resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
        return np.asarray(out)

    def to_tensor(self, to_frame: Affine, spec: InputSpec) -> np.ndarray:
        pixels = self.sample(to_frame, spec.width, spec.height)
        return to_input_tensor(pixels, spec)


def to_input_tensor(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 HxWx3 RGB → NCHW float32 normalised as the manifest says."""
    x = pixels.astype(np.float32) / 255.0
    if spec.channels == "BGR":
        x = x[..., ::-1]
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB, the way a browser shows it.

    * 16-bit and 32-bit greyscale (``I;16*``, ``I``) and float (``F``): values within 0–255 are kept,
      within 0–65535 divided by 257 (a 16-bit PNG's range), floats within 0–1 multiplied by 255;
      anything else stretched from its minimum to its maximum. (Pillow's own ``convert`` clips at
      255, which turns 16-bit photos white.)
    * Alpha (``RGBA``, ``LA``, ``PA``, palettes with transparency): dropped, with fully transparent
      pixels black, as a canvas's getImageData gives them.
    * Palette, bilevel (``1``), CMYK, YCbCr, …: Pillow's conversion.
    """
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") or image.mode == "F":
        a = np.asarray(image, dtype=np.float64)
        sixteen_bit = image.mode.startswith("I;16")
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if image.mode == "F" and lo >= 0.0 and hi <= 1.0:
            a = a * 255.0
        elif lo >= 0.0 and hi <= 255.0 and not sixteen_bit:
            pass
        elif lo >= 0.0 and hi <= 65535.0:
            a = a / 257.0
        elif hi > lo:
            a = (a - lo) * (255.0 / (hi - lo))
        else:
            a = np.zeros_like(a)
        grey = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
        return grey.convert("RGB")
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        rgb = rgba[..., :3].copy()
        rgb[rgba[..., 3] == 0] = 0
        return Image.fromarray(rgb, "RGB")
    return image.convert("RGB")
