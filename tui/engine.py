"""Engines: what the TUI calls to run a new analysis, interpolation or extrapolation.

An :class:`Engine` runs one job to completion inside a Textual thread worker and returns the
run folder. It reports through ``progress(phase, done, total, info)`` (the convention of
:mod:`geovid.progress`) and stops cooperatively when ``cancel`` is set, by raising
:class:`geovid.progress.Cancelled` (the run is then marked ``interrupted``).

- :class:`LibraryEngine` calls the real library entry points, imported by name only when a
  job starts (so ``geovid tui`` starts fast and works even where they are not installed).
- :class:`FakeEngine` writes a small contract-conforming run step by step without any model:
  for tests, and for trying the UI (``geovid tui --engine fake``).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from geovid.progress import Cancelled, ProgressFn
from geovid.runs.contract import KINDS
from geovid.runs.files import atomic_write_bytes

#: The job kinds the TUI launches: every run kind.
JOB_KINDS = KINDS

#: kind → (module, function, config class) of the library entry point.
LIBRARY_TARGETS: dict[str, tuple[str, str, str]] = {
    "analysis": ("analysis.run", "run_analysis", "AnalysisConfig"),
    "interpolation": ("geovid.tasks.interpolate", "run_interpolation", "InterpolationConfig"),
    "extrapolation": ("geovid.tasks.extrapolate", "run_extrapolation", "ExtrapolationConfig"),
}

#: Config field names that may receive the form's input paths, per kind, in order of preference.
#: A tuple of two names means "first input, second input" (interpolation endpoints).
_INPUT_FIELDS: dict[str, list[str | tuple[str, str]]] = {
    "analysis": ["clips", "inputs", "videos", "clip", "video", "input"],
    "interpolation": [("image_a", "image_b"), ("a", "b"), ("start", "end"), "images", "inputs", "endpoints"],
    "extrapolation": ["start", "image", "input", "source", "inputs", "images"],
}


class EngineUnavailable(Exception):
    """The library entry point for a kind of job is not installed (or not written yet)."""


@runtime_checkable
class Engine(Protocol):
    """Runs one job; called from a Textual thread worker."""

    def start(self, kind: str, options: dict[str, Any], runs_dir: Path, progress: ProgressFn,
              cancel: threading.Event) -> Path:
        """Run a job of ``kind`` with the form's ``options`` and return its run folder.

        Args:
            kind: ``analysis``, ``interpolation`` or ``extrapolation``.
            options: Form values named like the CLI options with underscores; input paths under
                ``inputs`` (a list of absolute paths). ``None`` means "library default".
            runs_dir: Where the run folder is created.
            progress: ``progress(phase, done, total, info)``; raises ``Cancelled`` once
                ``cancel`` is set.
            cancel: Set by the UI to stop the job.

        Raises:
            Cancelled: The job was cancelled (its run is marked interrupted).
            EngineUnavailable: The library function for ``kind`` cannot be imported.
        """
        ...

    def unavailable_reason(self, kind: str) -> str | None:
        """Why ``kind`` cannot run here (``None`` when it can); cheap, imports nothing heavy."""
        ...


# --------------------------------------------------------------------------- library engine


def build_config(config_cls: type, kind: str, options: dict[str, Any], runs_dir: Path) -> tuple[Any, list[str]]:
    """Construct a library Config dataclass from form options, tolerating naming differences.

    The form's ``inputs`` list goes to whichever input field the dataclass declares (see
    ``_INPUT_FIELDS``); ``out`` is ``runs_dir``; options the dataclass does not declare are
    dropped and reported; ``None`` values are left to the dataclass defaults.

    Returns:
        The config object and a list of notes (dropped options) for the job log.

    Raises:
        EngineUnavailable: The class is not a dataclass, or no field can take the inputs.
    """
    if not dataclasses.is_dataclass(config_cls):
        raise EngineUnavailable(f"{config_cls!r} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    opts = {k: v for k, v in options.items() if v is not None}
    inputs = [Path(p) for p in opts.pop("inputs", [])]
    kwargs: dict[str, Any] = {}
    for choice in _INPUT_FIELDS.get(kind, ["inputs"]):
        if isinstance(choice, tuple):
            if all(c in fields for c in choice) and len(inputs) >= 2:
                kwargs.update(dict(zip(choice, inputs)))
                break
        elif choice in fields:
            plural = choice.endswith("s") or choice == "endpoints"
            kwargs[choice] = list(inputs) if plural else (inputs[0] if inputs else None)
            break
    else:
        raise EngineUnavailable(f"{config_cls.__name__} has no field for the input paths "
                                f"(looked for {_INPUT_FIELDS.get(kind)})")
    if "out" in fields:
        kwargs["out"] = Path(runs_dir)
    notes = []
    for key, value in opts.items():
        if key in fields:
            if isinstance(value, str) and str(fields[key].type).startswith("list"):
                # "baselines=lerp,slerp" typed in the form's "more" box: a list field gets a list.
                value = [v.strip() for v in value.split(",") if v.strip()]
            kwargs[key] = value
        else:
            notes.append(f"option {key}={value!r} not accepted by {config_cls.__name__}; ignored")
    return config_cls(**kwargs), notes


class LibraryEngine:
    """Runs jobs with the real library functions, imported lazily by name (see LIBRARY_TARGETS)."""

    def unavailable_reason(self, kind: str) -> str | None:
        """Check with ``find_spec`` only (no torch import) whether ``kind``'s module exists."""
        if kind not in LIBRARY_TARGETS:
            return f"unknown job kind {kind!r}"
        module = LIBRARY_TARGETS[kind][0]
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"{kind} is not available in this installation ({module} not found)"
        return None

    def _resolve(self, kind: str) -> tuple[Callable[..., Path], type]:
        module_name, func_name, cls_name = LIBRARY_TARGETS[kind]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise EngineUnavailable(f"{kind} is not available: cannot import {module_name} ({exc})") from exc
        func, cls = getattr(module, func_name, None), getattr(module, cls_name, None)
        if func is None or cls is None:
            missing = func_name if func is None else cls_name
            raise EngineUnavailable(f"{kind} is not available: {module_name} has no {missing}")
        return func, cls

    def start(self, kind: str, options: dict[str, Any], runs_dir: Path, progress: ProgressFn,
              cancel: threading.Event) -> Path:
        """Build the Config and call the library function (see :class:`Engine`)."""
        if kind not in LIBRARY_TARGETS:
            raise EngineUnavailable(f"unknown job kind {kind!r}")
        progress("setup", 0, None, {"loading": LIBRARY_TARGETS[kind][0]})
        func, cls = self._resolve(kind)
        config, notes = build_config(cls, kind, options, runs_dir)
        for note in notes:
            progress("setup", 0, None, {"note": note})
        return Path(func(config, progress=progress, cancel=cancel))


