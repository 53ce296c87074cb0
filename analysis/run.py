"""``geovid analyze`` as a library call: does a clip trace a geodesic of the image model's density? (docs/method.md §7)

Entry points (the CLI and the TUI call these):

* :class:`AnalysisConfig` — every option, named like the CLI options with underscores (:mod:`analysis.config`);
* :func:`run_analysis` — analyse one clip into a run folder ``OUT/NAME/`` (docs/run-directory.md) and return it;
* :func:`run_batch` — one run per clip plus ``OUT/batch-<time>/batch_summary.csv`` (:mod:`analysis.batch`).

A run is a list of phases (:class:`analysis.phases.AnalysisJob`: ``decode``, ``encode``, ``paths``, ``alpha``,
``solve``, ``measure``, ``decode_optimised``, ``report``) driven by the one runner of phased jobs
(:mod:`geovid.runs.jobs`). Every phase leaves its result on disk, so a resumed run (``resume=True``) skips the phases
already done and repeats none of their network calls.

Ctrl-C (KeyboardInterrupt) or a set ``cancel`` event (raised as :class:`geovid.progress.Cancelled` from the
progress callback) leaves the run ``interrupted``; any error leaves it ``failed`` with a one-line message.
"""

from __future__ import annotations

import threading
from pathlib import Path

from analysis.config import CALLS_PER_FRAME, AnalysisConfig, config_from_dict
from analysis.phases import PLOTS
from geovid.errors import InputError
from geovid.progress import ProgressFn
from geovid.runs.store import Run

#: The phases an analysis run records (``alpha`` only when α comes from the rule, ``decode_optimised`` only when
#: γ_o is decoded).
PHASES = ("decode", "encode", "paths", "alpha", "solve", "measure", "decode_optimised", "report")


def run_analysis(config: AnalysisConfig, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None, created: list[Path] | None = None) -> Path:
    """Analyse ``config.clips[0]`` (docs/method.md §7) into a new (or resumed) run folder and return it.

    With several clips this runs :func:`run_batch` and returns the first clip's run folder.

    Args:
        config: the options.
        progress: ``progress(phase, done, total, info)`` (geovid.progress convention).
        cancel: set it to stop the run cooperatively; the run is then marked ``interrupted`` and
            :class:`geovid.progress.Cancelled` is raised.
        created: when given, the run folder is appended to it as soon as it exists (so that a caller knows
            the folder of a run that then fails; used by the batch engines, geovid.batch).

    Returns:
        The run folder (status ``complete``).

    Raises:
        GeovidError: bad options, unreadable clip, clip too short, model errors (run marked ``failed``).
        Cancelled, KeyboardInterrupt: the run is marked ``interrupted`` and can be resumed.
    """
    if len(config.clips) > 1:
        return run_batch(config, progress=progress, cancel=cancel)[0]
    if not config.clips:
        raise InputError("no clip given: pass one or more video files")
    config = config.resolve()  # bad options: one error, before any run folder is made
    return analyse_clip(config, config.clips[0], config.name, progress, cancel, created)


def analyse_clip(config: AnalysisConfig, clip: Path, name: str | None, progress: ProgressFn | None,
                 cancel: threading.Event | None, created: list[Path] | None = None) -> Path:
    """One clip of a (resolved) config into the run folder ``name`` (see :func:`run_analysis`)."""
    from analysis.phases import AnalysisJob
    from geovid.backbones.loader import model_name
    from geovid.runs.jobs import run_job

    def already_complete(run: Run, prog: ProgressFn) -> None:
        prog("report", 1, 1, {"run": run.name, "note": "already complete"})

    return run_job("analysis", config.resolve().manifest_config(), config.replace(name=name), [clip],
                   model_name(config.model), lambda run, prog: AnalysisJob(run, config, clip, prog),
                   progress=progress, cancel=cancel, created=created, command=config.command,
                   on_complete=already_complete)


# The several-clips entry points live in analysis.batch; re-exported here (the CLI, TUI and engines import them).
from analysis.batch import (  # noqa: E402
    BATCH_COLUMNS,
    batch_names,
    batch_row,
    run_batch,
    write_batch_summary,
)

__all__ = [
    "BATCH_COLUMNS",
    "CALLS_PER_FRAME",
    "PHASES",
    "PLOTS",
    "AnalysisConfig",
    "analyse_clip",
    "batch_names",
    "batch_row",
    "config_from_dict",
    "run_analysis",
    "run_batch",
    "write_batch_summary",
]
