"""One-Euro smoothing (facelandmarks.pipeline.smoothing): standard library, runs in the page too."""
import math
import random

import pytest

from facelandmarks.pipeline.options import OneEuroOptions
from facelandmarks.pipeline.smoothing import OneEuroFilter, PointSmoother


def test_first_sample_passes_through_and_constant_stays_constant():
    f = OneEuroFilter()
    assert f([3.0, -2.0], 0.0) == [3.0, -2.0]
    for i in range(1, 50):
        assert f([3.0, -2.0], i / 30) == pytest.approx([3.0, -2.0])


def _jitter(beta):
    rng = random.Random(0)
    f = OneEuroFilter(OneEuroOptions(min_cutoff=0.05, beta=beta))
    raw, out = [], []
    for i in range(300):
        v = 100.0 + rng.gauss(0, 1.0)           # 1 px noise on a still point of a 100 px face
        raw.append(v)
        out.append(f([v], i / 30, scale=100.0)[0])
    spread = lambda xs: math.sqrt(sum((x - 100.0) ** 2 for x in xs) / len(xs))  # noqa: E731
    return spread(out[30:]) / spread(raw[30:])


def test_jitter_is_reduced_on_a_still_face():
    assert _jitter(beta=80.0) < 0.8        # MediaPipe's face parameters: some smoothing, little lag
    assert _jitter(beta=0.0) < 0.35        # the floor cutoff alone smooths hard (and lags)


def test_fast_motion_has_little_lag():
    # a face moving at 3 face sizes per second: the adaptive cutoff keeps up
    f = OneEuroFilter(OneEuroOptions(min_cutoff=0.05, beta=80.0))
    slow = OneEuroFilter(OneEuroOptions(min_cutoff=0.05, beta=0.0))      # plain low-pass with the same floor
    scale = 100.0
    lag_fast = lag_slow = 0.0
    for i in range(60):
        t = i / 30
        x = 300.0 * t
        lag_fast = x - f([x], t, scale)[0]
        lag_slow = x - slow([x], t, scale)[0]
    assert lag_fast < 0.1 * scale            # under a tenth of the face
    assert lag_slow > 5 * lag_fast


def test_speed_is_measured_in_face_sizes():
    # the same motion relative to face size gives the same relative result at any scale
    def run(scale):
        f = OneEuroFilter()
        return [f([scale * math.sin(i / 5)], i / 30, scale)[0] / scale for i in range(40)]
    assert run(50.0) == pytest.approx(run(400.0), rel=1e-9, abs=1e-12)


def test_repeated_or_backwards_timestamps_do_not_divide_by_zero():
    f = OneEuroFilter()
    f([1.0], 1.0)
    assert f([5.0], 1.0) == [1.0]
    assert f([5.0], 0.5) == [1.0]


def test_length_change_restarts():
    f = OneEuroFilter()
    f([1.0, 2.0], 0.0)
    assert f([7.0], 0.1) == [7.0]


def test_point_smoother_shape_and_reset():
    s = PointSmoother()
    pts = [(1.0, 2.0), (3.0, 4.0)]
    assert s(pts, 0.0, 10.0) == pts
    moved = s([(2.0, 2.0), (3.0, 5.0)], 1 / 30, 10.0)
    assert len(moved) == 2 and all(len(p) == 2 for p in moved)
    assert 1.0 < moved[0][0] < 2.0
    s.reset()
    assert s([(9.0, 9.0)], 2.0) == [(9.0, 9.0)]


def test_bad_parameters():
    with pytest.raises(ValueError):
        OneEuroFilter(OneEuroOptions(min_cutoff=0))
    with pytest.raises(ValueError):
        OneEuroFilter(OneEuroOptions(beta=-1))
