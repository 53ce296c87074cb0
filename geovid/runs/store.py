"""Writer side of the run directory (the contract is ``docs/run-directory.md``).

A :class:`Run` owns one folder ``RUNS_DIR/NAME/``. It is created, never overwritten;
``manifest.json`` is written first with ``status: "running"`` and rewritten at every phase
end; every JSON file is written atomically (``*.tmp`` then ``os.replace``) so a reader never
sees half a file (one writer, :func:`geovid.runs.files.atomic_output`); tables go out as both CSV and Parquet. :meth:`Run.guard` wraps a whole job:
Ctrl-C leaves the run ``interrupted``, any other exception ``failed`` with a one-line
``error``, and a run is ``complete`` only once :meth:`Run.complete` has checked that every
required output exists.

Typical use::

    run = Run.create(runs_dir, "analysis", inputs=[clip], config=cfg, model=model_id, seed=seed)
    with run.guard():
        with run.phase("decode"):
            ...
        run.write_json("summary.json", summary)
        run.write_table("per_frame", df)
        run.complete()

Nothing here imports torch, pandas or PIL at module level: they are imported where used.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geovid.errors import GeovidError, InputError
from geovid.progress import Cancelled
from geovid.runs.contract import KINDS, MANIFEST, REQUIRED_FILES, RESUMABLE, SCHEMA, STATUSES
from geovid.runs.files import atomic_output, atomic_write_bytes, dumps_json, read_json_object, to_jsonable
from geovid.runs.names import check_name, default_stem, make_default_dir

if TYPE_CHECKING:
    import pandas as pd

# Re-exported: the contract's names and the file primitives were defined here before geovid.runs.contract and
# geovid.runs.files.
__all__ = ["KINDS", "MANIFEST", "REQUIRED_FILES", "RESUMABLE", "SCHEMA", "STATUSES", "Run", "atomic_write_bytes",
           "one_line", "read_frames", "to_jsonable"]

_VERSIONED = ("geovid", "torch", "diffusers", "numpy")
# Throttle for manifest rewrites caused by network-call counting alone (phase ends always write).
_COUNTER_WRITE_INTERVAL_S = 2.0


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _versions() -> dict[str, str | None]:
    """Installed versions, from package metadata only (importing torch to ask would take seconds)."""
    out: dict[str, str | None] = {}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    if out["geovid"] is None:
        from geovid import __version__

        out["geovid"] = __version__
    out["python"] = platform.python_version()
    return out


def one_line(err: BaseException | str) -> str:
    """A one-line, bounded error message for the manifest."""
    if isinstance(err, BaseException):
        text = str(err) if isinstance(err, GeovidError) else f"{type(err).__name__}: {err}"
    else:
        text = err
    text = " ".join(text.split())
    return text if len(text) <= 500 else text[:497] + "..."


# --------------------------------------------------------------------------- the run


class Run:
    """One run folder and its manifest. Create with :meth:`create` or :meth:`resume`."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self._expected: list[str] = []
        self._last_write = 0.0

    # ---- construction

    @classmethod
    def create(cls, runs_dir: str | Path, kind: str, name: str | None = None, inputs: Iterable[Any] = (),
               config: Mapping[str, Any] | None = None, model: str = "", seed: int = 0,
               command: list[str] | None = None) -> Run:
        """Create a new run folder and write its manifest with ``status: "running"``.

        Args:
            runs_dir: Parent folder (created if missing).
            kind: ``analysis``, ``interpolation`` or ``extrapolation``.
            name: Folder name. An existing name is refused. Default
                ``<stem of first input>-<YYYYmmdd-HHMMSS>`` (local time), with ``-2``, ``-3``, ...
                appended on collision.
            inputs: Input files (stored as absolute paths).
            config: The job's options; compared on resume.
            model: Model id or folder.
            seed: Random seed.
            command: The command line (default: ``sys.argv`` with the program's base name).

        Raises:
            InputError: invalid kind or name, or ``name`` already exists.
        """
        if kind not in KINDS:
            raise InputError(f"unknown run kind {kind!r}; expected one of {', '.join(KINDS)}")
        runs_dir = Path(runs_dir).expanduser()
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"cannot create the runs folder {runs_dir}: {err.strerror or err}") from None
        input_list = [os.path.abspath(os.fspath(p)) if isinstance(p, str | os.PathLike) else p for p in inputs]
        if name is not None:
            check_name(name)
            path = runs_dir / name
            try:
                path.mkdir()
            except FileExistsError:
                raise InputError(f"run {name} already exists; use --name or --resume") from None
        else:
            path = make_default_dir(runs_dir, f"{default_stem(input_list, kind)}-{_stamp()}")
        if command is None:
            command = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
        now = _now()
        manifest: dict[str, Any] = {
            "schema": SCHEMA,
            "kind": kind,
            "name": path.name,
            "status": "running",
            "error": None,
            "created": now,
            "updated": now,
            "inputs": input_list,
            "command": list(command),
            "config": to_jsonable(dict(config or {})),
            "model": model,
            "versions": _versions(),
            "seed": int(seed),
            "timings": {},
            "phases_done": [],
            "network_calls": 0,
        }
        run = cls(path, manifest)
        run.save()
        return run

    @classmethod
    def resume(cls, path: str | Path, config: Mapping[str, Any] | None = None) -> Run:
        """Continue a run that did not finish (status running, interrupted or failed).

        Phases listed in ``phases_done`` may be skipped by the caller (see :meth:`is_done`).
        With ``config``, refuses (before touching the run) if it differs from the stored one.

        Raises:
            InputError: not a run folder, unreadable manifest, already complete, or a
                different configuration.
        """
        path = Path(path).expanduser()
        mf = path / MANIFEST
        if not mf.is_file():
            raise InputError(f"{path} is not a run folder (no {MANIFEST})")
        problems: list[str] = []
        manifest = read_json_object(mf, problems)
        if manifest is None and not problems[0].endswith("is not a JSON object"):
            detail = problems[0].removeprefix(f"{MANIFEST} ")
            raise InputError(f"{path.name}: {MANIFEST} is unreadable ({detail}); start a new run")
        if manifest is None or manifest.get("kind") not in KINDS:
            raise InputError(f"{path.name}: {MANIFEST} is not a geovid run manifest; start a new run")
        status = manifest.get("status")
        if status == "complete":
            raise InputError(f"run {path.name} is already complete; nothing to resume")
        if status not in RESUMABLE:
            raise InputError(f"run {path.name} has status {status!r} and cannot be resumed")
        for key, default in (("timings", {}), ("phases_done", []), ("network_calls", 0), ("config", {})):
            manifest.setdefault(key, default)
        run = cls(path, manifest)
        if config is not None:
            run.check_same_config(config)
        manifest["status"] = "running"
        manifest["error"] = None
        manifest["versions"] = _versions()
        run.save()
        return run

    # ---- properties

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def status(self) -> str:
        return str(self.manifest["status"])

    @property
    def phases_done(self) -> list[str]:
        return list(self.manifest["phases_done"])

    def is_done(self, phase: str) -> bool:
        """True if ``phase`` finished in this run or before a resume (the caller may skip it)."""
        return phase in self.manifest["phases_done"]

    def check_same_config(self, config: Mapping[str, Any]) -> None:
        """Raise InputError naming every key whose value differs from the stored config."""
        old = self.manifest.get("config") or {}
        new = to_jsonable(dict(config))
        missing = object()
        diffs = []
        for key in sorted(set(old) | set(new)):
            a, b = old.get(key, missing), new.get(key, missing)
            if a != b:
                fa = "(unset)" if a is missing else json.dumps(a)
                fb = "(unset)" if b is missing else json.dumps(b)
                diffs.append(f"{key}: {fa} -> {fb}")
        if diffs:
            raise InputError(f"run {self.name} was made with different options ({'; '.join(diffs)}); "
                             f"resume with the same options or start a new run")

    # ---- writing

    def save(self) -> None:
        """Write ``manifest.json`` now (atomically), stamping ``updated``."""
        self.manifest["updated"] = _now()
        atomic_write_bytes(self.path / MANIFEST, dumps_json(self.manifest).encode("utf-8"))
        self._last_write = time.monotonic()

    def _target(self, relpath: str | Path) -> Path:
        rel = Path(relpath)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"run files must be relative paths inside the run folder (got {relpath!r})")
        return self.path / rel

    def write_json(self, relpath: str | Path, obj: Any) -> Path:
        """Write ``obj`` as JSON at ``relpath`` inside the run, atomically. Returns the path."""
        target = self._target(relpath)
        atomic_write_bytes(target, dumps_json(obj).encode("utf-8"))
        return target

    def write_table(self, relpath_stem: str | Path, dataframe: pd.DataFrame) -> tuple[Path, Path]:
        """Write a table as ``<stem>.csv`` and ``<stem>.parquet`` (each atomically, without the index)."""
        stem = self._target(relpath_stem)
        csv_path, pq_path = stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".parquet")
        with atomic_output(csv_path) as tmp:
            dataframe.to_csv(tmp, index=False)
        with atomic_output(pq_path) as tmp:
            dataframe.to_parquet(tmp, index=False)
        return csv_path, pq_path

    def write_image(self, relpath: str | Path, array: np.ndarray) -> Path:
        """Save an image (H, W), (H, W, 3) or (H, W, 4); uint8, or float in [0, 1]. Atomic.

        The format follows the suffix (``.png``, ``.jpg``, ...).
        """
        from PIL import Image

        target = self._target(relpath)
        arr = np.asarray(array)
        if arr.dtype != np.uint8:
            if arr.dtype.kind != "f":
                raise ValueError(f"write_image expects uint8 or float images, got {arr.dtype}")
            arr = np.clip(np.floor(np.nan_to_num(arr) * 255.0 + 0.5), 0, 255).astype(np.uint8)
        if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
            raise ValueError(f"write_image expects (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
        fmt = Image.registered_extensions().get(target.suffix.lower())
        if fmt is None:
            raise ValueError(f"unknown image format for {target.name}")
        with atomic_output(target) as tmp:
            Image.fromarray(arr).save(tmp, format=fmt)
        return target

    def write_frames(self, reldir: str | Path, frames: Iterable[np.ndarray]) -> list[Path]:
        """Write frames as ``reldir/0000.png``, ``0001.png``, ... (the contract's naming)."""
        return [self.write_image(Path(reldir) / f"{i:04d}.png", f) for i, f in enumerate(frames)]

    # ---- bookkeeping

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase; on success record it in ``timings`` and ``phases_done`` and write the manifest.

        A phase that raises is not marked done (its time is not recorded); :meth:`guard`
        sets the status.
        """
        t0 = time.perf_counter()
        yield
        self.manifest["timings"][name] = round(time.perf_counter() - t0, 4)
        if name not in self.manifest["phases_done"]:
            self.manifest["phases_done"].append(name)
        self.save()

    def add_network_calls(self, n: int) -> None:
        """Count ``n`` more per-sample network evaluations (written at most every 2 s, and at phase ends)."""
        self.manifest["network_calls"] = int(self.manifest.get("network_calls", 0)) + int(n)
        self._maybe_save()

    def set_network_calls(self, n: int) -> None:
        """Set the network-call count (e.g. from a solver's own counter)."""
        self.manifest["network_calls"] = int(n)
        self._maybe_save()

    def _maybe_save(self) -> None:
        if time.monotonic() - self._last_write >= _COUNTER_WRITE_INTERVAL_S:
            self.save()

    def expect(self, *relpaths: str | Path) -> None:
        """Declare outputs that :meth:`complete` must find (in addition to the kind's defaults)."""
        self._expected.extend(os.fspath(p) for p in relpaths)

    def missing_files(self, required: Iterable[str | Path] = ()) -> list[str]:
        """Required outputs (kind defaults, :meth:`expect`, ``required``) that do not exist yet.

        A path ending in ``/`` must be a non-empty folder (e.g. ``"frames/"``).
        """
        wanted = [*REQUIRED_FILES.get(self.kind, ()), *self._expected, *(os.fspath(p) for p in required)]
        if (self.manifest.get("config") or {}).get("decode_optimised") is False:
            # `geovid analyze --no-decode-optimised` makes no optimised/ frames (issue #4).
            wanted = [w for w in wanted if w != "optimised/"]
        missing = []
        for rel in dict.fromkeys(wanted):
            target = self.path / rel
            if rel.endswith("/"):
                ok = target.is_dir() and any(target.iterdir())
            else:
                ok = target.is_file()
            if not ok:
                missing.append(rel)
        return missing

    def complete(self, required: Iterable[str | Path] = ()) -> None:
        """Mark the run complete after checking that every required output exists.

        Raises:
            GeovidError: outputs are missing; the run is then marked ``failed`` (never complete).
        """
        missing = self.missing_files(required)
        if missing:
            message = f"run {self.name} is incomplete: missing {', '.join(missing)}"
            self.fail(message)
            raise GeovidError(message)
        self.manifest["status"] = "complete"
        self.manifest["error"] = None
        self.save()

    def fail(self, message: BaseException | str) -> None:
        """Mark the run failed with a one-line ``error``."""
        self.manifest["status"] = "failed"
        self.manifest["error"] = one_line(message)
        self.save()

    def interrupt(self) -> None:
        """Mark the run interrupted (Ctrl-C or a cancel from the TUI); it can be resumed."""
        self.manifest["status"] = "interrupted"
        self.manifest["error"] = None
        self.save()

    @contextlib.contextmanager
    def guard(self) -> Iterator[Run]:
        """Wrap a whole job so the manifest always ends in a truthful status.

        KeyboardInterrupt or :class:`geovid.progress.Cancelled` → ``interrupted``; any other
        exception → ``failed`` with a one-line message (and ``traceback.txt`` for unexpected
        errors), even if :meth:`complete` had already been called. The exception is re-raised.
        A body that ends normally without calling :meth:`complete` is completed here (with its
        checks).
        """
        try:
            yield self
        except (KeyboardInterrupt, Cancelled):
            self.interrupt()
            raise
        except BaseException as err:
            if not isinstance(err, GeovidError):
                with contextlib.suppress(OSError):
                    tb = "".join(traceback.format_exception(err))
                    atomic_write_bytes(self.path / "traceback.txt", tb.encode("utf-8"))
            if not (isinstance(err, GeovidError) and self.status == "failed"):
                self.fail(err)
            raise
        if self.status == "running":
            self.complete()


def read_frames(folder: str | os.PathLike[str]) -> np.ndarray:
    """The frames a run wrote with :meth:`Run.write_frames` (``0000.png``, ``0001.png``, ...), as (N, H, W, 3) uint8."""
    from PIL import Image

    files = sorted(Path(folder).glob("[0-9][0-9][0-9][0-9].png"))
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def _stamp() -> str:
    """Local time for default run names (people read them; the manifest's times are UTC)."""
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
