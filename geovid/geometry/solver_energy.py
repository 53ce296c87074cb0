"""The energy solver (docs/method.md §5.5): the score metric's discrete energy minimised by L-BFGS with autograd
gradients, from one or several starts."""

from __future__ import annotations

import math
import time
from typing import Any, cast

import torch

from geovid.errors import SolverError
from geovid.geometry import ScoreFn
from geovid.geometry.bvp_core import BVPResult, CountingScore, _check_inputs, bent_paths
from geovid.geometry.metrics import Metric, ScoreMetric
from geovid.geometry.paths import Sphere
from geovid.progress import ProgressFn, null_progress


def solve_energy(x0: torch.Tensor, score_fn: ScoreFn, metric: Metric, sphere: Sphere, *,
                 max_calls: int | None = None, max_iters: int = 400, gtol: float = 1e-7,
                 progress: ProgressFn = null_progress) -> BVPResult:
    """Energy formulation for the score metric (docs/method.md §4, §5 "free choices"): minimise the discrete energy
    E = (n/2) Σ (‖Δx_i‖² + λ (s(m_i)·Δx_i)²) over the interior points with L-BFGS, gradients through autograd
    (the score must be differentiable). On the sphere the points are parametrised as R·y/‖y‖.
    """
    _check_inputs(x0)
    t0 = time.perf_counter()
    counter = CountingScore(score_fn)
    a, b = x0[:1].detach(), x0[-1:].detach()
    y = x0[1:-1].detach().clone().requires_grad_(True)
    n_seg = x0.shape[0] - 1
    history: list[dict[str, Any]] = []

    def path_of(yy: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, sphere.project_points(yy), b])

    def closure() -> torch.Tensor:
        opt.zero_grad()
        x = path_of(y)
        dx = x[1:] - x[:-1]
        s_mid = counter(0.5 * (x[1:] + x[:-1]))
        lam = cast(ScoreMetric, metric).lam  # the score metric's λ (the energy solver is for that metric)
        e = (n_seg / 2.0) * ((dx * dx).sum(-1) + lam * (s_mid * dx).sum(-1) ** 2).sum()
        if not torch.isfinite(e):
            raise SolverError("the energy became non-finite; check the noise level and lambda")
        e.backward()
        history.append({"iteration": len(history) + 1, "energy": float(e.detach()), "calls": counter.calls,
                        "grad_norm": float(y.grad.norm()) if y.grad is not None else math.nan})
        progress("solve", len(history), max_iters, {"E": float(e.detach()), "calls": counter.calls})
        return e

    opt = torch.optim.LBFGS([y], lr=1.0, max_iter=max_iters, tolerance_grad=gtol, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")
    with torch.enable_grad():
        try:
            opt.step(closure)
        except RuntimeError as exc:
            if "does not require grad" in str(exc) or "grad_fn" in str(exc):
                raise SolverError("the score metric's energy solver needs a differentiable score "
                                  "(autograd through the backbone)") from None
            raise
    x = path_of(y.detach()).detach()
    scores = counter(x).detach()
    converged = (bool(history) and history[-1]["grad_norm"] < 1e3 * gtol) or len(history) < max_iters
    progress("solve", len(history), len(history), {"calls": counter.calls})
    return BVPResult(path=x, scores=scores, iterations=len(history), network_calls=counter.calls,
                     converged=converged, solver="energy", history=history, seconds=time.perf_counter() - t0)


def _solve_energy_starts(x0: torch.Tensor, score_fn: ScoreFn, metric: Metric, sphere: Sphere, starts: int,
                         start_seed: int, start_amplitude: float, **options: Any) -> BVPResult:
    """The energy solver from several starts, one after the other (L-BFGS keeps one path); the start with the
    lowest final energy is returned. A start the solver does not move at all (a critical point) is reported and,
    without other starts, broken by two opposite bends (docs/method.md §5)."""
    counter = CountingScore(score_fn)
    progress = options.pop("progress", null_progress)
    inits = [("initial", x0)] + [("bend", p) for p in bent_paths(x0[0], x0[-1], x0.shape[0], sphere, starts,
                                                                start_seed, start_amplitude)]
    results: list[tuple[str, BVPResult, float]] = []
    t0 = time.perf_counter()

    def run(kind: str, x_init: torch.Tensor) -> None:
        res = solve_energy(x_init, counter, metric, sphere, progress=progress if len(inits) == 1 else null_progress,
                           **options)
        mid = 0.5 * (res.path[1:] + res.path[:-1])
        log_e = float(metric.energy(res.path[1:] - res.path[:-1], torch.zeros(mid.shape[0], dtype=mid.dtype),
                                    counter(mid)))
        results.append((kind, res, log_e))

    run(*inits[0])
    scale = float(x0.abs().max()) or 1.0
    critical = float((results[0][1].path - x0).abs().max()) <= 1e-12 * scale
    if critical and starts == 0:
        inits += [("saddle-break", p) for p in bent_paths(x0[0], x0[-1], x0.shape[0], sphere, 2, start_seed,
                                                          start_amplitude)]
    for kind, p in inits[1:]:
        run(kind, p)
    pick = min(range(len(results)), key=lambda i: (results[i][2], i))
    kind, win, _ = results[pick]
    info: dict[str, Any] = {
        "starts": [{"kind": k, "iterations": r.iterations, "converged": r.converged, "critical": i == 0 and critical,
                    "objective": e if math.isfinite(e) else None} for i, (k, r, e) in enumerate(results)],
        "chosen": pick, "chosen_kind": kind, "critical_start": critical,
        "critical_broken": bool(critical and len(results) > 1)}
    if critical:
        info["note"] = ("the initial path is a critical point of the energy (the solver did not move it); "
                        f"broken by {len(results) - 1} other start(s); kept: {kind} (start {pick})")
    progress("solve", win.iterations, win.iterations, {"calls": counter.calls, "starts": len(results)})
    return BVPResult(path=win.path, scores=win.scores, iterations=win.iterations, network_calls=counter.calls,
                     converged=win.converged, solver="energy", history=win.history,
                     seconds=time.perf_counter() - t0, info=info)
