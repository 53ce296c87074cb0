"""Tolerant readers for run folders (the TUI's view of ``docs/run-directory.md``).

Every function here must survive damaged, partial and foreign folders: a missing or
invalid ``manifest.json``, bad JSON in ``summary.json``, missing tables or frames, a run
still being written by another process. Nothing raises on such input; what is wrong is
recorded in :attr:`RunRecord.problems` instead, so a front end can show it.

Pure Python (no Rich, no Textual); pandas is imported only by :func:`load_per_frame`.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geovid.runs.contract import DAMAGED, KINDS, MANIFEST, STATUSES, SUMMARY
from geovid.runs.files import read_json_object

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DAMAGED", "KINDS", "STATUSES", "RunRecord", "list_baselines", "list_frames", "list_plots",
           "load_per_frame", "load_run", "read_manifest", "read_summary", "runs_signature", "scan_runs",
           "sort_records"]

_FRAME_RE = re.compile(r"^\d+\.png$", re.IGNORECASE)

Number = float | int


@dataclass
class RunRecord:
    """What the catalog knows about one run folder.

    Attributes:
        path: The run folder.
        name: The manifest's ``name`` (the folder name when missing).
        kind: ``analysis``, ``interpolation``, ``extrapolation`` or ``unknown``.
        status: One of :data:`STATUSES`, or ``damaged`` when the manifest is missing/invalid.
        created: The manifest's ``created`` ISO-8601 text (``None`` when missing).
        updated: The manifest's ``updated`` ISO-8601 text (``None`` when missing).
        inputs: Input paths as written in the manifest.
        numbers: Key numbers for tables: analysis ``excess``, ``tests_passed``, ``tests_total``,
            ``residual_<path>``; interpolation ``ppl``/``pdv``/``relative_length`` (geodesic) and
            ``ppl_<baseline>``/``pdv_<baseline>``; extrapolation ``steps``, ``frames_decoded``,
            ``initial_speed``, ``final_speed``.
        verdict: The analysis verdict paragraph, if any.
        error: The manifest's ``error`` for failed runs.
        problems: Human-readable descriptions of what is missing or invalid.
        manifest: The parsed manifest (``None`` when missing/invalid).
        summary: The parsed summary (``None`` when missing/invalid).
    """

    path: Path
    name: str
    kind: str = "unknown"
    status: str = DAMAGED
    created: str | None = None
    updated: str | None = None
    inputs: list[str] = field(default_factory=list)
    numbers: dict[str, Number] = field(default_factory=dict)
    verdict: str | None = None
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None

    @property
    def damaged(self) -> bool:
        """True when something the contract promises is missing or unreadable."""
        return bool(self.problems)

    @property
    def created_at(self) -> datetime | None:
        """``created`` parsed as a datetime (``None`` when missing or malformed)."""
        return _parse_time(self.created)

    @property
    def config(self) -> dict[str, Any]:
        """The manifest's resolved configuration (empty when unavailable)."""
        cfg = (self.manifest or {}).get("config")
        return cfg if isinstance(cfg, dict) else {}


