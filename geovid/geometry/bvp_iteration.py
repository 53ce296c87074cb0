"""One start of geovid's boundary-value solver (docs/method.md §5.3): the semi-implicit step, its step-size control,
the multilevel refinement and the stopping rules. :func:`_geovid_run` is a generator that yields the points whose
scores it needs, so that several starts run in lockstep with one batched score call per round
(:mod:`geovid.geometry.bvp_starts`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import torch

from geovid.errors import SolverError
from geovid.geometry import ScoreFn
from geovid.geometry.bvp_core import Monitor, _objective
from geovid.geometry.bvp_starts import _StartRun
from geovid.geometry.measures import residual_vectors
from geovid.geometry.metrics import Metric
from geovid.geometry.paths import Sphere
from geovid.progress import ProgressFn


def _second_derivative_matrix(h: torch.Tensor) -> torch.Tensor:
    """Arc-length second-derivative operator on interior points for spacings h (n−1,), Dirichlet ends.

    Returns the (m, m+2) matrix acting on all n = m + 2 points.
    """
    m = h.numel() - 1
    op = torch.zeros(m, m + 2, dtype=h.dtype)
    hl, hr = h[:-1], h[1:]
    idx = torch.arange(m)
    op[idx, idx] = 2 / (hl * (hl + hr))
    op[idx, idx + 1] = -2 / (hl * hr)
    op[idx, idx + 2] = 2 / (hr * (hl + hr))
    return op


def _subdivide(x: torch.Tensor, sphere: Sphere) -> torch.Tensor:
    """4-point (cubic) subdivision: n → 2n − 1 points, old points kept."""
    n = x.shape[0]
    mid = torch.empty(n - 1, x.shape[1], dtype=x.dtype)
    if n >= 4:
        mid[1:-1] = (-x[:-3] + 9 * x[1:-2] + 9 * x[2:-1] - x[3:]) / 16
        mid[0] = (3 * x[0] + 6 * x[1] - x[2]) / 8
        mid[-1] = (3 * x[-1] + 6 * x[-2] - x[-3]) / 8
    else:
        mid = 0.5 * (x[1:] + x[:-1])
    out = torch.empty(2 * n - 1, x.shape[1], dtype=x.dtype)
    out[0::2], out[1::2] = x, sphere.project_points(mid)
    return out


def _level_sizes(n: int, multilevel: bool) -> list[int]:
    sizes = [n]
    while multilevel and (sizes[-1] - 1) % 2 == 0 and (sizes[-1] - 1) // 2 + 1 >= 5:
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes[::-1]


@dataclass
class StepControl:
    """The step size c of the semi-implicit step (docs/method.md §5.3), kept apart like k-diffusion's step-size
    controllers: c is capped so that c h̄² Lip(F) ≤ ``theta``, Lip(F) a secant estimate of the force's Lipschitz
    constant from the last accepted step (the stability bound of the explicit part); an accepted step doubles c
    (at most ``step_max``), a rejected one divides it by 4; below 10⁻¹⁰ no step helps any more."""

    c: float
    step_max: float
    theta: float
    lip: float = 0.0

    def cap(self, hbar2: float) -> None:
        if self.lip > 0:
            self.c = min(self.c, self.theta / (hbar2 * self.lip))

    def accept(self, dxn: torch.Tensor, dfn: torch.Tensor, h: float) -> None:
        """After an accepted step: point displacements ``dxn``, force changes ``dfn``, mean spacing ``h``."""
        moved = dxn > 1e-12 * h
        if bool(moved.any()):
            self.lip = float((dfn[moved] / dxn[moved]).max())
        self.c = min(self.c * 2, self.step_max)

    def reject(self) -> bool:
        """After a rejected step; True when c is exhausted."""
        self.c /= 4
        return self.exhausted

    @property
    def exhausted(self) -> bool:
        return self.c < 1e-10


def _propose(x: torch.Tensor, force: torch.Tensor, tang: torch.Tensor, op: torch.Tensor, hbar2: float, c: float,
             mode: str, sphere: Sphere, anchor: torch.Tensor | None, trust: float | None) -> torch.Tensor:
    """The semi-implicit trial step (I − c h̄² L) x_new = x + c h̄² F (docs/method.md §5.3), normal part only in mode
    ``normal``, within ``trust`` of ``anchor`` (the start path) when given, back onto the sphere."""
    size = x.shape[0]
    a = torch.eye(size - 2, dtype=x.dtype) - c * hbar2 * op[:, 1:-1]
    rhs = x[1:-1] + c * hbar2 * (force + op[:, :1] * x[:1] + op[:, -1:] * x[-1:])
    d = torch.linalg.solve(a, rhs) - x[1:-1]
    if mode == "normal":
        d = d - (d * tang).sum(-1, keepdim=True) * tang
    pts = x[1:-1] + d
    if trust is not None and anchor is not None:  # trust region: no point further than `trust` from its start
        off = pts - anchor[1:-1]
        pts = anchor[1:-1] + off * (trust / off.norm(dim=-1, keepdim=True).clamp_min(1e-300)).clamp(max=1.0)
    return torch.cat([x[:1], sphere.project_points(pts), x[-1:]])


State = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float, float]  # s, r, κ, T, mean ‖r‖, objective


def _geovid_run(x0: torch.Tensor, s_ends: torch.Tensor, metric: Metric, sphere: Sphere, run: _StartRun, *,
                per_point: int, hvp_fn: ScoreFn | None, total_calls: Callable[[], int], mode: str,
                multilevel: bool, max_calls: int | None, max_iters: int, xtol: float, rtol: float, patience: int,
                step: float, step_max: float, slack: float, stall: int, theta: float, coarse_factor: float,
                progress: ProgressFn, monitor: Monitor | None, coarse_only: bool = False,
                trust: float | None = None) -> Generator[torch.Tensor, torch.Tensor, None]:
    """The geovid iteration for one start, as a generator: it yields the points whose scores it needs and
    receives them, so that ``_lockstep`` can serve several starts with one batched score call per round.
    ``coarse_only`` stops after the coarse warm-start levels (the finest level is left out)."""
    n = x0.shape[0]
    sizes = _level_sizes(n, multilevel and mode == "free")
    n_levels = len(sizes)
    if coarse_only and n_levels > 1:
        sizes = sizes[:-1]
    x = x0[:: (n - 1) // (sizes[0] - 1)].clone() if sizes[0] != n else x0.clone()

    def evaluate(xx: torch.Tensor) -> Generator[torch.Tensor, torch.Tensor, State]:
        si = yield xx[1:-1]
        run.calls += (xx.shape[0] - 2) * per_point
        ss = torch.cat([s_ends[:1], si, s_ends[1:]])
        if not torch.all(torch.isfinite(ss)):
            return ss, ss, ss, ss, math.inf, math.inf
        r, k, tang = residual_vectors(xx, si, metric, sphere, hvp_fn)
        mr = float(r.norm(dim=-1).mean())
        fo = _objective(xx, ss, metric)
        return ss, r, k, tang, (mr if math.isfinite(mr) else math.inf), (fo if math.isfinite(fo) else math.inf)

    level = {"evaluate": evaluate, "run": run, "sphere": sphere, "mode": mode, "trust": trust,
             "max_calls": max_calls, "max_iters": max_iters, "rtol": rtol, "patience": patience, "stall": stall,
             "slack": slack, "monitor": monitor, "total_calls": total_calls, "progress": progress}
    s, mr, it_total, converged = torch.empty(0), math.nan, 0, False
    for li, size in enumerate(sizes):
        if x.shape[0] != size:
            x = _subdivide(x, sphere)
        state = yield from evaluate(x)
        s, mr = state[0], state[4]
        if not math.isfinite(mr):
            raise SolverError("the score is not finite on the initial path")
        if li == 0:
            run.initial_residual, run.initial_objective = mr, state[5]
            # A critical start (docs/method.md §5): the residual already passes the convergence test before any
            # step (exactly zero on a symmetric saddle); descent cannot leave it, the caller breaks it.
            run.critical = mr * float((x[1:] - x[:-1]).norm(dim=-1).sum()) < rtol
        run.last_residual, run.last_objective = mr, state[5]
        last = li == n_levels - 1
        control = StepControl(c=step, step_max=step_max, theta=theta)
        x, s, mr, level_converged, it_total = yield from _solve_level(
            x, state, li, it_total, control, x0 if size == n else None, xtol if last else coarse_factor * xtol,
            **level)
        if last:
            converged = level_converged
    # The last known mean ‖r‖ (the initial one when no step was taken): never NaN in a progress line.
    run.path, run.scores, run.iterations, run.converged, run.last_residual = x, s, it_total, converged, mr
    run.objective = _objective(x, s, metric)
    progress("solve", it_total, it_total, {"|r|": mr, "calls": total_calls()})


def _solve_level(x: torch.Tensor, state: State, li: int, it_total: int, control: StepControl,
                 anchor: torch.Tensor | None, tol: float, *, evaluate: Callable[..., Any], run: _StartRun,
                 sphere: Sphere, mode: str, trust: float | None, max_calls: int | None, max_iters: int, rtol: float,
                 patience: int, stall: int, slack: float, monitor: Monitor | None, total_calls: Callable[[], int],
                 progress: ProgressFn) -> Generator[torch.Tensor, torch.Tensor,
                                                    tuple[torch.Tensor, torch.Tensor, float, bool, int]]:
    """Iterate one level of the multilevel scheme (docs/method.md §5.3 "Stopping"); returns (path, scores, mean ‖r‖,
    converged, iterations so far). The level's best path by mean ‖r‖ is kept unless the objective improved after it."""
    s, r, k, tang, mr, fo = state
    size = x.shape[0]
    quiet, converged = 0, False
    best, best_f = (mr, x, s, it_total), (fo, it_total)
    while it_total < max_iters:
        if max_calls is not None and run.calls + (size - 2) > max_calls:
            break
        if mr * float((x[1:] - x[:-1]).norm(dim=-1).sum()) < rtol:
            converged = True
            break
        force = r - k
        h = (x[1:] - x[:-1]).norm(dim=-1).clamp_min(1e-300)
        hbar2 = float(h.mean()) ** 2
        op = _second_derivative_matrix(h)
        accepted, disp = False, 0.0
        control.cap(hbar2)
        while True:
            x_new = _propose(x, force, tang, op, hbar2, control.c, mode, sphere, anchor, trust)
            trial = yield from evaluate(x_new)
            # Accept a finite step that lowers the objective (log L̃ or log E) or keeps the residual within
            # `slack` of its best: length descent alone can stall on coarse levels where the line-integral
            # estimate of L̃ is crude, residual descent alone stalls in curvature flow.
            ok_f = trial[5] < fo - 1e-12 * abs(fo) and trial[4] <= 3 * best[0]
            if math.isfinite(trial[4]) and (ok_f or trial[4] <= slack * mr):
                accepted = True
                dxn = (x_new[1:-1] - x[1:-1]).norm(dim=-1)
                disp = float(dxn.max()) / math.sqrt(hbar2)
                control.accept(dxn, ((trial[1] - trial[2]) - force).norm(dim=-1), math.sqrt(hbar2))
                x, (s, r, k, tang, mr, fo) = x_new, trial
                break
            if control.reject() or (max_calls is not None and run.calls + (size - 2) > max_calls):
                break
        it_total += 1
        if monitor is not None and accepted:
            monitor(x, total_calls())
        rn = r.norm(dim=-1)
        rec = {"iteration": it_total, "level": li, "points": size, "mean_residual": float(rn.mean()),
               "max_residual": float(rn.max()), "calls": total_calls(), "step": control.c, "accepted": accepted,
               "displacement": disp}
        run.history.append(rec)
        run.iterations, run.last_residual, run.last_objective = it_total, mr, fo
        progress("solve", it_total, max_iters, {"|r|": rec["mean_residual"], "calls": total_calls()})
        if not accepted and control.exhausted:
            if not math.isfinite(mr):
                raise SolverError("the geodesic solver diverged: non-finite scores even with tiny steps "
                                  "(check the noise level and alpha)")
            converged = True  # no step reduces the residual any more
            break
        if accepted and mr < best[0]:
            best = (mr, x, s, it_total if mr < 0.99 * best[0] else best[3])
        if accepted and fo < best_f[0] - 1e-3 * max(1.0, abs(best_f[0])):
            best_f = (fo, it_total)
        quiet = quiet + 1 if disp < tol else 0
        if quiet >= patience or it_total - max(best[3], best_f[1]) >= stall:
            converged = True  # settled, or the residual stopped improving: noise floor of the estimator
            break
    if best[0] < mr and best_f[1] <= best[3]:
        mr, x, s = best[0], best[1], best[2]
    return x, s, mr, converged, it_total
