"""Geodesic extrapolation (docs/method.md §6): ``geovid extrapolate A B`` / ``CLIP.mp4`` / ``--from-run RUN``.

A geodesic is shot from the last given point with the tangent of the given motion and integrated with RK4
(:func:`geovid.geometry.ivp.solve_ivp`: after every step the point goes back onto the sphere, the velocity onto
its tangent and to the initial speed).

Sources of the start point x₀ and the initial velocity v₀:

* two images A, B: x₀ = B; v₀ along the end tangent at B of the slerp A→B (the difference B − A projected onto
  the sphere's tangent at B) or, with ``tangent="geodesic"``, of a short BVP geodesic A→B (docs/method.md §5);
* a clip: its last ``context`` frames; x₀ = the last one, v₀ from the end tangent through them;
* an interpolation run: its ``path.safetensors``; x₀ = its last point, v₀ its end tangent.

Pace: the speed ‖v₀‖ is the reference distance d — ‖B − A‖, the mean distance between the clip's last frames,
or the distance between the run's last two frames — so ``step_size = 1`` continues at the same pace (one step
≈ d, one decoded frame per step with ``decode_every = 1``).

Phases (recorded in the manifest; the expensive ones save their result in ``state/`` so ``--resume`` skips them):
``load`` (the given frames, the model), ``encode`` (the given points at t_ν), ``shoot`` (v₀, α, RK4), ``decode``,
``write``.

The parts: the options, their validation and what a source run passes on
(:mod:`geovid.tasks.extrapolation_config`), the classification of the inputs and reading them
(:mod:`geovid.tasks.extrapolation_source`), the phases, run by :func:`geovid.runs.jobs.run_job`
(:mod:`geovid.tasks.extrapolation_job`). Their public names are importable from here.
"""

from __future__ import annotations

import threading
from pathlib import Path

from geovid.progress import ProgressFn
from geovid.tasks.extrapolation_config import TANGENT_BVP_CALLS, TANGENTS, ExtrapolationConfig


def run_extrapolation(config: ExtrapolationConfig, progress: ProgressFn | None = None,
                      cancel: threading.Event | None = None) -> Path:
    """Continue a motion beyond its end along a geodesic and write a run folder (docs/method.md §6).

    Args:
        config: the options (see :class:`ExtrapolationConfig`; resolved here unless it already is).
        progress: ``progress(phase, done, total, info)``.
        cancel: set it to stop the job; the run is then marked ``interrupted`` and can be resumed.

    Returns:
        The run folder, complete.

    Raises:
        InputError: bad options or inputs (missing files, one image, a run that is not an interpolation, ...).
        ModelError: the model cannot be loaded.
        SolverError: the shot diverged.
        geovid.progress.Cancelled: ``cancel`` was set (run ``interrupted``).
    """
    from geovid.backbones.loader import model_name
    from geovid.runs.jobs import run_job
    from geovid.tasks.extrapolation_job import ExtrapolationJob

    cfg = config.resolve()
    return run_job("extrapolation", cfg.manifest_config(), cfg, list(cfg.source.paths), model_name(cfg.model),
                   lambda run, prog: ExtrapolationJob(cfg, run, prog), progress=progress, cancel=cancel)


__all__ = ["TANGENTS", "TANGENT_BVP_CALLS", "ExtrapolationConfig", "run_extrapolation"]
