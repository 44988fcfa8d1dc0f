"""The BlazeFace RegressionParser: decoding, thresholds, NMS — eager and exported to onnxruntime."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import SEED_DIR
from facelandmarks.parsers.blazeface import BlazeFaceParser
from facelandmarks.parsers.nms import CUSTOM_TRANSLATIONS

ANCHORS = np.array([[0.25, 0.25], [0.27, 0.25], [0.75, 0.75], [0.5, 0.5]], np.float32)
SIZE = 128


def regressions(sizes_px, scores):
    """Boxes of the given pixel sizes centred on each anchor; keypoints on the anchor centre."""
    n = len(ANCHORS)
    bbox = np.zeros((1, n, 4), np.float32)
    bbox[0, :, 2] = bbox[0, :, 3] = sizes_px
    return (torch.from_numpy(bbox), torch.tensor([scores], dtype=torch.float32),
            torch.zeros(1, n, 12))


@pytest.mark.parametrize("scores,max_faces,kept", [
    ([0.9, 0.8, 0.7, 0.1], 10, [0, 2]),        # anchor 1 overlaps anchor 0 → suppressed; 3 below threshold
    ([0.8, 0.9, 0.7, 0.6], 10, [1, 2, 3]),     # the better of the overlapping pair wins; best first
    ([0.9, 0.8, 0.7, 0.6], 2, [0, 2]),         # top-k
    ([0.1, 0.2, 0.3, 0.4], 10, []),            # nothing above threshold: empty outputs, not an error
])
def test_nms_table(scores, max_faces, kept):
    parser = BlazeFaceParser(ANCHORS, SIZE, 6, 0.5, 0.3, max_faces).eval()
    boxes, out_scores, landms = parser(*regressions([32, 32, 32, 16], scores))
    assert out_scores.tolist() == pytest.approx([scores[i] for i in kept])
    assert boxes.shape == (len(kept), 4) and landms.shape == (len(kept), 12)
    for row, i in zip(boxes.tolist(), kept):
        cx, cy = ANCHORS[i]
        half = (32 if i < 3 else 16) / SIZE / 2
        assert row == pytest.approx([cx - half, cy - half, cx + half, cy + half], abs=1e-6)
    for row, i in zip(landms.tolist(), kept):
        assert row == pytest.approx(list(ANCHORS[i]) * 6, abs=1e-6)


def test_exported_parser_matches_pytorch(tmp_path):
    rng = np.random.default_rng(0)
    anchors = rng.random((896, 2), dtype=np.float32)
    parser = BlazeFaceParser(anchors, SIZE, 6, 0.5, 0.3, 10).eval()
    bbox = torch.from_numpy(rng.normal(0, 3, (1, 896, 4)).astype(np.float32))
    bbox[..., 2:] = bbox[..., 2:].abs() * 8 + 10
    scores = torch.from_numpy(rng.random((1, 896), dtype=np.float32))
    ldm = torch.from_numpy(rng.normal(0, 5, (1, 896, 12)).astype(np.float32))
    program = torch.onnx.export(parser, (bbox, scores, ldm), dynamo=True, opset_version=18,
                                input_names=["bbox_regressions", "scores.1", "landm_regressions"],
                                output_names=["boxes", "scores", "landms"], external_data=False,
                                custom_translation_table=CUSTOM_TRANSLATIONS)
    assert "NonMaxSuppression" in [n.op_type for n in program.model_proto.graph.node]
    path = tmp_path / "parser.onnx"
    program.save(str(path))
    got = ort.InferenceSession(str(path)).run(None, {"bbox_regressions": bbox.numpy(),
                                                     "scores.1": scores.numpy(),
                                                     "landm_regressions": ldm.numpy()})
    expected = [t.numpy() for t in parser(bbox, scores, ldm)]
    assert len(expected[1]) == 10      # plenty of candidates: top-k applies
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-6)


def _full_decode_reference(raw, input_size, landmarks, score_threshold, iou_threshold, max_faces):
    """RetinaFace's parser as biubug6 writes it, in numpy: decode every prior, threshold, greedy NMS."""
    from facelandmarks.parsers.retinaface import generate_priors

    priors = generate_priors(input_size)
    loc, scores, pre = raw[0][0], raw[1][0], raw[2][0]
    centre = priors[:, :2] + loc[:, :2] * 0.1 * priors[:, 2:]
    wh = priors[:, 2:] * np.exp(loc[:, 2:] * 0.2)
    boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
    landms = (priors[:, None, :2] + pre.reshape(len(priors), landmarks, 2) * 0.1 * priors[:, None, 2:]
              ).reshape(len(priors), -1)
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] <= score_threshold or len(keep) == max_faces:
            break
        ix = np.clip(np.minimum(boxes[keep, 2], boxes[i, 2]) - np.maximum(boxes[keep, 0], boxes[i, 0]), 0, None)
        iy = np.clip(np.minimum(boxes[keep, 3], boxes[i, 3]) - np.maximum(boxes[keep, 1], boxes[i, 1]), 0, None)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
        iou = ix * iy / (area(boxes[keep]) + area(boxes[i]) - ix * iy)
        if not keep or (iou <= iou_threshold).all():
            keep.append(i)
    return boxes[keep], scores[keep], landms[keep]


