"""The CPython runtime: onnxruntime sessions and PIL frames behind the pipeline's interfaces."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnxruntime as ort
from PIL import Image

from .pipeline.geometry import Affine
from .pipeline.manifest import GraphSpec, InputSpec, Manifest
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
        self.image = image.convert("RGB")
        self.width, self.height = self.image.size
        self._reduced: dict[int, Image.Image] = {1: self.image}

    @staticmethod
    def open(path: str | Path) -> "PILFrame":
        try:
            with Image.open(path) as im:
                im.load()
                return PILFrame(im)
        except (OSError, ValueError) as e:
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
