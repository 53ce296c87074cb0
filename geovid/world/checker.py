"""Plausibility checker: is an image a clean frame of the world (classical CV, no learned model)?

Used by the tests and by interpolation metrics (ghosting rate of frames decoded by a small VAE), so it accepts
the mild softness of a good VAE reconstruction but rejects cross-fades, noise, blur and foreign images.

How it judges an (H, W, 3) RGB image (rules and measured rates in docs/world.md):

1. **Segmentation.** The ground is neutral grey, objects are strongly saturated, so pixels with HSV
   saturation >= ``sat_min`` (and not too dark) are object pixels. Each is labelled with the nearest palette hue;
   pixels further than ``hue_tol`` degrees from every palette hue are *off-palette*. Connected components per
   colour of at least ``min_area`` pixels (scaled with image area) are objects.
2. **Count and colours.** 1-3 objects; no two objects of one colour (the world never repeats a colour in a
   scene, so a second same-colour blob is a double); off-palette pixels at most ``max_off_palette`` of the
   saturated pixels; no large saturated blob left unassigned.
3. **Ghosts.** Weakly coloured blobs (saturation >= ``faint_sat``, at least ``faint_area`` pixels) away from
   every object are faint ghosts. Rendered objects are saturated almost to the palette's saturation everywhere except an
   anti-aliased rim and a small highlight; a semi-transparent copy (cross-fade) is a blend of the object colour
   and the grey ground, so its saturation is a fraction of the palette's. An object whose *solid* pixels
   (saturation >= ``solid_frac`` x palette saturation) cover less than ``min_solid`` of it is a ghost. Pale
   saturated blobs that never reach solid saturation count as ghosts too.
4. **Noise.** A robust form of Immerkær's noise estimate: sigma = 1.4826 median|I * N| / 6, N the 3x3
   Laplacian-difference kernel, on the ground pixels; the rendered ground is a smooth gradient (sigma ~ 0.3,
   8-bit quantisation).
5. **Blur.** Edge sharpness per object: the largest Sobel gradient of the saturation map on the object's
   boundary, divided by the palette saturation. A sharp anti-aliased edge gives ~0.5 per pixel; a Gaussian blur
   of sigma px gives about erf(1/(sigma sqrt 2))/2 (0.34 at sigma 1, 0.25 at sigma 1.5).
6. **Caption** (optional): parsed with :func:`geovid.world.scene.parse_caption`; ``colours_match`` compares
   the colour multiset, ``matches_caption`` also the count and each object's shape where the shape guess is
   confident.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from geovid.world.palette import PALETTE_NAMES, PALETTE_SAT, as_rgb, hsv_planes, palette_hue_distance
from geovid.world.scene import parse_caption


@dataclass(frozen=True)
class Thresholds:
    """Checker thresholds (defaults tuned on rendered scenes vs. corrupted ones; see docs/world.md).

    Areas are in pixels of a 64x64 image and scale with the image area.
    """

    sat_min: float = 0.30
    """HSV saturation above which a pixel belongs to an object."""
    val_min: float = 0.12
    """Darker pixels are ignored (their hue is meaningless)."""
    hue_tol: float = 24.0
    """Largest hue distance (degrees) to the nearest palette colour."""
    min_area: float = 5.0
    """Smallest object, pixels at 64x64 (the smallest rendered object covers ~15)."""
    speck_area: float = 3.0
    """Saturated blobs below min_area but at least this big count as clutter."""
    max_specks: int = 2
    """More clutter blobs than this means noise or a broken image."""
    max_objects: int = 3
    min_objects: int = 1
    max_off_palette: float = 0.10
    """Largest fraction of saturated pixels whose hue is in no palette colour."""
    solid_frac: float = 0.72
    """A pixel is solid when its saturation is at least this fraction of its palette colour's saturation."""
    min_solid: float = 0.35
    """An object whose solid pixels cover less than this fraction of it is a ghost (semi-transparent)."""
    max_noise: float = 5.0
    """Largest ground noise sigma, in 0-255 units."""
    min_sharpness: float = 0.30
    """Smallest median edge sharpness (gradient of saturation / palette saturation per pixel)."""
    max_ground_sat: float = 0.16
    """Largest mean saturation of the non-object pixels (the ground is grey)."""
    faint_sat: float = 0.08
    """Saturation above which a pixel away from every object is a faint ghost (ground ~0.02)."""
    faint_area: float = 10.0
    """Smallest faint-ghost blob, pixels at 64x64."""
    shape_confidence: float = 0.95
    """Shape guesses at least this confident must agree with the caption's shapes."""

    def scaled(self, factor: float) -> Thresholds:
        """Looser (factor > 1) or stricter (factor < 1) thresholds, e.g. for VAE reconstructions."""
        f = float(factor)
        return replace(self, hue_tol=self.hue_tol * f, max_off_palette=self.max_off_palette * f,
                       solid_frac=self.solid_frac / f ** 0.5, min_solid=self.min_solid / f,
                       max_noise=self.max_noise * f, min_sharpness=self.min_sharpness / f,
                       max_ground_sat=self.max_ground_sat * f, max_specks=round(self.max_specks * f),
                       faint_sat=self.faint_sat * f)


