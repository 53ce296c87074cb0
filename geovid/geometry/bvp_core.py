"""The parts every boundary-value solver shares (docs/method.md §5): the counted score, the result, the discrete
objective, input checks and the bent extra starts."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from geovid.errors import InputError
from geovid.geometry import ScoreFn
from geovid.geometry.measures import log_density_profile, midpoint_log_density
from geovid.geometry.metrics import Metric
from geovid.geometry.paths import Sphere, initial_path

Monitor = Callable[[torch.Tensor, int], None]  # called with (current path, network calls so far)

#: Bend of the extra starts, as a fraction of the chord ‖b − a‖ (docs/method.md §5).
DEFAULT_START_AMPLITUDE = 0.5


class CountingScore:
    """Wrap a score function and count per-point evaluations (× calls per point of the estimator)."""

    def __init__(self, fn: ScoreFn) -> None:
        self.fn = fn
        self.per_point = int(getattr(fn, "calls_per_point", 1))
        self.calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += x.shape[0] * self.per_point
        return self.fn(x)


@dataclass
class BVPResult:
    """Solution of a boundary value problem."""

    path: torch.Tensor  # (n, D), endpoints included
    scores: torch.Tensor  # (n, D) scores at the returned points
    iterations: int
    network_calls: int
    converged: bool
    solver: str
    history: list[dict[str, Any]] = field(default_factory=list)
    schedule: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    """Global-start report (docs/method.md §5): ``critical_start``, ``starts`` (one summary per start), ``chosen``."""


def _objective(x: torch.Tensor, s: torch.Tensor, metric: Metric) -> float:
    """Discrete objective: log L̃ (density metric) or log E (score metric)."""
    ell = log_density_profile(x, s)
    mid = midpoint_log_density(x, s, ell)
    if metric.name == "density":
        seg = (x[1:] - x[:-1]).norm(dim=-1).clamp_min(1e-300)
        return float(torch.logsumexp(metric.segment_log_weights(mid) + torch.log(seg), 0))
    return float(metric.energy(x[1:] - x[:-1], mid, 0.5 * (s[1:] + s[:-1])))


def _check_inputs(x0: torch.Tensor) -> None:
    if x0.ndim != 2 or x0.shape[0] < 3:
        raise InputError(f"a path needs at least 3 points as an (n, D) tensor, got shape {tuple(x0.shape)}")
    if not torch.all(torch.isfinite(x0)):
        raise InputError("the initial path contains non-finite values")


def bent_paths(a: torch.Tensor, b: torch.Tensor, n: int, sphere: Sphere, count: int, seed: int = 0,
               amplitude: float = DEFAULT_START_AMPLITUDE) -> list[torch.Tensor]:
    """``count`` initial paths from a to b: the straight path (slerp on the sphere, lerp off it) bent away from the
    chord by amplitude × ‖b − a‖ (docs/method.md §5, multi-start).

    Each bend has the profile sin(πt) + c sin(2πt) (c uniform in [−½, ½]: bends of different shapes) along a
    random direction orthogonal to the chord (and tangent to the sphere); starts come in antithetic pairs, the
    second of a pair bent the opposite way, so that in 2-D both sides of the chord are tried and in high
    dimension a saddle's unstable direction is pushed both ways.
    """
    base = initial_path(a, b, n, sphere)
    if count <= 0:
        return []
    dtype = a.dtype
    tt = torch.linspace(0, 1, n, dtype=dtype)
    chord = b - a
    length = float(chord.norm())
    ch = chord / max(length, 1e-300)
    gen = torch.Generator().manual_seed(int(seed) + 7919)
    out: list[torch.Tensor] = []
    u = torch.zeros_like(a)
    skew = 0.0
    for j in range(count):
        if j % 2 == 0:
            u = torch.randn(a.shape[0], generator=gen, dtype=torch.float64).to(dtype)
            u = u - (u @ ch) * ch
            if sphere.on:
                mid = base[n // 2] / base[n // 2].norm().clamp_min(1e-300)
                u = u - (u @ mid) * mid
            u = u / u.norm().clamp_min(1e-300)
            skew = float(torch.rand(1, generator=gen, dtype=torch.float64)) - 0.5
        sign = 1.0 if j % 2 == 0 else -1.0
        shape = torch.sin(math.pi * tt) + skew * torch.sin(2 * math.pi * tt)
        dirs = sphere.project_vectors(base, u.expand(n, -1))
        x = sphere.project_points(base + sign * amplitude * length * shape[:, None] * dirs)
        x[0], x[-1] = a, b
        out.append(x)
    return out
