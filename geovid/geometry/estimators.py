"""Score estimators (docs/method.md §2): functions x (n, D) → s(x) (n, D) built on a backbone.

* ``eps``: s(x) = −ε_θ(x, t_ν, c)/σ_{t_ν}; one network call per point; deterministic.
* ``contrast``: s̃(x) = ½ (ε_θ(x_τ, τ, c_neg) − ε_θ(x_τ, τ, c)) with τ ~ U[t_ν − 100, t_ν + 100) and x_τ the point
  transported with a fresh ε₀; two calls per point; stochastic. It follows p(x|c)/p(x|c_neg), scaled — not p.
* ``exact``: the analytic backbone's closed-form score (also at noise level 0, where σ = 0).

Stochastic estimators draw their noise from a generator re-seeded at every evaluation with the estimator's
seed, so that every path of an analysis sees the same random draws for the same frame index (docs/method.md §7.3) and
runs are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from geovid.backbones.base import Backbone, Condition
from geovid.errors import InputError
from geovid.geometry import ScoreFn


class ScoreEstimator:
    """Base class: call with flat points (n, D); reshapes to the backbone's latent shape internally."""

    name = "base"
    calls_per_point = 1
    stochastic = False  # fresh random draws per evaluation (compare paths on scores drawn alone, docs/method.md §7.3)

    def __init__(self, backbone: Backbone, t: int, cond: Condition = "", seed: int = 0, max_batch: int = 64) -> None:
        self.backbone = backbone
        self.t = int(t)
        self.cond = cond
        self.seed = seed
        self.max_batch = max_batch

    @property
    def network_calls(self) -> int:
        return int(self.backbone.network_calls)

    def _latent(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.backbone.latent_shape)

    #: Network evaluations per row of a chunk (the contrast estimator's draws): chunks hold at most
    #: ``max_batch // rows_factor`` points, so a network batch stays within ``max_batch`` latents.
    rows_factor = 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        step = max(1, self.max_batch // self.rows_factor)
        outs = [self._score(x[i:i + step], i) for i in range(0, x.shape[0], step)]
        out = torch.cat(outs) if len(outs) > 1 else outs[0]
        return out.reshape(x.shape).to(x.dtype)

    def _score(self, x: torch.Tensor, offset: int) -> torch.Tensor:
        raise NotImplementedError


class EpsEstimator(ScoreEstimator):
    """s(x) = −ε_θ(x, t_ν, c)/σ_{t_ν} (docs/method.md §2)."""

    name = "eps"

    def __init__(self, backbone: Backbone, t: int, cond: Condition = "", seed: int = 0, max_batch: int = 64) -> None:
        super().__init__(backbone, t, cond, seed, max_batch)
        self.sigma = backbone.sigma(self.t)
        if self.sigma <= 0:
            raise InputError("the eps estimator needs a noise level above 0 (σ > 0); use the exact score")

    def _score(self, x: torch.Tensor, offset: int) -> torch.Tensor:
        e = self.backbone.eps(self._latent(x), self.t, self.cond)
        return -e.reshape(x.shape[0], -1).to(x.dtype) / self.sigma


class ContrastEstimator(ScoreEstimator):
    """s̃(x) = ½ (ε(x_τ, τ, c_neg) − ε(x_τ, τ, c)) (docs/method.md §2); the reference's interpolation default.

    ``draws`` = K averages K independent (τ, ε₀) draws per point (2K network calls per point): the estimator's
    variance falls as 1/K while the common random numbers between paths are kept (docs/method.md §2.2).
    """

    name = "contrast"
    stochastic = True

    def __init__(self, backbone: Backbone, t: int, cond: Condition = "", seed: int = 0, max_batch: int = 64,
                 neg_cond: Condition | None = None, tau_halfwidth: int = 100, draws: int = 1) -> None:
        super().__init__(backbone, t, cond, seed, max_batch)
        if neg_cond is None:
            neg_cond = backbone.embed_prompt(getattr(backbone, "default_negative_prompt", ""))
        if int(draws) < 1:
            raise InputError(f"--draws must be at least 1, got {draws}")
        self.neg_cond = neg_cond
        self.tau_halfwidth = tau_halfwidth
        self.draws = int(draws)
        self.calls_per_point = 2 * self.draws
        self.rows_factor = self.draws

    def _score(self, x: torch.Tensor, offset: int) -> torch.Tensor:
        n, k = x.shape[0], self.draws
        bb = self.backbone
        # One generator per evaluation, seeded by (seed, row offset): the same frame index gets the same draws.
        # Draw order (τ for every draw and row, then ε₀) makes K = 1 the single-draw estimator exactly.
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + offset)
        lo = max(0, self.t - self.tau_halfwidth)
        hi = min(bb.num_train_timesteps, self.t + self.tau_halfwidth)
        tau = torch.randint(lo, hi, (k * n,), generator=gen)
        e0 = torch.randn((k * n, x.shape[1]), generator=gen, dtype=torch.float64).to(x.dtype)
        xs = x.repeat(k, 1)
        a_t = bb.alpha_bar(self.t)
        x0 = (xs - math.sqrt(1 - a_t) * e0) / math.sqrt(a_t)
        a_tau = bb.alphas_cumprod[tau].to(x.dtype)[:, None]
        x_tau = a_tau.sqrt() * x0 + (1 - a_tau).sqrt() * e0
        lat = self._latent(x_tau)
        e_neg = bb.eps(lat, tau, self.neg_cond).reshape(k * n, -1)
        e_pos = bb.eps(lat, tau, self.cond).reshape(k * n, -1)
        return (0.5 * (e_neg - e_pos)).reshape(k, n, -1).mean(0).to(x.dtype)


