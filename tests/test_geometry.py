"""Geometry shared by the CLI and the page: letterbox, crops, affine algebra."""
import math

import numpy as np
import pytest
from PIL import Image

from facelandmarks.pipeline.geometry import (Affine, Crop, MappedPoints, crop_from_box, crop_from_points,
                                             eye_line_angle, iou, letterbox)


@pytest.mark.parametrize("frame,inp,mode,corners", [
    # frame (w,h), input (w,h), mode, model-input corners → expected frame points
    ((640, 480), (128, 128), "center", {(0, 16): (0, 0), (128, 112): (640, 480)}),
    ((480, 640), (128, 128), "center", {(16, 0): (0, 0), (112, 128): (480, 640)}),
    ((640, 480), (640, 640), "top-left", {(0, 0): (0, 0), (640, 480): (640, 480)}),
    ((512, 512), (192, 192), "center", {(0, 0): (0, 0), (192, 192): (512, 512)}),
    ((100, 50), (10, 20), "stretch", {(0, 0): (0, 0), (10, 20): (100, 50)}),
])
def test_letterbox_maps_input_corners_to_frame(frame, inp, mode, corners):
    t = letterbox(*frame, *inp, mode)
    for src, dst in corners.items():
        assert t.apply(*src) == pytest.approx(dst, abs=1e-9)


def test_letterbox_rejects_empty_frame_and_unknown_mode():
    with pytest.raises(ValueError):
        letterbox(0, 480, 128, 128)
    with pytest.raises(ValueError, match="unknown letterbox"):
        letterbox(640, 480, 128, 128, "middle")


@pytest.mark.parametrize("t", [
    Affine(2, 0, 5, 0, 3, -7), Affine(0.5, -0.2, 10, 0.3, 0.9, 4), Crop(100, 80, 50, 0.4).to_frame(192, 192)])
def test_inverse_and_composition(t):
    ident = t.then(t.inverse())
    for p in [(0, 0), (13.5, -2), (100, 200)]:
        assert ident.apply(*p) == pytest.approx(p, abs=1e-9)


@pytest.mark.parametrize("angle", [0.0, 0.3, -1.2, math.pi / 2])
def test_crop_maps_centre_and_axes(angle):
    crop = Crop(200.0, 150.0, 90.0, angle)
    t = crop.to_frame(192, 192)
    assert t.apply(96, 96) == pytest.approx((200, 150))
    # the crop's x axis points along `angle`, its full width is `size` frame pixels
    x1 = t.apply(192, 96)
    assert math.atan2(x1[1] - 150, x1[0] - 200) == pytest.approx(angle)
    assert math.dist(x1, (200, 150)) == pytest.approx(45)


@pytest.mark.parametrize("stride, flat, sx, sy", [
    (2, [0.1, 0.2, 0.5, 0.5, 1.0, 0.0], 192, 192),                 # x, y per point
    (3, [0.1, 0.2, 9.0, 0.5, 0.5, -3.0, 1.0, 0.0, 0.4], 192, 96),  # x, y, z per point: z ignored
    (2, memoryview(np.array([0.25, 0.75, 0.5, 0.1], np.float32)), 1.0, 1.0),  # to_py()'s kind
])
def test_map_flat_is_apply_all_of_the_scaled_points(stride, flat, sx, sy):
    t = Crop(200.0, 150.0, 90.0, 0.3).to_frame(192, 192)
    xs, ys = t.map_flat(flat, stride, sx, sy)
    want = t.apply_all((flat[i] * sx, flat[i + 1] * sy) for i in range(0, len(flat), stride))
    np.testing.assert_allclose(np.column_stack([xs, ys]), np.asarray(want), rtol=0, atol=1e-9)


@pytest.mark.parametrize("flat,sx,sy,zscale", [
    ([0.1, 0.2, 0.3, 0.9, 0.5, -0.2], 192.0, 192.0, 90.0),
    (memoryview(np.array([0.1, 0.2, 0.3, 0.9, 0.5, -0.2], np.float32)).tolist(), 2.0, 3.0, 1.0),
    ([], 1.0, 1.0, 1.0),
])
def test_map_xyz_is_map_flat_with_z_scaled(flat, sx, sy, zscale):
    t = Crop(200.0, 150.0, 90.0, 0.3).to_frame(192, 192)
    xs, ys = t.map_flat(flat, 3, sx, sy)
    want = [(x, y, z * zscale) for x, y, z in zip(xs, ys, flat[2::3])]
    assert t.map_xyz(flat, sx, sy, zscale) == want


