"""Images ↔ points of the geodesic space at noise level ν (docs/method.md §1), shared by every task.

``images_to_points``: fit to the model resolution → encode (z₀) → DDIM inversion to t_ν → flat float64 points.
``points_to_images``: DDIM denoising t_ν → 0 → decode → uint8 RGB.
``make_score``: the score estimator of docs/method.md §2 for a task's options.

Inversions are cached on disk by content hash (image bytes, model, ν, prompt, guidance, steps) under
``$GEOVID_CACHE_DIR/inversions`` (default ``~/.cache/geovid``), so that rerunning an analysis, resuming a run
or interpolating from the same image does not pay for DDIM inversion twice. ``GEOVID_NO_CACHE=1`` disables it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from geovid.backbones.base import Backbone, Condition
from geovid.errors import InputError
from geovid.runs.files import atomic_output

if TYPE_CHECKING:
    from geovid.geometry.estimators import ScoreEstimator


def cache_root() -> Path:
    env = os.environ.get("GEOVID_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "geovid"


@dataclass
class Encoded:
    """Points of the geodesic space for a set of images."""

    points: torch.Tensor  # (N, D) float64, at level t
    z0: torch.Tensor  # (N, C, h, w) clean latents
    t: int  # timestep t_ν
    images: np.ndarray  # (N, H, W, 3) uint8, the model-resolution inputs actually used


def _key(images: np.ndarray, backbone: Backbone, nu: float, prompt: str, guidance: float, steps: int) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(repr((images.shape, str(backbone.name), str(backbone.dtype),
                   float(nu), prompt, float(guidance), int(steps))).encode())
    return h.hexdigest()


def fit_images(backbone: Backbone, images: np.ndarray, policy: str = "center-crop") -> np.ndarray:
    """Crop/resize uint8 frames (N, H, W, 3) to the backbone's resolution (docs/media.md policy)."""
    from geovid.media.images import fit_to_resolution

    res = backbone.resolution
    if res is None:
        return images
    return np.stack([fit_to_resolution(im, res, policy=policy) for im in images])  # type: ignore[arg-type]


def images_to_points(backbone: Backbone, images: np.ndarray, nu: float, prompt: str = "", guidance: float = 1.0,
                     steps: int = 50, policy: str = "center-crop", cache: bool = True,
                     progress: Callable[[int, int], None] | None = None) -> Encoded:
    """Encode and invert images to level ν (docs/method.md §1). Returns float64 points (N, D).

    Args:
        backbone: a Backbone.
        images: uint8 (N, H, W, 3) RGB; resized/cropped to the model resolution.
        nu: noise level in [0, 1]; t_ν per docs/method.md §1.
        prompt: text condition used for the inversion (reference: the empty prompt).
        guidance: classifier-free guidance scale of the inversion (reference: 1).
        steps: DDIM inference steps of the schedule.
    """
    if not 0.0 < nu <= 1.0:
        raise InputError(f"--noise-level must be in (0, 1], got {nu}")
    from geovid.media.images import to_tensor

    fitted = fit_images(backbone, images, policy)
    t = backbone.noise_level_to_timestep(nu, steps)
    path = cache_root() / "inversions" / f"{_key(fitted, backbone, nu, prompt, guidance, steps)}.pt"
    use_cache = cache and os.environ.get("GEOVID_NO_CACHE") != "1"
    if use_cache and path.exists():
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            return Encoded(points=data["points"], z0=data["z0"], t=int(data["t"]), images=fitted)
        except Exception:  # a damaged cache entry is recomputed
            pass
    x = to_tensor(fitted).to(torch.float32)
    z0 = backbone.encode(x)
    cond = backbone.embed_prompt(prompt)
    xt = backbone.invert(z0, t, cond, guidance=guidance, num_inference_steps=steps, progress=progress)
    points = xt.reshape(xt.shape[0], -1).to(torch.float64).cpu()
    enc = Encoded(points=points, z0=z0.detach().cpu(), t=t, images=fitted)
    if use_cache:
        try:
            with atomic_output(path) as tmp:
                torch.save({"points": enc.points, "z0": enc.z0, "t": t}, tmp)
        except OSError:
            pass
    return enc


