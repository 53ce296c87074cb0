"""The batch driver (docs/batch.md): :func:`run_batch_job` runs every item of a :class:`BatchJob` on the local or
the Ray engine and keeps the batch summary up to date."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geovid.batch.control import BatchControl, BatchSummary
from geovid.batch.kinds import CANCELLED, PENDING, RUNNING, KindSpec, _pair_prompt, _text, kind_spec
from geovid.batch.ray_engine import _default_workers, _run_ray, check_out_shared, ray_session, require_ray
from geovid.errors import GeovidError, InputError
from geovid.progress import ProgressFn
from geovid.runs.catalog import read_manifest
from geovid.runs.files import to_jsonable
from geovid.runs.store import Run

ENGINES = ("local", "ray")


@dataclass
class BatchJob:
    """A batch: ``kind`` (``analysis`` or ``interpolation``), one dict per item (``{"clip", "name"}`` or ``{"a",
    "b", "prompt", "name"}``; ``name`` ``None`` for the default run name), and the options every item shares (the
    fields of ``AnalysisConfig`` / ``InterpolationConfig``, ``out`` and ``resume`` included)."""

    kind: str
    items: list[dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)
    #: the command line recorded in every run's manifest (default: this process's ``sys.argv``).
    command: list[str] | None = None


@dataclass
class BatchResult:
    """What a batch did: the summary rows (in item order), the summary CSV, and what went wrong."""

    rows: list[dict[str, Any]]
    summary: Path
    runs: list[Path]
    failed: list[str]
    interrupted: bool
    skipped: int = 0


class _Tracker:
    """Rows, the summary file and the progress display, updated as items start and finish."""

    def __init__(self, spec: KindSpec, items: list[dict[str, Any]], rows: list[dict[str, Any]],
                 todo: list[dict[str, Any]], progress: ProgressFn | None) -> None:
        self.spec, self.items, self.rows = spec, items, rows
        self.pending = {int(it["item"]): it for it in todo}
        self.progress = progress
        self.summary: BatchSummary | None = None
        self.running: set[int] = set()

    def counts(self) -> dict[str, int]:
        done = sum(1 for r in self.rows if r.get("status") == "complete")
        finished = len(self.rows) - len(self.pending)
        return {"done": done, "failed": finished - done, "running": len(self.running)}

    def report(self) -> None:
        if self.progress is not None:
            c = self.counts()
            self.progress("items", len(self.rows) - len(self.pending), len(self.rows), c)

    def write(self) -> None:
        if self.summary is not None:
            self.summary.write(self.rows)

    def set_running(self, running: set[int]) -> None:
        running = running & set(self.pending)
        if running == self.running:
            return
        for k in running - self.running:
            self.rows[k]["status"] = RUNNING
        self.running = running
        self.write()
        self.report()

    def finish(self, result: Mapping[str, Any]) -> None:
        """A worker's row (geovid.distributed): the summary row is read back from the run folder."""
        k = int(result["item"])
        if k not in self.pending:
            return
        item = self.pending.pop(k)
        run = Path(result["run"]) if _text(result.get("run")) else None
        row = self.spec.row(item, run, _text(result.get("error")))
        if result.get("status") == CANCELLED or (run is None and result.get("status") == "interrupted"):
            row["status"] = CANCELLED
        self.rows[k] = row
        self.running.discard(k)
        self.write()
        self.report()

    def settle(self, out: Path, since: str, error: str | None) -> None:
        """Items without a row after Ctrl-C or an engine failure: runs still ``running`` become ``interrupted``;
        rows come from the runs they made, or say ``cancelled``."""
        if not self.pending:
            return
        want = {tuple(self.spec.inputs(it)): k for k, it in self.pending.items()}
        found: dict[int, tuple[str, Path]] = {}
        with contextlib.suppress(OSError):
            for entry in os.scandir(out):
                if entry.name.startswith(".") or not entry.is_dir():
                    continue
                m = read_manifest(entry.path)
                if m is None or str(m.get("updated", "")) < since:
                    continue
                k = want.get(tuple(str(p) for p in (m.get("inputs") or [])))
                if k is None:
                    continue
                if m.get("status") == "running":
                    with contextlib.suppress(OSError):
                        Run(Path(entry.path), m).interrupt()
                key = str(m.get("updated", ""))
                if k not in found or key > found[k][0]:
                    found[k] = (key, Path(entry.path))
        for k, item in list(self.pending.items()):
            run = found.get(k, (None, None))[1]
            row = self.spec.row(item, run, error)
            if run is None and error is None:
                row["status"] = CANCELLED
            self.rows[k] = row
            del self.pending[k]
        self.running = set()
        self.write()
        self.report()