# --------------------------------------------------------------------------- fake engine


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=2).encode("utf-8"))


def _fake_frame(i: int, n: int, hue: float, size: int = 64) -> Any:
    """A 64×64 RGB frame: gradient background with a disc that moves with ``i``."""
    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    t = i / max(n - 1, 1)
    img = np.stack([0.5 + 0.5 * np.sin(2 * np.pi * (xx + hue)), 0.3 + 0.7 * yy,
                    np.full_like(xx, 0.3 + 0.5 * t)], axis=-1)
    img[(xx - 0.15 - 0.7 * t) ** 2 + (yy - 0.5) ** 2 < 0.015] = (1.0, 0.95, 0.2)
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))


class FakeEngine:
    """Writes a small run to the contract step by step, reporting progress; no model needed.

    Args:
        delay: Seconds to sleep between steps (0 in tests).
        frames: Frames per sequence.
        iterations: "Solver" iterations reported in the ``solve`` phase.
        fail_at: Phase name at which to fail (the run is marked ``failed``), for tests.
        hold_at: Phase name at which to wait until cancelled (or ``hold_timeout`` passes), so a
            test can cancel a job at a known point.
        hold_timeout: Upper bound on that wait, seconds.
    """

    def __init__(self, delay: float = 0.0, frames: int = 6, iterations: int = 5, fail_at: str | None = None,
                 hold_at: str | None = None, hold_timeout: float = 10.0) -> None:
        self.delay = delay
        self.frames = frames
        self.iterations = iterations
        self.fail_at = fail_at
        self.hold_at = hold_at
        self.hold_timeout = hold_timeout
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def unavailable_reason(self, kind: str) -> str | None:
        """Every kind is available."""
        return None if kind in JOB_KINDS else f"unknown job kind {kind!r}"

    def _folder(self, runs_dir: Path, options: dict[str, Any]) -> Path:
        name = options.get("name")
        if not name:
            inputs = options.get("inputs") or ["run"]
            name = f"{Path(inputs[0]).stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        runs_dir.mkdir(parents=True, exist_ok=True)
        folder, k = runs_dir / name, 2
        while folder.exists():
            folder, k = runs_dir / f"{name}-{k}", k + 1
        folder.mkdir()
        return folder

    def start(self, kind: str, options: dict[str, Any], runs_dir: Path, progress: ProgressFn,
              cancel: threading.Event) -> Path:
        """Write the run; see :class:`Engine`."""
        if kind not in JOB_KINDS:
            raise EngineUnavailable(f"unknown job kind {kind!r}")
        self.calls.append((kind, dict(options)))
        run = self._folder(Path(runs_dir), options)
        inputs = [str(p) for p in options.get("inputs") or []]
        manifest: dict[str, Any] = {
            "schema": 1, "kind": kind, "name": run.name, "status": "running", "error": None,
            "created": _now(), "updated": _now(), "inputs": inputs,
            "command": ["geovid", "tui", kind], "config": {k: v for k, v in options.items() if k != "inputs"},
            "model": "fake", "versions": {"geovid": "0.1.0"}, "seed": options.get("seed", 0),
            "timings": {}, "phases_done": [], "network_calls": 0,
        }
        _write_json(run / "manifest.json", manifest)

        def step(phase: str, done: int, total: int | None, info: dict[str, Any]) -> None:
            if cancel.is_set():
                raise Cancelled()
            progress(phase, done, total, info)  # may itself raise Cancelled
            if self.delay:
                time.sleep(self.delay)

        def end_phase(phase: str) -> None:
            manifest["phases_done"].append(phase)
            manifest["updated"] = _now()
            _write_json(run / "manifest.json", manifest)

        try:
            n = int(options.get("frames") or self.frames)
            self._body(kind, run, n, step, end_phase, cancel, manifest)
        except Cancelled:
            manifest.update(status="interrupted", updated=_now())
            _write_json(run / "manifest.json", manifest)
            raise
        except Exception as exc:
            manifest.update(status="failed", error=str(exc), updated=_now())
            _write_json(run / "manifest.json", manifest)
            raise
        manifest.update(status="complete", updated=_now())
        _write_json(run / "manifest.json", manifest)
        return run

    def _maybe_hold_or_fail(self, phase: str, cancel: threading.Event) -> None:
        if self.fail_at == phase:
            raise RuntimeError(f"fake failure in {phase}")
        if self.hold_at == phase:
            cancel.wait(self.hold_timeout)
            if cancel.is_set():
                raise Cancelled()

    def _body(self, kind: str, run: Path, n: int, step: Callable[..., None], end_phase: Callable[[str], None],
              cancel: threading.Event, manifest: dict[str, Any]) -> None:
        import pandas as pd

        sequences = {"analysis": {"frames": 0.0, "optimised": 0.3},
                     "interpolation": {"frames": 0.5, "baselines/lerp/frames": 0.6,
                                       "baselines/slerp/frames": 0.7},
                     "extrapolation": {"frames": 0.1}}[kind]
        (run / "frames").mkdir()
        for i in range(n):
            step("decode", i + 1, n, {})
            _fake_frame(i, n, sequences["frames"]).save(run / "frames" / f"{i:04d}.png")
        end_phase("decode")
        self._maybe_hold_or_fail("encode", cancel)
        for i in range(n):
            step("encode", i + 1, n, {})
        end_phase("encode")
        self._maybe_hold_or_fail("solve", cancel)
        for k in range(self.iterations):
            residual = 0.5 / (k + 1)
            step("solve", k + 1, self.iterations, {"residual": residual})
            manifest["network_calls"] += n
        end_phase("solve")
        self._maybe_hold_or_fail("write", cancel)
        for sub, hue in sequences.items():
            if sub == "frames":
                continue
            (run / sub).mkdir(parents=True)
            for i in range(n):
                _fake_frame(i, n, hue).save(run / sub / f"{i:04d}.png")
        paths = {"analysis": ["video", "optimised"], "interpolation": ["geodesic", "lerp", "slerp"],
                 "extrapolation": ["shot"]}[kind]
        rows = [{"path": p, "frame": f, "t": f / max(n - 1, 1), "residual": 0.1 * (k + 1),
                 "log_density": float(10 * (k + 1) * f * (n - 1 - f)) / n, "speed": 1.0}
                for k, p in enumerate(paths) for f in range(n)]
        pd.DataFrame(rows).to_csv(run / "per_frame.csv", index=False)
        summary: dict[str, Any]
        if kind == "analysis":
            stats = {"mean_residual": 0.2, "median_residual": 0.2, "relative_length": 10.0,
                     "log_relative_length": 2.3, "energy": 5.0, "frames": n}
            summary = {"paths": {"video": stats, "optimised": {**stats, "mean_residual": 0.1}},
                       "tests": {"i": {"passed": True, "description": "fake", "value": 0.2, "threshold": 0.5}},
                       "geodesic_excess": 1.1, "verdict": "Fake run written by FakeEngine."}
        elif kind == "interpolation":
            summary = {"perceptual_distance": "fake",
                       "methods": {p: {"ppl": 0.5 + k, "pdv": 0.01, "relative_length": 10.0 + k,
                                       "log_relative_length": 2.3, "log_density": [0.0] * n}
                                   for k, p in enumerate(paths)},
                       "endpoint_reconstruction": {"a_psnr": 30.0, "b_psnr": 30.0}, "frames": n}
        else:
            summary = {"steps": self.iterations, "step_size": 0.1, "initial_speed": 1.0, "final_speed": 1.0,
                       "log_density": [0.0] * n, "frames_decoded": n}
        _write_json(run / "summary.json", summary)
        step("write", 1, 1, {})
        end_phase("write")
