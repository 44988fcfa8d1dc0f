"""PyTorch ports of MediaPipe's face models vs. LiteRT running the original .tflite, on real photos.

Every model is built (and its weights loaded) once per session; LiteRT interpreters likewise.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from facelandmarks.models.blazeface import (FULL_RANGE, KEYPOINT_NAMES, SHORT_RANGE, BlazeFace,
                                            anchors_per_cell, generate_anchors)
from facelandmarks.models.facemesh import WEIGHTS_FILE as FACEMESH_FILE
from facelandmarks.models.facemesh import FaceMesh
from facelandmarks.weights import WeightsError, load_tflite, weights_path

TOLERANCE = 1e-3

# Face crops (x0, y0, x1, y1) in the original photos, for the landmark model.
FACE_CROPS = {"astronaut": (120, 40, 340, 260), "grace_hopper": (130, 70, 390, 330)}


# -- photos ----------------------------------------------------------------------------------------
def _astronaut() -> np.ndarray:
    import skimage.data
    return skimage.data.astronaut()                      # 512x512 RGB uint8


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))  # 600x512 (h x w) RGB uint8


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {"astronaut": _astronaut(), "grace_hopper": _grace_hopper()}


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Pad to a square (black, centred) and resize to ``size``. Returns the image, the scale from
    original to model pixels, and the (x, y) padding added in original pixels."""
    h, w = image.shape[:2]
    side = max(h, w)
    pad_x, pad_y = (side - w) // 2, (side - h) // 2
    square = np.zeros((side, side, 3), np.uint8)
    square[pad_y:pad_y + h, pad_x:pad_x + w] = image
    resized = np.asarray(Image.fromarray(square).resize((size, size), Image.BILINEAR))
    return resized, size / side, (pad_x, pad_y)


def crop_resize(image: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.asarray(Image.fromarray(image[y0:y1, x0:x1]).resize((size, size), Image.BILINEAR))


# -- models and references -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def short_range() -> BlazeFace:
    return BlazeFace.from_tflite(SHORT_RANGE)


@pytest.fixture(scope="module")
def full_range() -> BlazeFace:
    return BlazeFace.from_tflite(FULL_RANGE)


@pytest.fixture(scope="module")
def facemesh() -> FaceMesh:
    return FaceMesh.from_tflite()


class LiteRT:
    """The original .tflite run by LiteRT; outputs returned in the order of the PyTorch model."""

    def __init__(self, file_name: str, output_order: tuple[str, ...]):
        from ai_edge_litert.interpreter import Interpreter
        self.interpreter = Interpreter(model_path=str(weights_path(file_name)))
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        self.output_indices = [outputs[name] for name in output_order]

    def __call__(self, nhwc: np.ndarray) -> list[np.ndarray]:
        self.interpreter.set_tensor(self.input_index, nhwc[None].astype(np.float32))
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i).copy() for i in self.output_indices]


@pytest.fixture(scope="module")
def litert() -> dict[str, LiteRT]:
    return {
        "short_range": LiteRT(SHORT_RANGE.weights_file, ("regressors", "classificators")),
        "full_range": LiteRT(FULL_RANGE.weights_file,
                             ("reshaped_regressor_face_4", "reshaped_classifier_face_4")),
        "facemesh": LiteRT(FACEMESH_FILE, ("conv2d_20", "conv2d_30")),
    }


