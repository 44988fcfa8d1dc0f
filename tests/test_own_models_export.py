"""A user's own models through export_models.py: the RetinaFace export's flags and its loud check
on real faces, and a crop → N points landmark model equal to the built-in pipeline."""
from __future__ import annotations

import asyncio
import json

import pytest
from PIL import Image

from bench import own_models
from facelandmarks.pipeline.geometry import iou
from facelandmarks.pipeline.options import PipelineOptions
from facelandmarks.pipeline.stages import FacePipeline
from facelandmarks.runtime_onnx import OnnxRuntime, PILFrame, load_manifest

needs_seed = pytest.mark.skipif(not own_models.SEED_DETECTOR.is_file(), reason="seed fixture absent")


def _export(tmp_path, *argv):
    import export_models

    out = tmp_path / "models"
    assert export_models.main(["--model", "retinaface", "--weights", str(own_models.SEED_DETECTOR),
                               "--roi-size", "0", *argv, "--out", str(out)]) == 0
    return out, json.loads((out / "manifest.json").read_text())


def _camera_faces(models_dir):
    from facelandmarks.export.retinaface import camera_frame

    m = load_manifest(models_dir)
    frame = PILFrame(Image.fromarray(camera_frame()))
    return asyncio.run(FacePipeline(m, OnnxRuntime(models_dir, m)).process(frame)).faces


@needs_seed
def test_320_export_on_a_camera_size_face_finds_it_or_says_why(tmp_path, capsys):
    out, manifest = _export(tmp_path, "--input-size", "320")
    err = capsys.readouterr().err
    faces = _camera_faces(out)
    check = " ".join(manifest["reference_check"])
    if faces:
        assert "no face found on the astronaut as a 640x480 camera frame" not in check
    else:
        # the export said so, loudly, with the score and what would find it
        assert "no face found on the astronaut as a 640x480 camera frame" in check
        assert "top face score" in check and "--input-size 640" in check and "--score-threshold" in check
        assert "!!" in err and "no face found" in err
    # the hint holds: at the threshold it names, the same 320 export finds the face
    out2, manifest2 = _export(tmp_path / "b", "--input-size", "320", "--score-threshold", "0.4",
                              "--nms-iou", "0.3")
    parser = manifest2["detectors"]["retinaface"]["parser"]
    assert (parser["score_threshold"], parser["iou_threshold"]) == (0.4, 0.3)
    faces = _camera_faces(out2)
    assert len(faces) == 1 and iou(faces[0].box, (80 + 182 * 480 / 512, 68 * 480 / 512,
                                                  80 + 272 * 480 / 512, 180 * 480 / 512)) > 0.5
    assert manifest2["reference_check"] == ["faces found on the astronaut photo and camera frame"]


@needs_seed
def test_wrong_preprocessing_is_named(tmp_path, capsys):
    with pytest.warns(UserWarning, match="with --preprocessing imagenet it scores"):
        _, manifest = _export(tmp_path, "--preprocessing", "biubug6")
    assert any("astronaut photo" in p and "--preprocessing imagenet" in p
               for p in manifest["reference_check"])


def test_user_landmark_model_equals_the_built_in_pipeline(tmp_path, models_dir):
    """FaceMesh + the WFLW-98 map dressed as a user's module (98 points in [-1, 1], no mesh, no
    presence), exported through --model landmarks: on real photos its points equal the built-in
    pipeline's (same detector, same crop)."""
    user = own_models.export("user98", tmp_path / "user")
    manifest = json.loads((user / "manifest.json").read_text())
    lm = manifest["landmarks"]
    assert set(lm["graph"]["outputs"]) == {"points"} and "mesh" not in lm and "presence_threshold" not in lm
    assert lm["track"]["from"] == "points" and lm["layout"] == "WFLW-98"
    from conftest import photo

    options = PipelineOptions.for_stills(passes=1)
    results = {}
    for name, folder in (("user", user), ("built-in", models_dir)):
        m = load_manifest(folder)
        pipe = FacePipeline(m, OnnxRuntime(folder, m), options)
        results[name] = [asyncio.run(pipe.process(PILFrame(photo(p)))).faces
                         for p in ("astronaut", "grace_hopper")]
    for user_faces, builtin_faces in zip(results["user"], results["built-in"]):
        assert len(user_faces) == len(builtin_faces) == 1
        worst = max(abs(a - b) for pa, pb in zip(user_faces[0].landmarks, builtin_faces[0].landmarks)
                    for a, b in zip(pa, pb))
        assert worst < 1e-2, worst
        assert user_faces[0].presence is None and user_faces[0].mesh is None


def test_bad_landmark_module_is_refused_clearly(tmp_path, capsys):
    import export_models

    out = tmp_path / "models"
    for argv, message in (
            (["--module", "examples.facemesh_wflw98:NoSuchClass", "--weights", __file__],
             "has no nn.Module subclass 'NoSuchClass'"),
            (["--module", "examples.facemesh_wflw98:FaceMeshWFLW98", "--weights", __file__],
             "is not a PyTorch checkpoint"),
            (["--module", "examples.facemesh_wflw98", "--weights", __file__], "package.module:Class")):
        assert export_models.main(["--model", "landmarks", "--input-size", "192", *argv,
                                   "--out", str(out)]) == 1
        assert message in capsys.readouterr().err
    assert not out.exists()


@needs_seed
def test_user_landmark_model_pairs_with_your_retinaface(tmp_path):
    """--detector DIR: the user's landmark model behind the user's RetinaFace export, whose graphs
    are copied as they are."""
    import export_models
    from conftest import FACE_BOXES, photo
    from examples.facemesh_wflw98 import pretrained
    import torch

    detector_dir, _ = _export(tmp_path, "--input-size", "320", "--score-threshold", "0.4")
    weights = tmp_path / "facemesh_wflw98.pt"
    torch.save(pretrained().state_dict(), weights)
    out = tmp_path / "paired"
    assert export_models.main(["--model", "landmarks", "--module", "examples.facemesh_wflw98:FaceMeshWFLW98",
                               "--weights", str(weights), "--input-size", "192", "--points", "signed",
                               "--detector", str(detector_dir), "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["detectors"]) == ["retinaface"] and manifest["landmarks"]["count"] == 98
    for f in ("FaceDetector.onnx", "RegressionParser.onnx"):
        assert manifest["files"][f] == json.loads((detector_dir / "manifest.json").read_text())["files"][f]
    m = load_manifest(out)
    faces = asyncio.run(FacePipeline(m, OnnxRuntime(out, m), PipelineOptions.for_stills())
                        .process(PILFrame(photo("astronaut")))).faces
    assert len(faces) == 1 and len(faces[0].landmarks) == 98
    assert iou(faces[0].box, FACE_BOXES["astronaut"]) > 0.5
