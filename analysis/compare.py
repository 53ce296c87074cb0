"""Measures of every analysed path with the same estimator, α and random draws (docs/method.md §7.3).

Fairness: the five paths are compared with one score function (same estimator, noise level, prompt, α and
seed). Each path's scores come from ONE call of the score function on all its points, so that for a stochastic
estimator (``contrast``) frame i of every path sees the same random draws (the estimator re-seeds its generator
per call and per row offset, :mod:`geovid.geometry.estimators`). The scores the solver saw while optimising γ_o
are not reused for the same reason: γ_o is scored again like the others.

Per frame: ‖r‖ (NaN at the endpoints), relative log-density (0 at the first frame), speed (latent units per
second of video). Per path: mean and median ‖r‖ over the interior frames, relative length L̃ (also as log L̃),
energy (also as log E), and the mean norms of the curvature term N[P κ] and of the density force α N P s
that make up r (which one dominates says what the tests measure).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch

from geovid.geometry import ScoreFn
from geovid.geometry.measures import PathMeasures, path_measures, residual_vectors
from geovid.geometry.metrics import Metric
from geovid.geometry.paths import Sphere
from geovid.progress import ProgressFn, null_progress

if TYPE_CHECKING:
    import pandas as pd

#: Columns of per_frame.csv / per_frame.parquet (docs/run-directory.md).
PER_FRAME_COLUMNS: tuple[str, ...] = ("path", "frame", "time_s", "residual", "log_density", "speed")


def measure_paths(paths: Mapping[str, torch.Tensor], score_fn: ScoreFn, metric: Metric, sphere: Sphere,
                  times: torch.Tensor, progress: ProgressFn = null_progress,
                  known: Mapping[str, torch.Tensor] | None = None) -> dict[str, PathMeasures]:
    """docs/method.md §7.3 measures of every path, in the order of ``paths``.

    Args:
        paths: name → path (n, D); all paths have the same n (one point per frame).
        score_fn: the score estimator; called once per path with all its n points.
        metric: the metric (density or score) shared by all paths.
        sphere: the analysis sphere.
        times: time of each frame in seconds (n,), for the speed.
        progress: ``progress("measure", done, total, info)`` after each path.
        known: scores already computed for some paths, by name, from a call of all their points with the same
            score function (e.g. the line scored for α): used as they are, no network call.

    Returns:
        name → :class:`~geovid.geometry.measures.PathMeasures`.
    """
    sizes = {name: int(x.shape[0]) for name, x in paths.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"all paths must have one point per frame; got {sizes}")
    hvp = score_fn if metric.needs_hvp else None
    out: dict[str, PathMeasures] = {}
    total = len(paths)
    for k, (name, x) in enumerate(paths.items()):
        if known is not None and name in known:
            s, calls = known[name].to(x.dtype), 0
        else:
            with torch.no_grad():
                s = score_fn(x)  # one call: frame i gets the same draws on every path
            calls = int(x.shape[0]) * int(getattr(score_fn, "calls_per_point", 1))
        out[name] = path_measures(x, s, metric, sphere, times=times, score_fn=hvp, network_calls=calls)
        out[name].extras.update(_split_terms(x, s, metric, sphere))
        progress("measure", k + 1, total, {"path": name, "mean |r|": out[name].mean_residual})
    return out


def _split_terms(x: torch.Tensor, s: torch.Tensor, metric: Metric, sphere: Sphere) -> dict[str, float]:
    """Mean norms of the two parts of r = N[P κ] + force (docs/method.md §3) over the interior frames.

    Which part dominates says what the tests look at: the path's bending (curvature term) or where it lies in
    the density (force term, α N P s for the density metric). Only for metrics whose force needs no extra
    network calls (the density metric); NaN otherwise.
    """
    if metric.needs_hvp or x.shape[0] < 3:
        return {"mean_curvature_term": math.nan, "mean_force_term": math.nan}
    r, k, _ = residual_vectors(x, s[1:-1], metric, sphere)
    return {"mean_curvature_term": float(k.norm(dim=-1).mean()), "mean_force_term": float((r - k).norm(dim=-1).mean())}


def per_frame_table(measures: Mapping[str, PathMeasures], times: Sequence[float] | torch.Tensor) -> pd.DataFrame:
    """Long-format table: one row per (path, frame) with the columns :data:`PER_FRAME_COLUMNS`.

    ``residual`` is NaN at the two endpoints (the geodesic gradient is defined at interior points only).
    """
    import numpy as np
    import pandas as pd

    t = np.asarray(times.tolist() if isinstance(times, torch.Tensor) else list(times), dtype=np.float64)
    parts = []
    for name, m in measures.items():
        n = int(m.residual.numel())
        parts.append(pd.DataFrame({
            "path": pd.Series([name] * n, dtype="string"),
            "frame": np.arange(n, dtype=np.int64),
            "time_s": t[:n],
            "residual": m.residual.detach().cpu().numpy().astype(np.float64),
            "log_density": m.log_density.detach().cpu().numpy().astype(np.float64),
            "speed": m.speed.detach().cpu().numpy().astype(np.float64),
        }))
    return pd.concat(parts, ignore_index=True)[list(PER_FRAME_COLUMNS)]


def path_statistics(measures: Mapping[str, PathMeasures]) -> dict[str, dict[str, float]]:
    """Per-path statistics for summary.json: mean/median ‖r‖ (interior frames), L̃, log L̃, energy, log E, frames,
    and the mean norms of the curvature and force terms of r."""
    return {name: {**m.summary(), **m.extras} for name, m in measures.items()}