SEED_DETECTOR = SEED_DIR / "FaceDetector.onnx"


@pytest.mark.skipif(not SEED_DETECTOR.is_file(), reason="seed fixture absent")
@pytest.mark.parametrize("photo,threshold,faces", [
    ("astronaut", 0.5, 1),
    ("two_faces", 0.5, 2),       # the astronaut and Grace Hopper side by side
    ("astronaut", 0.01, 16),     # a low threshold: many candidates, max_faces and NMS decide
])
def test_retinaface_parser_selects_before_decoding_same_faces(tmp_path, photo, threshold, faces):
    """The parser decodes only the top-k priors' boxes and the kept faces' landmarks: the faces it
    gives equal a decode of every prior (real detector outputs), eagerly and in onnxruntime."""
    from PIL import Image
    from skimage import data
    import matplotlib.cbook as cbook

    from facelandmarks.export.onnx_export import export_module, save_model
    from facelandmarks.export.retinaface import PREPROCESSING, photo_tensor
    from facelandmarks.parsers.retinaface import RetinaFaceParser
    from facelandmarks.pipeline.manifest import InputSpec

    image = data.astronaut()
    if photo == "two_faces":
        with cbook.get_sample_data("grace_hopper.jpg") as f:
            grace = np.asarray(Image.open(f).convert("RGB").resize((512, 600)))
        image = np.zeros((600, 1024, 3), np.uint8)
        image[:512, :512] = data.astronaut()
        image[:, 512:] = grace
    spec = InputSpec.parse({"width": 640, "height": 640, **PREPROCESSING["imagenet"],
                            "letterbox": "top-left"}, "input")
    raw = ort.InferenceSession(str(SEED_DETECTOR)).run(None, {"inputImage": photo_tensor(image, spec)})
    parser = RetinaFaceParser(640, 98, threshold, 0.4, 16).eval()
    got = [t.numpy() for t in parser(*(torch.from_numpy(r) for r in raw))]
    expected = _full_decode_reference(raw, 640, 98, threshold, 0.4, 16)
    assert len(got[1]) == len(expected[1]) == faces
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-6)

    model = export_module(parser, tuple(torch.from_numpy(r) for r in raw),
                          ["bbox_regressions", "scores.1", "landm_regressions"],
                          ["boxes", "scores", "landms"], CUSTOM_TRANSLATIONS)
    ops = [n.op_type for n in model.graph.node]
    assert "TopK" in ops and "NonMaxSuppression" in ops
    save_model(model, tmp_path / "parser.onnx")
    onnx_out = ort.InferenceSession(str(tmp_path / "parser.onnx")).run(
        None, dict(zip(["bbox_regressions", "scores.1", "landm_regressions"], raw)))
    for g, e in zip(onnx_out, expected):
        np.testing.assert_allclose(g, e, atol=1e-5)
