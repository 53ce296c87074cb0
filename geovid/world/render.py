"""Fast procedural renderer of world scenes (numpy + OpenCV, no 3-D engine).

A pinhole camera looks down at the ground plane at ~33 degrees. Objects are rendered at 4x the output size
(opaque, painter's order far-to-near) with Lambert shading, an ambient term and a Blinn highlight from one
light at the upper left; the object layer and its coverage are downsampled with ``cv2.INTER_AREA`` (that is
the anti-aliasing) and composited over a ground with a light gradient and soft blurred contact shadows, which
are smooth and therefore rendered directly at the output size. Everything is deterministic: the same scene
gives the same pixels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import cv2
import numpy as np

from geovid.world.camera import CAM, FOCAL, FWD, LIGHT, RIGHT, UP, project
from geovid.world.scene import PALETTE, Scene, SceneObject, caption, ground_to_world, random_scene

SUPERSAMPLE = 4

# float32 copies: per-pixel shading stays in float32 (float64 constants would upcast every array).
_CAM, _FOCAL = CAM, FOCAL
_FWD, _RIGHT, _UP, _LIGHT = (v.astype(np.float32) for v in (FWD, RIGHT, UP, LIGHT))
_project = project
_HALF = _LIGHT - _FWD
_HALF = _HALF / np.linalg.norm(_HALF)
_AMBIENT, _DIFFUSE = 0.42, 0.62

_PAL = {k: np.array(v, np.float32) / 255.0 for k, v in PALETTE.items()}


def _shade(normal: np.ndarray) -> np.ndarray:
    """Lambert factor for unit normals (..., 3)."""
    return _AMBIENT + _DIFFUSE * np.clip(normal @ _LIGHT, 0.0, None)


@functools.lru_cache(maxsize=8)
def ground(size: int = 64) -> np.ndarray:
    """The empty ground at ``size`` x ``size``: float32 RGB in [0, 1] (cached; do not modify)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    # Far (top) is brighter than near, plus a broad spot where the light falls; neutral grey so objects are the
    # only saturated pixels.
    base = 0.50 + 0.10 * (1.0 - yy)
    spot = 0.09 * np.exp(-(((xx - 0.38) / 0.55) ** 2 + ((yy - 0.35) / 0.6) ** 2))
    g = base + spot
    img = np.stack([g * 0.99, g, g * 1.01], axis=-1)  # a hint of cool grey, far below the palette's chroma
    img.setflags(write=False)
    return img


def _shadow_mask(scene: Scene, size: int) -> np.ndarray:
    """Soft contact shadows (1 = lit, lower = shadowed), float32 (size, size)."""
    occl = np.zeros((size, size), np.float32)
    if not scene.objects:
        return 1.0 - occl
    shift = np.array([-_LIGHT[0], 0.0, -_LIGHT[2]]) / _LIGHT[1]  # ground offset per unit height
    for o in scene.objects:
        X, Z = ground_to_world(o.x, o.y)
        r = o.radius
        h = {"sphere": r, "cube": 0.8 * r, "cylinder": 0.9 * r}[o.shape]
        centre = np.array([X, 0.0, Z]) + shift * h * 0.9
        pts = centre + np.array([[r * 1.15, 0, 0], [-r * 1.15, 0, 0], [0, 0, r * 1.3], [0, 0, -r * 1.0]])
        uv, _ = _project(pts, size)
        c = uv.mean(axis=0)
        ax = (abs(uv[0, 0] - uv[1, 0]) / 2, abs(uv[2, 1] - uv[3, 1]) / 2)
        cv2.ellipse(occl, (round(c[0] * 16), round(c[1] * 16)), (round(ax[0] * 16), round(ax[1] * 16)), 0, 0, 360,
                    1.0, -1, cv2.LINE_AA, 4)
    sigma = 0.035 * size
    occl = cv2.GaussianBlur(occl, (0, 0), sigma)
    return 1.0 - 0.45 * np.clip(occl, 0.0, 1.0)


def _draw_sphere(col: np.ndarray, alpha: np.ndarray, o: SceneObject, S: int) -> None:
    X, Z = ground_to_world(o.x, o.y)
    r = o.radius
    (uv,), (depth,) = _project(np.array([[X, r, Z]]), S)
    rad = _FOCAL * S * r / depth
    x0, x1 = max(int(uv[0] - rad) - 1, 0), min(int(uv[0] + rad) + 2, S)
    y0, y1 = max(int(uv[1] - rad) - 1, 0), min(int(uv[1] + rad) + 2, S)
    if x0 >= x1 or y0 >= y1:
        return
    a = (np.arange(x0, x1, dtype=np.float32) + 0.5 - uv[0]) / rad
    b = -(np.arange(y0, y1, dtype=np.float32) + 0.5 - uv[1]) / rad
    A, B = np.meshgrid(a, b)
    rr = A * A + B * B
    inside = rr <= 1.0
    c = np.sqrt(np.clip(1.0 - rr, 0.0, None))
    # Normal in world coordinates from screen offsets (toward the camera is -_FWD).
    n = A[..., None] * _RIGHT + B[..., None] * _UP - c[..., None] * _FWD
    lam = _shade(n)
    spec = np.clip(n @ _HALF, 0.0, None) ** 40 * 0.45
    rgb = _PAL[o.colour] * lam[..., None] + spec[..., None]
    np.copyto(col[y0:y1, x0:x1], rgb, where=inside[..., None])
    np.copyto(alpha[y0:y1, x0:x1], 1.0, where=inside)


def _poly(img: np.ndarray, pts: np.ndarray, value: float | tuple[float, ...]) -> None:
    cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], value, cv2.LINE_8, 4)


