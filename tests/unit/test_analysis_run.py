"""The analysis as a library call (analysis.run): run contract, determinism, cancel/interrupt + resume, batches.

Runs on the bundled model when it is installed, else on a tiny random SD (``analysis_model`` in conftest), with
a short DDIM schedule and a small solver budget so the whole module stays within seconds per run.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pandas as pd
import pytest

from analysis.run import AnalysisConfig, run_analysis, run_batch
from geovid import method
from geovid.errors import GeovidError, InputError
from geovid.progress import Cancelled

FAST = {"frames": 6, "steps": 6, "max_calls": 30, "invert_steps": 5, "draws": 2}


pytestmark = pytest.mark.usefixtures("one_thread_private_cache")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geovid.world.clips import write_clip

    return write_clip(tmp_path_factory.mktemp("clips") / "walk.mp4", motion="linear", frames=8, seed=1)


def _cfg(clip: Path, model: str | None, out: Path, **kw) -> AnalysisConfig:
    return AnalysisConfig(clips=[clip], model=model, out=out, device="cpu", **{**FAST, **kw})


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


@pytest.fixture(scope="module")
def reference(clip: Path, analysis_model: str | None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    return run_analysis(_cfg(clip, analysis_model, out, name="ref"))


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(("kw", "match"), [
    ({"frames": 1}, "--frames must be at least 3"),
    ({"frames": 2}, "--frames must be at least 3"),
    ({"noise_level": 0.0}, r"--noise-level must be in \(0, 1\]"),
    ({"noise_level": 1.5}, r"--noise-level must be in \(0, 1\]"),
    ({"alpha": -1.0}, "--alpha must be a positive"),
    ({"metric": "fisher"}, "--metric must be one of density, score"),
    ({"estimator": "exact"}, "--estimator must be one of eps, contrast"),
    ({"delta": 0.0}, "--delta"),
    ({"smooth_sigma": 0.0}, "--smooth-sigma"),
    ({"stride": 0}, "--stride"),
    ({"max_calls": 0}, "--max-calls"),
    ({"draws": 0}, "--draws"),
    ({"invert_steps": 0}, "--invert-steps"),
    ({"conditioning": "both"}, "--conditioning must be invert or prompt"),
    ({"trust": -1.0}, "--trust"),
    ({"clips": []}, "no clip given"),
])
def test_bad_options_are_one_line_input_errors(kw: dict, match: str) -> None:
    cfg = AnalysisConfig(**{"clips": [Path("x.mp4")], **kw})
    with pytest.raises(InputError, match=match):
        cfg.resolve()


def test_run_config_is_resolved_and_json() -> None:
    cfg = AnalysisConfig(clips=["a.mp4"])
    assert cfg.clips == [Path("a.mp4")] and cfg.estimator == "contrast" and cfg.frames == 16
    assert cfg.draws == 4 and cfg.conditioning == "invert" and cfg.trust == 0.25 and cfg.controls
    rc = cfg.manifest_config()
    assert rc["alpha"] == "rule"  # docs/method.md §3.7, computed per clip
    assert rc["model"] == "bundled:geovid-tiny-sd" and rc["device"] == "auto"
    assert rc["solver"] == "geovid" and rc["solver_mode"] == "normal" and rc["max_calls"] is None
    assert AnalysisConfig(clips=["a.mp4"], alpha=0.01).manifest_config()["alpha"] == 0.01
    json.dumps(rc, allow_nan=False)


# --------------------------------------------------------------------------- a full run


def test_run_writes_the_contract(reference: Path) -> None:
    m = _manifest(reference)
    assert m["kind"] == "analysis" and m["status"] == "complete" and m["error"] is None
    phases = ["decode", "encode", "paths", "alpha", "solve", "measure", "decode_optimised", "report"]
    assert m["phases_done"] == phases and set(m["timings"]) >= set(phases)
    assert m["network_calls"] > 0 and m["config"]["alpha"] == "rule" and m["seed"] == 0
    for rel in ("summary.json", "per_frame.csv", "per_frame.parquet", "strip.png", "plots/residual.png",
                "plots/log_density.png", "plots/projection.png", "points.safetensors", "optimised.safetensors"):
        assert (reference / rel).is_file(), rel
    assert sorted(p.name for p in (reference / "frames").iterdir()) == [f"{i:04d}.png" for i in range(6)]
    assert sorted(p.name for p in (reference / "optimised").iterdir()) == [f"{i:04d}.png" for i in range(6)]
    for png in (reference / "plots").iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    s = _summary(reference)
    assert set(s["paths"]) == {"video", "optimised", "perturbed", "smoothed", "line"}
    for st in s["paths"].values():
        assert st["frames"] == 6 and st["mean_residual"] > 0
    assert set(s["tests"]) == {"i", "ii", "iii"}
    assert s["method"] == {"doc": "docs/method.md", "version": method.VERSION, "section": "§7"}
    assert all(isinstance(t["passed"], bool) for t in s["tests"].values())
    assert s["tests"]["i"]["threshold"] == pytest.approx(0.5 * s["paths"]["line"]["mean_residual"])
    assert s["tests"]["ii"]["threshold"] == pytest.approx(2 * s["paths"]["optimised"]["mean_residual"])
    assert s["tests"]["iii"]["perturbed_ratio"] == pytest.approx(
        s["paths"]["perturbed"]["mean_residual"] / s["paths"]["video"]["mean_residual"])
    assert isinstance(s["verdict"], str) and len(s["verdict"]) > 100
    assert s["solver"]["network_calls"] <= 30 and s["solver"]["mode"] == "normal"
    # α by the rule (docs/method.md §3.7): the line's density term is the half-circle curvature 2/chord.
    rule = s["alpha_rule"]
    assert rule["rho"] == 2.0 and s["alpha"] == pytest.approx(2.0 / (rule["chord"] * rule["normal_score"]))
    assert s["condition"]["conditioning"] == "invert" and s["condition"]["invert_steps"] == 5 and s["draws"] == 2
    assert set(s["controls"]) == {"shuffled", "reversed", "informative"}
    assert s["readable"]["percent_longer_than_optimised"] == pytest.approx(100 * (s["geodesic_excess"] - 1))
    assert s["frames"] == 6 and s["frame_indices"][0] == 0 and s["frame_indices"][-1] == 7

    table = pd.read_parquet(reference / "per_frame.parquet")
    assert list(table.columns) == ["path", "frame", "time_s", "residual", "log_density", "speed"]
    assert len(table) == 42 and set(table.path) == {"video", "optimised", "perturbed", "smoothed", "line",
                                                    "shuffled", "reversed"}
    video = table[table.path == "video"]
    assert video["residual"].iloc[1:-1].mean() == pytest.approx(s["paths"]["video"]["mean_residual"])
    assert list(video["time_s"]) == s["time_s"]
    csv = pd.read_csv(reference / "per_frame.csv")
    assert list(csv.columns) == list(table.columns) and len(csv) == len(table)


def test_same_seed_same_inputs_identical_numbers(reference: Path, clip: Path, analysis_model: str | None,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOVID_NO_CACHE", "1")  # recompute the inversion too, do not read it back
    again = run_analysis(_cfg(clip, analysis_model, tmp_path, name="again"))
    assert _summary(again) == _summary(reference)
    pd.testing.assert_frame_equal(pd.read_parquet(again / "per_frame.parquet"),
                                  pd.read_parquet(reference / "per_frame.parquet"))


def test_cancel_marks_interrupted_and_resume_finishes_with_the_same_numbers(
        reference: Path, clip: Path, analysis_model: str | None, tmp_path: Path) -> None:
    cancel = threading.Event()
    phases: list[str] = []

    def progress(phase: str, done: int, total: int | None, info: dict) -> None:
        phases.append(phase)
        if phase == "solve":
            cancel.set()  # as the TUI does: the next report raises Cancelled

    cfg = _cfg(clip, analysis_model, tmp_path, name="cut")
    with pytest.raises(Cancelled):
        run_analysis(cfg, progress=progress, cancel=cancel)
    run = tmp_path / "cut"
    m = _manifest(run)
    assert m["status"] == "interrupted" and m["phases_done"] == ["decode", "encode", "paths", "alpha"]
    assert not (run / "summary.json").exists()
    calls_before = m["network_calls"]

    cfg = dataclasses.replace(cfg, resume=True)
    resumed_phases: list[str] = []
    assert run_analysis(cfg, progress=lambda p, *a: resumed_phases.append(p)) == run
    m = _manifest(run)
    assert m["status"] == "complete"
    assert "encode" not in resumed_phases and "decode" not in resumed_phases  # done phases are skipped
    assert m["network_calls"] > calls_before
    assert _summary(run) == {**_summary(reference), "clip": _summary(run)["clip"]}
    # resuming a complete run returns it as it is
    assert run_analysis(cfg) == run and _manifest(run)["updated"] == m["updated"]


def test_keyboard_interrupt_keeps_finished_phases(clip: Path, analysis_model: str | None, tmp_path: Path) -> None:
    def progress(phase: str, done: int, total: int | None, info: dict) -> None:
        if phase == "measure":
            raise KeyboardInterrupt

    cfg = _cfg(clip, analysis_model, tmp_path, name="ctrlc")
    with pytest.raises(KeyboardInterrupt):
        run_analysis(cfg, progress=progress)
    run = tmp_path / "ctrlc"
    m = _manifest(run)
    assert m["status"] == "interrupted" and "solve" in m["phases_done"]
    solve_time = m["timings"]["solve"]
    optimised = (run / "optimised.safetensors").read_bytes()
    cfg = dataclasses.replace(cfg, resume=True)
    run_analysis(cfg)  # no name needed either: the newest unfinished run of this clip and options
    m = _manifest(run)
    assert m["status"] == "complete" and m["timings"]["solve"] == solve_time
    assert (run / "optimised.safetensors").read_bytes() == optimised


def test_resume_with_other_options_is_refused(clip: Path, analysis_model: str | None, tmp_path: Path) -> None:
    def stop(phase: str, *a) -> None:
        if phase == "paths":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_analysis(_cfg(clip, analysis_model, tmp_path, name="r"), progress=stop)
    with pytest.raises(InputError, match=r"different options.*seed"):
        run_analysis(_cfg(clip, analysis_model, tmp_path, name="r", seed=5, resume=True))
    assert _manifest(tmp_path / "r")["status"] == "interrupted"


def test_missing_clip_fails_the_run(tmp_path: Path, analysis_model: str | None) -> None:
    with pytest.raises(InputError, match="no such file"):
        run_analysis(_cfg(tmp_path / "nope.mp4", analysis_model, tmp_path / "runs", name="missing"))
    m = _manifest(tmp_path / "runs" / "missing")
    assert m["status"] == "failed" and "no such file" in m["error"] and "\n" not in m["error"]


def test_batch_writes_one_run_per_clip_and_a_summary(clip: Path, analysis_model: str | None, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    cfg = AnalysisConfig(clips=[clip, tmp_path / "missing.mp4"], model=analysis_model, out=out, device="cpu",
                         name="b", **FAST)
    with pytest.raises(GeovidError, match=r"1 of 2 clips failed: missing\.mp4"):
        run_batch(cfg)
    assert _manifest(out / "b-walk")["status"] == "complete"
    assert _manifest(out / "b-missing")["status"] == "failed"
    (batch,) = out.glob("batch-*/batch_summary.csv")
    rows = pd.read_csv(batch)
    assert list(rows["name"]) == ["b-walk", "b-missing"] and list(rows["status"]) == ["complete", "failed"]
    assert rows.loc[0, "geodesic_excess"] == pytest.approx(_summary(out / "b-walk")["geodesic_excess"])
    assert rows.loc[0, "mean_residual_video"] > 0 and rows.loc[0, "tests_passed"] in (0, 1, 2, 3)
    assert "no such file" in rows.loc[1, "error"]


@pytest.fixture(scope="module")
def default_run(analysis_model: str | None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short world clip analysed at the defaults (fewer frames and inversion steps, a smaller budget)."""
    from geovid.world.clips import write_clip

    if analysis_model is not None:
        pytest.skip("needs the bundled model (a random tiny model has no density to measure)")
    tmp = tmp_path_factory.mktemp("default")
    clip = write_clip(tmp / "lin.mp4", motion="linear", frames=8, seed=3)
    return run_analysis(AnalysisConfig(clips=[clip], out=tmp / "runs", name="d", frames=8, invert_steps=30,
                                       max_calls=400))