DEFAULT = Thresholds()
#: Presets by name: ``strict`` for rendered frames, ``default``, and ``lenient`` for soft VAE reconstructions.
PRESETS: dict[str, Thresholds] = {"strict": DEFAULT.scaled(0.8), "default": DEFAULT,
                                  "lenient": DEFAULT.scaled(1.3)}


@dataclass
class CheckResult:
    """The checker's verdict on one image."""

    plausible: bool
    reasons: list[str] = field(default_factory=list)
    """Why the image is not plausible (empty when it is)."""
    objects: list[dict[str, Any]] = field(default_factory=list)
    """Detected objects: colour, bbox (x, y, w, h), area, shape guess, solid fraction, sharpness, ..."""
    matches_caption: bool | None = None
    """Objects agree with the caption (count, colours, confident shapes); None without a caption."""
    colours_match: bool | None = None
    """The colours agree with the caption's colours; None without a caption."""
    stats: dict[str, float] = field(default_factory=dict)
    """Image-level measurements: noise, sharpness, off-palette fraction, ..."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _noise_sigma(gray: np.ndarray, mask: np.ndarray) -> float:
    """Noise sigma (gray in 0-255) from the Laplacian-difference kernel of Immerkær (1996).

    The kernel's response to i.i.d. noise has standard deviation 6 sigma and ignores linear gradients; the
    median absolute response (x 1.4826 for a Gaussian) is used instead of Immerkær's mean so that the few
    object edges left in ``mask`` do not count as noise. Falls back to the whole image when ``mask`` covers
    less than a quarter of it (heavy noise makes most pixels look saturated).
    """
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    resp = np.abs(cv2.filter2D(gray, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT))[1:-1, 1:-1]
    m = mask[1:-1, 1:-1]
    vals = resp[m] if m.sum() >= 0.25 * m.size else resp.ravel()
    return float(1.4826 * np.median(vals) / 6.0)


def _shape_guess(comp: np.ndarray, val: np.ndarray, gx: np.ndarray, gy: np.ndarray, min_area: float = 40.0
                 ) -> tuple[str, float, dict[str, float]]:
    """Guess sphere/cube/cylinder for one object; returns ``(shape, confidence, features)``.

    Shading tells the shapes apart better than the outline at 64x64: a sphere's brightness changes vertically
    in its lower half (cubes and cylinder sides are constant down a column); a cube is mostly flat faces
    (``flat``: share of interior pixels whose brightness gradient is < 0.01/px); a cylinder's side is a
    horizontal ramp (its brightness changes smoothly across, where a cube's two side faces meet in a step) and
    its outline is taller than wide. The rules are the leaves of a small decision tree read off rendered objects
    (see :func:`_shape_leaf`); objects under ``min_area`` px (40 at 64x64, scaled with the area; shapes are not guessed in images under
    64 px) are ``unknown``.
    """
    ys, xs = np.nonzero(comp)
    h = int(ys.max() - ys.min() + 1)
    w = int(xs.max() - xs.min() + 1)
    area = len(ys)
    cnts, _ = cv2.findContours(comp.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    c = max(cnts, key=cv2.contourArea)
    hull_area = cv2.contourArea(cv2.convexHull(c))
    perimeter = cv2.arcLength(c, True)
    feats = {"aspect": h / w, "extent": area / (h * w),
             "solidity": float(cv2.contourArea(c) / hull_area) if hull_area > 0 else 1.0,
             "circularity": float(4 * math.pi * cv2.contourArea(c) / perimeter ** 2) if perimeter > 0 else 0.0}
    inner = cv2.erode(comp.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if area < min_area or inner.sum() < 5:
        return "unknown", 0.0, feats
    lower = inner.copy()
    lower[: ys.min() + int(h * 0.55)] = False
    g = np.hypot(gx[inner], gy[inner])
    flat = float(np.mean(g < 0.01))
    lx = float(np.abs(gx[lower]).mean()) if lower.any() else 0.0
    ly = float(np.abs(gy[lower]).mean()) if lower.any() else 0.0
    lgx = np.abs(gx[lower]) if lower.any() else np.zeros(1, np.float32)
    # Peakiness of the horizontal brightness change in the lower half: a cube's two side faces meet in a step
    # (max >> mean), a cylinder's side is a smooth ramp (max ~ 2 x mean).
    peak = float(lgx.max() / (lgx.mean() + 1e-4))
    feats.update(flat=flat, lower_gx=lx, lower_gy=ly, lower_peak=peak)
    shape, conf = _shape_leaf(flat, lx, ly, feats["aspect"], feats["circularity"], peak)
    return shape, conf, feats


def _shape_leaf(flat: float, lx: float, ly: float, aspect: float, circ: float, peak: float) -> tuple[str, float]:
    """The decision rules; each confidence is the share of right guesses in that leaf over 4,400 rendered
    objects (seeds 300000-301999), rounded down."""
    if ly > 0.04:
        return "sphere", 0.99  # 1226 / 1229
    ramp = lx > 0.012 and peak < 3.2
    if flat > 0.34:
        if circ > 0.86:
            return ("cylinder", 0.97) if aspect > 1.19 else ("cube", 0.88)  # 58 / 58, 38 / 43
        return ("cylinder", 0.84) if ramp else ("cube", 0.99)  # 87 / 104, 1070 / 1072
    if aspect <= 1.04:
        return ("cylinder", 0.94) if flat <= 0.14 else ("cube", 0.93)  # 39 / 40, 93 / 100
    return ("cylinder", 0.92) if lx > 0.03 else ("cylinder", 0.72)  # 1034 / 1127, 103 / 144


@dataclass
class _Colours:
    """The image's palette view: which pixels are coloured, their nearest palette colour, off-palette ones."""

    sat: np.ndarray
    val: np.ndarray
    sat_mask: np.ndarray
    label: np.ndarray
    off: np.ndarray
    off_frac: float


def _colours(rgb: np.ndarray, th: Thresholds) -> _Colours:
    hue, sat, val = hsv_planes(rgb)
    sat_mask = (sat >= th.sat_min) & (val >= th.val_min)
    hd = palette_hue_distance(hue)  # (H, W, 6)
    off = sat_mask & (hd.min(-1) > th.hue_tol)
    n_sat = int(sat_mask.sum())
    return _Colours(sat=sat, val=val, sat_mask=sat_mask, label=hd.argmin(-1), off=off,
                    off_frac=float(off.sum() / n_sat) if n_sat else 0.0)


def _objects(c: _Colours, th: Thresholds, area_scale: float) -> tuple[list[dict[str, Any]], int]:
    """The objects (one connected component of one palette colour each, left to right) and the specks."""
    H, W = c.sat.shape
    min_area = th.min_area * area_scale
    speck_area = th.speck_area * area_scale
    objects: list[dict[str, Any]] = []
    specks = 0
    solid = c.sat >= th.solid_frac * PALETTE_SAT[c.label]
    grad = cv2.magnitude(cv2.Sobel(c.sat, cv2.CV_32F, 1, 0, ksize=3),
                         cv2.Sobel(c.sat, cv2.CV_32F, 0, 1, ksize=3)) / 8.0
    # Shapes are guessed from 64 px up (validated at 64-128); smaller images have too few pixels per object.
    shape_area = 40.0 * area_scale if min(H, W) >= 64 else math.inf
    # Brightness gradients per 1/64 of the image width, so the shape rules (tuned at 64x64) hold at any size.
    vgx = cv2.Sobel(c.val, cv2.CV_32F, 1, 0, ksize=3) * (W / 64.0 / 8.0)
    vgy = cv2.Sobel(c.val, cv2.CV_32F, 0, 1, ksize=3) * (W / 64.0 / 8.0)
    kernel = np.ones((3, 3), np.uint8)
    for k, name in enumerate(PALETTE_NAMES):
        m = (c.sat_mask & ~c.off & (c.label == k)).astype(np.uint8)
        if not m.any():
            continue
        n, cc, st, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        for i in range(1, n):
            a = int(st[i, cv2.CC_STAT_AREA])
            if a < min_area:
                if a >= speck_area:
                    specks += 1
                continue
            comp = cc == i
            solid_frac = float((solid & comp).sum() / a)
            # Boundary band: the component's outer ring, where a sharp edge has its largest saturation step.
            ring = cv2.dilate(comp.astype(np.uint8), kernel).astype(bool) & ~cv2.erode(
                comp.astype(np.uint8), kernel).astype(bool)
            sharp = float(np.percentile(grad[ring], 90) / PALETTE_SAT[k]) if ring.any() else 0.0
            shape, conf, feats = _shape_guess(comp, c.val, vgx, vgy, shape_area)
            x, y, w, h = (int(st[i, j]) for j in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH,
                                                  cv2.CC_STAT_HEIGHT))
            objects.append({"colour": name, "bbox": [x, y, w, h], "area": a, "shape": shape,
                            "shape_confidence": round(conf, 3), "solid": round(solid_frac, 3),
                            "sharpness": round(sharp, 3), **{f: round(v, 3) for f, v in feats.items()}})
    objects.sort(key=lambda o: (o["bbox"][0], o["bbox"][1]))
    return objects, specks


