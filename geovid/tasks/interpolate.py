"""Geodesic interpolation between two images (docs/method.md §5, §8): ``geovid interpolate A B``.

Phases (each reported through ``progress`` and recorded in the manifest; the expensive ones save their result in
``state/`` so ``--resume`` skips them):

1. ``load`` — the model; the two images, any format, fitted to the model resolution (docs/interpolation.md).
2. ``encode`` — E, the endpoints' prompt-embedding inversion (conditioning ``invert``, cached) and DDIM inversion to
   t_ν, each endpoint with its own condition (docs/method.md §1; prompt conditioning: cached by
   :mod:`geovid.tasks.latents`).
3. ``solve`` — α by the rule of docs/method.md §3.7 on the slerp (unless given), then the BVP (docs/method.md §5) from
   the slerp between the endpoints on the sphere, with a budget of network
   calls (``max_calls``).
4. ``decode`` — the geodesic and the baselines (lerp, slerp between the same endpoints), DDIM denoising with the
   same settings, in one batch.
5. ``uniform`` — perceptually uniform re-timing (docs/method.md §8), for every method alike: cumulative perceptual
   distance inverted piecewise-linearly, new points interpolated between path neighbours (slerp; lerp for the
   lerp baseline), re-decoded.
6. ``measure`` — scores at the final points: residual, log-density profile and relative length (docs/method.md §3);
   PPL and PDV (docs/method.md §8).
7. ``write`` — frames, baselines, strip, compare, GIF, MP4, ``path.safetensors``, tables, plot, summary.

Conditioning (docs/interpolation.md, "Conditioning"): by default (``invert``, docs/method.md §1.4, §2.2) one prompt embedding per
endpoint is inverted from its image, c_A and c_B, and every point x is scored and decoded with
c(x) = (1 − τ) c_A + τ c_B, τ its position along the chord A→B (:class:`geovid.tasks.common.ConditionField`), so
each endpoint reconstructs with its own condition. ``prompt``: the text prompt conditions everything; with
``prompt_b``, B is inverted with it and c(x) blends the two prompt embeddings the same way. The score is the
``contrast`` estimator with the model's negative prompt by default (docs/method.md §2.2).

The parts: the options and their validation (:mod:`geovid.tasks.interpolation_config`), the phases, run by
:func:`geovid.runs.jobs.run_job` (:mod:`geovid.tasks.interpolation_job`), the outputs
(:mod:`geovid.tasks.interpolation_outputs`), the re-timing (:mod:`geovid.tasks.retiming`), and what interpolation
and extrapolation share (:mod:`geovid.tasks.sequence`). Their public names are importable from here.
"""

from __future__ import annotations

import threading
from pathlib import Path

from geovid.progress import ProgressFn
from geovid.runs.options import RESIZE_POLICIES
from geovid.tasks.interpolation_config import (
    BASELINES,
    DEFAULT_MAX_CALLS,
    DEFAULT_STARTS,
    PREVIEW_DECODE_STEPS,
    InterpolationConfig,
    parse_baselines,
)
from geovid.tasks.retiming import chord_times, retime
from geovid.tasks.sequence import (
    CONDITIONINGS,
    DEFAULT_DECODE_STEPS,
    DEFAULT_DRAWS,
    DEFAULT_ESTIMATOR,
    SEQUENCE_ALPHA,
    resolve_conditioning,
    sequence_alpha,
)


def run_interpolation(config: InterpolationConfig, progress: ProgressFn | None = None,
                      cancel: threading.Event | None = None, created: list[Path] | None = None,
                      command: list[str] | None = None) -> Path:
    """Interpolate between two images along a density geodesic and write a run folder (docs/method.md §5, §8).

    Args:
        config: the options (see :class:`InterpolationConfig`; resolved here unless it already is).
        progress: ``progress(phase, done, total, info)`` (geovid.progress convention).
        cancel: set it to stop the job; the run is then marked ``interrupted`` and can be resumed.
        created: when given, the run folder is appended to it as soon as it exists (the batch engines,
            geovid.batch, name the folder of a run that then fails).
        command: the command line recorded in the manifest (default: ``sys.argv``; a batch worker passes the
            driver's).

    Returns:
        The run folder (``config.out/NAME``), complete.

    Raises:
        InputError: bad options, missing or unreadable images, a run that exists (without ``resume``).
        ModelError: the model cannot be loaded.
        SolverError: the solver diverged.
        geovid.progress.Cancelled: ``cancel`` was set (run ``interrupted``).
    """
    from geovid.backbones.loader import model_name
    from geovid.runs.jobs import run_job
    from geovid.tasks.interpolation_job import InterpolationJob

    cfg = config.resolve()
    cfg.check_inputs()
    paths = (Path(cfg.image_a).expanduser(), Path(cfg.image_b).expanduser())
    return run_job("interpolation", cfg.manifest_config(), cfg, list(paths), model_name(cfg.model),
                   lambda run, prog: InterpolationJob(cfg, run, prog, paths), progress=progress, cancel=cancel,
                   created=created, command=command)


__all__ = ["BASELINES", "CONDITIONINGS", "DEFAULT_DECODE_STEPS", "DEFAULT_DRAWS", "DEFAULT_ESTIMATOR",
           "DEFAULT_MAX_CALLS", "DEFAULT_STARTS", "PREVIEW_DECODE_STEPS", "RESIZE_POLICIES", "SEQUENCE_ALPHA",
           "InterpolationConfig", "chord_times", "parse_baselines", "resolve_conditioning", "retime",
           "run_interpolation", "sequence_alpha"]
