"""Engines behind the TUI's new-job form: the fake one (tests, demos) and the library adapter."""

from __future__ import annotations

import dataclasses
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

import tui.engine as engine_mod
from geovid.progress import Cancelled
from geovid.runs.catalog import list_frames, load_per_frame, load_run
from tui.engine import Engine, EngineUnavailable, FakeEngine, LibraryEngine, build_config


def _collect() -> tuple[list[tuple[str, int, int | None, dict[str, Any]]], Any]:
    calls: list[tuple[str, int, int | None, dict[str, Any]]] = []

    def progress(phase: str, done: int, total: int | None, info: dict[str, Any]) -> None:
        calls.append((phase, done, total, info))

    return calls, progress


@pytest.mark.parametrize("kind", ["analysis", "interpolation", "extrapolation"])
def test_fake_engine_writes_a_complete_contract_run(tmp_path: Path, kind: str) -> None:
    calls, progress = _collect()
    engine = FakeEngine(frames=4, iterations=3)
    assert isinstance(engine, Engine)
    run = engine.start(kind, {"inputs": ["/x/a.png", "/x/b.png"], "name": f"fake-{kind}"}, tmp_path, progress,
                       threading.Event())
    assert run == tmp_path / f"fake-{kind}"
    record = load_run(run)
    assert (record.kind, record.status, record.problems) == (kind, "complete", [])
    assert len(list_frames(run)) == 4 and load_per_frame(run) is not None
    phases = [c[0] for c in calls]
    assert phases.index("decode") < phases.index("encode") < phases.index("solve") < phases.index("write")
    assert ("solve", 3, 3, {"residual": pytest.approx(0.5 / 3)}) in calls
    assert record.manifest is not None and record.manifest["phases_done"] == ["decode", "encode", "solve", "write"]


def test_fake_engine_names_collide_safely(tmp_path: Path) -> None:
    _, progress = _collect()
    engine = FakeEngine(frames=2, iterations=1)
    first = engine.start("extrapolation", {"inputs": ["/x/s.png"], "name": "same"}, tmp_path, progress,
                         threading.Event())
    second = engine.start("extrapolation", {"inputs": ["/x/s.png"], "name": "same"}, tmp_path, progress,
                          threading.Event())
    assert (first.name, second.name) == ("same", "same-2")


def test_cancel_marks_the_run_interrupted(tmp_path: Path) -> None:
    cancel = threading.Event()

    def progress(phase: str, done: int, total: int | None, info: dict[str, Any]) -> None:
        if phase == "encode":
            cancel.set()

    with pytest.raises(Cancelled):
        FakeEngine(frames=3).start("analysis", {"inputs": ["/x/c.mp4"], "name": "stop"}, tmp_path, progress,
                                   cancel)
    record = load_run(tmp_path / "stop")
    assert record.status == "interrupted"
    assert record.manifest is not None and record.manifest["phases_done"] == ["decode"]


def test_failure_marks_the_run_failed(tmp_path: Path) -> None:
    _, progress = _collect()
    with pytest.raises(RuntimeError, match="fake failure in solve"):
        FakeEngine(fail_at="solve").start("analysis", {"inputs": ["/x/c.mp4"], "name": "boom"}, tmp_path,
                                          progress, threading.Event())
    record = load_run(tmp_path / "boom")
    assert record.status == "failed" and record.error == "fake failure in solve"


@dataclasses.dataclass
class _AnalysisConfig:
    clips: list[Path]
    frames: int = 16
    noise_level: float = 0.6
    alpha: float | None = None
    out: Path = Path("runs")
    name: str | None = None


@dataclasses.dataclass
class _InterpConfig:
    image_a: Path
    image_b: Path
    frames: int = 17
    out: Path = Path("runs")


@dataclasses.dataclass
class _ExtrapConfig:
    start: Path
    steps: int = 10
    out: Path = Path("runs")
    baselines: list[str] = dataclasses.field(default_factory=list)


def test_build_config_maps_inputs_and_drops_unknown_options(tmp_path: Path) -> None:
    cfg, notes = build_config(_AnalysisConfig, "analysis",
                              {"inputs": ["/v/a.mp4", "/v/b.mp4"], "frames": 8, "alpha": None, "metric": "score"},
                              tmp_path)
    assert cfg == _AnalysisConfig(clips=[Path("/v/a.mp4"), Path("/v/b.mp4")], frames=8, out=tmp_path)
    assert notes == ["option metric='score' not accepted by _AnalysisConfig; ignored"]

    cfg, _ = build_config(_InterpConfig, "interpolation", {"inputs": ["/i/a.png", "/i/b.png"]}, tmp_path)
    assert (cfg.image_a, cfg.image_b, cfg.out) == (Path("/i/a.png"), Path("/i/b.png"), tmp_path)

    cfg, _ = build_config(_ExtrapConfig, "extrapolation",
                          {"inputs": ["/i/s.png"], "steps": 3, "baselines": "lerp, slerp"}, tmp_path)
    assert (cfg.start, cfg.steps, cfg.baselines) == (Path("/i/s.png"), 3, ["lerp", "slerp"])

    with pytest.raises(EngineUnavailable, match="no field for the input paths"):
        build_config(_ExtrapConfig, "analysis", {"inputs": ["/x"]}, tmp_path)
    with pytest.raises(EngineUnavailable, match="not a dataclass"):
        build_config(dict, "analysis", {}, tmp_path)


def test_library_engine_calls_the_library_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def run_extrapolation(config: _ExtrapConfig, progress: Any = None, cancel: Any = None) -> Path:
        seen.update(config=config, cancel=cancel)
        progress("solve", 1, 2, {"residual": 0.1})
        return tmp_path / "made"

    fake = types.ModuleType("fake_extrapolate")
    fake.run_extrapolation = run_extrapolation  # type: ignore[attr-defined]
    fake.ExtrapolationConfig = _ExtrapConfig  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_extrapolate", fake)
    monkeypatch.setitem(engine_mod.LIBRARY_TARGETS, "extrapolation",
                        ("fake_extrapolate", "run_extrapolation", "ExtrapolationConfig"))
    calls, progress = _collect()
    cancel = threading.Event()
    out = LibraryEngine().start("extrapolation", {"inputs": ["/i/s.png"], "steps": 5, "seed": 1}, tmp_path,
                                progress, cancel)
    assert out == tmp_path / "made"
    assert seen["config"] == _ExtrapConfig(start=Path("/i/s.png"), steps=5, out=tmp_path)
    assert seen["cancel"] is cancel
    assert ("solve", 1, 2, {"residual": 0.1}) in calls
    assert any(c[0] == "setup" and "seed" in c[3].get("note", "") for c in calls)


def test_library_engine_reports_missing_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(engine_mod.LIBRARY_TARGETS, "analysis",
                        ("geovid_no_such_module.run", "run_analysis", "AnalysisConfig"))
    engine = LibraryEngine()
    reason = engine.unavailable_reason("analysis")
    assert reason is not None and "geovid_no_such_module.run" in reason
    _, progress = _collect()
    with pytest.raises(EngineUnavailable, match="analysis is not available"):
        engine.start("analysis", {"inputs": ["/v/a.mp4"]}, tmp_path, progress, threading.Event())
    assert engine.unavailable_reason("dance") == "unknown job kind 'dance'"
