"""One-Euro smoothing of landmarks over time (Casiez, Roussel, Vogel, CHI 2012).

A low-pass filter whose cutoff rises with speed: still faces get heavy smoothing (no jitter), moving
faces light smoothing (little lag). Pure Python; runs in the page under Pyodide and in the CLI.

Speeds are measured in *face sizes per second* (pass ``scale`` = the face's size in pixels), so the
same parameters work for a small face far away and a large face close up — MediaPipe's face-landmark
smoother does the same (velocity scaled by the face box). The parameters and their defaults are
:class:`~.options.OneEuroOptions`.
"""
from __future__ import annotations

import math
from itertools import chain
from typing import Sequence

from .geometry import Point
from .options import OneEuroOptions


def _alpha(cutoff: float, dt: float) -> float:
    """Smoothing factor of a first-order low-pass filter with ``cutoff`` Hz sampled every ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over a vector of floats (one independent filter per component)."""

    def __init__(self, options: OneEuroOptions = OneEuroOptions()):
        self.options = options
        self.reset()

    def reset(self) -> None:
        self._x: list[float] | None = None
        self._dx: list[float] | None = None
        self._t: float | None = None

    def __call__(self, values: Sequence[float], t: float, scale: float = 1.0) -> list[float]:
        """Filter the sample ``values`` taken at time ``t`` (seconds). ``scale`` divides speeds
        (pass the face size in pixels so speeds are in face sizes per second)."""
        values = list(values)        # floats already (model outputs); no float() per value
        if self._x is None or len(values) != len(self._x) or self._t is None:
            self._x, self._dx, self._t = values, [0.0] * len(values), t
            return list(values)
        dt = t - self._t
        if dt <= 0:            # same timestamp (or clock went back): nothing new to smooth over
            return list(self._x)
        inv_scale = 1.0 / scale if scale > 0 else 1.0
        a_d = _alpha(self.options.d_cutoff, dt)
        # dx = a_d·(v − x_prev)/dt + (1 − a_d)·dx_prev; x = x_prev + a·(v − x_prev) with
        # a = _alpha(min_cutoff + beta·|dx|/scale, dt) = c / (c + 1), c = 2π·dt·cutoff: the constants
        # folded, and comprehensions, not an append loop (this runs over every point of every frame);
        # |dx| as a conditional, not abs(): a builtin call per value costs ~0.8 µs under Pyodide
        k_d, keep_d = a_d / dt, 1.0 - a_d
        c0 = 2.0 * math.pi * dt * self.options.min_cutoff
        c1 = 2.0 * math.pi * dt * self.options.beta * inv_scale
        dx_out = [k_d * (v - xp) + keep_d * dxp for v, xp, dxp in zip(values, self._x, self._dx)]
        x_out = [xp + (c := c0 + c1 * (dx if dx >= 0.0 else -dx)) / (c + 1.0) * (v - xp)
                 for v, xp, dx in zip(values, self._x, dx_out)]
        self._x, self._dx, self._t = x_out, dx_out, t
        return list(x_out)


class PointSmoother:
    """One-Euro filter over a list of 2-D points (e.g. 98 landmarks, optionally a mesh's x, y)."""

    def __init__(self, options: OneEuroOptions = OneEuroOptions()):
        self.filter = OneEuroFilter(options)

    def reset(self) -> None:
        self.filter.reset()

    def __call__(self, points: Sequence[Sequence[float]], t: float, scale: float = 1.0) -> list[Point]:
        # x, y of each point (a mesh's points carry z too); 2-D points flattened without slicing
        flat = (list(chain.from_iterable(points)) if points and len(points[0]) == 2
                else [c for p in points for c in p[:2]])
        out = self.filter(flat, t, scale)
        return list(zip(out[0::2], out[1::2]))
