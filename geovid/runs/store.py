"""Writer side of the run directory (the contract is ``docs/run-directory.md``).

A :class:`Run` owns one folder ``RUNS_DIR/NAME/``. It is created, never overwritten;
``manifest.json`` is written first with ``status: "running"`` and rewritten at every phase
end; every JSON file is written atomically (``*.tmp`` then ``os.replace``) so a reader never
sees half a file; tables go out as both CSV and Parquet. :meth:`Run.guard` wraps a whole job:
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
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import re
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

if TYPE_CHECKING:
    import pandas as pd

SCHEMA = 1
KINDS = ("analysis", "interpolation", "extrapolation")
STATUSES = ("running", "complete", "interrupted", "failed")
RESUMABLE = ("running", "interrupted", "failed")
MANIFEST = "manifest.json"
# Outputs every finished run of a kind has (docs/run-directory.md; the same folders the TUI's catalog
# flags when missing). A trailing "/" means a non-empty folder. Jobs add their own with Run.expect()
# or complete(required=...) (plots, strip.png, video.mp4, ... depend on options).
_COMMON = ("summary.json", "per_frame.csv", "per_frame.parquet", "frames/")
REQUIRED_FILES: dict[str, tuple[str, ...]] = {
    "analysis": (*_COMMON, "optimised/"),
    "interpolation": (*_COMMON, "baselines/"),
    "extrapolation": _COMMON,
}
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@=-]*$")
_VERSIONED = ("geovid", "torch", "diffusers", "numpy")
# Throttle for manifest rewrites caused by network-call counting alone (phase ends always write).
_COUNTER_WRITE_INTERVAL_S = 2.0


# --------------------------------------------------------------------------- JSON safety


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` to plain JSON types.

    numpy scalars/arrays and tensors become numbers/lists, Paths strings, tuples and sets
    lists, dataclasses dicts, datetimes ISO strings; non-finite floats (NaN, ±inf) become
    ``None`` because JSON has no spelling for them and strict readers reject Python's.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.floating) and obj.dtype.itemsize < 8:
        # float32(0.6).item() is 0.6000000238418579; its shortest repr "0.6" is what the user typed.
        return to_jsonable(float(str(obj)))
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
        return [to_jsonable(v) for v in items]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, _dt.datetime | _dt.date):
        return obj.isoformat()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "detach") and hasattr(obj, "tolist"):  # torch.Tensor, without importing torch
        return to_jsonable(obj.detach().cpu().tolist())
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    raise TypeError(f"cannot store a {type(obj).__name__} in JSON")


def _dumps(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (``*.tmp``, fsync, ``os.replace``): readers never see half a file.

    For files outside a run folder that others read while they change (e.g. a batch's ``batch_summary.csv``).
    """
    target = Path(path)
    _atomic_write_bytes(target, data)
    return target


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
            _check_name(name)
            path = runs_dir / name
            try:
                path.mkdir()
            except FileExistsError:
                raise InputError(f"run {name} already exists; use --name or --resume") from None
        else:
            path = _make_default_dir(runs_dir, _default_stem(input_list, kind))
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
        try:
            manifest = json.loads(mf.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InputError(f"{path.name}: {MANIFEST} is unreadable ({one_line(err)}); start a new run") from None
        if not isinstance(manifest, dict) or manifest.get("kind") not in KINDS:
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
        _atomic_write_bytes(self.path / MANIFEST, _dumps(self.manifest).encode("utf-8"))
        self._last_write = time.monotonic()

    def _target(self, relpath: str | Path) -> Path:
        rel = Path(relpath)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"run files must be relative paths inside the run folder (got {relpath!r})")
        return self.path / rel

    def write_json(self, relpath: str | Path, obj: Any) -> Path:
        """Write ``obj`` as JSON at ``relpath`` inside the run, atomically. Returns the path."""
        target = self._target(relpath)
        _atomic_write_bytes(target, _dumps(obj).encode("utf-8"))
        return target

    def write_table(self, relpath_stem: str | Path, dataframe: pd.DataFrame) -> tuple[Path, Path]:
        """Write a table as ``<stem>.csv`` and ``<stem>.parquet`` (each atomically, without the index)."""
        stem = self._target(relpath_stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        csv_path, pq_path = stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".parquet")
        tmp = csv_path.with_name(csv_path.name + ".tmp")
        dataframe.to_csv(tmp, index=False)
        os.replace(tmp, csv_path)
        tmp = pq_path.with_name(pq_path.name + ".tmp")
        dataframe.to_parquet(tmp, index=False)
        os.replace(tmp, pq_path)
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
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        Image.fromarray(arr).save(tmp, format=fmt)
        os.replace(tmp, target)
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
                    _atomic_write_bytes(self.path / "traceback.txt", tb.encode("utf-8"))
            if not (isinstance(err, GeovidError) and self.status == "failed"):
                self.fail(err)
            raise
        if self.status == "running":
            self.complete()


# --------------------------------------------------------------------------- names


def _check_name(name: str) -> None:
    if not _NAME_OK.match(name) or name in (".", ".."):
        raise InputError(f"invalid run name {name!r}: use letters, digits and . _ - + @ = (no slashes or spaces)")


def _default_stem(inputs: list[Any], kind: str) -> str:
    stem = Path(os.fspath(inputs[0])).stem if inputs and isinstance(inputs[0], str | os.PathLike) else kind
    # Keep names shell- and URL-friendly whatever the input file was called.
    stem = re.sub(r"[^A-Za-z0-9._+@=-]+", "-", stem).strip("-.") or kind
    return stem[:60]


def _stamp() -> str:
    """Local time for default run names (people read them; the manifest's times are UTC)."""
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _make_default_dir(runs_dir: Path, stem: str) -> Path:
    base = f"{stem}-{_stamp()}"
    for k in range(1, 10_000):
        path = runs_dir / (base if k == 1 else f"{base}-{k}")
        try:
            path.mkdir()  # atomic: two processes cannot both get the same name
            return path
        except FileExistsError:
            continue
    raise InputError(f"cannot find a free run name for {base} in {runs_dir}")