def run_torch(model: torch.nn.Module, nhwc: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        outputs = model(torch.from_numpy(np.ascontiguousarray(nhwc.transpose(2, 0, 1)))[None])
    return [o.numpy() for o in outputs]


def compare(name: str, photo: str, ours: list[np.ndarray], reference: list[np.ndarray],
            output_names: tuple[str, ...]) -> None:
    for out_name, a, b in zip(output_names, ours, reference):
        assert a.size == b.size, f"{name}/{out_name}: {a.shape} vs tflite {b.shape}"
        diff = float(np.abs(a.reshape(-1) - b.reshape(-1)).max())
        print(f"{name:12s} {photo:13s} {out_name:15s} max|torch - tflite| = {diff:.2e}")
        assert diff <= TOLERANCE, f"{name}/{out_name} on {photo}: max abs diff {diff}"


# -- equality with LiteRT --------------------------------------------------------------------------
@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
@pytest.mark.parametrize("variant", ["short_range", "full_range"])
def test_blazeface_matches_tflite(variant, photo, photos, litert, request):
    model = request.getfixturevalue(variant)
    size = model.config.input_size
    image, _, _ = letterbox(photos[photo], size)
    nhwc = image.astype(np.float32) / 127.5 - 1.0          # [-1, 1]
    ours = run_torch(model, nhwc)
    assert ours[0].shape == (1, model.config.num_anchors, 16)
    assert ours[1].shape == (1, model.config.num_anchors, 1)
    compare(variant, photo, ours, litert[variant](nhwc), BlazeFace.output_names)


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_facemesh_matches_tflite(photo, photos, litert, facemesh):
    nhwc = crop_resize(photos[photo], FACE_CROPS[photo], 192).astype(np.float32) / 255.0  # [0, 1]
    ours = run_torch(facemesh, nhwc)
    assert ours[0].shape == (1, 468, 3) and ours[1].shape == (1, 1)
    compare("facemesh", photo, ours, litert["facemesh"](nhwc), FaceMesh.output_names)
    assert ours[1][0, 0] > 0, "the face crop should be recognised as a face"
    assert ours[0][0, :, :2].min() > 0 and ours[0][0, :, :2].max() < 192


# -- anchors ---------------------------------------------------------------------------------------
def test_anchors_short_range():
    anchors = generate_anchors(SHORT_RANGE)
    assert anchors_per_cell(SHORT_RANGE) == [2, 6]
    assert anchors.shape == (896, 2) == (SHORT_RANGE.num_anchors, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[1], anchors[0])          # 2 anchors per 16x16 cell
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16])  # x runs fastest
    np.testing.assert_allclose(anchors[16 * 16 * 2], [0.5 / 8, 0.5 / 8])  # first 8x8 anchor
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])
    assert (anchors[512:518] == anchors[512]).all()             # 6 anchors per 8x8 cell