MESH_LIKE = np.random.default_rng(7).uniform(-0.2, 1.2, (50, 3)).round(4).ravel().tolist()


@pytest.mark.parametrize("crop,sx,sy,zscale", [
    (Crop(200.0, 150.0, 90.0, 0.3), 192.0, 192.0, 90.0),
    (Crop(320.0, 240.0, 300.0, -2.5), 192.0, 192.0, 300.0),
    (Crop(10.0, 5.0, 40.0, 0.0), 2.0, 3.0, 1.0),
])
def test_mapped_points_are_map_xyz_read_lazily(crop, sx, sy, zscale):
    t = crop.to_frame(192, 192)
    want = t.map_xyz(MESH_LIKE, sx, sy, zscale)
    pts = MappedPoints(MESH_LIKE, t, sx, sy, zscale)
    assert len(pts) == 50 and repr(pts) == "MappedPoints(50 points)"
    # single points are mapped alone (the list is not built)...
    for i in (0, 13, 49, -1, -50):
        assert pts[i] == pytest.approx(want[i], abs=1e-9)
    assert pts._points is None
    with pytest.raises(IndexError):
        pts[50]
    with pytest.raises(IndexError):
        pts[-51]
    # ...the whole sequence on first iteration, slice or len-and-index use
    assert pts[2:5] == want[2:5] and list(pts) == want and pts[-1] == want[-1]


@pytest.mark.parametrize("angle", [0.0, 0.4, -1.3, math.pi])
def test_crop_from_mapped_points_reads_their_extent_without_mapping(angle):
    t = Crop(250.0, 180.0, 120.0, angle).to_frame(192, 192)
    pts = MappedPoints(MESH_LIKE, t, 192.0, 192.0, 120.0)
    right, left = pts[3], pts[11]
    lazy = crop_from_points(pts, right, left, 1.5)
    assert pts._points is None
    full = crop_from_points(t.map_xyz(MESH_LIKE, 192.0, 192.0, 120.0), right, left, 1.5)
    assert (lazy.cx, lazy.cy, lazy.size, lazy.angle) == pytest.approx((full.cx, full.cy, full.size, full.angle),
                                                                      abs=1e-9)


def test_canvas_transform_is_frame_to_input():
    t = Crop(200.0, 150.0, 90.0, 0.3).to_frame(192, 192)
    a, b, c, d, e, f = t.canvas_transform()
    x, y = t.apply(10, 20)
    assert (a * x + c * y + e, b * x + d * y + f) == pytest.approx((10, 20))


def test_pil_sampling_follows_the_affine():
    # a white square on black: sampled through a crop centred on it, it must land in the centre
    im = Image.new("RGB", (300, 200))
    im.paste((255, 255, 255), (140, 90, 160, 110))
    t = Crop(150, 100, 40, 0.0).to_frame(40, 40)
    out = np.asarray(im.transform((40, 40), Image.Transform.AFFINE, t.pil_data(),
                                  resample=Image.Resampling.BILINEAR))
    ys, xs = np.nonzero(out[..., 0] > 128)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (10, 29, 10, 29)


def test_eye_line_and_crop_from_box():
    assert eye_line_angle((0, 0), (10, 0)) == 0
    assert eye_line_angle((0, 0), (10, 10)) == pytest.approx(math.pi / 4)
    crop = crop_from_box((100, 100, 200, 140), (120, 110), (180, 110), 1.5)
    assert (crop.cx, crop.cy, crop.size, crop.angle) == pytest.approx((150, 120, 150, 0))


def test_crop_from_points_uses_the_face_axes():
    # a 40x20 rectangle of points rotated by 30°: in its own axes the extent is 40 long
    a = math.radians(30)
    pts = [(u * math.cos(a) - v * math.sin(a) + 50, u * math.sin(a) + v * math.cos(a) + 60)
           for u in (-20, 0, 20) for v in (-10, 10)]
    right, left = pts[0], pts[-2]
    crop = crop_from_points(pts, (50 - 20 * math.cos(a), 60 - 20 * math.sin(a)),
                            (50 + 20 * math.cos(a), 60 + 20 * math.sin(a)), 1.5)
    assert (crop.cx, crop.cy, crop.size, crop.angle) == pytest.approx((50, 60, 60, a))


@pytest.mark.parametrize("a,b,expected", [
    ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
    ((0, 0, 10, 10), (5, 0, 15, 10), 1 / 3),
    ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
])
def test_iou(a, b, expected):
    assert iou(a, b) == pytest.approx(expected)
