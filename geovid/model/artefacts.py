"""Degraded world scenes with artefact captions: the bundled model's vocabulary for the negative prompt.

SD2 learnt words such as "ghosting", "blurry" or "duplicate" from web images, so the ``contrast`` estimator's
negative prompt c_neg (docs/method.md §2) describes real image defects for it. The bundled model sees only world
scenes, so a share of its training images are degraded on purpose and captioned with those words. Every kind
below is a defect a latent path can produce or a viewer would call broken:

============  ==========================================================  =====================================
kind          what is done to a rendered scene                            caption words
============  ==========================================================  =====================================
crossfade     pixel blend (weight 0.25–0.75) of the scene and the same    ghosting, doubled
              scene with one object moved (the ghost a lerp makes), or
              of two unrelated scenes
duplicate     one object rendered a second time elsewhere (world scenes   duplicate, doubled
              never repeat a colour)
blur          Gaussian blur, σ 1–2.5 px                                   blurry, blur, low detail
noise         Gaussian pixel noise, σ 8–25 / 255                          low quality
colour        a colour cast over the whole image (one channel ×0.5–0.75   distorted, distortions
              or ×1.3–1.6, so the grey ground is tinted), after a hue
              rotation half the time
seam          left/right or top/bottom halves of two scenes, pasted       deformed, distortions
warp          smooth random displacement field (2–4 px)                   deformed, distorted
============  ==========================================================  =====================================

A degraded caption is the kind's words plus, half the time, "low quality"; 30 % of degraded images carry the
whole default negative prompt instead, and half of the rest are prefixed with the clean scene's caption (so a
caption can say what is shown *and* what is wrong). Everything is deterministic in the seed.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from geovid.backbones.diffusers_sd import DEFAULT_NEGATIVE_PROMPT
from geovid.world.render import render_float
from geovid.world.scene import Scene, SceneObject, caption, random_scene

#: The default negative prompt (docs/method.md §2), the backbone's own constant: the artefact captions use
#: exactly its words, so ``contrast`` means the same on the bundled model as on SD2.
NEGATIVE_PROMPT = DEFAULT_NEGATIVE_PROMPT

#: Artefact kind → caption words (see the module docstring).
KIND_WORDS: dict[str, tuple[str, ...]] = {
    "crossfade": ("ghosting", "doubled"),
    "duplicate": ("duplicate", "doubled"),
    "blur": ("blurry", "blur", "low detail"),
    "noise": ("low quality",),
    "colour": ("distorted", "distortions"),
    "seam": ("deformed", "distortions"),
    "warp": ("deformed", "distorted"),
}

#: How often each kind is drawn (cross-fades, the lerp ghost, are the main lever: twice the others).
KIND_WEIGHTS: dict[str, float] = {"crossfade": 2.0, "duplicate": 1.0, "blur": 1.0, "noise": 1.0, "colour": 1.0,
                                  "seam": 1.0, "warp": 1.0}

KINDS: tuple[str, ...] = tuple(KIND_WORDS)


def _moved(scene: Scene, rng: np.random.Generator) -> Scene:
    """The scene with one object moved to a random free spot (any spot if none is found)."""
    i = int(rng.integers(len(scene.objects)))
    others = [o for j, o in enumerate(scene.objects) if j != i]
    obj = scene.objects[i]
    for _ in range(50):
        cand = obj.moved(x=float(rng.uniform(0, 1)), y=float(rng.uniform(0, 1)))
        if abs(cand.x - obj.x) + abs(cand.y - obj.y) > 0.25 and not any(_close(cand, o) for o in others):
            break
    return replace(scene, objects=(*others, cand))


def _close(a: SceneObject, b: SceneObject) -> bool:
    return abs(a.x - b.x) < 0.22 and abs(a.y - b.y) < 0.22


def _hue_rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    hsv = cv2.cvtColor(img.astype(np.float32), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + degrees) % 360.0
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def degrade(scene: Scene, kind: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """Render ``scene`` with the artefact ``kind``: float32 RGB in [0, 1], (size, size, 3)."""
    if kind == "crossfade":
        other = _moved(scene, rng) if rng.random() < 0.7 else random_scene(int(rng.integers(0, 2**31)))
        w = float(rng.uniform(0.25, 0.75))
        img = (1 - w) * render_float(scene, size) + w * render_float(other, size)
    elif kind == "duplicate":
        src = scene.objects[int(rng.integers(len(scene.objects)))]
        copy = _moved(Scene(objects=(src,), seed=scene.seed), rng).objects[0]
        img = render_float(replace(scene, objects=(*scene.objects, copy)), size)
    elif kind == "blur":
        img = cv2.GaussianBlur(render_float(scene, size), (0, 0), float(rng.uniform(1.0, 2.5)))
    elif kind == "noise":
        img = render_float(scene, size) + rng.normal(0, rng.uniform(8, 25) / 255.0, (size, size, 3))
    elif kind == "colour":
        # The cast always reaches the grey ground: a hue rotation alone maps the palette onto itself (its hues
        # are ~45-80° apart), so it could leave a scene that looks clean under a degraded caption.
        img = render_float(scene, size)
        if rng.random() < 0.5:
            img = _hue_rotate(img, float(rng.uniform(40, 180)))
        gains = np.ones(3, np.float32)
        gains[int(rng.integers(3))] = rng.uniform(0.5, 0.75) if rng.random() < 0.5 else rng.uniform(1.3, 1.6)
        img = img * gains
    elif kind == "seam":
        a, b = render_float(scene, size), render_float(random_scene(int(rng.integers(0, 2**31))), size)
        cut = int(rng.integers(size // 4, 3 * size // 4))
        img = a.copy()
        if rng.random() < 0.5:
            img[:, cut:] = b[:, cut:]
        else:
            img[cut:] = b[cut:]
    elif kind == "warp":
        img = render_float(scene, size)
        amp = float(rng.uniform(2.0, 4.0))
        field = rng.normal(0, 1, (2, 6, 6)).astype(np.float32)
        dx, dy = (cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) * amp for f in field)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        img = cv2.remap(img, xx + dx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    else:
        raise ValueError(f"unknown artefact kind {kind!r} (known: {', '.join(KINDS)})")
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def artefact_caption(scene: Scene, kind: str, rng: np.random.Generator) -> str:
    """The caption of a degraded scene (see the module docstring)."""
    if rng.random() < 0.3:
        return NEGATIVE_PROMPT
    words = list(KIND_WORDS[kind])
    if "low quality" not in words and rng.random() < 0.5:
        words.append("low quality")
    words = [words[i] for i in rng.permutation(len(words))]
    text = ", ".join(words)
    return f"{caption(scene)}, {text}" if rng.random() < 0.5 else text


def pick_kind(rng: np.random.Generator) -> str:
    """An artefact kind drawn by :data:`KIND_WEIGHTS`."""
    w = np.array([KIND_WEIGHTS[k] for k in KINDS])
    return KINDS[int(rng.choice(len(KINDS), p=w / w.sum()))]


def render_degraded(seed: int, size: int = 64, kind: str | None = None) -> tuple[np.ndarray, str, str]:
    """A degraded version of ``random_scene(seed)``: ``(uint8 image, caption, kind)``, deterministic in seed."""
    rng = np.random.default_rng([int(seed), 7919])
    scene = random_scene(seed)
    kind = kind or pick_kind(rng)
    img = degrade(scene, kind, rng, size)
    return (img * 255.0 + 0.5).astype(np.uint8), artefact_caption(scene, kind, rng), kind
