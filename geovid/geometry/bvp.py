"""Boundary value problem: geodesics with fixed endpoints (METHOD §5).

Two solvers, chosen by name (``SOLVERS`` registry):

``reference``
    Exactly the published schedule of METHOD §5: control points inserted by bisection (1, 3, 7, 15 interior
    points), 100 iterations per level, update x ← x + η_k r̃ with r̃ = N[s + γ̈/(α‖γ̇‖²)] where γ̈ comes from a natural
    cubic spline through the knots and γ̇ from the piecewise slerp, η_k = 0.1 (1 − k/400)/(number of control
    points), back onto the sphere; a level ends early (the step is skipped) when mean ‖N s‖ < mean ‖N γ̈/(α‖γ̇‖²)‖.
    Every iteration is logged in ``result.schedule`` so that tests check the schedule itself.

``energy``
    For the score metric (used automatically when ``geovid`` is asked with it): L-BFGS on the discrete energy
    of METHOD §4 with autograd gradients.

``geovid`` (default)
    geovid's own solver. All interior points move at once (one batched score call per iteration) with a
    semi-implicit step: the curvature term is treated implicitly through the path's discrete second-derivative
    operator L (a tridiagonal system shared by all D coordinates), the metric force explicitly,

        (I − c h̄² L) x_new = x + c h̄² F(x),    F = r − N P κ,

    which is unconditionally stable in the curvature term, so the step c can grow far beyond the explicit limit.
    The step is adapted on the discrete objective (log L̃ for the density metric, log E for the score metric):
    a step that raises it or produces non-finite numbers is rejected and c halved; accepted steps grow c.
    Multilevel: the path is first solved with few points (5, 9, …) and refined by 4-point subdivision.
    Stops when the relative objective change and the largest displacement (relative to the spacing) stay below
    tolerance, or on the call budget. Mode ``free`` lets points slide along the path (even spacing, for
    interpolation); mode ``normal`` moves them only normally (keeps a video's timing, for γ_o in METHOD §7).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from geovid.errors import InputError, SolverError
from geovid.geometry.measures import log_density_profile, midpoint_log_density, residual_vectors
from geovid.geometry.paths import Sphere, initial_path, slerp
from geovid.progress import ProgressFn, null_progress

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
Monitor = Callable[[torch.Tensor, int], None]  # called with (current path, network calls so far)


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


def _objective(x: torch.Tensor, s: torch.Tensor, metric: Any) -> float:
    """Discrete objective: log L̃ (density metric) or log E (score metric)."""
    ell = log_density_profile(x, s)
    mid = midpoint_log_density(x, s, ell)
    if metric.name == "density":
        seg = (x[1:] - x[:-1]).norm(dim=-1).clamp_min(1e-300)
        return float(torch.logsumexp(metric.segment_log_weights(mid) + torch.log(seg), 0))
    return float(metric.energy(x[1:] - x[:-1], mid, 0.5 * (s[1:] + s[:-1])))


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


def _check_inputs(x0: torch.Tensor) -> None:
    if x0.ndim != 2 or x0.shape[0] < 3:
        raise InputError(f"a path needs at least 3 points as an (n, D) tensor, got shape {tuple(x0.shape)}")
    if not torch.all(torch.isfinite(x0)):
        raise InputError("the initial path contains non-finite values")


def solve_geovid(x0: torch.Tensor, score_fn: ScoreFn, metric: Any, sphere: Sphere, *,
                 mode: str = "free", multilevel: bool = True, max_calls: int | None = None,
                 max_iters: int = 400, xtol: float = 1e-3, rtol: float = 1e-6, patience: int = 3,
                 step: float = 1.0, step_max: float = 1e4, slack: float = 1.5, stall: int = 12, theta: float = 0.5,
                 coarse_factor: float = 64.0,
                 progress: ProgressFn = null_progress, monitor: Monitor | None = None, **_: Any) -> BVPResult:
    """geovid's default BVP solver (see the module docstring). x0: initial path (n, D), endpoints fixed.

    The explicit force step is bounded by c h̄² Lip(F) ≤ ``theta`` with Lip(F) a secant estimate from the last
    accepted step. Step control is on the residual and the objective: a trial step is accepted when it is finite and either lowers the
    objective or does not raise the mean ‖r‖ above ``slack`` × its current value; accepted steps double c, rejected ones divide it by
    4. A level ends when the largest displacement stays below ``xtol`` × spacing (``coarse_factor`` × ``xtol`` on
    the coarse warm-start levels) for ``patience`` iterations,
    when the mean ‖r‖ times the path length falls below ``rtol``, or when the best mean ‖r‖ has not improved
    by 1 % for ``stall`` iterations (the noise floor of a stochastic estimator); the level's best path is kept.
    """
    _check_inputs(x0)
    if mode not in ("free", "normal"):
        raise InputError(f"mode must be 'free' or 'normal', got {mode!r}")
    t0 = time.perf_counter()
    counter = CountingScore(score_fn)
    hvp_fn = counter if metric.needs_hvp else None
    n = x0.shape[0]
    sizes = _level_sizes(n, multilevel and mode == "free")
    x = x0[:: (n - 1) // (sizes[0] - 1)].clone() if sizes[0] != n else x0.clone()
    s_ends = counter(x[[0, -1]])
    if not torch.all(torch.isfinite(s_ends)):
        raise SolverError("the score is not finite at the endpoints")
    history: list[dict[str, Any]] = []
    it_total = 0
    converged = False

    def evaluate(xx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float, float]:
        si = counter(xx[1:-1])
        ss = torch.cat([s_ends[:1], si, s_ends[1:]])
        if not torch.all(torch.isfinite(ss)):
            return ss, ss, ss, ss, math.inf, math.inf
        r, k, tang = residual_vectors(xx, si, metric, sphere, hvp_fn)
        mr = float(r.norm(dim=-1).mean())
        fo = _objective(xx, ss, metric)
        return ss, r, k, tang, (mr if math.isfinite(mr) else math.inf), (fo if math.isfinite(fo) else math.inf)

    for li, size in enumerate(sizes):
        last = li == len(sizes) - 1
        if x.shape[0] != size:
            x = _subdivide(x, sphere)
        s, r, k, tang, mr, fo = evaluate(x)
        if not math.isfinite(mr):
            raise SolverError("the score is not finite on the initial path")
        c = step
        lip = 0.0  # secant estimate of the force's Lipschitz constant (stability bound of the explicit part)
        quiet = 0
        best = (mr, x, s, it_total)
        best_f = (fo, it_total)
        level_tol = xtol if last else coarse_factor * xtol
        level_converged = False
        while it_total < max_iters:
            if max_calls is not None and counter.calls + (size - 2) > max_calls:
                break
            length = float((x[1:] - x[:-1]).norm(dim=-1).sum())
            if mr * length < rtol:
                level_converged = True
                break
            force = r - k
            h = (x[1:] - x[:-1]).norm(dim=-1).clamp_min(1e-300)
            hbar2 = float(h.mean()) ** 2
            op = _second_derivative_matrix(h)
            accepted, disp = False, 0.0
            if lip > 0:
                c = min(c, theta / (hbar2 * lip))
            while True:
                a = torch.eye(size - 2, dtype=x.dtype) - c * hbar2 * op[:, 1:-1]
                rhs = x[1:-1] + c * hbar2 * (force + op[:, :1] * x[:1] + op[:, -1:] * x[-1:])
                d = torch.linalg.solve(a, rhs) - x[1:-1]
                if mode == "normal":
                    d = d - (d * tang).sum(-1, keepdim=True) * tang
                x_new = torch.cat([x[:1], sphere.project_points(x[1:-1] + d), x[-1:]])
                trial = evaluate(x_new)
                # Accept a finite step that lowers the objective (log L̃ or log E) or keeps the residual within
                # `slack` of its best: length descent alone can stall on coarse levels where the line-integral
                # estimate of L̃ is crude, residual descent alone stalls in curvature flow.
                ok_f = trial[5] < fo - 1e-12 * abs(fo) and trial[4] <= 3 * best[0]
                if math.isfinite(trial[4]) and (ok_f or trial[4] <= slack * mr):
                    accepted = True
                    dxn = (x_new[1:-1] - x[1:-1]).norm(dim=-1)
                    disp = float(dxn.max()) / math.sqrt(hbar2)
                    dfn = ((trial[1] - trial[2]) - force).norm(dim=-1)
                    moved = dxn > 1e-12 * math.sqrt(hbar2)
                    if bool(moved.any()):
                        lip = float((dfn[moved] / dxn[moved]).max())
                    x, (s, r, k, tang, mr, fo) = x_new, trial
                    c = min(c * 2, step_max)
                    break
                c /= 4
                if c < 1e-10 or (max_calls is not None and counter.calls + (size - 2) > max_calls):
                    break
            it_total += 1
            if monitor is not None and accepted:
                monitor(x, counter.calls)
            rn = r.norm(dim=-1)
            rec = {"iteration": it_total, "level": li, "points": size, "mean_residual": float(rn.mean()),
                   "max_residual": float(rn.max()), "calls": counter.calls, "step": c, "accepted": accepted,
                   "displacement": disp}
            history.append(rec)
            progress("solve", it_total, max_iters, {"|r|": rec["mean_residual"], "calls": counter.calls})
            if not accepted and c < 1e-10:
                if not math.isfinite(mr):
                    raise SolverError("the geodesic solver diverged: non-finite scores even with tiny steps "
                                      "(check the noise level and alpha)")
                level_converged = True  # no step reduces the residual any more
                break
            if accepted and mr < best[0]:
                improved = mr < 0.99 * best[0]
                best = (mr, x, s, it_total if improved else best[3])
            if accepted and fo < best_f[0] - 1e-3 * max(1.0, abs(best_f[0])):
                best_f = (fo, it_total)
            quiet = quiet + 1 if disp < level_tol else 0
            if quiet >= patience:
                level_converged = True
                break
            if it_total - max(best[3], best_f[1]) >= stall:
                level_converged = True  # the residual stopped improving: noise floor of the estimator
                break
        if best[0] < mr and best_f[1] <= best[3]:
            mr, x, s = best[0], best[1], best[2]
        if last:
            converged = level_converged
    progress("solve", it_total, it_total, {"|r|": history[-1]["mean_residual"] if history else math.nan,
                                           "calls": counter.calls})
    return BVPResult(path=x, scores=s, iterations=it_total, network_calls=counter.calls, converged=converged,
                     solver="geovid", history=history, seconds=time.perf_counter() - t0)


def solve_energy(x0: torch.Tensor, score_fn: ScoreFn, metric: Any, sphere: Sphere, *,
                 max_calls: int | None = None, max_iters: int = 400, gtol: float = 1e-7,
                 progress: ProgressFn = null_progress, **_: Any) -> BVPResult:
    """Energy formulation for the score metric (METHOD §4, §5 "free choices"): minimise the discrete energy
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
        e = (n_seg / 2.0) * ((dx * dx).sum(-1) + metric.lam * (s_mid * dx).sum(-1) ** 2).sum()
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


