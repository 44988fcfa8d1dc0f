"""Checks every export runs: ONNX checker, PyTorch ↔ onnxruntime parity, and a static WebGL check.

The WebGL check approximates what onnxruntime-web's webgl provider accepts (its op table, no int64
tensors computed on the GPU, constant Pad/Slice parameters, no empty optional inputs) and two ways it
computes a wrong answer without an error (Conv shader-cache collisions, Conv weights computed at run
time); the real provider in a browser stays the judge (tests/browser/test_webgl_parity.py runs every
webgl-bound graph there and compares it with onnxruntime).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import onnx
import onnx.numpy_helper

# onnxruntime-web 1.30's WEBGL_OP_RESOLVE_RULES (dist/ort.webgl.js): op → opset versions with a
# kernel. An op whose rule stops below the graph's opset (ReduceSum 1-12, Split 2-12) has no kernel
# in an opset-18 graph, even though its name is in the table.
WEBGL_OP_VERSIONS = {op: (lo, hi) for op, lo, hi in [
    ("Abs", 6, 99), ("Acos", 7, 99), ("Add", 7, 99), ("And", 7, 99), ("Asin", 7, 99), ("Atan", 7, 99),
    ("AveragePool", 7, 99), ("BatchNormalization", 7, 99), ("Cast", 6, 99), ("Ceil", 6, 99),
    ("Clip", 6, 99), ("Concat", 4, 99), ("Conv", 1, 99), ("ConvTranspose", 1, 99), ("Cos", 7, 99),
    ("Div", 7, 99), ("Dropout", 7, 99), ("DepthToSpace", 1, 99), ("Equal", 7, 99), ("Elu", 6, 99),
    ("Exp", 6, 99), ("Flatten", 1, 99), ("Floor", 6, 99), ("Gather", 1, 99), ("Gemm", 7, 99),
    ("GlobalAveragePool", 1, 99), ("GlobalMaxPool", 1, 99), ("Greater", 7, 99), ("Identity", 1, 99),
    ("ImageScaler", 1, 99), ("InstanceNormalization", 6, 99), ("LeakyRelu", 6, 99), ("Less", 7, 99),
    ("LRN", 1, 99), ("Log", 6, 99), ("MatMul", 1, 99), ("MaxPool", 1, 99), ("Mul", 7, 99),
    ("Neg", 6, 99), ("Not", 1, 99), ("Or", 7, 99), ("Pad", 2, 99), ("Pow", 7, 99), ("PRelu", 7, 99),
    ("ReduceLogSum", 1, 99), ("ReduceMax", 1, 99), ("ReduceMean", 1, 99), ("ReduceMin", 1, 99),
    ("ReduceProd", 1, 99), ("ReduceSum", 1, 12), ("ReduceSumSquare", 1, 99), ("Relu", 6, 99),
    ("Reshape", 5, 99), ("Resize", 10, 99), ("Shape", 1, 99), ("Sigmoid", 6, 99), ("Sin", 7, 99),
    ("Slice", 1, 99), ("Softmax", 1, 99), ("Split", 2, 12), ("Sqrt", 6, 99), ("Squeeze", 1, 99),
    ("Sub", 7, 99), ("Sum", 6, 99), ("Tan", 7, 99), ("Tanh", 6, 99), ("Tile", 6, 99),
    ("Transpose", 1, 99), ("Upsample", 7, 9), ("Unsqueeze", 1, 99), ("Xor", 7, 99)]}
# From opset 18 the other Reduce* ops take their axes as an input; the webgl kernels read only the
# `axes` attribute, so a Reduce* with an axes input would silently reduce over every axis.
REDUCE_OPS = {"ReduceLogSum", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare"}
# inputs that must be constant (initializers or Constant nodes) for webgl, by op and input position
WEBGL_CONSTANT_INPUTS = {"Pad": (1, 2, 3), "Slice": (1, 2, 3, 4), "Reshape": (1,), "Resize": (1, 2, 3),
                         "Squeeze": (1,), "Unsqueeze": (1,), "Tile": (1,)}
INT64 = onnx.TensorProto.INT64
# What onnxruntime-web's webgl loader fuses into a Conv that is the only reader of its output
# (fuseConvActivationNodes in dist/ort.webgl.js).
WEBGL_FUSED_ACTIVATIONS = {"Relu", "Sigmoid", "Clip"}


class VerificationError(RuntimeError):
    """An exported graph failed a check; the message names the graph, node and reason."""


def check_model(model: onnx.ModelProto, label: str) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # onnx raises ValidationError / InferenceError
        raise VerificationError(f"{label}: onnx.checker failed: {e}") from None


def _constant_names(graph: onnx.GraphProto) -> set[str]:
    names = {t.name for t in graph.initializer}
    names |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return names


def _int64_values(model: onnx.ModelProto) -> set[str]:
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    out = set()
    for vi in list(g.value_info) + list(g.output) + list(g.input):
        if vi.type.tensor_type.elem_type == INT64:
            out.add(vi.name)
    return out


def _shape_derived(graph: onnx.GraphProto, constants: set[str]) -> set[str]:
    """Values computable from constants and tensor *shapes* alone (Shape→Gather→Concat chains):
    onnxruntime-web evaluates those on the CPU, so their int64 never reaches the GPU."""
    known = set(constants)
    shape_only = {"Shape", "Gather", "Concat", "Unsqueeze", "Squeeze", "Slice", "Cast", "Mul", "Add",
                  "Sub", "Div", "Constant", "Reshape"}
    changed = True
    while changed:
        changed = False
        for n in graph.node:
            if all(o in known for o in n.output):
                continue
            if n.op_type == "Shape" or (n.op_type in shape_only and all(i in known for i in n.input if i)):
                known.update(n.output)
                changed = True
    return known


def webgl_problems(model: onnx.ModelProto) -> list[str]:
    """Reasons the webgl provider would refuse this graph, one per offending node (empty = fine)."""
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    constants = _constant_names(graph)
    cpu_side = _shape_derived(graph, constants)
    int64 = _int64_values(model)
    problems = []
    for n in graph.node:
        where = f"node {n.name or '?'} ({n.op_type})"
        if n.domain not in ("", "ai.onnx"):
            problems.append(f"{where}: custom domain {n.domain!r}")
            continue
        if n.op_type == "Constant":
            continue
        if n.op_type not in WEBGL_OP_VERSIONS:
            problems.append(f"{where}: not a WebGL op")
            continue
        lo, hi = WEBGL_OP_VERSIONS[n.op_type]
        if not lo <= opset <= hi:
            problems.append(f"{where}: webgl has it only for opsets {lo}-{hi}, the graph is opset {opset}")
        if n.op_type in REDUCE_OPS and len(n.input) > 1 and n.input[1]:
            problems.append(f"{where}: axes given as an input; webgl reads only the axes attribute")
        if any(i == "" for i in n.input):
            problems.append(f"{where}: empty optional input name (the webgl loader fails on it)")
        for pos in WEBGL_CONSTANT_INPUTS.get(n.op_type, ()):
            if pos < len(n.input) and n.input[pos] and n.input[pos] not in cpu_side:
                problems.append(f"{where}: input {pos} ({n.input[pos]}) is computed at run time; "
                                "webgl needs it constant")
        if n.op_type == "Resize":
            mode = next((a.s.decode() for a in n.attribute if a.name == "mode"), "nearest")
            if mode != "linear":
                problems.append(f"{where}: Resize mode {mode!r}; webgl runs linear only")
        if n.op_type == "Shape":
            continue
        for o in n.output:
            if o in int64 and o not in cpu_side:
                problems.append(f"{where}: output {o} is an int64 tensor on the GPU (int64 is not supported)")
    problems += _conv_cache_collisions(model, constants)
    for init in graph.initializer:
        if init.data_type == INT64:
            values = onnx.numpy_helper.to_array(init)
            if values.size and (values.max() > 2**31 - 1 or values.min() < -2**31):
                problems.append(f"int64 constant {init.name} holds {values.max()}: outside int32, which "
                                "is what webgl converts int64 to (int64 is not supported)")
    for o in graph.output:
        if o.type.tensor_type.elem_type == INT64:
            problems.append(f"graph output {o.name} is int64")
    return problems


def _conv_cache_collisions(model: onnx.ModelProto, constants: set[str]) -> list[str]:
    """Conv nodes webgl would run with another Conv's compiled program, and Convs whose weights are
    computed at run time.

    onnxruntime-web 1.30 (pack mode off, its default) runs a non-grouped Conv as Im2Col +
    ConvDotProduct and caches the compiled programs by name + input shapes; the activation it fuses
    into a Conv is meant to be in that key but ConvDotProduct passes it as ``cacheKey``, a field the
    key builder never reads. Two Convs with the same input shape, weight shape and attributes but a
    different fused activation (or none) therefore share the program compiled first, activation
    included: the second one silently computes the wrong thing. Its weight input is read as an
    initializer texture; a weight that is computed (e.g. a Concat left in the graph) is mis-read."""
    graph = model.graph
    inferred = onnx.shape_inference.infer_shapes(model).graph
    shapes = {vi.name: tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
              for vi in list(inferred.value_info) + list(inferred.input) + list(inferred.output)}
    shapes.update({t.name: tuple(t.dims) for t in graph.initializer})
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    first_by_key: dict[tuple, tuple[str, str]] = {}
    problems = []
    for n in graph.node:
        if n.op_type != "Conv":
            continue
        where = f"node {n.name or '?'} (Conv)"
        if len(n.input) > 1 and n.input[1] not in constants:
            problems.append(f"{where}: weight {n.input[1]} is computed at run time; webgl reads Conv "
                            "weights correctly only from an initializer")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if attrs.get("group", 1) != 1:
            continue                  # grouped convs have their own program, keyed with activation
        nxt = readers.get(n.output[0], [])
        fused = nxt[0].op_type if len(nxt) == 1 and nxt[0].op_type in WEBGL_FUSED_ACTIVATIONS else ""
        key = (shapes.get(n.input[0]), shapes.get(n.input[1]), len(n.input) > 2 and bool(n.input[2]),
               repr(sorted((k, v) for k, v in attrs.items())))
        if key not in first_by_key:
            first_by_key[key] = (n.name or "?", fused)
        elif first_by_key[key][1] != fused:
            other, other_fused = first_by_key[key]
            problems.append(
                f"{where}: same input/weight shapes {key[0]} / {key[1]} as Conv {other}, but "
                f"{'followed by ' + fused if fused else 'no activation'} where {other} has "
                f"{other_fused or 'none'}; onnxruntime-web's webgl caches both as one program, so "
                "one of them runs the other's activation")
    return problems


def check_webgl(model: onnx.ModelProto, label: str) -> None:
    problems = webgl_problems(model)
    if problems:
        raise VerificationError(f"{label} would not run on onnxruntime-web's webgl provider:\n  "
                                + "\n  ".join(problems))


def max_abs_diff(a: Iterable[np.ndarray], b: Iterable[np.ndarray], names: list[str]) -> dict[str, float]:
    out = {}
    for name, x, y in zip(names, a, b):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.shape != y.shape:
            raise VerificationError(f"{name}: shapes differ {x.shape} vs {y.shape}")
        out[name] = float(np.max(np.abs(x - y))) if x.size else 0.0
    return out


def assert_close(got: Iterable[np.ndarray], expected: Iterable[np.ndarray], names: list[str],
                 atol: float, what: str) -> dict[str, float]:
    """Max abs difference per output; raises ``"{what} beyond {atol}: {the ones over}"``."""
    diffs = max_abs_diff(got, expected, names)
    bad = {k: v for k, v in diffs.items() if not v <= atol}
    if bad:
        raise VerificationError(f"{what} beyond {atol}: {bad}")
    return diffs


def onnx_parity(torch_outputs: list[np.ndarray], onnx_path: Path, feeds: dict[str, np.ndarray],
                output_names: list[str], atol: float, label: str) -> dict[str, float]:
    """Run the exported graph in onnxruntime and compare with the PyTorch outputs."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(output_names, feeds)
    return assert_close(torch_outputs, got, output_names, atol,
                        f"{label}: onnxruntime differs from PyTorch")


@dataclass
class ParityReport:
    """Max abs differences found by the checks, for printing."""
    rows: list[tuple[str, str, str, float]] = field(default_factory=list)   # graph, check, output, max|diff|

    def add(self, graph: str, check: str, diffs: dict[str, float]) -> None:
        self.rows += [(graph, check, name, d) for name, d in diffs.items()]

    def format(self) -> str:
        lines = [f"{'graph':28s} {'check':22s} {'output':18s} max|diff|"]
        lines += [f"{g:28s} {c:22s} {o:18s} {d:.2e}" for g, c, o, d in self.rows]
        return "\n".join(lines)
