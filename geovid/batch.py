"""Batches of runs on this machine or on a Ray cluster (docs/batch.md): many clips (``geovid analyze``,
docs/method.md §7) or many image pairs (``geovid interpolate --pairs``, docs/method.md §5).

The driver, :func:`run_batch_job`, takes a :class:`BatchJob` (the kind, one dict per item, the options shared by
every item) and an engine:

* ``local`` — the items one after another in this process (one model load);
* ``ray`` — a Ray Data pipeline (``map_batches`` over the public callable classes of :mod:`geovid.distributed`,
  one actor per worker, each loading the model once) on a local Ray cluster sized by ``workers`` or on an
  existing one (``ray_address``).

Either way each item makes one run folder exactly as the single-item command writes it (same names, same files,
same numbers for the same seed), and the driver keeps ``OUT/batch-<time>/batch_summary.csv`` and ``.parquet``
(one row per item: ``pending``, ``running``, then the run's status) written atomically after every change. A
failing item becomes a ``failed`` run and an error row and never stops the others. With ``resume`` complete runs
are skipped (their rows are filled from disk) and unfinished ones are continued. Ctrl-C cancels what has not
started, and the running items stop at their next progress report and are marked ``interrupted``.

Workers and the driver talk through a hidden folder on ``--out`` (``.geovid-batch-*``, :class:`BatchControl`):
a token the driver writes and every Ray node must read back (the start-up check that ``--out`` is shared and
writable), ``started/<item>`` markers (the progress display's "running"), and the ``cancel`` flag. It is removed
at the end. Nothing here imports Ray, torch, Rich or Textual at module level.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as _dt
import io
import logging
import os
import queue
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geovid.errors import GeovidError, InputError
from geovid.progress import ProgressFn
from geovid.runs.catalog import read_manifest, read_summary
from geovid.runs.files import atomic_write_bytes, to_jsonable
from geovid.runs.store import Run, one_line

ENGINES = ("local", "ray")
#: The batch kinds: run kinds that take a list of items.
KINDS = ("analysis", "interpolation")
#: How to get the Ray engine (the one line printed when Ray is missing).
INSTALL_RAY = "pip install 'geovid[ray]'"
#: Row states while a batch runs, besides the run statuses (complete, failed, interrupted).
PENDING, RUNNING, CANCELLED = "pending", "running", "cancelled"
#: After Ctrl-C: how long the running items get to stop at their next progress report (a second Ctrl-C stops
#: waiting at once; runs still ``running`` after that are marked ``interrupted`` by the driver).
GRACE_S = 30.0
#: Ray engine: starts of one item before it counts as failed. Ray restarts a worker that died (out of memory, a
#: lost node) and retries its item; the retry continues the item's run (phases done are kept), and an item whose
#: worker died this often becomes a failed run instead of taking down worker after worker.
MAX_ATTEMPTS = 3
#: ``batch_summary`` columns of an interpolation batch (one row per pair; numbers from the run's summary.json).
PAIR_COLUMNS = ("name", "run", "a", "b", "prompt", "status", "ppl", "pdv", "log_relative_length", "mean_residual",
                "ppl_lerp", "ppl_slerp", "a_psnr", "b_psnr", "error")
#: Extra columns of the rows the workers return (geovid.distributed), after the summary columns.
WORKER_COLUMNS = ("seconds", "network_calls", "worker")
#: Arrow types of the row columns (the rest are strings), so that every batch a worker returns has one schema.
COLUMN_TYPES: dict[str, str] = {
    "item": "int64", "seconds": "float64", "network_calls": "int64", "tests_passed": "int64",
    "test_i": "bool", "test_ii": "bool", "test_iii": "bool", "geodesic_excess": "float64",
    **{f"mean_residual_{p}": "float64" for p in ("video", "optimised", "perturbed", "smoothed", "line")},
    **dict.fromkeys(("ppl", "pdv", "log_relative_length", "mean_residual", "ppl_lerp", "ppl_slerp", "a_psnr",
                     "b_psnr"), "float64"),
}


# --------------------------------------------------------------------------- inputs


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def expand_inputs(args: Sequence[str | os.PathLike[str]], list_file: str | os.PathLike[str] | None = None
                  ) -> list[Path]:
    """Input files from command-line arguments and a list file, in order.

    An argument that names no file but contains ``*``, ``?`` or ``[`` is a glob (``**`` recurses), expanded in
    sorted order; one that matches nothing is an error. ``list_file`` adds one path per line (:func:`read_list`).
    Files are not checked here: a missing one fails its own item.
    """
    paths: list[Path] = []
    for arg in args:
        text = os.path.expanduser(os.fspath(arg))
        if _has_magic(text) and not os.path.exists(text):
            import glob

            matches = [m for m in sorted(glob.glob(text, recursive=True)) if os.path.isfile(m)]
            if not matches:
                raise InputError(f"no file matches {os.fspath(arg)}")
            paths += [Path(m) for m in matches]
        else:
            paths.append(Path(text))
    if list_file is not None:
        paths += read_list(list_file)
    return paths


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{what} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{what} {path}: cannot read it ({getattr(err, 'strerror', None) or err})") from None


def _relative_to(base: Path, text: str) -> Path:
    p = Path(os.path.expanduser(text))
    return p if p.is_absolute() else base / p


def read_list(path: str | os.PathLike[str]) -> list[Path]:
    """``--list FILE``: one path per line; blank lines and lines starting with ``#`` are skipped; relative paths
    are relative to the list file's folder."""
    p = Path(path).expanduser()
    out = [_relative_to(p.parent, line.strip()) for line in _read_text(p, "--list").splitlines()
           if line.strip() and not line.strip().startswith("#")]
    if not out:
        raise InputError(f"--list {p} names no file")
    return out


def read_pairs(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """``--pairs FILE``: a CSV with columns ``a,b[,prompt]`` (a header row with these names is optional).

    Relative image paths are relative to the CSV's folder; an empty prompt means the command's ``--prompt``.
    Prompts that contain commas must be quoted (standard CSV). Returns ``[{"a": Path, "b": Path, "prompt":
    str | None}, ...]``.
    """
    p = Path(path).expanduser()
    rows = [(n + 1, r) for n, r in enumerate(csv.reader(io.StringIO(_read_text(p, "--pairs"))))
            if any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    cols = ["a", "b", "prompt"]
    if rows:
        first = [c.strip().lower() for c in rows[0][1]]
        if "a" in first and "b" in first:
            unknown = [c for c in first if c not in ("a", "b", "prompt", "")]
            if unknown:
                raise InputError(f"--pairs {p}: unknown column(s) {', '.join(unknown)}; expected a,b[,prompt]")
            cols, rows = first, rows[1:]
    if not rows:
        raise InputError(f"--pairs {p} has no pair (one line per pair: a,b[,prompt])")
    pairs = []
    for line, r in rows:
        if len(r) > len(cols) and any(c.strip() for c in r[len(cols):]):
            raise InputError(f"--pairs {p} line {line}: {len(r)} columns, expected a,b[,prompt] "
                             "(quote a prompt that contains commas)")
        rec = {c: v.strip() for c, v in zip(cols, r)}
        if not rec.get("a") or not rec.get("b"):
            raise InputError(f"--pairs {p} line {line}: needs two image paths (a,b[,prompt])")
        pairs.append({"a": _relative_to(p.parent, rec["a"]), "b": _relative_to(p.parent, rec["b"]),
                      "prompt": rec.get("prompt") or None})
    return pairs


# --------------------------------------------------------------------------- rows


def pair_row(run_path: Path | None, a: str | os.PathLike[str], b: str | os.PathLike[str], prompt: str | None,
             error: str | None = None) -> dict[str, Any]:
    """One row of an interpolation batch's summary (:data:`PAIR_COLUMNS`) from the run folder."""
    row: dict[str, Any] = dict.fromkeys(PAIR_COLUMNS)
    row.update({"a": os.path.abspath(a), "b": os.path.abspath(b), "prompt": prompt, "error": error})
    if run_path is None:
        row["status"] = "failed"
        return row
    row["run"], row["name"] = str(run_path), run_path.name
    manifest = read_manifest(run_path)
    row["status"] = manifest.get("status") if manifest is not None else "damaged"
    s = read_summary(run_path)
    if s is None:
        return row
    methods = s.get("methods") if isinstance(s.get("methods"), dict) else {}
    geo = methods.get("geodesic") or {}
    for key in ("ppl", "pdv", "log_relative_length", "mean_residual"):
        row[key] = geo.get(key)
    for m in ("lerp", "slerp"):
        row[f"ppl_{m}"] = (methods.get(m) or {}).get("ppl")
    rec = s.get("endpoint_reconstruction") or {}
    row["a_psnr"], row["b_psnr"] = rec.get("a_psnr"), rec.get("b_psnr")
    return row


def network_calls(run_path: Path | None) -> int | None:
    """The run's ``network_calls`` from its manifest (``None`` without a readable one)."""
    m = read_manifest(run_path) if run_path is not None else None
    value = m.get("network_calls") if m is not None else None
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    """A non-empty string from a row cell (numpy strings, pandas NaN and None tolerated), else None."""
    return str(value) if isinstance(value, str) and value != "" else None


@dataclass(frozen=True)
class KindSpec:
    """What the driver and the workers need to know about one batch kind."""

    kind: str
    columns: tuple[str, ...]
    #: the option template (AnalysisConfig / InterpolationConfig without inputs) from the shared options;
    #: raises InputError for bad options.
    template: Callable[[Mapping[str, Any]], Any]
    #: the item's input files as the manifest stores them (absolute paths).
    inputs: Callable[[Mapping[str, Any]], list[str]]
    #: the resolved configuration its run stores (compared by ``--resume``).
    run_config: Callable[[Any, Mapping[str, Any]], dict[str, Any]]
    #: the summary row of an item from its run folder (``None``: no run folder) and error.
    row: Callable[[Mapping[str, Any], Path | None, str | None], dict[str, Any]]
    #: a short name of the item for messages.
    label: Callable[[Mapping[str, Any]], str]
    #: the geovid.distributed callable class that runs items of this kind.
    worker: Callable[[], type]

    def row_types(self) -> list[tuple[str, str]]:
        """Columns and Arrow types of the rows the workers return (``item``, summary columns, worker columns)."""
        return [(c, COLUMN_TYPES.get(c, "string")) for c in ("item", *self.columns, *WORKER_COLUMNS)]


def _known(config_class: type, options: Mapping[str, Any], inputs: tuple[str, ...], what: str) -> dict[str, Any]:
    """The options minus the per-item fields; unknown names refused in one line."""
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise InputError(f"unknown {what} option(s): {', '.join(unknown)}")
    return {k: v for k, v in options.items() if k not in (*inputs, "name")}


def _analysis_template(options: Mapping[str, Any]) -> Any:
    from analysis.run import AnalysisConfig

    cfg = AnalysisConfig(**_known(AnalysisConfig, options, ("clips",), "analysis"))
    dataclasses.replace(cfg, clips=[Path("clip")]).validate()
    return cfg


def _interpolation_template(options: Mapping[str, Any]) -> Any:
    from geovid.tasks.interpolate import InterpolationConfig

    cfg = InterpolationConfig(image_a=Path(), image_b=Path(),
                              **_known(InterpolationConfig, options, ("image_a", "image_b"), "interpolation"))
    cfg.resolved()
    return cfg


def _analysis_row(item: Mapping[str, Any], run: Path | None, error: str | None) -> dict[str, Any]:
    from analysis.run import batch_row

    return batch_row(run, Path(item["clip"]), error)


def _pair_prompt(template: Any, item: Mapping[str, Any]) -> str:
    prompt = _text(item.get("prompt"))
    return prompt if prompt is not None else str(template.prompt)


def _worker(name: str) -> Callable[[], type]:
    def get() -> type:
        import geovid.distributed

        return getattr(geovid.distributed, name)

    return get


_SPECS = {
    "analysis": KindSpec(
        kind="analysis", columns=(), template=_analysis_template,
        inputs=lambda it: [os.path.abspath(it["clip"])],
        run_config=lambda tpl, it: tpl.run_config(),
        row=_analysis_row, label=lambda it: Path(it["clip"]).name, worker=_worker("AnalyzeClips")),
    "interpolation": KindSpec(
        kind="interpolation", columns=PAIR_COLUMNS, template=_interpolation_template,
        inputs=lambda it: [os.path.abspath(it["a"]), os.path.abspath(it["b"])],
        run_config=lambda tpl, it: dataclasses.replace(tpl, image_a=Path(it["a"]), image_b=Path(it["b"]),
                                                       prompt=_pair_prompt(tpl, it)).resolved(),
        row=lambda it, run, err: pair_row(run, it["a"], it["b"], _text(it.get("prompt")), err),
        label=lambda it: f"{Path(it['a']).name},{Path(it['b']).name}", worker=_worker("InterpolatePairs")),
}


def kind_spec(kind: str) -> KindSpec:
    """The :class:`KindSpec` of ``analysis`` or ``interpolation``."""
    if kind not in _SPECS:
        raise InputError(f"unknown batch kind {kind!r}; expected one of {', '.join(KINDS)}")
    spec = _SPECS[kind]
    if not spec.columns:  # the analysis columns live with the analysis (analysis.run.BATCH_COLUMNS)
        from analysis.run import BATCH_COLUMNS

        spec = dataclasses.replace(spec, columns=tuple(BATCH_COLUMNS))
    return spec


# --------------------------------------------------------------------------- the control folder


class BatchControl:
    """The hidden folder ``OUT/.geovid-batch-<time>-<hex>/`` shared by the driver and the workers (see the module
    docstring): ``token``, ``started/<item>``, ``cancel``."""

    def __init__(self, path: str | os.PathLike[str], token: str | None = None) -> None:
        self.path = Path(path)
        self.token = token

    @classmethod
    def create(cls, out: Path) -> BatchControl:
        """Make the folder (and ``out``), with a fresh token."""
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = out / f".geovid-batch-{stamp}-{secrets.token_hex(3)}"
        token = secrets.token_hex(16)
        try:
            (path / "started").mkdir(parents=True)
            (path / "token").write_text(token, encoding="utf-8")
        except OSError as err:
            raise InputError(f"cannot write in --out {out}: {err.strerror or err}") from None
        return cls(path, token)

    def cancel(self) -> None:
        """Raise the cancel flag (every worker sees it at its next progress report)."""
        with contextlib.suppress(OSError):
            (self.path / "cancel").touch()

    def cancelled(self) -> bool:
        return (self.path / "cancel").exists()

    def start_attempt(self, item: int) -> int:
        """A worker starts ``item``: count it in ``started/<item>`` and return how many starts came before (more
        than none: Ray restarted a worker that died on it and retries it)."""
        marker = self.path / "started" / str(int(item))
        try:
            before = int(marker.read_text(encoding="ascii").strip() or 0)
        except (OSError, ValueError):
            before = 0
        with contextlib.suppress(OSError):
            marker.write_text(str(before + 1), encoding="ascii")
        return before

    def started(self) -> set[int]:
        try:
            return {int(n) for n in os.listdir(self.path / "started") if n.isdigit()}
        except OSError:
            return set()

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class CancelFlag:
    """A stand-in for ``threading.Event`` in the jobs' ``cancel`` argument: set once the batch's ``cancel`` file
    exists (looked up at most every ``interval`` seconds, so the jobs' frequent checks cost nothing)."""

    def __init__(self, control: BatchControl, interval: float = 0.5) -> None:
        self._file = control.path / "cancel"
        self._interval = interval
        self._last = -float("inf")
        self._set = False

    def is_set(self) -> bool:
        now = time.monotonic()
        if not self._set and now - self._last >= self._interval:
            self._last = now
            self._set = self._file.exists()
        return self._set


def probe_out(control: str, token: str) -> tuple[str, str | None]:
    """Run on each Ray node at start: does it see the driver's control folder (the same ``--out``) and can it write
    there? Returns (host name, None) or (host name, why not)."""
    host = socket.gethostname()
    folder = Path(control)
    try:
        seen = (folder / "token").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return host, "the folder the driver just wrote there is not visible from this node"
    except OSError as err:
        return host, f"cannot read there ({err.strerror or err})"
    if seen != token:
        return host, "it is another folder under the same path on this node"
    probe = folder / f"probe-{host}-{os.getpid()}"
    try:
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as err:
        return host, f"cannot write there ({err.strerror or err})"
    return host, None


# --------------------------------------------------------------------------- the summary


class BatchSummary:
    """``OUT/batch-<time>/batch_summary.csv`` and ``.parquet``: one row per item, rewritten atomically.

    The folder appears complete (renamed from a hidden one once the first table is in it), so a reader never sees a
    batch folder without its ``batch_summary.csv`` (the TUI's catalog tells batch folders from runs by it)."""

    def __init__(self, folder: Path, columns: Sequence[str]) -> None:
        self.folder = folder
        self.columns = list(columns)

    @property
    def csv(self) -> Path:
        return self.folder / "batch_summary.csv"

    @classmethod
    def create(cls, out: Path, columns: Sequence[str], rows: list[dict[str, Any]]) -> BatchSummary:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        tmp = out / f".batch-{stamp}-{secrets.token_hex(3)}.tmp"
        try:
            tmp.mkdir(parents=True)
        except OSError as err:
            raise InputError(f"cannot write in --out {out}: {err.strerror or err}") from None
        summary = cls(tmp, columns)
        summary.write(rows)
        for k in range(1, 1000):
            final = out / (f"batch-{stamp}" if k == 1 else f"batch-{stamp}-{k}")
            if final.exists():
                continue
            try:
                os.rename(tmp, final)  # atomic; refuses a non-empty target, and every batch folder has a table
            except OSError:
                continue
            summary.folder = final
            return summary
        raise InputError(f"cannot find a free batch folder name for batch-{stamp} in {out}")

    def write(self, rows: list[dict[str, Any]]) -> None:
        import pandas as pd

        table = pd.DataFrame(rows, columns=self.columns)
        atomic_write_bytes(self.csv, table.to_csv(index=False).encode("utf-8"))
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        atomic_write_bytes(self.folder / "batch_summary.parquet", buf.getvalue())


# --------------------------------------------------------------------------- the driver


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


def require_ray() -> Any:
    """The ``ray`` module (with Ray Data), or InputError saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise InputError(f"--engine ray needs Ray, which is not installed: {INSTALL_RAY}") from None
    return ray


def _quiet_ray_data() -> None:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    for name in ("enable_operator_progress_bars", "print_on_execution_start", "enable_auto_log_stats"):
        if hasattr(ctx, name):
            setattr(ctx, name, False)
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None) -> Iterator[Any]:
    """Ray, started here (a local cluster with ``num_cpus`` CPUs, or joined at ``address``) and shut down at the
    end; an already initialised Ray (a user's session, the tests) is used as it is and left running."""
    ray = require_ray()
    own = not ray.is_initialized()
    if own:
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
        # Ray's C++ side logs to stderr past logging_level (e.g. one line per actor about its restart policy);
        # RAY_BACKEND_LOG_LEVEL=info (set by the user) brings it back.
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        try:
            from geovid.media.decode import quiet_native_stderr

            with quiet_native_stderr():  # what Ray's processes print while they start (they also log to files)
                if address:
                    ray.init(address=address, **quiet)
                else:
                    ray.init(num_cpus=num_cpus, include_dashboard=False, **quiet)
        except Exception as err:
            where = f"join the Ray cluster at {address}" if address else "start a local Ray cluster"
            raise GeovidError(f"cannot {where}: {one_line(err)}") from None
    _quiet_ray_data()
    try:
        yield ray
    finally:
        if own:
            with contextlib.suppress(Exception):
                ray.shutdown()


def check_out_shared(ray: Any, out: Path, control: BatchControl) -> None:
    """Every live Ray node reads the driver's token in ``out`` and writes there, or InputError (one line)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(probe_out)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = [(n, probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
             .remote(str(control.path), control.token)) for n in nodes]
    for node, ref in refs:
        host = node.get("NodeManagerHostname") or node.get("NodeManagerAddress") or node["NodeID"][:8]
        try:
            host, err = ray.get(ref, timeout=300)
        except Exception as exc:
            err = f"the check could not run there ({one_line(exc)})"
        if err:
            raise InputError(f"--out {out} must be a folder that every Ray worker can write (a shared filesystem); "
                             f"node {host}: {err}")


def _default_workers(ray: Any, cpus: float, gpus: float) -> int:
    res = ray.cluster_resources()
    n = res.get("GPU", 0) / gpus if gpus else res.get("CPU", 1) / cpus
    return max(1, int(n))


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


def _run_ray(ray: Any, spec: KindSpec, ctor: dict[str, Any], todo: list[dict[str, Any]], tracker: _Tracker,
             control: BatchControl, workers: int, cpus: float, gpus: float) -> tuple[bool, str | None]:
    """The items through a Ray Data pipeline; returns (interrupted, engine error)."""
    import ray.data

    remote: dict[str, Any] = {"num_cpus": cpus}
    if gpus:
        remote["num_gpus"] = gpus
    ds = ray.data.from_items(todo, override_num_blocks=len(todo))  # one block per item: items spread one by one
    ds = ds.map_batches(spec.worker(), fn_constructor_kwargs=ctor, batch_size=1,
                        compute=ray.data.ActorPoolStrategy(size=min(workers, len(todo)),
                                                           max_tasks_in_flight_per_actor=1),
                        **remote)
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def consume() -> None:
        try:
            for row in ds.iter_rows():
                events.put(("row", row))
        except BaseException as err:  # handed to the main thread
            events.put(("error", err))
        else:
            events.put(("end", None))

    threading.Thread(target=consume, name="geovid-batch-ray", daemon=True).start()
    interrupted, deadline, error = False, None, None
    while True:
        try:
            try:
                what, payload = events.get(timeout=0.5)
            except queue.Empty:
                tracker.set_running(control.started())
                if deadline is not None and time.monotonic() > deadline:
                    break
                continue
            if what == "row":
                tracker.finish(payload)
            elif what == "error":
                error = f"Ray engine failed: {one_line(payload)}"
                break
            else:
                break
        except KeyboardInterrupt:
            if interrupted:
                break
            interrupted, deadline = True, time.monotonic() + GRACE_S
            control.cancel()
    return interrupted, error


def run_batch_job(job: BatchJob, engine: str = "local", workers: int | None = None, ray_address: str | None = None,
                  gpus_per_worker: float = 0.0, threads: int | None = None,
                  progress: ProgressFn | None = None) -> BatchResult:
    """Run every item of ``job`` (see the module docstring) and return what happened.

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
    spec = kind_spec(job.kind)
    if engine == "ray":
        require_ray()
    options = dict(job.options)
    out = Path(os.path.abspath(os.path.expanduser(os.fspath(options.get("out", "runs")))))
    options["out"] = out
    model = options.get("model")
    if isinstance(model, str | os.PathLike) and os.path.exists(os.path.expanduser(os.fspath(model))):
        options["model"] = os.path.abspath(os.path.expanduser(os.fspath(model)))  # workers may run elsewhere
    template = spec.template(options)  # bad options: one error before anything starts
    items = []
    for k, raw in enumerate(job.items):
        item = {key: (os.path.abspath(os.fspath(v)) if isinstance(v, os.PathLike) else v) for key, v in raw.items()}
        if job.kind == "interpolation":
            item["prompt"] = _pair_prompt(template, item)
        items.append({**item, "item": k, "name": _text(item.get("name"))})
    rows = [{**spec.row(it, None, None), "status": PENDING} for it in items]
    since = _utc_now()
    if options.get("resume"):
        todo, skipped = _plan_resume(spec, template, items, out)
        for k, path in skipped.items():
            rows[k] = spec.row(items[k], path, None)
    else:
        todo, skipped = [{**it, "resume": False} for it in items], {}
    tracker = _Tracker(spec, items, rows, todo, progress)
    import sys

    command = job.command or [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    ctor = {**options, "command": command}
    interrupted, error = False, None
    if engine == "local" or not todo:  # nothing to run (--resume, all complete): no Ray cluster either
        tracker.summary = BatchSummary.create(out, spec.columns, rows)
        tracker.report()
        try:
            if todo:
                _run_local(spec, {**ctor, "threads": None, "batch_control": None}, todo, tracker)
        except KeyboardInterrupt:
            interrupted = True
    else:
        cpus = float(threads or 1)
        num_cpus = None if workers is None else max(1, round(workers * cpus))
        control = BatchControl.create(out)
        try:
            with ray_session(ray_address, num_cpus) as ray:
                check_out_shared(ray, out, control)
                n = workers or _default_workers(ray, cpus, gpus_per_worker)
                tracker.summary = BatchSummary.create(out, spec.columns, rows)
                tracker.report()
                ctor = {**ctor, "threads": threads or 1, "batch_control": str(control.path)}
                interrupted, error = _run_ray(ray, spec, ctor, todo, tracker, control, n, cpus, gpus_per_worker)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if tracker.summary is not None:
                tracker.settle(out, since, error)
            control.remove()
    if tracker.summary is None:  # stopped (Ctrl-C) while Ray was starting: nothing ran, no batch folder
        raise KeyboardInterrupt
    tracker.settle(out, since, error)
    tracker.write()
    failed = [f"{spec.label(it)}: {r.get('error') or r.get('status')}"
              for it, r in zip(items, rows) if r.get("status") != "complete"]
    runs = [Path(r["run"]) for r in rows if _text(r.get("run"))]
    return BatchResult(rows=rows, summary=tracker.summary.csv, runs=runs, failed=failed, interrupted=interrupted,
                       skipped=len(skipped))


__all__ = ["ENGINES", "PAIR_COLUMNS", "BatchControl", "BatchJob", "BatchResult", "BatchSummary", "CancelFlag",
           "expand_inputs", "kind_spec", "pair_row", "read_list", "read_pairs", "run_batch_job"]
