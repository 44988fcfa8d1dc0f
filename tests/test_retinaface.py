"""Bring-your-own RetinaFace: checkpoint loading, export + parity, WebGL check, the seed's graphs."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import SEED_DIR
from facelandmarks import verify
from facelandmarks.export.onnx_export import export_module
from facelandmarks.export.retinaface import (DETECTOR_FILE, PARSER_FILE, PREPROCESSING,
                                             ROI_DETECTOR_FILE, ROI_PARSER_FILE, build, photo_tensor)
from facelandmarks.export.site import write_models_dir
from facelandmarks.models.retinaface import (CheckpointError, RetinaFace, load_checkpoint,
                                             upsample_nearest2x)
from facelandmarks.parsers.retinaface import RetinaFaceParser
from facelandmarks.pipeline.geometry import iou
from facelandmarks.pipeline.manifest import InputSpec, Manifest

skimage_data = pytest.importorskip("skimage.data")

REPO = Path(__file__).resolve().parents[1]
SEED_MANIFEST = REPO / "manifests" / "seed-retinaface.json"
# hand-annotated on a rendering of skimage.data.astronaut() (512x512): cheek to cheek, hairline/brow
# to chin — the face region a WIDER-style box covers
ASTRONAUT_FACE = (182.0, 68.0, 272.0, 180.0)

needs_seed = pytest.mark.skipif(not (SEED_DIR / "FaceDetector.onnx").is_file(),
                                reason=f"seed fixture not present at {SEED_DIR}")


class Report:
    def __init__(self):
        self.rows = {}

    def add(self, graph, check, diffs):
        self.rows[graph] = diffs


def lively_weights(model: RetinaFace, seed: int = 0) -> RetinaFace:
    """Random weights that keep activations O(1) through the net (PyTorch's default init shrinks
    them towards zero, which would make a parity check trivially pass)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
    return model.eval()


def biubug6_checkpoint(model: RetinaFace, path: Path) -> Path:
    """Save like biubug6's train.py under DataParallel, wrapped as many trainers do."""
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 250},
               path)
    return path


def astronaut():
    return skimage_data.astronaut()


def test_nearest_upsampling_is_exact():
    x = torch.randn(1, 64, 10, 10)
    assert torch.equal(upsample_nearest2x(x), F.interpolate(x, scale_factor=2, mode="nearest"))


def test_checkpoint_loads_exports_and_matches(tmp_path):
    model = lively_weights(RetinaFace(98))
    ckpt = biubug6_checkpoint(model, tmp_path / "retinaface98.pth")
    loaded = RetinaFace(98)
    load_checkpoint(loaded, ckpt)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k

    report = Report()
    graphs, manifest = build(tmp_path, report, weights=ckpt, landmarks=98, input_size=320)
    assert set(graphs) == {DETECTOR_FILE, PARSER_FILE, ROI_DETECTOR_FILE, ROI_PARSER_FILE}
    det, par = report.rows[DETECTOR_FILE], report.rows[PARSER_FILE]
    assert max(det.values()) <= 1e-4 and max(v for k, v in par.items() if k != "faces") <= 1e-4
    assert verify.webgl_problems(graphs[DETECTOR_FILE]) == []
    assert manifest["trained"] is True and manifest["landmarks"] is None
    kp = manifest["detectors"]["retinaface"]["keypoints"]
    assert (kp["count"], kp["layout"], kp["right_eye"], kp["left_eye"]) == (98, "WFLW-98", 96, 97)

    # the outputs are not trivially small: the parity above compares real numbers
    spec = InputSpec.parse(manifest["detectors"]["retinaface"]["input"], "input")
    with torch.no_grad():
        bbox, scores, ldm = model(torch.from_numpy(photo_tensor(astronaut(), spec)))
    assert float(bbox.abs().max()) > 0.1 and float(ldm.abs().max()) > 0.1
    assert float(scores.max() - scores.min()) > 0.1

    # the written folder runs in the CPython pipeline
    out = write_models_dir(tmp_path / "models", graphs, manifest)
    from facelandmarks.runtime_onnx import OnnxRuntime, PILFrame, load_manifest
    from facelandmarks.pipeline.stages import FacePipeline
    from PIL import Image

    m = load_manifest(out)
    result = asyncio.run(FacePipeline(m, OnnxRuntime(out, m)).process(PILFrame(Image.fromarray(astronaut()))))
    assert all(len(f.landmarks) == 98 for f in result.faces)


def test_five_landmark_checkpoint_refused_and_nothing_written(tmp_path):
    ckpt = biubug6_checkpoint(RetinaFace(5), tmp_path / "mobilenet0.25_Final.pth")
    out = tmp_path / "models"
    out.mkdir()
    (out / "manifest.json").write_text('{"previous": true}\n')
    before = sorted(p.name for p in tmp_path.iterdir()), sorted(p.name for p in out.iterdir())

    with pytest.raises(CheckpointError) as err:
        graphs, manifest = build(tmp_path, weights=ckpt, landmarks=98, input_size=320)
        write_models_dir(out, graphs, manifest)
    msg = str(err.value)
    assert "5 landmarks" in msg and "98" in msg and "--landmarks 5" in msg, msg
    assert (sorted(p.name for p in tmp_path.iterdir()), sorted(p.name for p in out.iterdir())) == before
    assert (out / "manifest.json").read_text() == '{"previous": true}\n'

    # the same checkpoint fits a 5-landmark model
    load_checkpoint(RetinaFace(5), ckpt)


