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
from typing import Any

import torch

from geovid.errors import InputError, SolverError
from geovid.geometry import ScoreFn
from geovid.geometry.bvp_core import (
    DEFAULT_START_AMPLITUDE,
    BVPResult,
    CountingScore,
    Monitor,
    _check_inputs,
    _objective,
    bent_paths,
)
from geovid.geometry.bvp_iteration import _geovid_run, _subdivide
from geovid.geometry.bvp_starts import _guarded, _lockstep, _StartRun
from geovid.geometry.metrics import Metric
from geovid.geometry.paths import Sphere
from geovid.geometry.solver_energy import _solve_energy_starts, solve_energy
from geovid.geometry.solver_reference import solve_reference
from geovid.progress import ProgressFn, null_progress


def _initial_paths(x0: torch.Tensor, sphere: Sphere, mode: str, starts: int, select: str, trust: float | None,
                   candidates: list[torch.Tensor] | None, start_seed: int, start_amplitude: float
                   ) -> list[tuple[str, torch.Tensor]]:
    """Check the options of :func:`solve_geovid` and return its starts: the initial path, then (mode ``free``) the
    candidates and the K bent copies of the straight path, each as (kind, path)."""
    _check_inputs(x0)
    if mode not in ("free", "normal"):
        raise InputError(f"mode must be 'free' or 'normal', got {mode!r}")
    if starts < 0:
        raise InputError(f"starts must be 0 or more, got {starts}")
    if select not in ("final", "coarse"):
        raise InputError(f"select must be 'final' or 'coarse', got {select!r}")
    if trust is not None and not (math.isfinite(trust) and trust > 0):
        raise InputError(f"trust must be a positive distance, got {trust}")
    inits: list[tuple[str, torch.Tensor]] = [("initial", x0)]
    if mode == "free":
        for c in candidates or []:
            _check_inputs(c)
            if c.shape != x0.shape:
                raise InputError(f"a candidate initial path has shape {tuple(c.shape)}, expected {tuple(x0.shape)}")
            inits.append(("candidate", torch.cat([x0[:1], c[1:-1], x0[-1:]])))
        inits += [("bend", p) for p in bent_paths(x0[0], x0[-1], x0.shape[0], sphere, starts, start_seed,
                                                  start_amplitude)]
    return inits


def _pick(runs: list[_StartRun], counter: CountingScore, metric: Metric, stochastic: bool) -> int:
    """The index of the start with the lowest objective (log L̃ or log E). With a stochastic score and several
    starts, each start's path is scored again alone first (same draws per point index), so that the comparison
    is not estimator noise."""
    if len(runs) > 1 and stochastic:
        for r in runs:
            if r.path is None:
                continue
            r.scores = counter(r.path)
            r.calls += r.path.shape[0] * counter.per_point
            r.objective = _objective(r.path, r.scores, metric)
    return min(range(len(runs)), key=lambda i: (runs[i].objective if math.isfinite(runs[i].objective)
                                                  else math.inf, i))


def _continue_history(coarse: _StartRun, fine: _StartRun) -> _StartRun:
    """The finest-level run of a start chosen on the coarse levels, with the coarse history and start facts."""
    for rec in fine.history:
        rec["iteration"] += coarse.iterations
    fine.history[:0] = list(coarse.history)
    fine.iterations += coarse.iterations
    fine.critical, fine.initial_residual, fine.initial_objective = (coarse.critical, coarse.initial_residual,
                                                                    coarse.initial_objective)
    return fine


def _start_info(runs: list[_StartRun], win: _StartRun, pick: int, summaries: list[dict[str, Any]], coarse: bool,
                keep_start_paths: bool) -> dict[str, Any]:
    """``BVPResult.info`` of a geovid solve: every start's summary, the chosen one, the critical-start report."""
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
    return info


