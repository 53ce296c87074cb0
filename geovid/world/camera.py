"""The world's fixed pinhole camera and light (shared by the scene layout and the renderer).

World units: X right, Y up, Z away from the camera; the ground is Y = 0. The camera looks down at the ground at
33 degrees from a height of 6.2 units; the light comes from the upper left, slightly from the camera's side.
"""

from __future__ import annotations

import math

import numpy as np

CAM = np.array([0.0, 6.2, -7.6])
PITCH = math.radians(33.0)
FWD = np.array([0.0, -math.sin(PITCH), math.cos(PITCH)])
RIGHT = np.array([1.0, 0.0, 0.0])
UP = np.array([0.0, math.cos(PITCH), math.sin(PITCH)])
FOCAL = 1.7  # focal length in units of the image width

LIGHT = np.array([-0.55, 1.0, -0.45]) / np.linalg.norm([-0.55, 1.0, -0.45])


def project(p: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """World points (..., 3) to pixel coordinates (..., 2) for an image ``size`` pixels wide, plus depths."""
    d = p - CAM
    depth = d @ FWD
    f = FOCAL * size
    u = size / 2 + f * (d @ RIGHT) / depth
    v = size / 2 - f * (d @ UP) / depth
    return np.stack([u, v], axis=-1), depth


def half_width(z: float) -> float:
    """Half the visible ground width (world units) on the line Y = 0, Z = ``z``."""
    # Scalar arithmetic: scene layout calls this thousands of times and numpy on 3-vectors is slow.
    depth = (0.0 - CAM[1]) * FWD[1] + (z - CAM[2]) * FWD[2]
    return float(depth * 0.5 / FOCAL)
