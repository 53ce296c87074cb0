"""Several clips in one call: one analysis run each, then ``OUT/batch-<time>/batch_summary.csv`` (docs/analysis.md).

:func:`run_batch` is what ``geovid analyze a.mp4 b.mp4`` and the TUI run; :func:`batch_row` reads one run folder
into a row (the local and Ray engines of :mod:`geovid.batch` use it too).
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
from pathlib import Path
from typing import Any

from analysis.config import AnalysisConfig
from geovid.errors import GeovidError, InputError
from geovid.progress import Cancelled, ProgressFn
from geovid.runs.catalog import summary_row
from geovid.runs.files import atomic_output

BATCH_COLUMNS = ("name", "run", "clip", "status", "mean_residual_video", "mean_residual_optimised",
                 "mean_residual_perturbed", "mean_residual_smoothed", "mean_residual_line", "test_i", "test_ii",
                 "test_iii", "tests_passed", "geodesic_excess", "error")


def batch_row(run_path: Path | None, clip: Path, error: str | None = None) -> dict[str, Any]:
    """One row of batch_summary.csv from a run folder's manifest and summary."""
    row, s = summary_row(BATCH_COLUMNS, run_path, clip=str(os.path.abspath(clip)), error=error)
    if s is None:
        return row
    for p in ("video", "optimised", "perturbed", "smoothed", "line"):
        row[f"mean_residual_{p}"] = (s.get("paths", {}).get(p) or {}).get("mean_residual")
    tests = s.get("tests", {})
    for k in ("i", "ii", "iii"):
        row[f"test_{k}"] = (tests.get(k) or {}).get("passed")
    row["tests_passed"] = sum(1 for k in ("i", "ii", "iii") if row[f"test_{k}"] is True)
    row["geodesic_excess"] = s.get("geodesic_excess")
    return row


def batch_names(config: AnalysisConfig) -> list[str | None]:
    """The run name of each clip: ``None`` (default names) without ``--name``, else ``<name>-<clip stem>``
    (``<name>-<k>-<stem>`` when stems repeat); the one name itself for a single clip."""
    if config.name is None:
        return [None] * len(config.clips)
    if len(config.clips) == 1:
        return [config.name]
    stems = [c.stem for c in config.clips]
    dup = len(set(stems)) < len(stems)
    import re

    def clean(s: str) -> str:
        return re.sub(r"[^A-Za-z0-9._+@=-]+", "-", s).strip("-.") or "clip"

    return [f"{config.name}-{i + 1}-{clean(s)}" if dup else f"{config.name}-{clean(s)}" for i, s in enumerate(stems)]


def run_batch(config: AnalysisConfig, progress: ProgressFn | None = None,
              cancel: threading.Event | None = None) -> list[Path]:
    """Analyse every clip of ``config.clips`` (one run each); with several clips also write
    ``OUT/batch-<time>/batch_summary.csv`` (one row per clip, docs/run-directory.md).

    A clip that fails does not stop the others; after the last one a GeovidError lists the failures.
    Ctrl-C or ``cancel`` stops the batch at once (the current run is marked interrupted).

    Returns:
        The run folders, in the order of the clips (failed runs included).
    """
    if not config.clips:
        raise InputError("no clip given: pass one or more video files")
    from analysis.run import analyse_clip

    config = config.resolve()  # bad options: one error, before any run folder is made
    names = batch_names(config)
    runs: list[Path] = []
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    single = len(config.clips) == 1
    for k, (clip, name) in enumerate(zip(config.clips, names)):
        created: list[Path] = []
        if progress is not None and not single:
            progress("batch", k, len(config.clips), {"clip": clip.name})
        try:
            path = analyse_clip(config, clip, name, progress, cancel, created)
        except (KeyboardInterrupt, Cancelled):
            raise
        except GeovidError as err:
            if single:
                raise
            errors.append(f"{clip.name}: {err}")
            path = created[0] if created else None
            rows.append(batch_row(path, clip, " ".join(str(err).split())))
            if path is not None:
                runs.append(path)
            continue
        runs.append(path)
        rows.append(batch_row(path, clip))
    if not single:
        if progress is not None:
            progress("batch", len(config.clips), len(config.clips), {})
        write_batch_summary(config.out, rows)
    if errors:
        raise GeovidError(f"{len(errors)} of {len(config.clips)} clips failed: " + "; ".join(errors))
    return runs


def write_batch_summary(out: Path, rows: list[dict[str, Any]]) -> Path:
    """``OUT/batch-<time>/batch_summary.csv`` (created only now, so a half-made batch folder never exists)."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    base = f"batch-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    for k in range(1, 1000):
        folder = out / (base if k == 1 else f"{base}-{k}")
        try:
            folder.mkdir()
            break
        except FileExistsError:
            continue
    target = folder / "batch_summary.csv"
    with atomic_output(target) as tmp:
        pd.DataFrame(rows, columns=list(BATCH_COLUMNS)).to_csv(tmp, index=False)
    return target