def points_to_images(backbone: Backbone, points: torch.Tensor, t: int, prompt: str = "", guidance: float = 1.0,
                     steps: int = 50, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Denoise points from level t back to images (docs/method.md §1): uint8 (N, H, W, 3)."""
    from geovid.media.images import from_tensor

    lat = points.reshape(points.shape[0], *backbone.latent_shape).to(torch.float32)
    cond = backbone.embed_prompt(prompt)
    z0 = backbone.denoise(lat, t, cond, guidance=guidance, num_inference_steps=steps, progress=progress)
    return from_tensor(backbone.decode(z0).cpu())


def make_score(backbone: Backbone, estimator: str, t: int, prompt: str = "", seed: int = 0,
               negative_prompt: str | None = None, draws: int = 1, cond: Condition | None = None) -> ScoreEstimator:
    """The score estimator of docs/method.md §2 for a task (``eps`` or ``contrast`` with ``draws`` per point).

    ``cond`` (an embedding, e.g. from prompt-embedding inversion) replaces ``embed_prompt(prompt)``."""
    from geovid.geometry.estimators import make_estimator

    cond = backbone.embed_prompt(prompt) if cond is None else cond
    kw: dict[str, Any] = {}
    if estimator == "contrast":
        neg = negative_prompt if negative_prompt is not None else getattr(backbone, "default_negative_prompt", "")
        kw["neg_cond"] = backbone.embed_prompt(neg)
        kw["draws"] = int(draws)
    return make_estimator(estimator, backbone, t, cond, seed=seed, **kw)


def default_alpha(estimator: str) -> float:
    """Default α of the density metric per estimator for the analysis (docs/method.md §3.7)."""
    return {"eps": 1.0, "contrast": 0.002}.get(estimator, 1.0)


def denoise_timesteps(t: int, steps: int) -> list[int]:
    """``steps`` descending DDIM timesteps from t to 1, evenly spaced (then one last step to the clean latent).

    With ``steps = 30`` and t = 581 this is exactly the 50-step SD2 grid below t (581, 561, …, 1), i.e. what
    :meth:`DDIMMixin.denoise` does; fewer steps trade fidelity for speed (interpolation frames on a CPU).
    """
    if steps < 1:
        raise InputError(f"decode steps must be at least 1, got {steps}")
    if t < 1:
        return [int(t)]
    return sorted({int(v) for v in np.round(np.linspace(t, 1, min(steps, t)))}, reverse=True)


def decode_points(backbone: Backbone, points: torch.Tensor, t: int, cond: Condition, steps: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Denoise points at level t to images (docs/method.md §1) with DDIM (η = 0) over ``steps`` evenly spaced steps.

    Args:
        backbone: a Backbone with ``eps``, ``alpha_bar`` and ``decode``.
        points: (N, D) points (any float dtype).
        t: their timestep t_ν.
        cond: a prompt embedding with 1 row (shared) or N rows (one condition per point, e.g. prompt embeddings
            blended along an interpolation path).
        steps: DDIM steps from t down to the clean latent; ``None``: the 50-step grid (as
            :func:`points_to_images`).
        progress: ``progress(done, total)`` per DDIM step.

    Returns:
        uint8 images (N, H, W, 3).
    """
    from geovid.media.images import from_tensor

    if steps is None:
        seq = sorted((int(v) for v in backbone.timesteps(50) if int(v) <= int(t)), reverse=True)
    else:
        seq = denoise_timesteps(int(t), int(steps))
    x = points.reshape(points.shape[0], *backbone.latent_shape).to(torch.float32)
    with torch.no_grad():
        for i, ti in enumerate(seq):
            nxt = seq[i + 1] if i + 1 < len(seq) else -1
            e = backbone.eps(x, ti, cond)
            a_from, a_to = backbone.alpha_bar(ti), backbone.alpha_bar(nxt)
            x = (x - (1 - a_from) ** 0.5 * e) / a_from**0.5 * a_to**0.5 + (1 - a_to) ** 0.5 * e
            if progress:
                progress(i + 1, len(seq))
        return from_tensor(backbone.decode(x).cpu())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (inf when identical)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))