def _ground_stats(rgb: np.ndarray, c: _Colours, th: Thresholds, area_scale: float) -> tuple[int, float, float]:
    """What lies away from the objects: faint coloured blobs, the floor's noise σ (0-255) and its saturation."""
    near_obj = cv2.dilate(c.sat_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    ground = ~near_obj
    # Faint ghosts: weakly coloured blobs away from every object (a cross-fade partner at 20-30 % opacity).
    faint = ((c.sat >= th.faint_sat) & (c.val >= th.val_min) & ground).astype(np.uint8)
    n_f, _, st_f, _ = cv2.connectedComponentsWithStats(faint, connectivity=8)
    faint_blobs = int((st_f[1:, cv2.CC_STAT_AREA] >= th.faint_area * area_scale).sum()) if n_f > 1 else 0
    gray = cv2.cvtColor((rgb * 255.0 + 0.5).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    noise = _noise_sigma(gray.astype(np.float32), ground)
    ground_sat = float(c.sat[~c.sat_mask].mean()) if (~c.sat_mask).any() else 1.0
    return faint_blobs, noise, ground_sat


def _reasons(objects: list[dict[str, Any]], stats: dict[str, float], th: Thresholds) -> list[str]:
    """Why the image is not a clean world scene (empty when it is)."""
    reasons: list[str] = []
    if not th.min_objects <= len(objects) <= th.max_objects:
        reasons.append(f"{len(objects)} objects (expected {th.min_objects}-{th.max_objects})")
    dup = [c for c, n in Counter(o["colour"] for o in objects).items() if n > 1]
    if dup:
        reasons.append(f"duplicate {', '.join(sorted(dup))} objects (double or ghost copy)")
    ghosts = [o for o in objects if o["solid"] < th.min_solid]
    if ghosts:
        reasons.append(f"semi-transparent {', '.join(o['colour'] for o in ghosts)} object(s) (ghosting)")
    if stats["off_palette"] > th.max_off_palette:
        reasons.append(f"{stats['off_palette']:.0%} of coloured pixels are off-palette")
    if stats["faint_blobs"]:
        reasons.append(f"{int(stats['faint_blobs'])} faint coloured blob(s) (ghost of a cross-fade)")
    if stats["specks"] > th.max_specks:
        reasons.append(f"{int(stats['specks'])} coloured specks (clutter or noise)")
    if stats["noise"] > th.max_noise:
        reasons.append(f"noisy (sigma {stats['noise']:.1f}/255)")
    if objects and stats["sharpness"] < th.min_sharpness:
        reasons.append(f"blurred (edge sharpness {stats['sharpness']:.2f})")
    if stats["ground_saturation"] > th.max_ground_sat:
        reasons.append(f"background not a grey floor (saturation {stats['ground_saturation']:.2f})")
    return reasons


def _caption_match(caption: str, objects: list[dict[str, Any]], th: Thresholds) -> tuple[bool, bool]:
    """(the colours are the caption's, and the objects are: same count, and no confident wrong shape)."""
    named = parse_caption(caption)
    colours_match = Counter(str(o["colour"]) for o in named) == Counter(o["colour"] for o in objects)
    matches = colours_match and len(named) == len(objects)
    if matches:
        by_colour = {o["colour"]: o for o in objects}
        for want in named:
            got = by_colour[want["colour"]]
            if got["shape_confidence"] >= th.shape_confidence and got["shape"] != want["shape"]:
                matches = False
    return colours_match, matches


def check(image: np.ndarray, caption: str | None = None, thresholds: Thresholds | str | None = None
          ) -> CheckResult:
    """Judge whether ``image`` is a clean world scene (and whether it matches ``caption``).

    Args:
        image: (H, W, 3) RGB (or RGBA, alpha ignored), integer (full range of its dtype) or float in [0, 1];
            any size (thresholds were tuned at 64x64).
        caption: optional caption to compare the detected objects with.
        thresholds: a :class:`Thresholds`, a preset name (``"strict"``, ``"default"``, ``"lenient"``) or
            ``None`` for the defaults.

    Returns:
        A :class:`CheckResult`.
    """
    th = PRESETS[thresholds] if isinstance(thresholds, str) else (thresholds or DEFAULT)
    rgb = as_rgb(image)
    H, W = rgb.shape[:2]
    area_scale = H * W / 4096.0
    colours = _colours(rgb, th)
    objects, specks = _objects(colours, th, area_scale)
    faint_blobs, noise, ground_sat = _ground_stats(rgb, colours, th, area_scale)
    sharpness = float(np.median([o["sharpness"] for o in objects])) if objects else 0.0
    stats = {"noise": noise, "sharpness": sharpness, "off_palette": colours.off_frac, "specks": float(specks),
             "faint_blobs": float(faint_blobs), "ground_saturation": ground_sat, "n_objects": float(len(objects))}
    reasons = _reasons(objects, stats, th)
    colours_match = matches = None
    if caption is not None:
        colours_match, matches = _caption_match(caption, objects, th)
    stats.update(noise=round(noise, 3), sharpness=round(sharpness, 3), off_palette=round(colours.off_frac, 4),
                 ground_saturation=round(ground_sat, 4))
    return CheckResult(plausible=not reasons, reasons=reasons, objects=objects, matches_caption=matches,
                       colours_match=colours_match, stats=stats)