def solve_geovid(x0: torch.Tensor, score_fn: ScoreFn, metric: Metric, sphere: Sphere, *,
                 starts: int = 0, candidates: list[torch.Tensor] | None = None, start_seed: int = 0,
                 start_amplitude: float = DEFAULT_START_AMPLITUDE, break_critical: bool = True,
                 select: str = "final", keep_start_paths: bool = False,
                 mode: str = "free", multilevel: bool = True, max_calls: int | None = None,
                 max_iters: int = 400, xtol: float = 1e-3, rtol: float = 1e-6, patience: int = 3,
                 step: float = 1.0, step_max: float = 1e4, slack: float = 1.5, stall: int = 12, theta: float = 0.5,
                 coarse_factor: float = 64.0, trust: float | None = None,
                 progress: ProgressFn = null_progress, monitor: Monitor | None = None) -> BVPResult:
    """geovid's default BVP solver (docs/method.md §5.3–§5.4). x0: initial path (n, D), endpoints fixed.

    Each start is iterated by ``bvp_iteration._geovid_run`` (step control, acceptance, stopping, budget).
    Mode ``free``: ``starts`` = K bent copies of the straight path and the ``candidates`` run in lockstep and the
    lowest objective wins (``select="coarse"``: chosen on the coarse levels, the winner refined alone); a
    critical start is reported in ``info`` and, with ``break_critical``, broken by two opposite bends.
    ``trust`` (mode ``normal``, γ_o of the analysis, §7.5) keeps every point within that distance of its start.
    """
    inits = _initial_paths(x0, sphere, mode, starts, select, trust, candidates, start_seed, start_amplitude)
    t0 = time.perf_counter()
    counter = CountingScore(score_fn)
    per_point = counter.per_point
    s_ends = counter(x0[[0, -1]])
    if not torch.all(torch.isfinite(s_ends)):
        raise SolverError("the score is not finite at the endpoints")
    single = len(inits) == 1
    runs: list[_StartRun] = []
    coarse = select == "coarse" and not single and mode == "free" and multilevel
    opts = {**{k: v for k, v in locals().items() if k in _RUN_OPTIONS}, "coarse_only": coarse,
            "total_calls": lambda: counter.calls}

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

    def after_round(rnd: int) -> list[Generator[torch.Tensor, torch.Tensor, None]]:
        new = []
        if (rnd == 1 and break_critical and mode == "free" and runs[0].critical
                and not any(r.kind == "bend" for r in runs)):
            # Break the critical point: two opposite bends (in 2-D both sides of the chord).
            new = [make("saddle-break", p, null_progress) for p in bent_paths(
                x0[0], x0[-1], x0.shape[0], sphere, 2, start_seed, start_amplitude)]
        if len(runs) > 1:  # several starts: one progress line for all (the currently shortest start's residual)
            live = [r for r in runs if math.isfinite(r.last_objective)]
            lead = min(live, key=lambda r: r.last_objective) if live else runs[0]
            res_now = lead.last_residual if math.isfinite(lead.last_residual) else 0.0
            progress("solve", rnd, max_iters, {"|r|": res_now, "calls": counter.calls, "starts": len(runs)})
        return new

    _lockstep(gens, counter, after_round)
    pick = _pick(runs, counter, metric, stochastic=getattr(score_fn, "stochastic", False))
    win = runs[pick]
    summaries = [r.summary() for r in runs]
    if coarse and win.path is not None and win.path.shape[0] != x0.shape[0]:
        # Refine the chosen start alone on the finest level (the budget counts its coarse calls too).
        fine = _StartRun(win.kind, calls=win.calls)
        _lockstep([make(win.kind, _subdivide(win.path, sphere), progress, run=fine, guard=False, multilevel=False,
                        coarse_only=False)], counter)
        win = runs[pick] = _continue_history(win, fine)
        summaries[pick] = {**fine.summary(), "coarse_objective": summaries[pick]["objective"]}
    info = _start_info(runs, win, pick, summaries, coarse, keep_start_paths)
    if len(runs) > 1:
        progress("solve", win.iterations, win.iterations, {"|r|": win.last_residual, "calls": counter.calls,
                                                           "starts": len(runs)})
    return BVPResult(path=win.path, scores=win.scores, iterations=win.iterations, network_calls=counter.calls,
                     converged=win.converged, solver="geovid", history=win.history,
                     seconds=time.perf_counter() - t0, info=info)


#: The options of :func:`solve_geovid` passed on to every start's iteration (:func:`_geovid_run`).
_RUN_OPTIONS = ("per_point", "mode", "multilevel", "max_calls", "max_iters", "xtol", "rtol", "patience", "step",
                "step_max", "slack", "stall", "theta", "coarse_factor", "monitor", "trust")

SOLVERS: dict[str, Callable[..., BVPResult]] = {"geovid": solve_geovid, "reference": solve_reference,
                                                 "energy": solve_energy}


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


def solve_bvp(x0: torch.Tensor, score_fn: ScoreFn, metric: Metric, sphere: Sphere | None = None,
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
