"""The ``write`` phase of an interpolation run (docs/run-directory.md): frames, baselines, strip, compare, GIF, MP4,
``path.safetensors``, the per-frame table, the log-density plot, ``summary.json`` and the endpoint conditions
``conditions.safetensors`` (for ``geovid extrapolate --from-run``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from geovid.tasks.interpolation_job import InterpolationJob


def write_outputs(job: InterpolationJob) -> list[str]:
    """Write the run's outputs from the finished phases of ``job``; returns the required ones
    (:meth:`geovid.runs.store.Run.complete` checks them)."""
    from geovid.runs.state import write_tensors

    run, progress = job.run, job.progress
    progress("write", 0, 4, {})
    required = _write_sequences(job)
    progress("write", 1, 4, {})
    required.append(_write_path(job))
    _write_table(job)
    required.append(_plot(job))
    progress("write", 3, 4, {})
    run.write_json("summary.json", summary(job))
    # The endpoint conditions c_A, c_B, for `geovid extrapolate --from-run` (c(x) beyond B is c_B).
    # (Copies: with one prompt c_A and c_B are one tensor, and safetensors refuses shared memory.)
    write_tensors(run.path / "conditions.safetensors",
                  {"cond_a": job.cond_a.detach().float().clone(), "cond_b": job.cond_b.detach().float().clone()})
    progress("write", 4, 4, {})
    return required


def _write_sequences(job: InterpolationJob) -> list[str]:
    """The geodesic's frames, GIF, MP4 and strip; the baselines' frames; the comparison of every method."""
    from geovid.tasks.report import write_compare, write_sequence_outputs

    run = job.run
    required = write_sequence_outputs(run, job.final["geodesic"][2], fps=job.cfg.fps)
    for m in job.methods[1:]:
        run.write_frames(f"baselines/{m}/frames", list(job.final[m][2]))
        required.append(f"baselines/{m}/frames/")
    required.append(write_compare(run, {m: job.final[m][2] for m in job.methods}))
    return required


def _write_path(job: InterpolationJob) -> str:
    """``path.safetensors``: the geodesic's points and times, with what ``extrapolate --from-run`` needs."""
    from geovid.tasks.report import save_path

    cfg, bb = job.cfg, job.bb
    pts, tt, _ = job.final["geodesic"]
    return save_path(job.run, pts, tt, bb.latent_shape, {
        "kind": "interpolation", "timestep": job.t, "noise_level": cfg.noise_level,
        "model": job.run.manifest.get("model"), "prompt": cfg.prompt, "prompt_b": cfg.prompt_b,
        "radius": job.sphere.radius, "estimator": cfg.estimator, "alpha": job.alpha,
        "draws": cfg.draws, "conditioning": cfg.conditioning,
        "metric": cfg.metric, "latent_shape": list(bb.latent_shape)})


def _write_table(job: InterpolationJob) -> None:
    """``per_frame``: t, residual, log-density and speed of every frame of every method."""
    import pandas as pd

    rows = []
    for m in job.methods:
        meas = job.measures[m]
        for j in range(job.n):
            rows.append({"path": m, "frame": j, "t": float(job.final[m][1][j]),
                         "residual": float(meas.residual[j]), "log_density": float(meas.log_density[j]),
                         "speed": float(meas.speed[j])})
    job.run.write_table("per_frame", pd.DataFrame(rows))


def _plot(job: InterpolationJob) -> str:
    """``plots/log_density.png``: every method's log-density profile."""
    from geovid.tasks.report import plot_series

    cfg = job.cfg
    return plot_series(
        job.run, "plots/log_density.png",
        {m: (np.arange(job.n), job.measures[m].log_density.numpy()) for m in job.methods},
        title=f"log-density along the path, relative to A (ν = {cfg.noise_level}, "
              f"{cfg.estimator} score)", xlabel="frame", ylabel="log p(γ) − log p(A)  [nats]")


def _method_numbers(job: InterpolationJob, m: str) -> dict[str, Any]:
    """summary.json's numbers of one method."""
    meas = job.measures[m]
    ppl, pdv = job.ppl[m]
    rppl, rpdv = (float(job.raw_dists[m].sum()), float(job.raw_dists[m].var()))
    return {
        "ppl": ppl, "pdv": pdv, "relative_length": meas.relative_length,
        "log_relative_length": meas.log_relative_length,
        "log_density": meas.log_density.tolist(), "mean_residual": meas.mean_residual,
        "median_residual": meas.median_residual, "distances": job.dists[m].tolist(),
        "ppl_before_uniform": rppl, "pdv_before_uniform": rpdv,
        "t": job.final[m][1].tolist(), "positions": job.positions[m].tolist(),
    }


def summary(job: InterpolationJob) -> dict[str, Any]:
    """summary.json (docs/run-directory.md)."""
    from geovid.method import reference as method_reference
    from geovid.tasks.latents import psnr

    cfg, frames, fitted, distance = job.cfg, job.final["geodesic"][2], job.images, job.distance
    methods = {m: _method_numbers(job, m) for m in job.methods}
    return {
        "perceptual_distance": distance.name,
        "perceptual_distance_description": distance.description,
        "methods": methods,
        "endpoint_reconstruction": {
            "a_psnr": psnr(frames[0], fitted[0]), "b_psnr": psnr(frames[-1], fitted[1]),
            "a_distance": float(distance(frames[0], fitted[0])[0]),
            "b_distance": float(distance(frames[-1], fitted[1])[0]),
        },
        "frames": job.n,
        "uniform": cfg.uniform,
        "noise_level": cfg.noise_level, "timestep": job.t, "alpha": job.alpha,
        "alpha_rule": job.alpha_rule, "draws": cfg.draws,
        "conditioning": cfg.conditioning, "invert_steps": cfg.invert_steps,
        "estimator": cfg.estimator, "metric": cfg.metric,
        "decode_steps": cfg.decode_steps,
        "solver": job.solver_info,
        "radius": job.sphere.radius,
        "endpoint_distance": float((job.b - job.a).norm()),
        "method": method_reference("§5, §8"),
    }


__all__ = ["summary", "write_outputs"]