def test_misfit_checkpoint_names_the_keys(tmp_path):
    state = RetinaFace(98).state_dict()
    del state["ssh2.conv5X5_1.0.weight"]
    state["fpn.output4.0.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(RetinaFace(98), state)
    msg = str(err.value)
    assert "missing keys: ssh2.conv5X5_1.0.weight" in msg and "unexpected keys: fpn.output4.0.weight" in msg


@pytest.mark.parametrize("size", [320, 640])
def test_detector_passes_webgl_check(size):
    model = RetinaFace(98).eval()
    graph = export_module(model, (torch.zeros(1, 3, size, size),), ["image"],
                          ["bbox_regressions", "scores", "ldm_regressions"])
    assert verify.webgl_problems(graph) == []
    assert "Resize" not in {n.op_type for n in graph.graph.node}


def _seed_pipeline(models_dir: Path, manifest: Manifest):
    from PIL import Image

    from facelandmarks.pipeline.stages import FacePipeline
    from facelandmarks.runtime_onnx import OnnxRuntime, PILFrame

    frame = PILFrame(Image.fromarray(astronaut()))
    return asyncio.run(FacePipeline(manifest, OnnxRuntime(models_dir, manifest)).process(frame))


@needs_seed
def test_seed_graphs_in_pipeline_find_the_astronaut():
    manifest = Manifest.loads(SEED_MANIFEST.read_text())
    result = _seed_pipeline(SEED_DIR, manifest)
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.detector_score > 0.9 and face.presence is None
    assert iou(face.box, ASTRONAUT_FACE) >= 0.5, face.box
    # the fixture's known defect: the 98 points collapse onto a vertical line through the face
    xs = [p[0] for p in face.landmarks]
    width = face.box[2] - face.box[0]
    assert len(xs) == 98
    assert (max(xs) - min(xs)) < 0.2 * width, (max(xs) - min(xs), width)


@needs_seed
def test_seed_manifest_matches_the_graphs():
    import onnx

    from facelandmarks.weights import sha256_of

    manifest = Manifest.loads(SEED_MANIFEST.read_text())
    det = manifest.detector()
    for spec, path in ((det.graph, SEED_DIR / "FaceDetector.onnx"), (det.parser, SEED_DIR / "RegressionParser.onnx")):
        g = onnx.load(str(path)).graph
        assert set(spec.inputs.values()) == {i.name for i in g.input}
        assert set(spec.outputs.values()) == {o.name for o in g.output}
        assert manifest.files[spec.file] == sha256_of(path)


@needs_seed
def test_seed_import_parity_and_prior_order():
    import onnxruntime as ort

    from facelandmarks.models.retinaface_seed import load_seed_detector

    model, facts = load_seed_detector(SEED_DIR / "FaceDetector.onnx")
    assert facts["num_landmarks"] == 98 and facts["upsample"] == "bilinear"
    assert facts["batchnorm_folded"] and facts["parameters"] == 495804
    spec = InputSpec.parse({"width": 640, "height": 640, **PREPROCESSING["imagenet"],
                            "letterbox": "top-left"}, "input")
    x = photo_tensor(astronaut(), spec)
    seed = ort.InferenceSession(str(SEED_DIR / "FaceDetector.onnx"), providers=["CPUExecutionProvider"])
    ref = seed.run(["bbox_regressions", "scores", "ldm_regressions"], {"inputImage": x})
    with torch.no_grad():
        got = [t.numpy() for t in model(torch.from_numpy(x))]
    diffs = verify.max_abs_diff(got, ref, ["bbox_regressions", "scores", "ldm_regressions"])
    assert max(diffs.values()) < 1e-4, diffs
    assert float(ref[1].max()) > 0.95

    # our parser decodes the seed's top prior exactly as the seed's own parser does (prior order)
    seed_parser = ort.InferenceSession(str(SEED_DIR / "RegressionParser.onnx"), providers=["CPUExecutionProvider"])
    boxes, scores, landms = seed_parser.run(["boxes", "scores", "landms"], {
        "bbox_regressions": ref[0], "scores.1": ref[1], "landm_regressions": ref[2]})
    ours = RetinaFaceParser(640, 98, score_threshold=0.5, iou_threshold=0.4, max_faces=16)
    with torch.no_grad():
        b, s, lm = (t.numpy() for t in ours(*(torch.from_numpy(r) for r in ref)))
    scale = np.array([640.0, 480.0], np.float32)
    assert s[0] == pytest.approx(float(scores.ravel()[0]))
    np.testing.assert_allclose(b[0], boxes.ravel() / np.tile(scale, 2), atol=1e-5)
    np.testing.assert_allclose(lm[0], landms.ravel() / np.tile(scale, 98), atol=1e-5)


@needs_seed
def test_seed_weights_reexported_through_our_parser(tmp_path):
    """The seed's weights in our graphs (nearest-free, NMS parser) find the same face."""
    graphs, manifest = build(tmp_path, weights=SEED_DIR / "FaceDetector.onnx", landmarks=98,
                             input_size=640)
    assert verify.webgl_problems(graphs[DETECTOR_FILE]) == []
    out = write_models_dir(tmp_path / "models", graphs, manifest)
    m = Manifest.loads((out / "manifest.json").read_text())
    faces = _seed_pipeline(out, m).faces
    assert len(faces) == 1 and iou(faces[0].box, ASTRONAUT_FACE) >= 0.5
    seed = _seed_pipeline(SEED_DIR, Manifest.loads(SEED_MANIFEST.read_text())).faces[0]
    assert iou(faces[0].box, seed.box) > 0.99
    assert json.loads((out / "manifest.json").read_text())["files"].keys() == graphs.keys()