def _parse_time(text: str | None) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def read_manifest(run: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A run folder's ``manifest.json`` as a dict; ``None`` when missing or invalid (never raises)."""
    return read_json_object(Path(run) / MANIFEST)


def read_summary(run: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A run folder's ``summary.json`` as a dict; ``None`` when missing or invalid (never raises)."""
    return read_json_object(Path(run) / SUMMARY)


def _num(value: Any) -> Number | None:
    """A finite int/float from JSON, or None (bools and strings are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _infer_kind(summary: dict[str, Any] | None, run: Path) -> str:
    """Guess the kind of a run without a manifest, from its summary or its files."""
    if summary:
        if "paths" in summary or "geodesic_excess" in summary:
            return "analysis"
        if "methods" in summary:
            return "interpolation"
        if "steps" in summary:
            return "extrapolation"
    if (run / "optimised").is_dir():
        return "analysis"
    if (run / "baselines").is_dir():
        return "interpolation"
    return "unknown"


def _key_numbers(kind: str, summary: dict[str, Any]) -> tuple[dict[str, Number], str | None]:
    """Extract the numbers a table shows, tolerating missing keys (docs/method.md §7, §8, §6)."""
    numbers: dict[str, Number] = {}
    verdict: str | None = None
    if kind == "analysis":
        excess = _num(summary.get("geodesic_excess"))
        if excess is not None:
            numbers["excess"] = excess
        log_excess = _num(summary.get("log_geodesic_excess"))
        if log_excess is not None:
            numbers["log_excess"] = log_excess
        tests = summary.get("tests")
        if isinstance(tests, dict) and tests:
            results = [t.get("passed") for t in tests.values() if isinstance(t, dict)]
            numbers["tests_total"] = len(results)
            numbers["tests_passed"] = sum(1 for r in results if r is True)
        paths = summary.get("paths")
        if isinstance(paths, dict):
            for pname, stats in paths.items():
                if isinstance(stats, dict):
                    value = _num(stats.get("mean_residual"))
                    if value is not None:
                        numbers[f"residual_{pname}"] = value
        if isinstance(summary.get("verdict"), str):
            verdict = summary["verdict"]
    elif kind == "interpolation":
        methods = summary.get("methods")
        if isinstance(methods, dict):
            for mname, stats in methods.items():
                if not isinstance(stats, dict):
                    continue
                suffix = "" if mname == "geodesic" else f"_{mname}"
                for key in ("ppl", "pdv", "relative_length"):
                    value = _num(stats.get(key))
                    if value is not None:
                        numbers[f"{key}{suffix}"] = value
    elif kind == "extrapolation":
        for key in ("steps", "frames_decoded", "step_size", "initial_speed", "final_speed"):
            value = _num(summary.get(key))
            if value is not None:
                numbers[key] = value
    return numbers, verdict


def _check_files(record: RunRecord) -> None:
    """Record missing outputs of a run that claims to be complete."""
    run = record.path
    if not (run / "per_frame.csv").is_file() and not (run / "per_frame.parquet").is_file():
        record.problems.append("per_frame table missing")
    if not list_frames(run, "frames"):
        record.problems.append("frames/ missing or empty")
    if (record.kind == "analysis" and record.config.get("decode_optimised") is not False
            and not list_frames(run, "optimised")):
        record.problems.append("optimised/ missing or empty")
    if record.kind == "interpolation" and not list_baselines(run):
        record.problems.append("baselines/ missing or empty")


def load_run(path: str | os.PathLike[str]) -> RunRecord:
    """Read one run folder. Never raises on damaged runs.

    Args:
        path: The run folder.

    Returns:
        A :class:`RunRecord`; ``problems`` lists what is missing or invalid. A folder whose
        manifest is missing or invalid gets status ``damaged``.
    """
    run = Path(path)
    record = RunRecord(path=run, name=run.name)
    if not run.is_dir():
        record.problems.append("not a folder")
        return record

    manifest = read_json_object(run / MANIFEST, record.problems)
    record.manifest = manifest
    if manifest is not None:
        name = manifest.get("name")
        if isinstance(name, str) and name:
            record.name = name
        kind = manifest.get("kind")
        record.kind = kind if kind in KINDS else "unknown"
        if kind not in KINDS:
            record.problems.append(f"manifest kind {kind!r} unknown")
        status = manifest.get("status")
        if status in STATUSES:
            record.status = status
        else:
            record.problems.append(f"manifest status {status!r} unknown")
        for key in ("created", "updated"):
            value = manifest.get(key)
            if isinstance(value, str):
                setattr(record, key, value)
        inputs = manifest.get("inputs")
        if isinstance(inputs, list):
            record.inputs = [str(i) for i in inputs]
        error = manifest.get("error")
        if error:
            record.error = str(error)

    # A running or failed run may legitimately have no summary yet.
    summary_required = record.status == "complete"
    summary = read_json_object(run / SUMMARY, record.problems, required=summary_required)
    record.summary = summary
    if record.kind == "unknown" and manifest is None:
        record.kind = _infer_kind(summary, run)
    if summary is not None:
        record.numbers, record.verdict = _key_numbers(record.kind, summary)
    if record.status == "complete":
        _check_files(record)
    if record.status == "failed" and not record.error:
        record.error = "failed (no error message recorded)"
    return record


def _is_run_candidate(entry: os.DirEntry[str]) -> bool:
    """Sub-folders of RUNS_DIR that are runs (or damaged runs), not batch folders or hidden ones."""
    if entry.name.startswith((".", "_")):
        return False
    try:
        if not entry.is_dir():
            return False
    except OSError:
        return False
    path = Path(entry.path)
    # A batch folder only holds batch_summary.csv (run-directory.md, "Analysis batches").
    return not ((path / "batch_summary.csv").exists() and not (path / MANIFEST).exists())


def scan_runs(runs_dir: str | os.PathLike[str]) -> list[RunRecord]:
    """Read every run folder directly under ``runs_dir``, newest first.

    A missing ``runs_dir`` gives an empty list. Folders without a manifest are included
    (as damaged runs) so that the user sees them.
    """
    root = Path(runs_dir)
    try:
        entries = [e for e in os.scandir(root) if _is_run_candidate(e)]
    except OSError:
        return []
    records = [load_run(e.path) for e in entries]
    return sort_records(records, "created")


def _created_key(record: RunRecord) -> float:
    when = record.created_at
    if when is None:
        return float("-inf")
    if when.tzinfo is None:
        # Naive times are treated as UTC so they compare with aware ones.
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def sort_records(records: list[RunRecord], key: str, reverse: bool | None = None) -> list[RunRecord]:
    """Sort runs by ``created`` (newest first), ``name``, ``kind``, ``status`` or ``result``.

    ``result`` orders analyses by geodesic excess and interpolations by PPL (smaller first),
    runs without a number last. Ties keep name order, so the result is deterministic.
    """
    by_name = sorted(records, key=lambda r: r.name)
    if key == "created":
        return sorted(by_name, key=_created_key, reverse=True if reverse is None else reverse)
    if key in ("name", "kind", "status"):
        return sorted(by_name, key=lambda r: getattr(r, key), reverse=bool(reverse))

    def result(r: RunRecord) -> tuple[int, float]:
        value = r.numbers.get("log_excess")  # the excess itself overflows to inf beyond ~10^304
        if value is None:
            value = r.numbers.get("excess", r.numbers.get("ppl", r.numbers.get("final_speed")))
        return (0, float(value)) if value is not None else (1, 0.0)

    return sorted(by_name, key=result, reverse=bool(reverse))


def load_per_frame(path: str | os.PathLike[str]) -> pd.DataFrame | None:
    """Read a run's long-format per-frame table (CSV, else Parquet); ``None`` if unavailable."""
    import pandas as pd

    run = Path(path)
    for name, reader in (("per_frame.csv", pd.read_csv), ("per_frame.parquet", pd.read_parquet)):
        file = run / name
        if not file.is_file():
            continue
        try:
            table = reader(file)
        except Exception:  # any parser/engine error means "unreadable"; try the next format
            continue
        if "path" in table.columns and "frame" in table.columns:
            return table
    return None


def list_frames(path: str | os.PathLike[str], sub: str = "frames") -> list[Path]:
    """The numbered PNG frames (``0000.png``, …) in ``path/sub``, in order; ``[]`` if none."""
    folder = Path(path) / sub
    try:
        names = [e.name for e in os.scandir(folder) if _FRAME_RE.match(e.name) and e.is_file()]
    except OSError:
        return []
    return [folder / n for n in sorted(names, key=lambda n: int(n.split(".")[0]))]


def list_baselines(path: str | os.PathLike[str]) -> list[str]:
    """Names of an interpolation's baselines that have frames (``baselines/<name>/frames``)."""
    root = Path(path) / "baselines"
    try:
        names = sorted(e.name for e in os.scandir(root) if e.is_dir())
    except OSError:
        return []
    return [n for n in names if list_frames(root / n, "frames")]


def list_plots(path: str | os.PathLike[str]) -> list[Path]:
    """The PNG plots in ``path/plots`` (sorted), plus ``strip.png``/``compare.png`` when present."""
    run = Path(path)
    found: list[Path] = []
    with contextlib.suppress(OSError):
        found = sorted(p for p in (run / "plots").iterdir() if p.suffix.lower() == ".png" and p.is_file())
    found += [run / n for n in ("strip.png", "compare.png") if (run / n).is_file()]
    return found


def runs_signature(runs_dir: str | os.PathLike[str]) -> tuple[tuple[str, int, int, int], ...]:
    """A cheap fingerprint of ``runs_dir`` that changes when a run appears, goes or is updated.

    Uses only ``stat`` calls (folder, manifest and summary mtimes in ns), so polling it every
    second costs microseconds per run.
    """

    def mtime(p: Path) -> int:
        try:
            return p.stat().st_mtime_ns
        except OSError:
            return 0

    root = Path(runs_dir)
    try:
        names = sorted(e.name for e in os.scandir(root) if e.is_dir())
    except OSError:
        return ()
    return tuple(
        (n, mtime(root / n), mtime(root / n / MANIFEST), mtime(root / n / SUMMARY))
        for n in names
    )
