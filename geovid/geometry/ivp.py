"""Initial value problem: shooting geodesics (extrapolation), docs/method.md §6.

State (x, v). Classical RK4 on γ̈ = a(γ, γ̇) with the metric's acceleration (docs/method.md §3 / §4). With the sphere
constraint the acceleration is projected onto the tangent space and the great-circle term −‖v‖² x/R² is added,
so that with zero score RK4 follows the great circle to fourth order; after every step x is put back on the
sphere, v projected onto its tangent and rescaled to the initial speed (docs/method.md §6).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from geovid.errors import InputError, SolverError
from geovid.geometry import ScoreFn
from geovid.geometry.bvp import CountingScore
from geovid.geometry.metrics import Metric
from geovid.geometry.paths import Sphere, end_tangent
from geovid.progress import ProgressFn, null_progress


@dataclass
class IVPResult:
    """A shot path: points (steps + 1, D), velocities, times, scores at the points."""

    path: torch.Tensor
    velocities: torch.Tensor
    times: torch.Tensor
    scores: torch.Tensor
    network_calls: int
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


def initial_velocity(path: torch.Tensor, sphere: Sphere, speed: float | None = None,
                     at_end: bool = True) -> torch.Tensor:
    """Velocity at the end (or start) of a path, from the circle through its last (first) three points.

    The speed defaults to the path's chordal length (the path parametrised over t ∈ [0, 1] at constant speed).
    """
    if path.shape[0] < 2:
        raise InputError("need at least two points to take a tangent")
    if path.shape[0] == 2:
        tan = path[1] - path[0]
        tan = tan / tan.norm()
    else:
        tan = end_tangent(path, at_start=not at_end)
    x = path[-1] if at_end else path[0]
    tan = sphere.project_vectors(x[None], tan[None])[0]
    tan = tan / tan.norm()
    if speed is None:
        speed = float((path[1:] - path[:-1]).norm(dim=-1).sum())
    return tan * speed


def solve_ivp(x0: torch.Tensor, v0: torch.Tensor, score_fn: ScoreFn, metric: Metric, sphere: Sphere | None = None,
              steps: int = 16, step_size: float | None = None, horizon: float = 1.0,
              progress: ProgressFn = null_progress) -> IVPResult:
    """Integrate the geodesic ODE from (x0, v0) with RK4 (docs/method.md §6).

    Args:
        x0, v0: start point and velocity (D,).
        score_fn: score estimator (docs/method.md §2).
        metric: DensityMetric or ScoreMetric (its ``acceleration``).
        sphere: sphere constraint (default on, radius ‖x0‖).
        steps: number of RK4 steps; step size = horizon/steps unless ``step_size`` is given.
    """
    if steps < 1:
        raise InputError("steps must be at least 1")
    if not (torch.all(torch.isfinite(x0)) and torch.all(torch.isfinite(v0))):
        raise InputError("non-finite initial state")
    t0 = time.perf_counter()
    if sphere is None:
        sphere = Sphere(float(x0.norm()))
    h = step_size if step_size is not None else horizon / steps
    counter = CountingScore(score_fn)
    x = sphere.project_points(x0[None])[0]
    v = sphere.project_vectors(x[None], v0[None])[0]
    speed0 = float(v.norm())
    if speed0 == 0:
        raise InputError("the initial velocity is zero")

    def accel(xs: torch.Tensor, vs: torch.Tensor) -> torch.Tensor:
        s = counter(xs[None])
        a = metric.acceleration(xs[None], vs[None], s, sphere, counter if metric.needs_hvp else None)[0]
        if sphere.on:
            a = sphere.project_vectors(xs[None], a[None])[0] - (vs @ vs) * xs / sphere.radius**2
        return a

    xs, vs = [x], [v]
    history: list[dict[str, Any]] = []
    for i in range(steps):
        k1x, k1v = v, accel(x, v)
        k2x, k2v = v + 0.5 * h * k1v, accel(x + 0.5 * h * k1x, v + 0.5 * h * k1v)
        k3x, k3v = v + 0.5 * h * k2v, accel(x + 0.5 * h * k2x, v + 0.5 * h * k2v)
        k4x, k4v = v + h * k3v, accel(x + h * k3x, v + h * k3v)
        x = x + h / 6 * (k1x + 2 * k2x + 2 * k3x + k4x)
        v = v + h / 6 * (k1v + 2 * k2v + 2 * k3v + k4v)
        if not (torch.all(torch.isfinite(x)) and torch.all(torch.isfinite(v))):
            raise SolverError(f"the shot diverged at step {i + 1} (non-finite state); try a smaller step size")
        x = sphere.project_points(x[None])[0]
        v = sphere.project_vectors(x[None], v[None])[0]
        v = v * (speed0 / max(float(v.norm()), 1e-300))
        xs.append(x)
        vs.append(v)
        history.append({"step": i + 1, "calls": counter.calls})
        progress("shoot", i + 1, steps, {"calls": counter.calls})
    path = torch.stack(xs)
    scores = counter(path)
    times = torch.arange(steps + 1, dtype=x0.dtype) * h
    return IVPResult(path=path, velocities=torch.stack(vs), times=times, scores=scores,
                     network_calls=counter.calls, seconds=time.perf_counter() - t0, history=history)
