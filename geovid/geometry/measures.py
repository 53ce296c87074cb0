"""Measures of a discrete path (docs/method.md §3, §4, §7.3).

* geodesic-gradient residual r per interior point (parametrisation-invariant);
* log-density profile by the score line integral (trapezoid), free of the normalising constant;
* relative length L̃ = Σ exp(−α ℓ_mid) ‖Δx‖, computed in log space (differences of hundreds of nats at D = 16384);
* energy, speed, network-call count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from geovid.geometry import ScoreFn
from geovid.geometry.paths import Sphere, curvature_vectors

if TYPE_CHECKING:
    from geovid.geometry.metrics import Metric


def residual_vectors(x: torch.Tensor, s_interior: torch.Tensor, metric: Metric, sphere: Sphere,
                     score_fn: ScoreFn | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Geodesic gradient r at the interior points (docs/method.md §3): r = N[P κ] + metric.force.

    Returns (r, κ_normal, unit tangents), each (n−2, D).
    """
    kappa, tang = curvature_vectors(x)
    xi = x[1:-1]
    if sphere.on:
        tang = sphere.project_vectors(xi, tang)
        tang = tang / tang.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    k = sphere.project_vectors(xi, kappa)
    k = k - (k * tang).sum(-1, keepdim=True) * tang
    r = k + metric.force(xi, tang, s_interior, sphere, score_fn)
    return r, k, tang


def log_density_profile(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """log p(γ_i) − log p(γ_0) by the trapezoid rule Δ_i = ½ (s_i + s_{i+1})·(x_{i+1} − x_i) (docs/method.md §3)."""
    dx = x[1:] - x[:-1]
    inc = 0.5 * ((s[1:] + s[:-1]) * dx).sum(-1)
    return torch.cat([inc.new_zeros(1), torch.cumsum(inc, 0)])


def midpoint_log_density(x: torch.Tensor, s: torch.Tensor, ell: torch.Tensor) -> torch.Tensor:
    """ℓ at segment midpoints: the trapezoid rule over the first half, with s interpolated linearly."""
    dx = x[1:] - x[:-1]
    return ell[:-1] + ((3 * s[:-1] + s[1:]) * dx).sum(-1) / 8


def log_relative_length(x: torch.Tensor, s: torch.Tensor, metric: Metric) -> float:
    """log L̃ with L̃ = Σ_i exp(log w(m_i) − log w(x₀)) ‖Δx_i‖ (docs/method.md §3), by logsumexp."""
    ell = log_density_profile(x, s)
    mid = midpoint_log_density(x, s, ell)
    seg = (x[1:] - x[:-1]).norm(dim=-1).clamp_min(1e-300)
    return float(torch.logsumexp(metric.segment_log_weights(mid) + torch.log(seg), 0))


@dataclass
class PathMeasures:
    """Per-point and per-path numbers of one path (docs/method.md §7.3)."""

    residual: torch.Tensor  # (n,) ‖r‖, NaN at the endpoints
    log_density: torch.Tensor  # (n,) relative to the first point
    speed: torch.Tensor  # (n,) ‖dγ/dt‖ (central differences)
    mean_residual: float
    median_residual: float
    log_relative_length: float
    log_energy: float
    network_calls: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def relative_length(self) -> float:
        return _safe_exp(self.log_relative_length)

    @property
    def energy(self) -> float:
        return _safe_exp(self.log_energy)

    def summary(self) -> dict[str, float]:
        return {
            "mean_residual": self.mean_residual,
            "median_residual": self.median_residual,
            "relative_length": self.relative_length,
            "log_relative_length": self.log_relative_length,
            "energy": self.energy,
            "log_energy": self.log_energy,
            "frames": int(self.residual.numel()),
        }


def _safe_exp(v: float) -> float:
    return math.exp(v) if v < 700 else math.inf


def path_measures(x: torch.Tensor, s: torch.Tensor, metric: Metric, sphere: Sphere,
                  times: torch.Tensor | None = None, score_fn: ScoreFn | None = None,
                  network_calls: int = 0) -> PathMeasures:
    """All measures of a path x (n, D) given the scores s (n, D) at every point (endpoints included).

    Args:
        x: the path, endpoints included.
        s: scores at every point (same estimator and random draws for paths that are compared, docs/method.md §7.3).
        metric: DensityMetric or ScoreMetric.
        sphere: the sphere constraint in force.
        times: time of each point (default 0…1 uniformly), for the speed.
        score_fn: needed by the score metric (Hessian-vector products).
    """
    n = x.shape[0]
    r, _, _ = residual_vectors(x, s[1:-1], metric, sphere, score_fn)
    rn = torch.full((n,), math.nan, dtype=x.dtype)
    rn[1:-1] = r.norm(dim=-1)
    ell = log_density_profile(x, s)
    if times is None:
        times = torch.linspace(0, 1, n, dtype=x.dtype)
    times = times.to(x.dtype)
    speed = torch.empty(n, dtype=x.dtype)
    speed[1:-1] = (x[2:] - x[:-2]).norm(dim=-1) / (times[2:] - times[:-2])
    speed[0] = (x[1] - x[0]).norm() / (times[1] - times[0])
    speed[-1] = (x[-1] - x[-2]).norm() / (times[-1] - times[-2])
    mid = midpoint_log_density(x, s, ell)
    s_mid = 0.5 * (s[1:] + s[:-1])
    log_e = float(metric.energy(x[1:] - x[:-1], mid, s_mid))
    interior = rn[1:-1]
    return PathMeasures(
        residual=rn, log_density=ell, speed=speed,
        mean_residual=float(interior.mean()) if n > 2 else math.nan,
        median_residual=float(interior.median()) if n > 2 else math.nan,
        log_relative_length=log_relative_length(x, s, metric), log_energy=log_e,
        network_calls=network_calls,
    )


def exact_length(x: torch.Tensor, log_density: Callable[[torch.Tensor], torch.Tensor], alpha: float,
                 subdivisions: int = 32) -> float:
    """∫ p(γ)^(−α) ‖dγ‖ along the polyline x with an exact log-density (Simpson's rule per segment)."""
    m = subdivisions if subdivisions % 2 == 0 else subdivisions + 1
    u = torch.linspace(0, 1, m + 1, dtype=x.dtype)
    a, b = x[:-1], x[1:]
    pts = a[:, None, :] + u[None, :, None] * (b - a)[:, None, :]  # (n−1, m+1, D)
    w = torch.exp(-alpha * log_density(pts.reshape(-1, x.shape[1]))).reshape(pts.shape[:2])
    simpson = torch.ones(m + 1, dtype=x.dtype)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    seg = (b - a).norm(dim=-1)
    return float(((w * simpson).sum(1) / (3 * m) * seg).sum())
