"""Drawing primitives of the demo renderer: the per-image coordinate frame and soft-edged shapes.

Shapes return an alpha in [0, 1] whose edge is a one-pixel linear ramp of the signed distance
(`step`): anti-aliasing without supersampling.
"""

from __future__ import annotations

import math

import numpy as np

from bench.demo.params import Nuisance

Window = tuple[slice, slice]


def clamp(value: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip to [low, high] (a fresh array)."""
    # ufuncs rather than np.clip: its Python wrapper costs more than the arithmetic here.
    return np.minimum(np.maximum(value, low), high)


def step(distance: np.ndarray, sharpness: float) -> np.ndarray:
    """Soft inside-test: 1 where distance > 0 (in canonical units), ramping over 1/sharpness."""
    value = distance * np.float32(sharpness) + np.float32(0.5)
    return np.minimum(np.maximum(value, 0.0, out=value), 1.0, out=value)


def inside(dx: np.ndarray, dy: np.ndarray, a: float, b: float) -> np.ndarray:
    """Approximate signed distance into the ellipse with half-axes a, b (positive inside)."""
    x, y = dx * np.float32(1.0 / a), dy * np.float32(1.0 / b)
    # (1 - r) * min(a, b) is close to the true distance near the outline of a mild ellipse.
    return (1.0 - np.sqrt(x * x + y * y)) * np.float32(min(a, b))


def ellipse(dx: np.ndarray, dy: np.ndarray, a: float, b: float, sharpness: float) -> np.ndarray:
    """Alpha of the ellipse with half-axes a, b centred at dx = dy = 0."""
    return step(inside(dx, dy, a, b), sharpness)


def paint(image: np.ndarray, window: Window, alpha: np.ndarray, colour) -> None:
    """Blend `colour` over image[:, window] (channels first) with opacity `alpha`, in place."""
    region = image[(slice(None), *window)]
    region += alpha * (np.asarray(colour, np.float32)[:, None, None] - region)


class Frame:
    """Pixel grid of one image expressed in the canonical face frame.

    X, Y: canonical image-plane coordinates of every pixel (after undoing roll, scale, shift).
    U, V: coordinates on the face surface (after undoing yaw and pitch, modelled as rotations of
    a cylinder around the head), where the facial features are defined.
    """

    def __init__(self, face: dict[str, float], nuisance: Nuisance, size: int) -> None:
        self.size = size
        self.k = nuisance.scale  # pixels per canonical unit: the edge sharpness of every shape
        self.yaw, self.pitch = nuisance.yaw, nuisance.pitch
        self.cos, self.sin = math.cos(nuisance.roll), math.sin(nuisance.roll)
        self.shift = (nuisance.shift_x, nuisance.shift_y)
        self.centre = (size - 1) / 2.0
        grid = np.arange(size, dtype=np.float32) - np.float32(self.centre)
        self.px = grid[None, :]
        self.py = grid[:, None]
        sx = self.px - np.float32(nuisance.shift_x)
        sy = self.py - np.float32(nuisance.shift_y)
        inverse = np.float32(1.0 / nuisance.scale)
        c, s = np.float32(self.cos), np.float32(self.sin)
        self.X = (c * sx + s * sy) * inverse
        self.Y = (c * sy - s * sx) * inverse
        self.radius_u = face["head_w"] * 1.15
        self.radius_v = face["head_h"] * 1.1
        self.head_y = face["head_y"]
        self.U = self._unwrap(self.X, self.radius_u, self.yaw)
        self.V = self._unwrap(self.Y - np.float32(self.head_y), self.radius_v, self.pitch)
        self.V += np.float32(self.head_y)
        self.face = np.ones_like(self.X)  # the head's alpha, once the head is painted

    @staticmethod
    def _unwrap(coordinate: np.ndarray, radius: float, angle: float) -> np.ndarray:
        """Image coordinate -> surface coordinate of a cylinder of `radius` turned by `angle`."""
        if angle == 0.0:
            return coordinate.copy()
        depth = np.sqrt(np.maximum(np.float32(radius * radius) - coordinate * coordinate, 0.0))
        return coordinate * np.float32(math.cos(angle)) - depth * np.float32(math.sin(angle))

    def _wrap(self, value: float, radius: float, angle: float) -> float:
        """Surface coordinate -> image coordinate (the inverse of _unwrap, for windows)."""
        ratio = min(max(value / radius, -1.0), 1.0)
        return radius * math.sin(math.asin(ratio) + angle)

    def window_xy(self, cx: float, cy: float, radius: float) -> Window | None:
        """Pixel slices covering the canonical disc (cx, cy, radius); None when off the image."""
        k = self.k
        x = k * (self.cos * cx - self.sin * cy) + self.shift[0] + self.centre
        y = k * (self.sin * cx + self.cos * cy) + self.shift[1] + self.centre
        reach = radius * k + 2.0
        left, right = max(int(x - reach), 0), min(int(x + reach) + 2, self.size)
        top, bottom = max(int(y - reach), 0), min(int(y + reach) + 2, self.size)
        if left >= right or top >= bottom:
            return None
        return slice(top, bottom), slice(left, right)

    def window_uv(self, cu: float, cv: float, radius: float) -> Window | None:
        """Pixel slices covering a feature at surface position (cu, cv) of extent `radius`."""
        cx = self._wrap(cu, self.radius_u, self.yaw)
        cy = self._wrap(cv - self.head_y, self.radius_v, self.pitch) + self.head_y
        return self.window_xy(cx, cy, radius)

    def rows_where(self, y: float, below: bool) -> slice | None:
        """Rows holding some pixel with canonical Y > y (below) or Y < y (Y is linear in the row
        and column, so the rows are contiguous); None when there are none."""
        extreme = self.Y.max(axis=1) > y if below else self.Y.min(axis=1) < y
        rows = np.nonzero(extreme)[0]
        return slice(int(rows[0]), int(rows[-1]) + 1) if rows.size else None

    def rotated(self, window: Window, cu: float, cv: float, angle: float):
        """(du, dv) of the window's pixels relative to (cu, cv), turned by `angle` radians."""
        du = self.U[window] - np.float32(cu)
        dv = self.V[window] - np.float32(cv)
        if angle == 0.0:
            return du, dv
        c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
        return du * c + dv * s, dv * c - du * s
