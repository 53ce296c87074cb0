"""The reference schedule of docs/method.md §5.2 (``--solver reference``): control points inserted by bisection
(1, 3, 7, 15 interior points), 100 iterations per level, x ← x + η_k r̃ with γ̈ from a natural cubic spline through
the knots and γ̇ from the piecewise slerp; every iteration logged in ``result.schedule``."""

from __future__ import annotations

import time
from typing import Any, cast

import numpy as np
import torch

from geovid.errors import InputError, SolverError
from geovid.geometry import ScoreFn
from geovid.geometry.bvp_core import BVPResult, CountingScore, Monitor, _check_inputs
from geovid.geometry.metrics import DensityMetric, Metric
from geovid.geometry.paths import Sphere, initial_path, slerp
from geovid.progress import ProgressFn, null_progress


def _spline_derivatives(knots_t: np.ndarray, x: torch.Tensor, sphere: Sphere) -> tuple[torch.Tensor, torch.Tensor]:
    """Velocity (piecewise slerp) and acceleration (natural cubic spline) at the knots (docs/method.md §5)."""
    from scipy.interpolate import CubicSpline

    xn = x.detach().cpu().numpy()
    acc = CubicSpline(knots_t, xn, axis=0, bc_type="natural")(knots_t, 2)
    acc_t = torch.from_numpy(np.ascontiguousarray(acc)).to(x.dtype)
    vel = torch.empty_like(x)
    dt = float(knots_t[1] - knots_t[0])
    eps = 1e-4
    for j in range(x.shape[0]):
        # Derivative of the segment's slerp (lerp when off the sphere) at the knot, by a tiny central difference.
        a, b = (j, j + 1) if j + 1 < x.shape[0] else (j - 1, j)
        u = 0.0 if a == j else 1.0
        tt = torch.tensor([max(0.0, u - eps), min(1.0, u + eps)], dtype=x.dtype)
        pts = slerp(x[a], x[b], tt) if sphere.on else x[a] + tt[:, None] * (x[b] - x[a])
        vel[j] = (pts[1] - pts[0]) / (float(tt[1] - tt[0]) * dt)
    return vel, acc_t


def solve_reference(x0: torch.Tensor, score_fn: ScoreFn, metric: Metric, sphere: Sphere, *,
                    levels: tuple[int, ...] = (1, 3, 7, 15), iters_per_level: int = 100, eta0: float = 0.1,
                    progress: ProgressFn = null_progress, max_calls: int | None = None,
                    monitor: Monitor | None = None) -> BVPResult:
    """The published schedule of docs/method.md §5 (density metric only). x0 gives the endpoints (and is otherwise unused:
    the reference always starts from the slerp/lerp between them)."""
    _check_inputs(x0)
    if metric.name != "density":
        raise InputError("the reference solver implements the density metric only (docs/method.md §5)")
    t0 = time.perf_counter()
    counter = CountingScore(score_fn)
    alpha = cast(DensityMetric, metric).alpha  # the density metric, by its name (checked above)
    total = iters_per_level * len(levels)
    a_end, b_end = x0[0], x0[-1]
    ctrl = initial_path(a_end, b_end, levels[0] + 2, sphere)[1:-1]
    schedule: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    k = 0
    for li, m in enumerate(levels):
        if li > 0:
            # Bisection: keep the old control points, insert the slerp midpoints of every segment.
            knots = torch.cat([a_end[None], ctrl, b_end[None]])
            mids = [slerp(knots[j], knots[j + 1], torch.tensor([0.5], dtype=x0.dtype))[0] if sphere.on
                    else 0.5 * (knots[j] + knots[j + 1]) for j in range(knots.shape[0] - 1)]
            new = []
            for j in range(ctrl.shape[0] + 1):
                new.append(mids[j])
                if j < ctrl.shape[0]:
                    new.append(ctrl[j])
            ctrl = torch.stack(new)
            if ctrl.shape[0] != m:
                raise SolverError(f"bisection produced {ctrl.shape[0]} control points, expected {m}")
        knots_t = np.linspace(0.0, 1.0, m + 2)
        for it in range(iters_per_level):
            k = li * iters_per_level + it
            if max_calls is not None and counter.calls + m > max_calls:
                break
            knots = torch.cat([a_end[None], ctrl, b_end[None]])
            s = counter(ctrl)
            vel, acc = _spline_derivatives(knots_t, knots, sphere)
            v, a = vel[1:-1], acc[1:-1]
            tang = sphere.project_vectors(ctrl, v)
            tang = tang / tang.norm(dim=-1, keepdim=True).clamp_min(1e-300)
            ps = sphere.project_vectors(ctrl, s)
            pa = sphere.project_vectors(ctrl, a)
            ns = ps - (ps * tang).sum(-1, keepdim=True) * tang
            na = pa - (pa * tang).sum(-1, keepdim=True) * tang
            na = na / (alpha * (v * v).sum(-1, keepdim=True).clamp_min(1e-300))
            mean_ns, mean_na = float(ns.norm(dim=-1).mean()), float(na.norm(dim=-1).mean())
            eta = eta0 * (1 - k / total) / m
            skipped = mean_ns < mean_na
            rt = ns + na
            schedule.append({"level": li, "control_points": m, "iteration": it, "k": k, "eta": eta,
                             "mean_Ns": mean_ns, "mean_Nacc": mean_na, "skipped": skipped, "calls": counter.calls})
            history.append({"iteration": len(history) + 1, "level": li, "points": m + 2,
                            "mean_residual": float((alpha * rt).norm(dim=-1).mean()),
                            "max_residual": float((alpha * rt).norm(dim=-1).max()), "calls": counter.calls})
            progress("solve", k + 1, total, {"|r|": history[-1]["mean_residual"], "calls": counter.calls})
            if not torch.all(torch.isfinite(rt)):
                raise SolverError("the reference solver produced non-finite updates")
            if skipped:
                break
            ctrl = sphere.project_points(ctrl + eta * rt)
            if monitor is not None:
                monitor(torch.cat([a_end[None], ctrl, b_end[None]]), counter.calls)
    path = torch.cat([a_end[None], ctrl, b_end[None]])
    scores = counter(path)
    return BVPResult(path=path, scores=scores, iterations=len(schedule), network_calls=counter.calls,
                     converged=True, solver="reference", history=history, schedule=schedule,
                     seconds=time.perf_counter() - t0)