def test_defaults_give_a_readable_excess_and_controls_that_behave(default_run: Path) -> None:
    """Issue 12: the excess is finite and in [1, 10³], the shuffled control is further from a geodesic, the
    reversed clip gives the same figures within 10 % (docs/analysis.md, science check)."""
    s = _summary(default_run)
    assert 1.0 <= s["geodesic_excess"] <= 1e3
    sh, rv = s["controls"]["shuffled"], s["controls"]["reversed"]
    assert sh["larger_excess"] and sh["geodesic_excess"] > s["geodesic_excess"]
    assert rv["excess_relative_difference"] <= 0.10 and rv["residual_relative_difference"] <= 0.10
    assert "shuffled" in s["verdict"] and "backwards" in s["verdict"]


@pytest.mark.xfail(strict=True, reason="known miss (docs/analysis.md, science check): decoded γ_o interior frames "
                   "are plausible in 74 % of frames on 10 world clips (the decoded video path: 80 %); on this "
                   "8-frame clip 2 of 6, the decoded video path 8 of 8")
def test_decoded_optimum_is_still_the_scene(default_run: Path) -> None:
    from geovid.runs.store import read_frames as _read_png_frames
    from geovid.world.checker import check
    from geovid.world.clips import clip_scenes
    from geovid.world.scene import caption

    decoded = _read_png_frames(default_run / "optimised")[1:-1]
    captions = [caption(sc) for sc in clip_scenes("linear", 8, 3)[0]][1:-1]
    plausible = [check(f, c).plausible for f, c in zip(decoded, captions)]
    assert sum(plausible) >= 0.8 * len(plausible)
