"""The 2-D toy of the paper's Figure 1: a geodesic of a Gaussian-mixture density versus the straight segment.

Here the density p is the mixture itself (noise level 0), so the exact score is used and the length
∫ p(γ)^(−α) ‖dγ‖ is computed with the exact density (docs/method.md §3). The score metric (docs/method.md §4) is available too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from geovid.backbones.analytic import GaussianMixture
from geovid.errors import InputError
from geovid.geometry.bvp import solve_bvp
from geovid.geometry.estimators import FunctionEstimator
from geovid.geometry.measures import exact_length, path_measures
from geovid.geometry.metrics import DensityMetric, Metric, ScoreMetric, make_metric
from geovid.geometry.paths import Sphere, initial_path
from geovid.progress import ProgressFn, null_progress


def default_density() -> GaussianMixture:
    """Seven Gaussians along an upper half-ring of radius 3: the straight segment between its ends crosses an
    empty gap, the geodesic follows the ring (a picture like the paper's Figure 1)."""
    ang = torch.linspace(0, math.pi, 7, dtype=torch.float64)
    means = torch.stack([3 * torch.cos(ang), 3 * torch.sin(ang)], 1)
    return GaussianMixture(torch.ones(7, dtype=torch.float64), means,
                           (0.5 * torch.eye(2, dtype=torch.float64)).repeat(7, 1, 1))


def _gmm(weights: list[float], means: list[list[float]], covs: list[list[list[float]]]) -> GaussianMixture:
    return GaussianMixture(torch.tensor(weights, dtype=torch.float64), torch.tensor(means, dtype=torch.float64),
                           torch.tensor(covs, dtype=torch.float64))


def example_problems() -> dict[str, tuple[GaussianMixture, tuple[float, float], tuple[float, float], float,
                                         tuple[float, float, float, float]]]:
    """Named 2-D problems (density, start, end, α, grid bounds) used by the tests and the accuracy benchmark.

    ``ring-gap`` forces the geodesic around an empty gap (the default toy); ``bump-aside`` bends the path towards
    a broad bump; ``anisotropic`` has correlated, unequal components.
    """
    return {
        "ring-gap": (default_density(), (3.0, 0.0), (-3.0, 0.0), 1.0, (-4.5, 4.5, -1.5, 4.5)),
        "bump-aside": (_gmm([1, 1], [[0, 1.5], [0, -3]], [[[2, 0], [0, 2]], [[1, 0], [0, 1]]]),
                       (-2.5, 0.0), (2.5, 0.0), 1.0, (-3.5, 3.5, -2.0, 3.0)),
        "anisotropic": (_gmm([2, 1, 1], [[0, 0], [2, 2], [-2, 1.5]],
                             [[[1.5, 0.6], [0.6, 0.5]], [[0.4, 0], [0, 0.4]], [[0.6, -0.2], [-0.2, 0.3]]]),
                        (-2.0, 1.5), (2.0, 2.0), 1.0, (-3.5, 3.5, -1.5, 3.5)),
    }


def _tilted(angle_deg: float, s_major: float, s_minor: float) -> list[list[float]]:
    """2×2 covariance with standard deviations s_major, s_minor, the major axis at angle_deg from the x axis."""
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return [[c * c * s_major**2 + s * s * s_minor**2, c * s * (s_major**2 - s_minor**2)],
            [c * s * (s_major**2 - s_minor**2), s * s * s_major**2 + c * c * s_minor**2]]


def multimodal_problems() -> dict[str, tuple[GaussianMixture, tuple[float, float], tuple[float, float], float,
                                             tuple[float, float, float, float]]]:
    """Named 2-D problems where descent from the straight segment fails (issue #14; density, start, end, α, box).

    ``ring-saddle``: eight equal Gaussians (std 0.5) on a full ring of radius 3, endpoints on opposite sides: the
    straight segment through the empty centre is a critical point (the residual is zero by symmetry) and the two
    halves of the ring are equally short. ``side-bridge``: two blobs tilted towards each other above the chord,
    joined below it by a thin bridge (std 0.12 across) and two short legs: descent from the segment bends up into
    the gap between the blobs' tips, a local minimum ten times longer than the route over the bridge.
    """
    ang = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    ring = GaussianMixture(torch.ones(8, dtype=torch.float64), 3 * torch.stack([torch.cos(ang), torch.sin(ang)], 1),
                           (0.25 * torch.eye(2, dtype=torch.float64)).repeat(8, 1, 1))
    means = [[-2.5, 0.0], [2.5, 0.0]] + [[-2.4 + 0.6 * k, -1.3] for k in range(9)] + [[-2.5, -0.7], [2.5, -0.7]]
    covs = [_tilted(50, 1.2, 0.35), _tilted(-50, 1.2, 0.35)] + [_tilted(0, 0.35, 0.12)] * 9 + \
        [_tilted(90, 0.35, 0.12)] * 2
    bridge = _gmm([1, 1] + [0.08] * 11, means, covs)
    return {
        "ring-saddle": (ring, (3.0, 0.0), (-3.0, 0.0), 1.0, sane_box(ring)),
        "side-bridge": (bridge, (-2.5, 0.0), (2.5, 0.0), 1.0, sane_box(bridge)),
    }


DEFAULT_START = (3.0, 0.0)
DEFAULT_END = (-3.0, 0.0)


@dataclass
class ToyConfig:
    """Options of ``geovid toy``."""

    density: GaussianMixture = field(default_factory=default_density)
    start: tuple[float, float] = DEFAULT_START
    end: tuple[float, float] = DEFAULT_END
    alpha: float = 1.0
    """Exponent of the density metric w = p^(−α) (the paper uses α = 1 for this figure)."""
    metric: str = "density"
    lam: float = 10.0
    """λ of the score metric G = I + λ s sᵀ."""
    solver: str = "geovid"
    points: int = 65
    """Points on the path, endpoints included (the reference solver always returns 17)."""
    max_calls: int | None = None
    init: str = "grid"
    """Initial path: ``grid`` (shortest path on a 2-D grid with a 32-neighbourhood, then refined by the solver;
    docs/method.md §5) or ``straight`` (the segment, local descent only). The reference solver always starts
    straight."""
    starts: int = 0
    """Extra starts: K bent copies of the straight segment solved with the main start (docs/method.md §5)."""


#: Grid of the 2-D initialisation: 32-neighbourhood stencil (offsets up to 3 cells), Simpson on 3 samples per edge.
GRID_STENCIL = 3
GRID_SAMPLES = 3


def grid_initial_path(dens: GaussianMixture, metric: Metric, start: tuple[float, float], end: tuple[float, float],
                      points: int, box: tuple[float, float, float, float] | None = None
                      ) -> tuple[torch.Tensor, dict[str, Any]]:
    """The global initial path of the 2-D solver (docs/method.md §5): Dijkstra on a grid over the density's
    sane box with a 32-neighbourhood, spacing at most the narrowest component's smallest standard deviation
    (101–301 points a side), resampled to ``points`` points equally spaced in arc length.

    Returns the path (points, 2) and a report (grid size, stencil, grid length, weight evaluations, seconds).
    """
    import time

    import numpy as np

    from geovid.geometry.reference import (
        density_weight,
        grid_resolution,
        grid_shortest_path,
        polyline_to_path,
        score_metric_weight,
    )

    t0 = time.perf_counter()
    box = box or sane_box(dens)
    covs = dens.covs if not dens.diagonal else torch.diag_embed(dens.covs)
    feature = float(torch.linalg.eigvalsh(covs).min().sqrt())
    res = grid_resolution(box, feature)
    if metric.name == "density":
        alpha = cast(DensityMetric, metric).alpha
        weight = density_weight(lambda p: dens.log_prob(torch.from_numpy(p)).numpy(), alpha)
    else:
        lam = cast(ScoreMetric, metric).lam
        weight = score_metric_weight(lambda p: dens.score(torch.from_numpy(p)).numpy(), lam)
    with np.errstate(over="ignore"):
        g = grid_shortest_path(weight, start, end, box, resolution=res, stencil=GRID_STENCIL, samples=GRID_SAMPLES)
    path = torch.from_numpy(polyline_to_path(g.path, start, end, points))
    info = {"resolution": res, "stencil": GRID_STENCIL, "neighbours": 32, "nodes": g.nodes,
            "grid_length": g.length if math.isfinite(g.length) else None, "evaluations": g.evaluations,
            "seconds": time.perf_counter() - t0}
    return path, info


def sane_box(density: GaussianMixture, margin: float = 5.0) -> tuple[float, float, float, float]:
    """The box of the means expanded by ``margin`` standard deviations: where p^(−α) stays representable."""
    covs = density.covs if not density.diagonal else torch.diag_embed(density.covs)
    std = float(torch.linalg.eigvalsh(covs).max().sqrt())
    lo = density.means.min(0).values - margin * std
    hi = density.means.max(0).values + margin * std
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def _check_point(name: str, p: tuple[float, float], box: tuple[float, float, float, float]) -> None:
    if len(p) != 2 or not all(math.isfinite(v) for v in p):
        raise InputError(f"{name} must be two finite numbers X,Y")
    x0, x1, y0, y1 = box
    if not (x0 <= p[0] <= x1 and y0 <= p[1] <= y1):
        raise InputError(f"{name} ({p[0]:g}, {p[1]:g}) is outside the density's sane range "
                         f"[{x0:.3g}, {x1:.3g}] × [{y0:.3g}, {y1:.3g}] (5 standard deviations around the means)")


def run_toy(cfg: ToyConfig, progress: ProgressFn = null_progress) -> dict[str, Any]:
    """Solve the toy BVP and return the JSON-ready result (points, lengths, calls, iterations, profiles)."""
    dens = cfg.density
    if dens.dim != 2:
        raise InputError(f"the toy density must be 2-D, got dimension {dens.dim}")
    box = sane_box(dens)
    _check_point("start", cfg.start, box)
    _check_point("end", cfg.end, box)
    if cfg.points < 5:
        raise InputError("--points must be at least 5")
    metric = make_metric(cfg.metric, alpha=cfg.alpha, lam=cfg.lam)
    a = torch.tensor(cfg.start, dtype=torch.float64)
    b = torch.tensor(cfg.end, dtype=torch.float64)
    if torch.allclose(a, b):
        raise InputError("start and end are the same point")
    if cfg.init not in ("grid", "straight"):
        raise InputError(f"unknown initial path {cfg.init!r}; choose from grid, straight")
    if cfg.starts < 0:
        raise InputError(f"--starts must be 0 or more, got {cfg.starts}")
    sphere = Sphere(None)  # the toy lives in the plane: no sphere constraint
    est = FunctionEstimator(dens.score)
    x0 = initial_path(a, b, cfg.points, sphere)
    grid_info = None
    init = cfg.init if cfg.solver != "reference" else "straight"
    if init == "grid":
        progress("grid", 0, 1, {"stencil": "32-neighbourhood"})
        x0, grid_info = grid_initial_path(dens, metric, cfg.start, cfg.end, cfg.points, box)
        progress("grid", 1, 1, {"nodes": grid_info["nodes"], "s": round(grid_info["seconds"], 2)})
    res = solve_bvp(x0, est, metric, sphere, solver=cfg.solver, max_calls=cfg.max_calls, progress=progress,
                    starts=cfg.starts)
    path = res.path
    logp = dens.log_prob
    pm = path_measures(path, dens.score(path), metric, sphere, score_fn=dens.score)
    straight = initial_path(a, b, path.shape[0], sphere)
    out: dict[str, Any] = {
        "points": path.tolist(),
        "length": exact_length(path, logp, cfg.alpha),
        "straight_length": exact_length(straight, logp, cfg.alpha),
        "network_calls": res.network_calls,
        "iterations": res.iterations,
        "converged": res.converged,
        "solver": res.solver,
        "metric": cfg.metric,
        "alpha": cfg.alpha,
        "lambda": cfg.lam if cfg.metric == "score" else None,
        "start": list(cfg.start),
        "end": list(cfg.end),
        "mean_residual": pm.mean_residual,
        "log_density_geodesic": logp(path).tolist(),
        "log_density_straight": logp(straight).tolist(),
        "density": dens.to_dict(),
        "seconds": res.seconds,
        "init": init,
        "grid": grid_info,
        "starts": cfg.starts,
        "critical_start": bool(res.info.get("critical_start", False)),
        "critical_broken": bool(res.info.get("critical_broken", False)),
        "start_report": res.info.get("starts", []),
        "chosen_start": res.info.get("chosen", 0),
        "note": res.info.get("note"),
    }
    if cfg.metric == "score":
        sm = cast(ScoreMetric, metric)
        out["energy"] = _score_energy(path, dens, sm.lam)
        out["straight_energy"] = _score_energy(straight, dens, sm.lam)
    return _json_safe(out)


def _json_safe(v: Any) -> Any:
    """Non-finite floats become None (JSON null): no NaN or Infinity in the toy's JSON."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    return v


def _score_energy(x: torch.Tensor, dens: GaussianMixture, lam: float, sub: int = 16) -> float:
    """E = ½ ∫ γ̇ᵀ(I + λ s sᵀ)γ̇ dt for the polyline at constant speed per segment, fine quadrature."""
    n = x.shape[0] - 1
    u = (torch.arange(sub, dtype=x.dtype) + 0.5) / sub
    a, b = x[:-1], x[1:]
    pts = a[:, None] + u[None, :, None] * (b - a)[:, None]
    s = dens.score(pts.reshape(-1, 2)).reshape(pts.shape)
    v = (b - a) * n  # t ∈ [0, 1], each segment takes 1/n
    q = (v * v).sum(-1)[:, None] + lam * ((s * v[:, None]).sum(-1)) ** 2
    return float(0.5 * q.mean(1).sum() / n)


def _g(v: Any) -> str:
    """A number for a label: 4 significant digits, "n/a" for a missing (non-finite) value."""
    return f"{v:.4g}" if isinstance(v, int | float) and math.isfinite(v) else "n/a"


def plot_toy(result: dict[str, Any], out: Path) -> Path:
    """Two panels: density contours with score arrows, straight segment and geodesic; p along both paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    dens = GaussianMixture.from_dict(result["density"])
    path = np.array(result["points"])
    a, b = np.array(result["start"]), np.array(result["end"])
    allpts = np.vstack([path, dens.means.numpy()])
    lo, hi = allpts.min(0) - 1.5, allpts.max(0) + 1.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))
    logp = dens.log_prob(grid).numpy().reshape(gx.shape)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1.2, 1]})
    levels = np.linspace(max(logp.max() - 12, logp.min()), logp.max(), 25)
    cs = ax.contourf(gx, gy, logp, levels=levels, cmap="viridis", extend="min")
    fig.colorbar(cs, ax=ax, label="log p")
    qx, qy = np.meshgrid(np.linspace(lo[0], hi[0], 18), np.linspace(lo[1], hi[1], 14))
    qs = dens.score(torch.from_numpy(np.stack([qx.ravel(), qy.ravel()], 1))).numpy()
    qn = np.linalg.norm(qs, axis=1, keepdims=True).clip(1e-12)
    ax.quiver(qx.ravel(), qy.ravel(), *(qs / qn).T, color="white", alpha=0.45, scale=35, width=0.003)
    ax.plot(*np.stack([a, b]).T, "--", color="white", lw=2, label=f"straight  L = {_g(result['straight_length'])}")
    ax.plot(path[:, 0], path[:, 1], "-", color="#e8590c", lw=3, label=f"geodesic  L = {_g(result['length'])}")
    ax.plot(*a, "o", color="white", ms=8, mec="k")
    ax.plot(*b, "s", color="white", ms=8, mec="k")
    ax.set_aspect("equal")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    metric = result["metric"]
    ttl = f"α = {result['alpha']:g}" if metric == "density" else f"λ = {result['lambda']:g}"
    ax.set_title(f"{metric} metric, {ttl}: geodesic vs straight segment")
    ax.legend(loc="lower center", fontsize=9, framealpha=0.85)

    def arc(p: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
        return c / c[-1]

    straight = np.linspace(0, 1, len(result["log_density_straight"]))[:, None] * (b - a) + a
    ax2.semilogy(arc(straight), np.exp(np.array(result["log_density_straight"], dtype=float)), "--", color="#495057", lw=2, label="straight")
    ax2.semilogy(arc(path), np.exp(np.array(result["log_density_geodesic"], dtype=float)), "-", color="#e8590c", lw=2.5, label="geodesic")
    ax2.set_xlabel("normalised arc length")
    ax2.set_ylabel("p along the path")
    ax2.set_title("density along the paths")
    ax2.grid(alpha=0.3, which="both")
    ax2.legend()
    calls = result["network_calls"]
    fig.suptitle(f"geovid toy — solver {result['solver']}, {calls} score calls, {result['iterations']} iterations",
                 fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
