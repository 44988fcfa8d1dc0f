"""The BlazeFace RegressionParser: decoding, thresholds, NMS — eager and exported to onnxruntime."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

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
