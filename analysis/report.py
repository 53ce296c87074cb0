"""The ``report`` phase of an analysis run: tests (i)–(iii), excess, controls, verdict, plots and ``summary.json``
(docs/method.md §7.4, §7.7; the run contract: docs/run-directory.md)."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from geovid.method import reference as method_reference

if TYPE_CHECKING:
    from analysis.phases import AnalysisJob


def _plots(job: AnalysisJob) -> None:
    from analysis import plots

    cfg, run, clip = job.cfg, job.run, job.clip
    title = f"{clip.name}: ν = {cfg.noise_level:g}, α = {job.alpha:.3g}, {cfg.estimator}"
    plots.plot_residuals(job.table, run.path / "plots" / "residual.png", title=f"geodesic gradient per frame — {title}")
    plots.plot_log_density(job.table[~job.table["path"].isin(list(job.ctrl))], run.path / "plots" / "log_density.png",
                           title=f"relative log-density — {title}")
    plots.plot_projection(job.all_paths, run.path / "plots" / "projection.png",
                          title=f"paths in latent space (PCA) — {clip.name}")


def _reconstruction(job: AnalysisJob) -> dict[str, Any] | None:
    """PSNR of γ_o's decoded endpoints against the input frames (the round trip of docs/method.md §1)."""
    if not job.cfg.decode_optimised:
        return None
    from geovid.tasks.latents import psnr

    frames, dec = job.frames, job.decoded
    return {"first_psnr": psnr(frames[0], dec[0]), "last_psnr": psnr(frames[-1], dec[-1]),
            "note": "PSNR (dB) of the decoded endpoints of γ_o (= those of γ_v on the sphere) against "
                    "the input frames: the inversion/denoising round trip (docs/method.md §1)"}


def write_report(job: AnalysisJob) -> None:
    """Plots and ``summary.json`` of one analysis run, from the results the earlier phases left on ``job``."""
    from analysis import verdict

    cfg = job.cfg
    _plots(job)
    summary = {
        "clip": str(os.path.abspath(job.clip)),
        "frames": job.n,
        "frame_indices": job.meta["indices"],
        "time_s": job.meta["time_s"],
        "noise_level": cfg.noise_level,
        "timestep": job.t,
        "metric": cfg.metric,
        "alpha": job.alpha,
        "alpha_rule": job.alpha_info,
        "estimator": cfg.estimator,
        "draws": cfg.draws if cfg.estimator == "contrast" else 1,
        "condition": job.cond_info,
        "seed": cfg.seed,
        "sphere_radius": job.sphere.radius,
        "paths": job.stats,
        **verdict.summarise(job.stats, cfg.metric, job.ctrl_stats),
        "solver": {k: job.solve_info.get(k) for k in ("solver", "mode", "iterations", "converged", "network_calls",
                                                      "budget", "trust_radius", "max_displacement",
                                                      "at_trust_bound")},
        "endpoint_reconstruction": _reconstruction(job),
        "method": method_reference("§7"),
    }
    job.run.write_json("summary.json", summary)
    job.progress("report", 1, 1, {"excess": summary["geodesic_excess"] or math.nan})


__all__ = ["write_report"]
