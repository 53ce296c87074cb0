"""The one runner of phased jobs (geovid.runs.jobs) and options resolved once (geovid.runs.options)."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from geovid.errors import InputError
from geovid.progress import Cancelled
from geovid.runs.jobs import Phase, run_job
from geovid.runs.options import RunOptions
from geovid.runs.store import Run


class _Model:
    """Stands in for a backbone: counts its 'network calls'."""

    network_calls = 0

    def call(self, n: int) -> None:
        self.network_calls += n


class _Job:
    """Three phases: load (every time), double (state saved in state/), write (an output file)."""

    def __init__(self, run: Run, log: list[str], fail_at: str | None = None) -> None:
        self.run, self.log, self.fail_at = run, log, fail_at
        self.backbone: Any = None
        self.calls: Any = None

    def phases(self) -> Any:
        yield Phase("load", self._load)
        yield Phase("double", self._double, self._restore_double, state=True)
        yield Phase("write", self._write, lambda: True, files=("out.json",))

    def outputs(self) -> list[str]:
        return ["out.json"]

    def _load(self) -> None:
        self.log.append("load")
        self.backbone = _Model()

    def _double(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        self.log.append("double")
        self.backbone.call(5)
        if self.fail_at == "double":
            raise RuntimeError("boom")
        self.value = torch.arange(3) * 2
        return {"value": self.value}, {"note": "doubled"}

    def _restore_double(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.log.append(f"restore double ({meta['note']})")
        self.value = tensors["value"]

    def _write(self) -> None:
        self.log.append("write")
        self.backbone.call(2)
        if self.fail_at == "write":
            raise KeyboardInterrupt
        self.run.write_json("out.json", {"value": self.value.tolist()})
        # What the run contract wants of an interpolation run (docs/run-directory.md), so that it can complete.
        import numpy as np
        import pandas as pd

        self.run.write_json("summary.json", {})
        self.run.write_table("per_frame", pd.DataFrame({"frame": [0]}))
        self.run.write_frames("frames", [np.zeros((4, 4, 3), np.uint8)])
        self.run.write_frames("baselines/lerp/frames", [np.zeros((4, 4, 3), np.uint8)])


def _go(tmp_path: Path, log: list[str], resume: bool = False, fail_at: str | None = None,
        cancel: threading.Event | None = None) -> Path:
    opts = RunOptions(out=tmp_path, name="job", resume=resume)
    return run_job("interpolation", {"x": 1}, opts, [tmp_path / "a.png"], "test-model",
                   lambda run, prog: _Job(run, log, fail_at), cancel=cancel)


def _manifest(run: Path) -> dict[str, Any]:
    return json.loads((run / "manifest.json").read_text())


def test_runner_records_phases_saves_state_counts_calls_and_completes(tmp_path: Path) -> None:
    log: list[str] = []
    run = _go(tmp_path, log)
    m = _manifest(run)
    assert log == ["load", "double", "write"]
    assert m["status"] == "complete" and m["phases_done"] == ["load", "double", "write"]
    assert set(m["timings"]) == {"load", "double", "write"}
    assert m["network_calls"] == 7  # counted from the phase that loads the model on
    assert (run / "state" / "double.safetensors").is_file()
    assert json.loads((run / "out.json").read_text()) == {"value": [0, 2, 4]}


def test_resume_restores_saved_phases_and_keeps_counting(tmp_path: Path) -> None:
    log: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        _go(tmp_path, log, fail_at="write")
    m = _manifest(tmp_path / "job")
    assert m["status"] == "interrupted" and m["phases_done"] == ["load", "double"] and m["network_calls"] == 5

    log.clear()
    run = _go(tmp_path, log, resume=True)
    m = _manifest(run)
    # load runs every time; double comes back from its state, not recomputed (no new calls); write runs.
    assert log == ["load", "restore double (doubled)", "write"]
    assert m["status"] == "complete" and m["network_calls"] == 7
    assert json.loads((run / "out.json").read_text()) == {"value": [0, 2, 4]}

    log.clear()
    assert _go(tmp_path, log, resume=True) == run and log == []  # complete: returned as it is


def test_a_phase_whose_state_is_gone_runs_again(tmp_path: Path) -> None:
    log: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        _go(tmp_path, log, fail_at="write")
    (tmp_path / "job" / "state" / "double.safetensors").unlink()
    log.clear()
    _go(tmp_path, log, resume=True)
    assert log == ["load", "double", "write"]


def test_errors_mark_the_run_failed_and_cancel_interrupts(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        _go(tmp_path, [], fail_at="double")
    m = _manifest(tmp_path / "job")
    assert m["status"] == "failed" and m["error"] == "RuntimeError: boom" and m["phases_done"] == ["load"]

    cancel = threading.Event()
    cancel.set()

    class _Cancelling(_Job):
        def _load(self) -> None:
            super()._load()
            self.prog("load", 1, 1, {})

    def make(run: Run, prog: Any) -> _Job:
        job = _Cancelling(run, [])
        job.prog = prog  # type: ignore[attr-defined]
        return job

    with pytest.raises(Cancelled):
        run_job("interpolation", {}, RunOptions(out=tmp_path, name="cut"), [], "m", make, cancel=cancel)
    assert _manifest(tmp_path / "cut")["status"] == "interrupted"


def test_resume_refuses_other_options(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        _go(tmp_path, [], fail_at="write")
    with pytest.raises(InputError, match=r"different options \(x: 1 -> 2\)"):
        run_job("interpolation", {"x": 2}, RunOptions(out=tmp_path, name="job", resume=True), [tmp_path / "a.png"],
                "test-model", lambda run, prog: _Job(run, []))


def test_options_are_frozen_and_resolved_once() -> None:
    from analysis.config import AnalysisConfig

    calls = []

    class Counting(AnalysisConfig):
        def _resolve(self) -> AnalysisConfig:
            calls.append(1)
            return super()._resolve()

    cfg = Counting(clips=["a.mp4"], frames=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.frames = 6  # type: ignore[misc]
    resolved = cfg.resolve()
    assert resolved.resolve() is resolved and resolved.resolve().resolve() is resolved and len(calls) == 1
    changed = resolved.replace(frames=2)
    assert not changed.is_resolved
    with pytest.raises(InputError, match="--frames must be at least 3"):
        changed.resolve()
    assert dataclasses.asdict(resolved) == dataclasses.asdict(cfg)  # the mark is no field