def _draw_cube(col: np.ndarray, alpha: np.ndarray, o: SceneObject, S: int) -> None:
    X, Z = ground_to_world(o.x, o.y)
    h = 0.8 * o.radius  # half side: a cube looks as big as a sphere of the same size class
    t = math.radians(o.rotation)
    ca, sa = math.cos(t), math.sin(t)
    ex = np.array([ca, 0.0, sa]) * h
    ez = np.array([-sa, 0.0, ca]) * h
    ey = np.array([0.0, h, 0.0])
    c = np.array([X, h, Z])
    base = _PAL[o.colour]
    for n_axis, u_axis, v_axis in ((ey, ex, ez), (ex, ey, ez), (-ex, ey, ez), (ez, ey, ex), (-ez, ey, ex)):
        centre = c + n_axis
        normal = n_axis / h
        if (centre - _CAM) @ normal >= 0:  # back face
            continue
        quad = np.array([centre + u_axis + v_axis, centre + u_axis - v_axis, centre - u_axis - v_axis,
                         centre - u_axis + v_axis])
        uv, _ = _project(quad, S)
        shade = float(_shade(normal))
        _poly(col, uv, tuple(float(v) for v in base * shade))
        _poly(alpha, uv, 1.0)


def _draw_cylinder(col: np.ndarray, alpha: np.ndarray, o: SceneObject, S: int) -> None:
    X, Z = ground_to_world(o.x, o.y)
    r = 0.85 * o.radius
    height = 1.7 * r
    ang = np.linspace(0.0, 2 * math.pi, 48, endpoint=False)
    ring = np.stack([X + r * np.cos(ang), np.zeros_like(ang), Z + r * np.sin(ang)], axis=-1)
    bot, _ = _project(ring, S)
    top, _ = _project(ring + np.array([0.0, height, 0.0]), S)
    base = _PAL[o.colour]
    # Side: the hull of both rims, shaded per column by the horizontal normal facing the camera.
    hull = cv2.convexHull(np.concatenate([bot, top]).astype(np.float32)).reshape(-1, 2)
    x0, x1 = max(int(hull[:, 0].min()) - 1, 0), min(int(hull[:, 0].max()) + 2, S)
    y0, y1 = max(int(hull[:, 1].min()) - 1, 0), min(int(hull[:, 1].max()) + 2, S)
    if x0 >= x1 or y0 >= y1:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    _poly(mask, hull - np.array([x0, y0]), 1)
    (cuv,), (depth,) = _project(np.array([[X, 0.0, Z]]), S)
    half_w = _FOCAL * S * r / depth
    a = np.clip((np.arange(x0, x1, dtype=np.float32) + 0.5 - cuv[0]) / half_w, -1.0, 1.0)
    # Side normal: horizontal, facing the camera's horizontal direction.
    n = np.stack([a, np.zeros_like(a), -np.sqrt(1.0 - a * a)], axis=-1)
    lam = _shade(n.astype(np.float32))
    spec = np.clip(n @ _HALF, 0.0, None) ** 20 * 0.25
    rowcol = (base[None, :] * lam[:, None] + spec[:, None].astype(np.float32))  # (W, 3)
    m = mask.astype(bool)
    np.copyto(col[y0:y1, x0:x1], rowcol[None], where=m[..., None])
    np.copyto(alpha[y0:y1, x0:x1], 1.0, where=m)
    top_shade = float(_shade(np.array([0.0, 1.0, 0.0])))
    _poly(col, top, tuple(float(v) for v in base * top_shade * 1.04))
    _poly(alpha, top, 1.0)


_DRAW = {"sphere": _draw_sphere, "cube": _draw_cube, "cylinder": _draw_cylinder}


def render_float(scene: Scene, size: int = 64) -> np.ndarray:
    """Render to float32 RGB in [0, 1], shape (size, size, 3)."""
    if size < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    S = size * SUPERSAMPLE
    col = np.zeros((S, S, 3), np.float32)
    alpha = np.zeros((S, S), np.float32)
    for o in scene.draw_order():
        _DRAW[o.shape](col, alpha, o, S)
    col = cv2.resize(col, (size, size), interpolation=cv2.INTER_AREA)
    cov = cv2.resize(alpha, (size, size), interpolation=cv2.INTER_AREA)[..., None]
    bg = ground(size) * _shadow_mask(scene, size)[..., None]
    return np.clip(col + (1.0 - cov) * bg, 0.0, 1.0)


def render(scene: Scene, size: int = 64) -> np.ndarray:
    """Render a scene to an (size, size, 3) uint8 RGB image (deterministic).

    Args:
        scene: the scene.
        size: output width and height in pixels (rendered at 4x and downsampled with ``INTER_AREA``).
    """
    return (render_float(scene, size) * 255.0 + 0.5).astype(np.uint8)


def render_seed(seed: int, size: int = 64) -> tuple[np.ndarray, str, Scene]:
    """Render :func:`random_scene(seed) <geovid.world.scene.random_scene>`: ``(image, caption, scene)``."""
    scene = random_scene(seed)
    return render(scene, size), caption(scene), scene


def render_batch(seeds: Iterable[int], size: int = 64) -> tuple[np.ndarray, list[str]]:
    """Render many random scenes: ``(images (N, size, size, 3) uint8, captions)``, in the order of ``seeds``."""
    seeds = list(seeds)
    out = np.empty((len(seeds), size, size, 3), np.uint8)
    caps: list[str] = []
    for i, s in enumerate(seeds):
        scene = random_scene(s)
        out[i] = render(scene, size)
        caps.append(caption(scene))
    return out, caps