def _spline_derivatives(knots_t: np.ndarray, x: torch.Tensor, sphere: Sphere) -> tuple[torch.Tensor, torch.Tensor]:
    """Velocity (piecewise slerp) and acceleration (natural cubic spline) at the knots (METHOD §5)."""
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


def solve_reference(x0: torch.Tensor, score_fn: ScoreFn, metric: Any, sphere: Sphere, *,
                    levels: tuple[int, ...] = (1, 3, 7, 15), iters_per_level: int = 100, eta0: float = 0.1,
                    progress: ProgressFn = null_progress, max_calls: int | None = None,
                    monitor: Monitor | None = None, **_: Any) -> BVPResult:
    """The published schedule of METHOD §5 (density metric only). x0 gives the endpoints (and is otherwise unused:
    the reference always starts from the slerp/lerp between them)."""
    _check_inputs(x0)
    if metric.name != "density":
        raise InputError("the reference solver implements the density metric only (METHOD §5)")
    t0 = time.perf_counter()
    counter = CountingScore(score_fn)
    alpha = metric.alpha
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


SOLVERS: dict[str, Callable[..., BVPResult]] = {"geovid": solve_geovid, "reference": solve_reference,
                                                 "energy": solve_energy}


def solve_bvp(x0: torch.Tensor, score_fn: ScoreFn, metric: Any, sphere: Sphere | None = None,
              solver: str = "geovid", seed: int | None = 0, **options: Any) -> BVPResult:
    """Solve the geodesic BVP with fixed endpoints x0[0], x0[-1] (METHOD §5).

    Args:
        x0: initial path (n, D), endpoints included (e.g. ``initial_path(a, b, n, sphere)`` or a video path).
        score_fn: a score estimator (METHOD §2) mapping (m, D) → (m, D).
        metric: ``DensityMetric`` or ``ScoreMetric``.
        sphere: sphere constraint (default: on, radius = mean norm of the endpoints).
        solver: ``geovid`` (default) or ``reference``.
        seed: seeds torch's global RNG for anything stochastic inside the score function.
        **options: solver options (``max_calls``, ``max_iters``, ``mode``, ``progress``, ...).

    Returns:
        BVPResult with the path, the scores at its points, iterations, network calls and history.
    """
    if solver not in SOLVERS:
        raise InputError(f"unknown solver {solver!r}; choose from {', '.join(SOLVERS)}")
    if sphere is None:
        sphere = Sphere.for_points(x0[[0, -1]])
    if seed is not None:
        torch.manual_seed(seed)
    if solver == "geovid" and metric.name == "score":
        # The score metric's force involves Hessian-vector products and is stiff for the semi-implicit
        # residual iteration; its energy is smooth, so geovid minimises the energy directly.
        solver = "energy"
    return SOLVERS[solver](x0, score_fn, metric, sphere, **options)
