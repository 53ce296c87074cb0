"""Boundary value problem: geodesics with fixed endpoints (docs/method.md §5).

Two solvers, chosen by name (``SOLVERS`` registry):

``reference``
    Exactly the published schedule of docs/method.md §5: control points inserted by bisection (1, 3, 7, 15 interior
    points), 100 iterations per level, update x ← x + η_k r̃ with r̃ = N[s + γ̈/(α‖γ̇‖²)] where γ̈ comes from a natural
    cubic spline through the knots and γ̇ from the piecewise slerp, η_k = 0.1 (1 − k/400)/(number of control
    points), back onto the sphere; a level ends early (the step is skipped) when mean ‖N s‖ < mean ‖N γ̈/(α‖γ̇‖²)‖.
    Every iteration is logged in ``result.schedule`` so that tests check the schedule itself.

``energy``
    For the score metric (used automatically when ``geovid`` is asked with it): L-BFGS on the discrete energy
    of docs/method.md §4 with autograd gradients.

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
    interpolation); mode ``normal`` moves them only normally (keeps a video's timing, for γ_o in docs/method.md §7).

Global starts (docs/method.md §5). Local descent can stop on a critical point of the length (the straight path
between symmetric endpoints: its residual is exactly zero) or in the nearest local minimum. A start whose residual
already passes the convergence test before any step is reported as *critical* (``BVPResult.info``) and broken by
two opposite bends; ``starts`` = K adds K bent copies of the straight path (``bent_paths``) and ``candidates``
other initial paths (e.g. the 2-D grid shortest path, ``geovid.toy.grid_initial_path``). All starts of the geovid
solver are iterated in lockstep (each start is a generator of score requests; one batched score call per round)
and the one with the lowest objective is returned; ``info["starts"]`` summarises every start.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
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


@dataclass
class _StartRun:
    """One start of a geovid solve: its outcome, filled in by ``_geovid_run`` (see ``solve_geovid``)."""

    kind: str  # "initial", "candidate", "bend" or "saddle-break"
    calls: int = 0  # network calls this start asked for (endpoint scores included, shared by all starts)
    path: torch.Tensor | None = None
    scores: torch.Tensor | None = None
    iterations: int = 0
    converged: bool = False
    critical: bool = False  # the initial path already met the residual test: a critical point of the length
    initial_residual: float = math.nan
    initial_objective: float = math.nan
    last_residual: float = math.nan
    last_objective: float = math.inf
    objective: float = math.inf  # log L̃ (or log E) of the returned path, the selection criterion
    history: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # an extra start that failed (e.g. non-finite scores where it began) is dropped

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "calls": self.calls, "iterations": self.iterations, "converged": self.converged,
                "critical": self.critical, "initial_objective": _finite_or_none(self.initial_objective),
                "objective": _finite_or_none(self.objective), "initial_residual": _finite_or_none(self.initial_residual),
                "final_residual": _finite_or_none(self.last_residual), **({"error": self.error} if self.error else {})}


def _finite_or_none(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _geovid_run(x0: torch.Tensor, s_ends: torch.Tensor, metric: Any, sphere: Sphere, run: _StartRun, *,
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
    history = run.history
    it_total = 0
    converged = False

    def evaluate(xx: torch.Tensor) -> Generator[torch.Tensor, torch.Tensor,
                                                  tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                        float, float]]:
        si = yield xx[1:-1]
        run.calls += (xx.shape[0] - 2) * per_point
        ss = torch.cat([s_ends[:1], si, s_ends[1:]])
        if not torch.all(torch.isfinite(ss)):
            return ss, ss, ss, ss, math.inf, math.inf
        r, k, tang = residual_vectors(xx, si, metric, sphere, hvp_fn)
        mr = float(r.norm(dim=-1).mean())
        fo = _objective(xx, ss, metric)
        return ss, r, k, tang, (mr if math.isfinite(mr) else math.inf), (fo if math.isfinite(fo) else math.inf)

    s = torch.empty(0)
    mr = math.nan
    for li, size in enumerate(sizes):
        last = li == n_levels - 1
        if x.shape[0] != size:
            x = _subdivide(x, sphere)
        s, r, k, tang, mr, fo = yield from evaluate(x)
        if not math.isfinite(mr):
            raise SolverError("the score is not finite on the initial path")
        if li == 0:
            run.initial_residual, run.initial_objective = mr, fo
            # A critical start (docs/method.md §5): the residual already passes the convergence test before any
            # step (exactly zero on a symmetric saddle); descent cannot leave it, the caller breaks it.
            run.critical = mr * float((x[1:] - x[:-1]).norm(dim=-1).sum()) < rtol
        run.last_residual, run.last_objective = mr, fo
        c = step
        lip = 0.0  # secant estimate of the force's Lipschitz constant (stability bound of the explicit part)
        quiet = 0
        best = (mr, x, s, it_total)
        best_f = (fo, it_total)
        level_tol = xtol if last else coarse_factor * xtol
        level_converged = False
        while it_total < max_iters:
            if max_calls is not None and run.calls + (size - 2) > max_calls:
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
                pts = x[1:-1] + d
                if trust is not None and size == n:  # trust region: no point further than `trust` from its start
                    off = pts - x0[1:-1]
                    pts = x0[1:-1] + off * (trust / off.norm(dim=-1, keepdim=True).clamp_min(1e-300)).clamp(max=1.0)
                x_new = torch.cat([x[:1], sphere.project_points(pts), x[-1:]])
                trial = yield from evaluate(x_new)
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
                if c < 1e-10 or (max_calls is not None and run.calls + (size - 2) > max_calls):
                    break
            it_total += 1
            if monitor is not None and accepted:
                monitor(x, total_calls())
            rn = r.norm(dim=-1)
            rec = {"iteration": it_total, "level": li, "points": size, "mean_residual": float(rn.mean()),
                   "max_residual": float(rn.max()), "calls": total_calls(), "step": c, "accepted": accepted,
                   "displacement": disp}
            history.append(rec)
            run.iterations, run.last_residual, run.last_objective = it_total, mr, fo
            progress("solve", it_total, max_iters, {"|r|": rec["mean_residual"], "calls": total_calls()})
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
    # The last known mean ‖r‖ (the initial one when no step was taken): never NaN in a progress line.
    run.path, run.scores, run.iterations, run.converged, run.last_residual = x, s, it_total, converged, mr
    run.objective = _objective(x, s, metric)
    progress("solve", it_total, it_total, {"|r|": mr, "calls": total_calls()})


def _guarded(gen: Generator[torch.Tensor, torch.Tensor, None], run: _StartRun
             ) -> Generator[torch.Tensor, torch.Tensor, None]:
    """An extra start whose solve fails (non-finite scores where it began, divergence) is recorded and dropped;
    the other starts go on."""
    try:
        yield from gen
    except SolverError as exc:
        run.error, run.objective = str(exc), math.inf


def _lockstep(gens: list[Generator[torch.Tensor, torch.Tensor, None]], counter: CountingScore,
              after_round: Callable[[int], list[Generator[torch.Tensor, torch.Tensor, None]]] | None = None) -> None:
    """Run the starts' generators together: every round, one batched score call for all pending requests.

    ``after_round(round)`` may return new generators (e.g. starts that break a critical point), which join the
    next round.
    """
    pending: dict[int, torch.Tensor] = {}
    live: dict[int, Generator[torch.Tensor, torch.Tensor, None]] = {}

    def start(g: Generator[torch.Tensor, torch.Tensor, None]) -> None:
        i = len(live) + len(done)
        try:
            pending[i] = next(g)
            live[i] = g
        except StopIteration:
            done.add(i)

    done: set[int] = set()
    for g in gens:
        start(g)
    rounds = 0
    while pending:
        keys = list(pending)
        batch = torch.cat([pending[i] for i in keys])
        scores = counter(batch) if batch.shape[0] else batch.new_zeros(batch.shape)
        offset = 0
        for i in keys:
            m = pending[i].shape[0]
            try:
                pending[i] = live[i].send(scores[offset:offset + m])
            except StopIteration:
                del pending[i], live[i]
                done.add(i)
            offset += m
        rounds += 1
        if after_round is not None:
            for g in after_round(rounds):
                start(g)


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


def solve_geovid(x0: torch.Tensor, score_fn: ScoreFn, metric: Any, sphere: Sphere, *,
                 starts: int = 0, candidates: list[torch.Tensor] | None = None, start_seed: int = 0,
                 start_amplitude: float = DEFAULT_START_AMPLITUDE, break_critical: bool = True,
                 select: str = "final", keep_start_paths: bool = False,
                 mode: str = "free", multilevel: bool = True, max_calls: int | None = None,
                 max_iters: int = 400, xtol: float = 1e-3, rtol: float = 1e-6, patience: int = 3,
                 step: float = 1.0, step_max: float = 1e4, slack: float = 1.5, stall: int = 12, theta: float = 0.5,
                 coarse_factor: float = 64.0, trust: float | None = None,
                 progress: ProgressFn = null_progress, monitor: Monitor | None = None) -> BVPResult:
    """geovid's default BVP solver (see the module docstring). x0: initial path (n, D), endpoints fixed.

    The explicit force step is bounded by c h̄² Lip(F) ≤ ``theta`` with Lip(F) a secant estimate from the last
    accepted step. Step control is on the residual and the objective: a trial step is accepted when it is finite and either lowers the
    objective or does not raise the mean ‖r‖ above ``slack`` × its current value; accepted steps double c, rejected ones divide it by
    4. A level ends when the largest displacement stays below ``xtol`` × spacing (``coarse_factor`` × ``xtol`` on
    the coarse warm-start levels) for ``patience`` iterations,
    when the mean ‖r‖ times the path length falls below ``rtol``, or when the best mean ‖r‖ has not improved
    by 1 % for ``stall`` iterations (the noise floor of a stochastic estimator); the level's best path is kept.

    Global starts (docs/method.md §5, mode ``free`` only): ``starts`` = K adds K bent copies of the straight path
    (``bent_paths``, amplitude ``start_amplitude``, seed ``start_seed``), ``candidates`` adds given initial paths
    (e.g. a grid shortest path); all starts are iterated together, one batched score call per round, each with
    the budget ``max_calls``, and the start whose path has the lowest objective (log L̃) is returned. With
    ``select="coarse"`` the starts only run the coarse warm-start levels and the best of them alone is refined
    on the finest level (cheaper; the choice rests on the coarse paths' objectives). ``keep_start_paths`` puts
    every start's final path in ``info["start_paths"]`` (for benchmarks). A start
    that is a critical point (its residual passes the convergence test before any step, e.g. the straight path
    between symmetric endpoints) is reported in ``info["critical_start"]``; with ``break_critical`` and no bent
    start it is broken by two opposite bends. ``info["starts"]`` summarises every start.

    ``trust`` (mode ``normal``, the analysis's γ_o, docs/method.md §7.5): a trust region — after every step each
    interior point is pulled back to at most ``trust`` from its initial position (then onto the sphere), so that
    the optimised path stays a version of the clip and cannot leave the image manifold for atypical regions.
    """
    _check_inputs(x0)
    if mode not in ("free", "normal"):
        raise InputError(f"mode must be 'free' or 'normal', got {mode!r}")
    if starts < 0:
        raise InputError(f"starts must be 0 or more, got {starts}")
    if select not in ("final", "coarse"):
        raise InputError(f"select must be 'final' or 'coarse', got {select!r}")
    if trust is not None and not (math.isfinite(trust) and trust > 0):
        raise InputError(f"trust must be a positive distance, got {trust}")
    t0 = time.perf_counter()
    counter = CountingScore(score_fn)
    per_point = counter.per_point
    s_ends = counter(x0[[0, -1]])
    if not torch.all(torch.isfinite(s_ends)):
        raise SolverError("the score is not finite at the endpoints")
    inits: list[tuple[str, torch.Tensor]] = [("initial", x0)]
    if mode == "free":
        for c in candidates or []:
            _check_inputs(c)
            if c.shape != x0.shape:
                raise InputError(f"a candidate initial path has shape {tuple(c.shape)}, expected {tuple(x0.shape)}")
            inits.append(("candidate", torch.cat([x0[:1], c[1:-1], x0[-1:]])))
        inits += [("bend", p) for p in bent_paths(x0[0], x0[-1], x0.shape[0], sphere, starts, start_seed,
                                                  start_amplitude)]
    single = len(inits) == 1
    runs: list[_StartRun] = []
    opts = {"per_point": per_point, "total_calls": lambda: counter.calls, "mode": mode, "multilevel": multilevel,
            "max_calls": max_calls, "max_iters": max_iters, "xtol": xtol, "rtol": rtol, "patience": patience,
            "step": step, "step_max": step_max, "slack": slack, "stall": stall, "theta": theta,
            "coarse_factor": coarse_factor, "monitor": monitor, "trust": trust}

    coarse = select == "coarse" and not single and mode == "free" and multilevel
    opts["coarse_only"] = coarse

    def make(kind: str, x_init: torch.Tensor, prog: ProgressFn, run: _StartRun | None = None, guard: bool = True,
             **over: Any) -> Generator[torch.Tensor, torch.Tensor, None]:
        if run is None:
            run = _StartRun(kind, calls=2 * per_point)
            runs.append(run)
        hvp_fn = None
        if metric.needs_hvp:
            def hvp_fn(xx: torch.Tensor, run: _StartRun = run) -> torch.Tensor:
                run.calls += xx.shape[0] * per_point
                return counter(xx)
        gen = _geovid_run(x_init, s_ends, metric, sphere, run, hvp_fn=hvp_fn, progress=prog, **{**opts, **over})
        return _guarded(gen, run) if guard and kind != "initial" else gen

    gens = [make(kind, p, progress if single else null_progress) for kind, p in inits]
    broken = False

    def after_round(rnd: int) -> list[Generator[torch.Tensor, torch.Tensor, None]]:
        nonlocal broken
        new = []
        if (rnd == 1 and break_critical and mode == "free" and runs[0].critical
                and not any(r.kind == "bend" for r in runs)):
            # Break the critical point: two opposite bends (in 2-D both sides of the chord).
            broken = True
            new = [make("saddle-break", p, null_progress) for p in bent_paths(
                x0[0], x0[-1], x0.shape[0], sphere, 2, start_seed, start_amplitude)]
        if len(runs) > 1:
            # Several starts: one progress line for all, with the residual of the currently shortest start.
            live = [r for r in runs if math.isfinite(r.last_objective)]
            lead = min(live, key=lambda r: r.last_objective) if live else runs[0]
            res_now = lead.last_residual if math.isfinite(lead.last_residual) else 0.0
            progress("solve", rnd, max_iters, {"|r|": res_now, "calls": counter.calls, "starts": len(runs)})
        return new

    _lockstep(gens, counter, after_round)
    if len(runs) > 1 and getattr(score_fn, "stochastic", False):
        # Stochastic scores: compare the starts on scores drawn alone for each path (same draws per point index).
        for r in runs:
            if r.path is None:
                continue
            r.scores = counter(r.path)
            r.calls += r.path.shape[0] * per_point
            r.objective = _objective(r.path, r.scores, metric)
    pick = min(range(len(runs)), key=lambda i: (runs[i].objective if math.isfinite(runs[i].objective)
                                                  else math.inf, i))
    win = runs[pick]
    summaries = [r.summary() for r in runs]
    if coarse and win.path is not None and win.path.shape[0] != x0.shape[0]:
        # Refine the chosen start alone on the finest level (the budget counts its coarse calls too).
        coarse_hist, coarse_iters = list(win.history), win.iterations
        fine = _StartRun(win.kind, calls=win.calls)
        _lockstep([make(win.kind, _subdivide(win.path, sphere), progress, run=fine, guard=False, multilevel=False,
                        coarse_only=False)], counter)
        for rec in fine.history:
            rec["iteration"] += coarse_iters
        fine.history[:0] = coarse_hist
        fine.iterations += coarse_iters
        fine.critical, fine.initial_residual, fine.initial_objective = (win.critical, win.initial_residual,
                                                                        win.initial_objective)
        win = runs[pick] = fine
        summaries[pick] = {**fine.summary(), "coarse_objective": summaries[pick]["objective"]}
    info: dict[str, Any] = {"starts": summaries, "chosen": pick, "chosen_kind": win.kind,
                            "critical_start": runs[0].critical, "select": "coarse" if coarse else "final"}
    if runs[0].critical:
        if len(runs) == 1:
            info["note"] = ("the initial path is a critical point of the length (residual ~0 before any step); "
                            "not broken (mode 'normal' or break_critical off)")
        else:
            info["note"] = ("the initial path is a critical point of the length (residual ~0 before any step); "
                            f"broken by {len(runs) - 1} other start(s); kept: {win.kind} (start {pick})")
    info["critical_broken"] = bool(runs[0].critical and len(runs) > 1)
    if keep_start_paths:
        info["start_paths"] = [r.path for r in runs]
    if len(runs) > 1:
        progress("solve", win.iterations, win.iterations, {"|r|": win.last_residual, "calls": counter.calls,
                                                           "starts": len(runs)})
    return BVPResult(path=win.path, scores=win.scores, iterations=win.iterations, network_calls=counter.calls,
                     converged=win.converged, solver="geovid", history=win.history,
                     seconds=time.perf_counter() - t0, info=info)


def solve_energy(x0: torch.Tensor, score_fn: ScoreFn, metric: Any, sphere: Sphere, *,
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


def solve_reference(x0: torch.Tensor, score_fn: ScoreFn, metric: Any, sphere: Sphere, *,
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


def _solve_energy_starts(x0: torch.Tensor, score_fn: ScoreFn, metric: Any, sphere: Sphere, starts: int,
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


def _refuse_unknown_options(solver: str, options: dict[str, Any]) -> None:
    """An option the chosen solver does not take is an error, never silently ignored."""
    import inspect

    fn = {"geovid": solve_geovid, "reference": solve_reference, "energy": solve_energy}[solver]
    known = {name for name, p in inspect.signature(fn).parameters.items() if p.kind == p.KEYWORD_ONLY}
    known |= {"start_amplitude", "candidates", "start_seed", "mode"} if solver == "energy" else set()
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"the {solver} solver does not take the option(s) {', '.join(unknown)} "
                         f"(it takes: {', '.join(sorted(known))})")


def solve_bvp(x0: torch.Tensor, score_fn: ScoreFn, metric: Any, sphere: Sphere | None = None,
              solver: str = "geovid", seed: int | None = 0, starts: int = 0, **options: Any) -> BVPResult:
    """Solve the geodesic BVP with fixed endpoints x0[0], x0[-1] (docs/method.md §5).

    Args:
        x0: initial path (n, D), endpoints included (e.g. ``initial_path(a, b, n, sphere)`` or a video path).
        score_fn: a score estimator (docs/method.md §2) mapping (m, D) → (m, D).
        metric: ``DensityMetric`` or ``ScoreMetric``.
        sphere: sphere constraint (default: on, radius = mean norm of the endpoints).
        solver: ``geovid`` (default) or ``reference``.
        seed: seeds torch's global RNG for anything stochastic inside the score function, and the bends of the
            extra starts.
        starts: K extra starts, bent copies of the straight path, solved together with x0 and the shortest kept
            (docs/method.md §5); the ``reference`` schedule has one start only.
        **options: solver options (``max_calls`` per start, ``max_iters``, ``mode``, ``progress``,
            ``candidates`` (more initial paths), ``start_amplitude``, ...).

    Returns:
        BVPResult with the path, the scores at its points, iterations, network calls (all starts), history and
        ``info`` (critical start, one summary per start, the chosen one).
    """
    if solver not in SOLVERS:
        raise InputError(f"unknown solver {solver!r}; choose from {', '.join(SOLVERS)}")
    if not isinstance(starts, int) or starts < 0:
        raise InputError(f"starts must be a whole number ≥ 0, got {starts!r}")
    if sphere is None:
        sphere = Sphere.for_points(x0[[0, -1]])
    if seed is not None:
        torch.manual_seed(seed)
    if solver == "geovid" and metric.name == "score":
        # The score metric's force involves Hessian-vector products and is stiff for the semi-implicit
        # residual iteration; its energy is smooth, so geovid minimises the energy directly (docs/method.md
        # §5.5); the result says so (BVPResult.solver == "energy").
        solver = "energy"
    _refuse_unknown_options(solver, options)
    if solver != "reference":  # the bends of extra starts (the reference schedule has one start)
        options.setdefault("start_seed", 0 if seed is None else int(seed))
    if solver == "reference":
        if starts:
            raise InputError("the reference solver reproduces the published schedule from one start; "
                             "use --starts with the geovid solver")
        res = solve_reference(x0, score_fn, metric, sphere, **options)
        if res.history:
            chord = float((x0[-1] - x0[0]).norm())
            critical = res.history[0]["mean_residual"] * chord < options.get("rtol", 1e-6)
            res.info = {"critical_start": critical, "critical_broken": False, "chosen": 0, "chosen_kind": "initial"}
            if critical:
                res.info["note"] = ("the initial path is a critical point of the length (residual ~0); the "
                                    "reference schedule cannot leave it (use the geovid solver)")
        return res
    if solver == "energy":
        _check_inputs(x0)
        if options.pop("mode", "free") != "free":
            raise InputError("the score metric's energy solver moves points freely; mode 'normal' needs the "
                             "density metric")
        amp = options.pop("start_amplitude", DEFAULT_START_AMPLITUDE)
        sseed = options.pop("start_seed")
        options.pop("candidates", None)
        return _solve_energy_starts(x0, score_fn, metric, sphere, starts, sseed, amp, **options)
    return SOLVERS[solver](x0, score_fn, metric, sphere, starts=starts, **options)