def test_anchors_full_range():
    anchors = generate_anchors(FULL_RANGE)
    assert anchors_per_cell(FULL_RANGE) == [1]
    assert anchors.shape == (2304, 2) == (FULL_RANGE.num_anchors, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(anchors[1], [1.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(anchors[48], [0.5 / 48, 1.5 / 48])
    np.testing.assert_allclose(anchors[-1], [47.5 / 48, 47.5 / 48])


def test_anchor_scales_are_input_size():
    for config in (SHORT_RANGE, FULL_RANGE):
        assert config.x_scale == config.y_scale == config.w_scale == config.h_scale \
            == config.input_size


# -- detection lands on the face -------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["short_range", "full_range"])
def test_best_anchor_on_astronaut_face(variant, photos, request):
    model = request.getfixturevalue(variant)
    config = model.config
    image, scale, (pad_x, pad_y) = letterbox(photos["astronaut"], config.input_size)
    regressors, logits = run_torch(model, image.astype(np.float32) / 127.5 - 1.0)
    best = int(np.argmax(logits[0, :, 0]))
    score = 1 / (1 + np.exp(-logits[0, best, 0]))
    anchor = generate_anchors(config)[best]
    reg = regressors[0, best]

    def to_photo(dx: float, dy: float) -> tuple[float, float]:
        """Regressor offset (model pixels, relative to the anchor) -> photo pixels."""
        x = (dx / config.x_scale + anchor[0]) * config.input_size / scale - pad_x
        y = (dy / config.y_scale + anchor[1]) * config.input_size / scale - pad_y
        return x, y

    cx, cy = to_photo(reg[0], reg[1])
    w = reg[2] / config.w_scale * config.input_size / scale
    h = reg[3] / config.h_scale * config.input_size / scale
    keypoints = {name: to_photo(reg[4 + 2 * k], reg[5 + 2 * k]) for k, name in enumerate(KEYPOINT_NAMES)}
    print(f"{variant}: best anchor {best} score {score:.3f} centre ({cx:.0f}, {cy:.0f}) "
          f"size {w:.0f}x{h:.0f}; " + ", ".join(f"{n} ({x:.0f},{y:.0f})" for n, (x, y) in keypoints.items()))
    assert score > 0.5
    assert 170 <= cx <= 290 and 60 <= cy <= 200, f"box centre ({cx:.0f}, {cy:.0f}) is off the face"
    assert 60 <= w <= 200 and 60 <= h <= 200
    # keypoint order: the person's right eye is on the image's left
    assert keypoints["right_eye"][0] < keypoints["nose_tip"][0] < keypoints["left_eye"][0]
    assert keypoints["nose_tip"][1] < keypoints["mouth_center"][1]
    assert keypoints["right_ear_tragion"][0] < keypoints["right_eye"][0]
    assert keypoints["left_ear_tragion"][0] > keypoints["left_eye"][0]


# -- the loader refuses weights that do not fit ----------------------------------------------------
def test_loader_refuses_short_range_weights_in_full_range_model():
    with pytest.raises(WeightsError, match=r"full_range: layer 'stem\.conv'.*shape"):
        BlazeFace(FULL_RANGE).load_tflite_weights(load_tflite(SHORT_RANGE.weights_file))


def test_loader_refuses_full_range_weights_in_short_range_model():
    with pytest.raises(WeightsError, match=r"short_range: layer 'stem\.conv'"):
        BlazeFace(SHORT_RANGE).load_tflite_weights(load_tflite(FULL_RANGE.weights_file))


def test_loader_refuses_detector_weights_in_facemesh():
    with pytest.raises(WeightsError, match=r"facemesh: layer '[\w.]+'"):
        FaceMesh().load_tflite_weights(load_tflite(SHORT_RANGE.weights_file))


def test_loader_refuses_a_changed_config():
    """Same file, a model with one block too many: fails at the first layer that disagrees."""
    blocks = SHORT_RANGE.blocks[:-1] + (dataclasses.replace(SHORT_RANGE.blocks[-1]),) * 2
    wider = dataclasses.replace(SHORT_RANGE, name="short_range_plus", blocks=blocks,
                                head_taps=(10, 16))
    with pytest.raises(WeightsError, match=r"short_range_plus: layer '[\w.]+'"):
        BlazeFace(wider).load_tflite_weights(load_tflite(SHORT_RANGE.weights_file))


def test_loader_names_missing_layer_on_count_mismatch():
    tfl = load_tflite(SHORT_RANGE.weights_file)
    last_conv = [op for op in tfl.operators if op.opcode == "CONV_2D"][-1]
    tfl.operators = [op for op in tfl.operators if op is not last_conv]   # the 8x8 regressor head
    with pytest.raises(WeightsError, match=r"layer 'regressor_heads\.1'.*no tflite op left"):
        BlazeFace(SHORT_RANGE).load_tflite_weights(tfl)


def test_loader_leaves_model_untouched_on_failure():
    model = BlazeFace(FULL_RANGE)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError):
        model.load_tflite_weights(load_tflite(SHORT_RANGE.weights_file))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# -- ONNX export for onnxruntime-web's WebGL provider ---------------------------------------------
@pytest.mark.parametrize("variant", ["short_range", "full_range", "facemesh"])
def test_onnx_export_is_webgl_friendly(variant, request, tmp_path):
    import onnx
    import onnxruntime as ort

    from facelandmarks.export.onnx_export import export_module, save_model
    from facelandmarks.verify import webgl_problems

    model = request.getfixturevalue(variant)
    size = model.config.input_size if variant != "facemesh" else FaceMesh.input_size
    path = tmp_path / f"{variant}.onnx"
    proto = export_module(model, (torch.zeros(1, 3, size, size),), ["input"], list(model.output_names))
    save_model(proto, path)
    print(f"{variant}: {' '.join(sorted({n.op_type for n in proto.graph.node}))}")
    assert webgl_problems(proto) == []
    assert [o.name for o in proto.graph.output] == list(model.output_names)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        want = [o.numpy() for o in model(x)]
    for g, w in zip(got, want):
        assert g.shape == w.shape and float(np.abs(g - w).max()) < TOLERANCE
