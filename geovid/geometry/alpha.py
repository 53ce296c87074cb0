"""α of the density metric by one rule for every task, model and estimator (docs/method.md §3.7).

The geodesic gradient r = κ + α N P s (docs/method.md §3.2) balances the bending of a path against the density
pulling across it. The same α means a different balance on another model or estimator, because the scale of s
differs (the ``eps`` score of the bundled model is ~60 times the ``contrast`` one; SD2's is another again). The
rule ties α to the geometry of the endpoints instead:

    α = ρ / (d · S),   d = ‖x_B − x_A‖ (the chord),   S = median over the interior points of the straight path
                                                          (slerp on the sphere) of ‖N P s‖,

with ρ = 2: **on the straight path, the density term equals the curvature 2/d of the half circle over the
chord** — the most a path can bend between its endpoints without turning back. A geodesic may then bend as
much as the density asks, up to that, and no more. It is measured with the task's own estimator, conditioning
and draws, so it transfers between models and estimators by construction, and costs one score evaluation of
the straight path (which every task scores anyway for its baseline). For an initial-value problem the "chord"
is the straight continuation of the start velocity over the horizon (:func:`calibrate_alpha_ray`).

Written before the measurements that judge it (docs/analysis.md, docs/interpolation.md); ``--alpha`` overrides it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from geovid.errors import InputError
from geovid.geometry import ScoreFn
from geovid.geometry.paths import Sphere, initial_path

#: ρ of the rule: the density term on the straight path equals the curvature of the half circle over the chord.
RHO = 2.0
#: Points of the straight path the rule scores (endpoints included) when the caller has no path of its own.
RULE_POINTS = 9


@dataclass(frozen=True)
class AlphaCalibration:
    """The α the rule gives and what it was computed from (stored in a run's summary)."""

    alpha: float
    rho: float
    chord: float
    normal_score: float  # S: median ‖N P s‖ over the straight path's interior points
    points: int
    network_calls: int

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "alpha = rho / (chord * median |N P s| on the straight path)  (docs/method.md §3.7)",
                **asdict(self)}


def normal_score_on_line(line: torch.Tensor, s_interior: torch.Tensor, sphere: Sphere) -> float:
    """Median over the interior points of ‖N P s‖, the score's component across the path (docs/method.md §3.2)."""
    from geovid.geometry.measures import residual_vectors
    from geovid.geometry.metrics import make_metric

    r, k, _ = residual_vectors(line, s_interior.to(line.dtype), make_metric("density", alpha=1.0), sphere)
    return float((r - k).norm(dim=-1).median())


def calibrate_alpha(score_fn: ScoreFn, a: torch.Tensor, b: torch.Tensor,
                    sphere: Sphere, points: int = RULE_POINTS, rho: float = RHO,
                    line: torch.Tensor | None = None, s_interior: torch.Tensor | None = None) -> AlphaCalibration:
    """α by the rule of this module for endpoints ``a``, ``b`` (flat points) and a score.

    Args:
        score_fn: the task's score estimator (x (n, D) → s (n, D)).
        a, b: the endpoints.
        sphere: the task's sphere (``Sphere(None)`` when off).
        points: points of the straight path (endpoints included) when ``line`` is not given.
        rho: ρ of the rule.
        line: the straight path to use (e.g. the analysis's γ_l), endpoints included.
        s_interior: its scores at the interior points, when already computed (no network call then).

    Raises:
        InputError: the score vanishes or is not finite on the straight path (give ``--alpha``).
    """
    if line is None:
        line = initial_path(a.to(torch.float64), b.to(torch.float64), max(3, int(points)), sphere)
    calls = 0
    if s_interior is None:
        s_interior = score_fn(line[1:-1].to(a.dtype))
        calls = int(line.shape[0] - 2) * int(getattr(score_fn, "calls_per_point", 1))
    d = float((line[-1] - line[0]).norm())
    s = normal_score_on_line(line.to(torch.float64), s_interior.to(torch.float64), sphere)
    if not (math.isfinite(s) and s > 0 and d > 0):
        raise InputError("cannot set alpha by the rule: the score across the straight path is zero or not finite "
                         "(or the endpoints coincide); give --alpha")
    return AlphaCalibration(alpha=rho / (d * s), rho=rho, chord=d, normal_score=s, points=int(line.shape[0]),
                            network_calls=calls)


def calibrate_alpha_ray(score_fn: ScoreFn, x: torch.Tensor, v: torch.Tensor,
                        length: float, sphere: Sphere, points: int = RULE_POINTS,
                        rho: float = RHO) -> AlphaCalibration:
    """The rule for an initial-value problem: the chord is the straight continuation of the start velocity ``v``
    from ``x`` over ``length`` (the distance the integration covers), put on the sphere."""
    if not (math.isfinite(length) and length > 0) or float(v.norm()) == 0:
        raise InputError("cannot set alpha by the rule: the start velocity is zero; give --alpha")
    x64 = x.to(torch.float64)
    end = x64 + v.to(torch.float64) / v.norm() * float(length)
    if sphere.on:
        end = sphere.project_points(end[None])[0]
    return calibrate_alpha(score_fn, x64, end, sphere, points=points, rho=rho)
