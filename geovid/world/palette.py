"""The world's palette in HSV and the pixel conversions shared by the two colour-based judges of world images,
the plausibility checker (:mod:`geovid.world.checker`) and the object count (:mod:`geovid.world.objects`)."""

from __future__ import annotations

import cv2
import numpy as np

from geovid.world.scene import PALETTE

#: The palette's colour names in :data:`~geovid.world.scene.PALETTE` order: index k of the arrays below.
PALETTE_NAMES: list[str] = list(PALETTE)
_PALETTE_HSV = cv2.cvtColor(np.array([list(PALETTE.values())], np.float32) / 255.0, cv2.COLOR_RGB2HSV)[0]
#: Hue (degrees) of each palette colour.
PALETTE_HUE: np.ndarray = _PALETTE_HSV[:, 0]
#: HSV saturation of each palette colour.
PALETTE_SAT: np.ndarray = _PALETTE_HSV[:, 1]


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from an RGB(A) image, integer (full range of its dtype) or float."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {img.shape}")
    img = img[..., :3]
    if np.issubdtype(img.dtype, np.integer):
        return img.astype(np.float32) / float(np.iinfo(img.dtype).max)
    return np.clip(img.astype(np.float32), 0.0, 1.0)


def hsv_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue (degrees), saturation and value of a float RGB image from :func:`as_rgb`, each (H, W)."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    return hsv[..., 0], hsv[..., 1], hsv[..., 2]


def palette_hue_distance(hue: np.ndarray) -> np.ndarray:
    """Angular distance (degrees, 0–180) from each hue to every palette hue: ``hue.shape`` plus one axis of
    :data:`PALETTE_NAMES`."""
    d = np.abs(hue[..., None] - PALETTE_HUE) % 360.0
    return np.minimum(d, 360.0 - d)