def _utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _plan_resume(spec: KindSpec, template: Any, items: list[dict[str, Any]], out: Path
                 ) -> tuple[list[dict[str, Any]], dict[int, Path]]:
    """``--resume``: the items to run (each told which run to continue) and the complete runs to skip.

    One scan of ``out`` for the whole batch (not one per item): the newest run of the same kind, inputs and
    options, or ``out/name`` for named items — the run ``open_run`` would pick, handed to the worker by name."""
    index: dict[tuple[str, ...], list[tuple[str, Path, dict[str, Any]]]] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir(out):
            if entry.name.startswith("."):
                continue
            m = read_manifest(entry.path)
            if m is None or m.get("kind") != spec.kind:
                continue
            key = tuple(str(p) for p in (m.get("inputs") or []))
            index.setdefault(key, []).append((str(m.get("created", "")), Path(entry.path), m))
    todo, skipped = [], {}
    for item in items:
        try:
            cfg = to_jsonable(spec.run_config(template, item))
        except GeovidError:
            todo.append({**item, "resume": False})  # the worker reports the error in its run
            continue
        name = _text(item.get("name"))
        if name is not None:
            m = read_manifest(out / name)
            prev = (out / name, m) if m is not None else None
        else:
            same = [c for c in index.get(tuple(spec.inputs(item)), []) if to_jsonable(c[2].get("config") or {}) == cfg]
            newest = max(same, key=lambda c: c[0]) if same else None
            prev = (newest[1], newest[2]) if newest is not None else None
        if prev is None:
            todo.append({**item, "resume": False})
        elif prev[1].get("status") == "complete" and to_jsonable(prev[1].get("config") or {}) == cfg:
            skipped[int(item["item"])] = prev[0]
        else:  # the worker continues it (open_run checks its kind, inputs and options)
            todo.append({**item, "name": prev[0].name, "resume": True})
    return todo, skipped


def _run_local(spec: KindSpec, ctor: dict[str, Any], todo: list[dict[str, Any]], tracker: _Tracker) -> None:
    from geovid.distributed import ItemInterrupted

    worker = spec.worker()(**ctor)
    for item in todo:
        tracker.set_running({int(item["item"])})
        try:
            result = worker.process(item)
        except ItemInterrupted as exc:
            tracker.finish(exc.row)
            raise KeyboardInterrupt from None
        tracker.finish(result)


def _check_engine(job: BatchJob, engine: str, workers: int | None, gpus_per_worker: float,
                  threads: int | None) -> None:
    """The engine options and the items, refused in one line before anything starts."""
    if engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if not job.items:
        raise InputError("no input given" + (": pass video files, globs or --list FILE" if job.kind == "analysis"
                                               else ": --pairs FILE has no pair"))
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if not gpus_per_worker >= 0:
        raise InputError(f"--gpus-per-worker must be >= 0, got {gpus_per_worker}")
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")


def _shared_options(job: BatchJob) -> tuple[dict[str, Any], Path]:
    """The options every item shares, with ``out`` (and a local ``model`` folder) absolute: workers may run
    elsewhere."""
    options = dict(job.options)
    out = Path(os.path.abspath(os.path.expanduser(os.fspath(options.get("out", "runs")))))
    options["out"] = out
    model = options.get("model")
    if isinstance(model, str | os.PathLike) and os.path.exists(os.path.expanduser(os.fspath(model))):
        options["model"] = os.path.abspath(os.path.expanduser(os.fspath(model)))
    return options, out


def _numbered_items(job: BatchJob, template: Any) -> list[dict[str, Any]]:
    """The items with absolute paths, their index (``item``), a ``name`` or None and, for pairs, the prompt."""
    items = []
    for k, raw in enumerate(job.items):
        item = {key: (os.path.abspath(os.fspath(v)) if isinstance(v, os.PathLike) else v) for key, v in raw.items()}
        if job.kind == "interpolation":
            item["prompt"] = _pair_prompt(template, item)
        items.append({**item, "item": k, "name": _text(item.get("name"))})
    return items


