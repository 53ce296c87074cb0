"""What the image-sequence jobs (interpolation, extrapolation) share: their defaults, the checks of the options they
have in common (each with one message, the same in both), α's fallback, and the inversion of the given frames with
one prompt embedding each (docs/method.md §1.4, §2.2).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from geovid.errors import InputError
from geovid.runs.options import CONDITIONINGS, RESIZE_POLICIES

if TYPE_CHECKING:
    import numpy as np
    import torch

    from geovid.backbones.base import Backbone
    from geovid.progress import ProgressFn

#: α of the density metric for image sequences before issue #13, per estimator: kept as the fallback of
#: ``sequence_alpha`` (e.g. a constant path, where the rule has no chord). The default α is now the rule of
#: docs/method.md §3.7 (:mod:`geovid.geometry.alpha`), computed per run on the straight path; ``--alpha`` overrides.
SEQUENCE_ALPHA = {"eps": 0.002, "contrast": 0.002}
#: Default score estimator of interpolation and extrapolation (docs/interpolation.md, "Defaults and why").
DEFAULT_ESTIMATOR = "contrast"
#: Default (τ, ε₀) draws per point of the contrast estimator (docs/method.md §2.2).
DEFAULT_DRAWS = 1
#: Default DDIM steps when decoding frames from t_ν (30 = the full 50-step grid below t = 581).
DEFAULT_DECODE_STEPS = 10


def sequence_alpha(estimator: str) -> float:
    """Fallback α of interpolation and extrapolation for an estimator (see ``SEQUENCE_ALPHA``)."""
    return SEQUENCE_ALPHA.get(estimator, 0.002)


def resolve_conditioning(conditioning: str | None, prompt: str | None, prompt_b: str | None = None) -> str:
    """``invert`` or ``prompt`` (:data:`CONDITIONINGS`): the given mode, else ``prompt`` when the user gave a prompt,
    else ``invert``."""
    if conditioning is None:
        return "prompt" if (prompt or prompt_b) else "invert"
    if conditioning not in CONDITIONINGS:
        raise InputError(f"unknown conditioning {conditioning!r}; choose from {', '.join(CONDITIONINGS)}")
    return conditioning


# --------------------------------------------------------------------------- checks of the shared options


def check_noise_level(nu: Any) -> float:
    """ν in (0, 1], as a float."""
    if not (isinstance(nu, int | float) and 0.0 < nu <= 1.0):
        raise InputError(f"--noise-level must be in (0, 1], got {nu}")
    return float(nu)


def check_estimator(estimator: str, given: str | None) -> None:
    """``eps`` or ``contrast`` (the message names ``given``, the option as the user wrote it)."""
    from geovid.geometry.estimators import MODEL_ESTIMATORS

    if estimator not in MODEL_ESTIMATORS:
        raise InputError(f"unknown estimator {given!r}; choose from {', '.join(MODEL_ESTIMATORS)}")


def check_metric(metric: str) -> None:
    """``density`` or ``score`` (the metrics' registry)."""
    from geovid.geometry.metrics import METRICS

    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")


def check_lambda(lam: float) -> None:
    """λ of the score metric positive and finite."""
    if not (math.isfinite(lam) and lam > 0):
        raise InputError(f"--lambda must be positive, got {lam}")


def check_alpha(alpha: float | None, given: Any) -> None:
    """α positive and finite, or ``None`` (the rule)."""
    if alpha is not None and not (math.isfinite(alpha) and alpha > 0):
        raise InputError(f"--alpha must be positive, got {given}")


def check_draws(draws: Any, given: Any, estimator: str) -> None:
    """1 to 64 draws, more than one with the contrast estimator only."""
    if not isinstance(draws, int) or isinstance(draws, bool) or not 1 <= draws <= 64:
        raise InputError(f"--draws must be a whole number from 1 to 64, got {given}")
    if given not in (None, 1) and estimator != "contrast":
        raise InputError("--draws needs the contrast estimator (eps is deterministic)")


def check_invert_steps(steps: Any, given: Any) -> None:
    """0 to 10000 steps of the prompt-embedding inversion."""
    if not isinstance(steps, int) or isinstance(steps, bool) or not 0 <= steps <= 10000:
        raise InputError(f"--invert-steps must be a whole number from 0 to 10000, got {given}")


def check_output_options(decode_steps: int | None, resize: str, fps: float) -> int:
    """The decoding steps (default filled in), the resize policy and the frame rate; returns the decoding steps."""
    steps = DEFAULT_DECODE_STEPS if decode_steps is None else int(decode_steps)
    if steps < 1:
        raise InputError(f"--decode-steps must be at least 1, got {decode_steps}")
    if resize not in RESIZE_POLICIES:
        raise InputError(f"unknown resize policy {resize!r}; choose from {', '.join(RESIZE_POLICIES)}")
    if not fps > 0:
        raise InputError(f"--fps must be positive, got {fps}")
    return steps


# --------------------------------------------------------------------------- per-frame conditioning


def invert_frames(backbone: Backbone, images: np.ndarray, prompt: str, steps: int, seed: int, nu: float,
                  progress: ProgressFn) -> tuple[torch.Tensor, torch.Tensor]:
    """VAE-encode the frames, invert one prompt embedding per frame (jointly, cached by content hash;
    docs/method.md §1.4, §2.2), then DDIM-invert each frame to t_ν with its own embedding.

    Returns:
        (points (N, D) float64, embeddings (N, L, H)).
    """
    import torch

    from geovid.media.images import to_tensor
    from geovid.tasks.common import invert_endpoint_embeddings, invert_with_conditions, step_progress

    with torch.no_grad():
        z0 = backbone.encode(to_tensor(images).to(torch.float32))
    steps = int(steps)
    progress("invert prompt", 0, steps, {})
    conds = invert_endpoint_embeddings(backbone, z0, prompt, steps=steps, seed=seed,
                                       progress=step_progress(progress, "invert prompt"))
    progress("invert prompt", steps, steps, {})  # also when the embeddings came from the cache
    return invert_with_conditions(backbone, z0, conds, nu, progress=step_progress(progress, "encode")), conds


__all__ = ["CONDITIONINGS", "DEFAULT_DECODE_STEPS", "DEFAULT_DRAWS", "DEFAULT_ESTIMATOR", "RESIZE_POLICIES",
           "SEQUENCE_ALPHA", "check_alpha", "check_draws", "check_estimator", "check_invert_steps", "check_lambda", "check_metric",
           "check_noise_level", "check_output_options", "invert_frames", "resolve_conditioning", "sequence_alpha"]
