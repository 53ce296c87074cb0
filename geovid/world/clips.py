"""Short clips of the world with known motion: the ground truth for video-geodesic analysis and demos.

Each motion moves (or changes) one object of a random scene over ``frames`` frames; the rest of the scene stays
still. Positions are planned in world units on the ground (so "constant velocity" is constant on the floor, not
on screen) and every frame is checked to keep the object inside the frame and clear of the other objects.

Motions (:data:`MOTIONS`):

- ``linear``: constant velocity along a straight line.
- ``accelerate``: from rest with constant acceleration along a straight line (position ~ t^2).
- ``orbit``: around a circle on the floor (1/2 to 3/4 of a turn) at constant angular speed.
- ``appear``: an extra object pops into existence at the middle frame (nothing moves).
- ``colour``: one object switches to another palette colour at the middle frame (nothing moves).
- ``jitter``: the ``linear`` path (same seed, same path) plus seeded random per-frame displacements.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from geovid.errors import InputError
from geovid.progress import ProgressFn
from geovid.world.scene import (
    PALETTE,
    SHAPES,
    Scene,
    SceneObject,
    _overlaps,
    caption,
    ground_to_world,
    random_scene,
    world_to_ground,
)

MOTIONS: tuple[str, ...] = ("linear", "accelerate", "orbit", "appear", "colour", "jitter")

#: Standard deviation of the ``jitter`` displacement, world units (about 1 pixel at 64x64).
JITTER_SIGMA = 0.1

_EDGE = 0.0


def _validate(motion: str, frames: int) -> None:
    if motion not in MOTIONS:
        raise InputError(f"unknown motion {motion!r} (choose from {', '.join(MOTIONS)})")
    if int(frames) < 2:
        raise InputError(f"a clip needs at least 2 frames, got {frames}")


def _fits(obj: SceneObject, others: list[SceneObject]) -> bool:
    if not (_EDGE <= obj.x <= 1 - _EDGE and _EDGE <= obj.y <= 1 - _EDGE):
        return False
    return not any(_overlaps(obj, o, margin=0.15) for o in others)


def _at(obj: SceneObject, X: float, Z: float) -> SceneObject:
    x, y = world_to_ground(X, Z)
    return obj.moved(x=float(x), y=float(y))


def _direction_word(dX: float, dZ: float) -> str:
    if abs(dX) >= 0.6 * abs(dZ):
        return "to the right" if dX > 0 else "to the left"
    return "away from the camera" if dZ > 0 else "towards the camera"


def _plan_path(rng: np.random.Generator, mover: SceneObject, others: list[SceneObject], frames: int,
               kind: str) -> tuple[list[SceneObject], str] | None:
    """Try random paths for ``mover``; return per-frame objects and a motion phrase, or None if none fits."""
    X0, Z0 = ground_to_world(mover.x, mover.y)
    t = np.linspace(0.0, 1.0, frames)
    name = f"the {mover.colour} {mover.shape}"
    for attempt in range(150):
        shrink = 1.0 - 0.5 * attempt / 150  # crowded floors get shorter paths rather than none
        if kind in ("linear", "accelerate"):
            ang = rng.uniform(0, 2 * math.pi)
            length = rng.uniform(1.2, 2.6) * shrink
            dX, dZ = length * math.cos(ang), length * math.sin(ang)
            s = t if kind == "linear" else t * t
            pts = [(X0 + si * dX, Z0 + si * dZ) for si in s]
            word = _direction_word(dX, dZ)
            phrase = f"{name} moves {word}" if kind == "linear" else f"{name} speeds up {word}"
        else:  # orbit
            radius = rng.uniform(0.7, 1.2) * shrink
            ang0 = rng.uniform(0, 2 * math.pi)
            cX, cZ = X0 - radius * math.cos(ang0), Z0 - radius * math.sin(ang0)
            sweep = rng.uniform(math.pi, 1.5 * math.pi) * (1 if rng.random() < 0.5 else -1)
            pts = [(cX + radius * math.cos(ang0 + ti * sweep), cZ + radius * math.sin(ang0 + ti * sweep))
                   for ti in t]
            # Seen from above with Z away from the camera, increasing angle is counter-clockwise.
            phrase = f"{name} circles {'counter-clockwise' if sweep > 0 else 'clockwise'}"
        path = [_at(mover, X, Z) for X, Z in pts]
        if all(_fits(o, others) for o in path):
            return path, phrase
    return None


def clip_scenes(motion: str, frames: int = 16, seed: int = 0) -> tuple[list[Scene], str]:
    """The per-frame scenes of a clip and its caption (no pixels; see :func:`make_clip`).

    Args:
        motion: one of :data:`MOTIONS`.
        frames: number of frames (>= 2).
        seed: the same seed gives the same clip; ``linear`` and ``jitter`` with one seed share their path.

    Returns:
        ``(scenes, caption)``; the caption is the first frame's scene caption, then ``"; "`` and the motion,
        e.g. ``"a small red cube left of a large blue sphere; the red cube moves to the right"``.
    """
    _validate(motion, frames)
    frames = int(frames)
    # One stream for the scene and the path: jitter re-plans exactly the linear path and then adds noise.
    base_kind = "linear" if motion == "jitter" else motion
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, MOTIONS.index(base_kind)])
    if motion == "appear":
        n = int(rng.integers(1, 3))
        full = random_scene(seed, n_objects=n + 1)
        newcomer = full.objects[-1]
        start = Scene(objects=full.objects[:-1], seed=full.seed)
        k = frames // 2
        scenes = [start if i < k else full for i in range(frames)]
        return scenes, f"{caption(start)}; then {newcomer.phrase} appears"
    scene = random_scene(seed)
    objs = list(scene.objects)
    idx = int(rng.integers(len(objs)))
    mover = objs[idx]
    others = objs[:idx] + objs[idx + 1:]
    if motion == "colour":
        free = [c for c in PALETTE if c not in {o.colour for o in objs}]
        new = free[int(rng.integers(len(free)))]
        k = frames // 2
        changed = Scene(objects=tuple(o if i != idx else o.moved(colour=new) for i, o in enumerate(objs)),
                        seed=scene.seed)
        return ([scene if i < k else changed for i in range(frames)],
                f"{caption(scene)}; the {mover.colour} {mover.shape} turns {new}")
    planned = _plan_path(rng, mover, others, frames, base_kind)
    if planned is None:  # crowded scene: let the mover have the floor to itself
        others = []
        planned = _plan_path(rng, mover, others, frames, base_kind)
    if planned is None:  # mover in a corner: start it from the middle of the floor
        mover = mover.moved(x=0.5, y=0.5)
        planned = _plan_path(rng, mover, others, frames, base_kind)
        if planned is None:  # pragma: no cover - the middle of an empty floor always has room
            raise RuntimeError(f"no {base_kind} path found for seed {seed}")
    path, phrase = planned
    if motion == "jitter":
        jrng = np.random.default_rng([int(seed) & 0xFFFFFFFF, MOTIONS.index("jitter")])
        jittered = []
        for o in path:
            X, Z = ground_to_world(o.x, o.y)
            for _ in range(20):
                cand = _at(o, X + jrng.normal(0, JITTER_SIGMA), Z + jrng.normal(0, JITTER_SIGMA))
                if _fits(cand, others):
                    break
            else:
                cand = o
            jittered.append(cand)
        path, phrase = jittered, phrase + ", shaking"
    first = Scene(objects=(*others, path[0]), seed=scene.seed)
    scenes = [Scene(objects=(*others, o), seed=scene.seed) for o in path]
    return scenes, f"{caption(first)}; {phrase}"


def moved_pair(seed: int = 0) -> tuple[Scene, Scene, str]:
    """Two scenes with the same objects, one moved in view: the first and last frames of a ``linear`` clip.

    The mover travels 1.2–2.6 world units on the floor and stays inside the frame and clear of the others
    (see :func:`clip_scenes`), so both scenes are valid world images. Used by the demo, the interpolation
    measurements and the benchmarks. Returns ``(a, b, caption of a)``.
    """
    scenes, _ = clip_scenes("linear", frames=2, seed=seed)
    return scenes[0], scenes[-1], caption(scenes[0])


def make_clip(motion: str, frames: int = 16, seed: int = 0, size: int = 64
              ) -> tuple[list[np.ndarray], list[Scene], str]:
    """Render a clip: ``(frames as (size, size, 3) uint8 RGB, per-frame scenes, caption)``.

    See :func:`clip_scenes` for the arguments and the caption.
    """
    from geovid.world.render import render

    scenes, cap = clip_scenes(motion, frames, seed)
    cache: dict[int, np.ndarray] = {}
    out = []
    for s in scenes:  # appear/colour repeat scenes: render each distinct one once
        key = id(s)
        if key not in cache:
            cache[key] = render(s, size)
        out.append(cache[key].copy())
    return out, scenes, cap


def write_clip(path: str | Path, motion: str = "linear", frames: int = 16, fps: float = 8.0, seed: int = 0,
               size: int = 64, png_dir: str | Path | None = None,
               progress: ProgressFn | None = None) -> Path:
    """Render a clip and write it as a video (format by extension, see :mod:`geovid.media.writers`).

    Args:
        path: output video (.mp4, .avi, .webm, .mkv, .mov or .gif).
        motion, frames, seed, size: as in :func:`make_clip`.
        fps: frames per second of the file.
        png_dir: also write ``frame_000.png``, ... there (created if missing).
        progress: optional ``progress(phase, done, total, info)`` callback.

    Returns:
        The video path.
    """
    from PIL import Image

    from geovid.media.writers import write_video

    imgs, _, cap = make_clip(motion, frames, seed, size)
    if progress is not None:
        progress("render", len(imgs), len(imgs), {"caption": cap})
    out = write_video(imgs, path, fps=fps)
    if png_dir is not None:
        d = Path(png_dir)
        d.mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(imgs):
            Image.fromarray(im).save(d / f"frame_{i:03d}.png")
    return out


__all__ = ["JITTER_SIGMA", "MOTIONS", "SHAPES", "clip_scenes", "make_clip", "write_clip"]