def _run_engine(engine: str, spec: KindSpec, ctor: dict[str, Any], todo: list[dict[str, Any]], tracker: _Tracker,
                out: Path, since: str, workers: int | None, ray_address: str | None, gpus_per_worker: float,
                threads: int | None) -> tuple[bool, str | None]:
    """Run the items on the engine; returns (interrupted, engine error). The summary folder is made once the
    engine is up (no batch folder when Ctrl-C comes while Ray starts)."""
    interrupted, error = False, None
    if engine == "local" or not todo:  # nothing to run (--resume, all complete): no Ray cluster either
        tracker.summary = BatchSummary.create(out, spec.columns, tracker.rows)
        tracker.report()
        try:
            if todo:
                _run_local(spec, {**ctor, "threads": None, "batch_control": None}, todo, tracker)
        except KeyboardInterrupt:
            interrupted = True
        return interrupted, error
    cpus = float(threads or 1)
    num_cpus = None if workers is None else max(1, round(workers * cpus))
    control = BatchControl.create(out)
    try:
        with ray_session(ray_address, num_cpus) as ray:
            check_out_shared(ray, out, control)
            n = workers or _default_workers(ray, cpus, gpus_per_worker)
            tracker.summary = BatchSummary.create(out, spec.columns, tracker.rows)
            tracker.report()
            ctor = {**ctor, "threads": threads or 1, "batch_control": str(control.path)}
            interrupted, error = _run_ray(ray, spec, ctor, todo, tracker, control, n, cpus, gpus_per_worker)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if tracker.summary is not None:
            tracker.settle(out, since, error)
        control.remove()
    return interrupted, error


def run_batch_job(job: BatchJob, engine: str = "local", workers: int | None = None, ray_address: str | None = None,
                  gpus_per_worker: float = 0.0, threads: int | None = None,
                  progress: ProgressFn | None = None) -> BatchResult:
    """Run every item of ``job`` (see the package docstring) and return what happened.

    Args:
        job: the batch.
        engine: ``local`` or ``ray``.
        workers: Ray engine: actors (default: one per CPU, or per ``gpus_per_worker`` GPUs, of the cluster).
        ray_address: Ray engine: join this cluster instead of starting a local one.
        gpus_per_worker: Ray engine: GPUs per actor.
        threads: Ray engine: torch threads (and CPUs reserved) per actor (default 1). The local engine uses the
            process's setting.
        progress: ``progress("items", finished, total, {"done", "failed", "running"})``.

    Returns:
        A :class:`BatchResult`; failed items are listed, not raised.

    Raises:
        InputError: bad options, no item, Ray missing, ``--out`` not shared with every Ray node.
    """
    _check_engine(job, engine, workers, gpus_per_worker, threads)
    spec = kind_spec(job.kind)
    if engine == "ray":
        require_ray()
    options, out = _shared_options(job)
    template = spec.template(options)  # bad options: one error before anything starts
    items = _numbered_items(job, template)
    rows = [{**spec.row(it, None, None), "status": PENDING} for it in items]
    since = _utc_now()
    if options.get("resume"):
        todo, skipped = _plan_resume(spec, template, items, out)
        for k, path in skipped.items():
            rows[k] = spec.row(items[k], path, None)
    else:
        todo, skipped = [{**it, "resume": False} for it in items], {}
    tracker = _Tracker(spec, items, rows, todo, progress)
    command = job.command or [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    interrupted, error = _run_engine(engine, spec, {**options, "command": command}, todo, tracker, out, since,
                                     workers, ray_address, gpus_per_worker, threads)
    if tracker.summary is None:  # stopped (Ctrl-C) while Ray was starting: nothing ran, no batch folder
        raise KeyboardInterrupt
    tracker.settle(out, since, error)
    tracker.write()
    failed = [f"{spec.label(it)}: {r.get('error') or r.get('status')}"
              for it, r in zip(items, rows) if r.get("status") != "complete"]
    runs = [Path(r["run"]) for r in rows if _text(r.get("run"))]
    return BatchResult(rows=rows, summary=tracker.summary.csv, runs=runs, failed=failed, interrupted=interrupted,
                       skipped=len(skipped))
