"""The paths compared by the video analysis (docs/method.md §7.1–§7.2).

From the video path γ_v (one point per frame, on the sphere) this module builds the comparison paths, all with
the same two endpoints:

* γ_o ``optimised``: γ_v optimised by the BVP solver, initialised at γ_v, in ``normal`` mode so that every point
  only moves normally to the path and stays the counterpart of its frame (docs/method.md §5, §7.2);
* γ_δ ``perturbed``: interior points of γ_v moved by isotropic Gaussian noise whose expected norm is δ × the
  median step ‖x_{i+1} − x_i‖ (geovid choice, δ = 0.5), then put back on the sphere;
* γ_s ``smoothed``: γ_v smoothed along time with a Gaussian kernel over the frame index (geovid choice,
  σ = 1 frame), endpoints kept, interior put back on the sphere;
* γ_l ``line``: the slerp between the endpoints, one point per frame (the reference "straight line").

Every function is deterministic: the perturbation draws from its own seeded generator.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from geovid.errors import InputError
from geovid.geometry import ScoreFn
from geovid.geometry.metrics import Metric
from geovid.geometry.paths import Sphere, initial_path
from geovid.progress import ProgressFn, null_progress

if TYPE_CHECKING:
    from geovid.geometry.bvp_core import BVPResult

#: Names of the analysed paths, in the order they appear in tables and plots (docs/run-directory.md).
PATH_NAMES: tuple[str, ...] = ("video", "optimised", "perturbed", "smoothed", "line")


def video_path(points: torch.Tensor, sphere_on: bool = True) -> tuple[torch.Tensor, Sphere]:
    """γ_v: the encoded frames (N, D) put on the sphere of radius R = mean norm of all frames (docs/method.md §1).

    Returns:
        The path (N, D) float64 and the sphere every path of the analysis lives on.
    """
    if points.ndim != 2 or points.shape[0] < 3:
        raise InputError(f"the video path needs at least 3 frames, got {points.shape[0] if points.ndim else 0}")
    x = points.to(torch.float64)
    sphere = Sphere.for_points(x, on=sphere_on)
    return sphere.project_points(x), sphere


def median_step(x: torch.Tensor) -> float:
    """Median of ‖x_{i+1} − x_i‖ over the path."""
    return float((x[1:] - x[:-1]).norm(dim=-1).median())


def perturbed_path(x: torch.Tensor, sphere: Sphere, delta: float = 0.5, seed: int = 0) -> torch.Tensor:
    """γ_δ: interior points plus isotropic Gaussian noise of relative size δ (docs/method.md §7.2, geovid choice).

    The noise ξ ~ N(0, σ² I_D) has σ = δ · median step / √D, so E‖ξ‖² = (δ · median step)²: a displacement of
    about δ steps, isotropic in all D directions. Perturbed points go back onto the sphere; endpoints are
    unchanged.

    Args:
        x: the video path (n, D).
        sphere: the analysis sphere.
        delta: δ, the perturbation size as a fraction of the median step (> 0).
        seed: seed of the generator (the same seed gives the same perturbation).
    """
    if not delta > 0 or not math.isfinite(delta):
        raise InputError(f"--delta must be a positive number, got {delta}")
    n, d = x.shape
    gen = torch.Generator().manual_seed(int(seed) * 7919 + 17)
    sigma = delta * median_step(x) / math.sqrt(d)
    noise = torch.randn((n - 2, d), generator=gen, dtype=torch.float64).to(x.dtype) * sigma
    out = x.clone()
    out[1:-1] = sphere.project_points(x[1:-1] + noise)
    return out


def smoothed_path(x: torch.Tensor, sphere: Sphere, sigma: float = 1.0) -> torch.Tensor:
    """γ_s: Gaussian smoothing along the frame index with standard deviation σ frames (docs/method.md §7.2).

    The kernel is truncated at 4σ and the path is extended beyond its ends by repeating the end frames
    (``scipy.ndimage.gaussian_filter1d`` mode ``nearest``); the endpoints are then restored exactly and the
    interior put back on the sphere.
    """
    if not sigma > 0 or not math.isfinite(sigma):
        raise InputError(f"--smooth-sigma must be a positive number of frames, got {sigma}")
    from scipy.ndimage import gaussian_filter1d

    sm = torch.from_numpy(gaussian_filter1d(x.detach().cpu().numpy(), sigma=float(sigma), axis=0, mode="nearest",
                                            truncate=4.0)).to(x.dtype)
    out = x.clone()
    out[1:-1] = sphere.project_points(sm[1:-1])
    return out


def line_path(x: torch.Tensor, sphere: Sphere) -> torch.Tensor:
    """γ_l: the slerp between the endpoints of x with one point per frame, at uniform times (docs/method.md §7.2)."""
    out = initial_path(x[0], x[-1], x.shape[0], sphere)
    out[0], out[-1] = x[0], x[-1]  # exactly the same endpoints, not a rounding of them
    return out


def comparison_paths(x: torch.Tensor, sphere: Sphere, delta: float = 0.5, smooth_sigma: float = 1.0,
                     seed: int = 0) -> dict[str, torch.Tensor]:
    """γ_δ, γ_s and γ_l for the video path x (γ_o needs the solver: :func:`optimised_path`)."""
    return {"perturbed": perturbed_path(x, sphere, delta, seed), "smoothed": smoothed_path(x, sphere, smooth_sigma),
            "line": line_path(x, sphere)}


def optimised_path(x: torch.Tensor, score_fn: ScoreFn, metric: Metric, sphere: Sphere,
                   max_calls: int | None = None, max_iters: int = 400, seed: int = 0,
                   trust: float | None = None, progress: ProgressFn = null_progress) -> BVPResult:
    """γ_o: the BVP solver started at γ_v, endpoints fixed (docs/method.md §5, §7.2).

    ``mode="normal"`` keeps each point the counterpart of its frame (only normal moves), so that per-frame
    numbers of γ_v and γ_o compare frame by frame. The solve is budgeted by ``max_calls`` network calls;
    ``trust`` bounds every point's distance from its frame's point (docs/method.md §7.5).

    Returns:
        The solver's ``BVPResult`` (``path``, ``iterations``, ``network_calls``, ``converged``, ``history``).
    """
    from geovid.geometry.bvp import solve_bvp

    return solve_bvp(x, score_fn, metric, sphere, solver="geovid", seed=seed, mode="normal", max_calls=max_calls,
                     max_iters=max_iters, trust=trust, progress=progress)