class ExactEstimator(ScoreEstimator):
    """Closed-form score of an analytic backbone (any t, including the clean data t = −1)."""

    name = "exact"

    def __init__(self, backbone: Backbone, t: int, cond: Condition = "", seed: int = 0, max_batch: int = 4096) -> None:
        if not hasattr(backbone, "score"):
            raise InputError("the exact estimator needs an analytic backbone")
        super().__init__(backbone, t, cond, seed, max_batch)

    def _score(self, x: torch.Tensor, offset: int) -> torch.Tensor:
        # An analytic backbone's closed-form score (checked in __init__; not a member of every Backbone).
        return self.backbone.score(x, self.t, self.cond).reshape(x.shape[0], -1)  # type: ignore[attr-defined]


ESTIMATORS: dict[str, Callable[..., ScoreEstimator]] = {
    "eps": EpsEstimator,
    "contrast": ContrastEstimator,
    "exact": ExactEstimator,
}
#: The estimators a job on a diffusion model may use (``exact`` needs an analytic backbone).
MODEL_ESTIMATORS: tuple[str, ...] = tuple(k for k in ESTIMATORS if k != "exact")


def make_estimator(name: str, backbone: Backbone, t: int, cond: Condition = "", seed: int = 0,
                   **kw: Any) -> ScoreEstimator:
    """Build a score estimator by name (``eps``, ``contrast``, ``exact``)."""
    if name not in ESTIMATORS:
        raise InputError(f"unknown estimator {name!r}; choose from {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name](backbone, t, cond, seed=seed, **kw)


class FunctionEstimator(ScoreEstimator):
    """Wrap a plain function x (n, D) → s (n, D) (counts one call per point)."""

    name = "function"

    def __init__(self, fn: ScoreFn) -> None:
        self.fn = fn
        self.calls = 0
        self.max_batch = 1 << 30
        self.seed = 0

    @property
    def network_calls(self) -> int:
        return self.calls

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += x.shape[0]
        return self.fn(x)


def zero_score(x: torch.Tensor) -> torch.Tensor:
    """The score of a uniform density."""
    return torch.zeros_like(x)
