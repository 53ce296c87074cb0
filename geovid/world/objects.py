"""Object and ghost count of a world image, independent of any model (docs/method.md §8.6, docs/world.md).

The world's ground is neutral grey and its objects are strongly saturated in one of six palette colours, never two
objects of one colour in a scene. So an image's objects can be counted from colour alone:

1. **Colour.** A pixel is *coloured* when its HSV saturation is at least ``faint_sat`` (and it is not too dark)
   and its hue within ``hue_tol`` degrees of a palette hue; it takes that palette colour. A coloured pixel is
   *core* when its saturation is at least ``core_frac`` × its palette colour's saturation.
2. **Objects** are the connected regions (8-connectivity) of core pixels of one colour with at least ``min_core``
   pixels.
3. **Ghosts** are the connected regions of coloured pixels of one colour farther than ``rim`` pixels from every
   core, with at least ``min_area`` pixels: faint colour without a saturated core — what a cross-fade (lerp's
   double exposure) or a half-formed object leaves, also where it touches a real object.
4. **Verdict against the endpoints.** :func:`frame_is_clean` — the frame shows exactly the objects of one of the
   given scenes (the multiset of colours: an interpolation between A and B may show A's objects or B's, which
   differ when an object changes colour or appears) and no ghost. A second same-colour object (a double) or any
   extra colour fails.

Areas are in pixels of a 64×64 image and scale with the image area. The thresholds were set on rendered scenes
and on synthetic cross-fades before any interpolation was counted (``tests/test_world_objects.py`` pins: every
rendered held-out scene counts exactly its objects and no ghost; a 50 % cross-fade of two positions of an object
shows ghosts, not objects) and are not tuned on interpolation results.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from geovid.world.palette import PALETTE_NAMES, PALETTE_SAT, as_rgb, hsv_planes, palette_hue_distance
from geovid.world.scene import Scene


@dataclass(frozen=True)
class CountThresholds:
    """Thresholds of the object count (areas in pixels at 64×64)."""

    faint_sat: float = 0.15
    """Saturation from which a pixel is coloured (the grey ground is ~0.02, a 50 % cross-fade ~0.4 of the palette)."""
    val_min: float = 0.12
    """Darker pixels are ignored (their hue is meaningless)."""
    hue_tol: float = 30.0
    """Largest hue distance (degrees) to the nearest palette colour."""
    min_area: float = 6.0
    """Smallest coloured region that counts (object or ghost); smaller ones are specks."""
    core_frac: float = 0.72
    """A pixel is core when its saturation is at least this fraction of its palette colour's saturation."""
    min_core: float = 6.0
    """Pixels a connected core needs to be an object (the smallest rendered object has ~15 px, most of them core)."""
    rim: float = 2.0
    """Coloured pixels within this many pixels of a core belong to its object (anti-aliased rim, soft edges)."""


DEFAULT_COUNT = CountThresholds()


@dataclass
class ObjectCount:
    """Objects and ghosts found in one image."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    """Regions with a saturated core: colour, area, core pixels, bbox (x, y, w, h), centroid (x, y)."""
    ghosts: list[dict[str, Any]] = field(default_factory=list)
    """Coloured regions without a saturated core (same fields)."""

    @property
    def colours(self) -> Counter[str]:
        """Multiset of the objects' colours."""
        return Counter(o["colour"] for o in self.objects)

    @property
    def n_objects(self) -> int:
        return len(self.objects)

    @property
    def n_ghosts(self) -> int:
        return len(self.ghosts)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n_objects": self.n_objects, "n_ghosts": self.n_ghosts}


def _region(name: str, st: np.ndarray, cen: np.ndarray, n_core: int) -> dict[str, Any]:
    return {"colour": name, "area": int(st[cv2.CC_STAT_AREA]), "core": n_core,
            "bbox": [int(st[j]) for j in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT)],
            "centroid": [round(float(cen[0]), 2), round(float(cen[1]), 2)]}


def count_objects(image: np.ndarray, thresholds: CountThresholds | None = None) -> ObjectCount:
    """Count the objects and ghosts of a world image (see the module docstring).

    Args:
        image: (H, W, 3) RGB (RGBA: alpha ignored), integer (full range of its dtype) or float in [0, 1].
        thresholds: :class:`CountThresholds` (default :data:`DEFAULT_COUNT`).
    """
    th = thresholds or DEFAULT_COUNT
    rgb = as_rgb(image)
    area_scale = rgb.shape[0] * rgb.shape[1] / 4096.0
    hue, sat, val = hsv_planes(rgb)
    d = palette_hue_distance(hue)
    label = d.argmin(-1)
    coloured = (sat >= th.faint_sat) & (val >= th.val_min) & (d.min(-1) <= th.hue_tol)
    core = sat >= th.core_frac * PALETTE_SAT[label]
    out = ObjectCount()
    core_all = (core & coloured).astype(np.uint8)
    r = max(1, round(th.rim * area_scale**0.5))
    near_core = cv2.dilate(core_all, np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(bool)
    for k, name in enumerate(PALETTE_NAMES):
        mine = coloured & (label == k)
        if not mine.any():
            continue
        # Objects: connected saturated cores of this colour.
        n, _, st, cen = cv2.connectedComponentsWithStats((mine & core).astype(np.uint8), connectivity=8)
        for i in range(1, n):
            if st[i, cv2.CC_STAT_AREA] >= th.min_core * area_scale:
                out.objects.append(_region(name, st[i], cen[i], int(st[i, cv2.CC_STAT_AREA])))
        # Ghosts: coloured pixels of this colour farther than the rim from every core, in regions big enough.
        n, _cc, st, cen = cv2.connectedComponentsWithStats((mine & ~near_core).astype(np.uint8), connectivity=8)
        for i in range(1, n):
            if st[i, cv2.CC_STAT_AREA] >= th.min_area * area_scale:
                out.ghosts.append(_region(name, st[i], cen[i], 0))
    out.objects.sort(key=lambda o: (o["centroid"][0], o["centroid"][1]))
    out.ghosts.sort(key=lambda o: (o["centroid"][0], o["centroid"][1]))
    return out


def scene_colours(scene: Scene) -> Counter[str]:
    """The multiset of a scene's object colours (what a clean frame of it shows)."""
    return Counter(o.colour for o in scene.objects)


def frame_is_clean(count: ObjectCount, expected: list[Counter[str]]) -> bool:
    """Exactly the objects of one of the ``expected`` scenes (colour multisets) and no ghost."""
    return not count.ghosts and any(count.colours == e for e in expected)


def clean_rate(frames: np.ndarray, expected: list[Counter[str]],
               thresholds: CountThresholds | None = None) -> tuple[float, list[dict[str, Any]]]:
    """Share of ``frames`` (N, H, W, 3) that are clean (:func:`frame_is_clean`) and the per-frame counts."""
    rows = []
    for f in frames:
        c = count_objects(f, thresholds)
        rows.append({"clean": frame_is_clean(c, expected), "n_objects": c.n_objects, "n_ghosts": c.n_ghosts,
                     "colours": dict(c.colours)})
    return (float(np.mean([r["clean"] for r in rows])) if rows else float("nan")), rows


__all__ = ["DEFAULT_COUNT", "CountThresholds", "ObjectCount", "clean_rate", "count_objects", "frame_is_clean",
           "scene_colours"]
