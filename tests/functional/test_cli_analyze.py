"""``geovid analyze`` end to end through the CLI: a generated 8-frame world clip, error paths, Ctrl-C + --resume.

Uses the bundled model when it is installed, else a tiny random SD (``analysis_model`` in conftest).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from geovid.cli import app

runner = CliRunner()
FAST = ["--steps", "6", "--max-calls", "30", "--device", "cpu", "--invert-steps", "5", "--draws", "2"]


pytestmark = pytest.mark.usefixtures("one_thread_private_cache")


@pytest.fixture(scope="module")
def clip8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geovid.world.clips import write_clip

    return write_clip(tmp_path_factory.mktemp("clips") / "slide.mp4", motion="linear", frames=8, seed=2)


def _model_args(model: str | None) -> list[str]:
    return [] if model is None else ["--model", model]


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def test_analyze_an_8_frame_clip(clip8: Path, analysis_model: str | None, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    res = runner.invoke(app, ["analyze", str(clip8), "--frames", "8", "--out", str(out), "--quiet",
                              *FAST, *_model_args(analysis_model)])
    assert res.exit_code == 0, res.output
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    assert run.name.startswith("slide-")  # <stem>-<time>
    assert res.output.strip().splitlines()[-1] == str(run)
    m = _manifest(run)
    assert m["status"] == "complete" and m["kind"] == "analysis" and m["inputs"] == [str(clip8.resolve())]
    s = json.loads((run / "summary.json").read_text())
    assert s["frames"] == 8 and s["geodesic_excess"] is not None
    assert {k: type(v["passed"]) for k, v in s["tests"].items()} == {"i": bool, "ii": bool, "iii": bool}
    t = pd.read_csv(run / "per_frame.csv")
    # five paths and the two controls' video paths, 8 frames each
    assert list(t.columns) == ["path", "frame", "time_s", "residual", "log_density", "speed"] and len(t) == 56
    assert len(list((run / "frames").glob("*.png"))) == 8 and len(list((run / "optimised").glob("*.png"))) == 8
    assert (run / "strip.png").is_file()
    for name in ("residual", "log_density", "projection"):
        assert (run / "plots" / f"{name}.png").is_file()


def test_summary_table_and_no_decode(clip8: Path, analysis_model: str | None, tmp_path: Path) -> None:
    res = runner.invoke(app, ["analyze", str(clip8), "--frames", "4", "--out", str(tmp_path), "--name", "nd",
                              "--no-decode-optimised", *FAST, *_model_args(analysis_model)])
    assert res.exit_code == 0, res.output
    assert "geodesic excess" in res.output and "(iii)" in res.output and "optimised" in res.output
    assert "% longer than its optimised version" in res.output or "shorter than" in res.output
    assert "control shuffled" in res.output and "control reversed" in res.output
    run = tmp_path / "nd"
    assert _manifest(run)["status"] == "complete" and "decode_optimised" not in _manifest(run)["phases_done"]
    assert not (run / "optimised").exists() and not (run / "strip.png").exists()


@pytest.mark.parametrize("case", ["missing", "text_as_mp4", "too_short", "noise_level", "frames_1"])
def test_errors_are_one_line_and_fail_the_run(case: str, clip8: Path, analysis_model: str | None,
                                              tmp_path: Path) -> None:
    clip, extra = str(clip8), []
    if case == "missing":
        clip = str(tmp_path / "missing.mp4")
        expected = "no such file"
    elif case == "text_as_mp4":
        fake = tmp_path / "notes.mp4"
        fake.write_text("this is not a video\n" * 20)
        clip, expected = str(fake), "not a readable video"
    elif case == "too_short":
        extra, expected = ["--frames", "12"], "has 8 frames"
    elif case == "noise_level":
        extra, expected = ["--noise-level", "1.5"], "--noise-level must be in (0, 1]"
    else:
        extra, expected = ["--frames", "1"], "--frames must be at least 3"
    out = tmp_path / "runs"
    res = runner.invoke(app, ["analyze", clip, "--out", str(out), "--name", "bad", "--quiet", *extra, *FAST,
                              *_model_args(analysis_model)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], res.output
    assert "Traceback" not in res.output
    if case in ("noise_level", "frames_1"):  # bad options: refused before any run folder is made
        assert not (out / "bad").exists()
        return
    m = _manifest(out / "bad")
    assert m["status"] == "failed" and expected in m["error"]
    assert not (out / "bad" / "summary.json").exists()


def test_ctrl_c_then_resume(clip8: Path, analysis_model: str | None, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    import analysis.compare

    real = analysis.compare.measure_paths

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(analysis.compare, "measure_paths", interrupted)
    args = ["analyze", str(clip8), "--frames", "6", "--out", str(tmp_path), "--quiet", *FAST,
            *_model_args(analysis_model)]
    res = runner.invoke(app, args)
    assert res.exit_code == 130 and "interrupted" in res.output
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    m = _manifest(run)
    assert m["status"] == "interrupted" and m["phases_done"] == ["decode", "encode", "paths", "alpha", "solve"]

    monkeypatch.setattr(analysis.compare, "measure_paths", real)
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines()[-1] == str(run)  # the same run, finished
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == [run]
    m = _manifest(run)
    assert m["status"] == "complete" and m["phases_done"][-1] == "report"


def test_several_clips_make_a_batch(clip8: Path, analysis_model: str | None, tmp_path: Path) -> None:
    from geovid.world.clips import write_clip

    other = write_clip(tmp_path / "shake.mp4", motion="jitter", frames=8, seed=2)
    res = runner.invoke(app, ["analyze", str(clip8), str(other), "--frames", "4", "--out", str(tmp_path / "runs"),
                              "--quiet", "--no-decode-optimised", *FAST, *_model_args(analysis_model)])
    assert res.exit_code == 0, res.output
    (csv,) = (tmp_path / "runs").glob("batch-*/batch_summary.csv")
    rows = pd.read_csv(csv)
    assert [Path(c).name for c in rows["clip"]] == ["slide.mp4", "shake.mp4"]
    assert list(rows["status"]) == ["complete", "complete"]
    assert set(rows.columns) >= {"name", "run", "mean_residual_video", "test_i", "test_ii", "test_iii",
                                 "geodesic_excess"}
    assert res.output.strip().splitlines()[-2:] == list(rows["run"])


def test_help_lists_the_options() -> None:
    res = runner.invoke(app, ["analyze", "--help"])
    assert res.exit_code == 0
    for opt in ("--frames", "--stride", "--start", "--end", "--noise-level", "--alpha", "--metric", "--estimator",
                "--prompt", "--model", "--device", "--dtype", "--seed", "--out", "--name", "--decode-optimised",
                "--resume", "--quiet"):
        assert opt in res.output, opt


def test_the_tui_library_engine_runs_an_analysis(clip8: Path, analysis_model: str | None, tmp_path: Path) -> None:
    """The TUI's form options (named like the CLI options) reach AnalysisConfig; cancel → interrupted."""
    import threading

    from geovid.progress import Cancelled
    from tui.engine import LibraryEngine

    engine = LibraryEngine()
    assert engine.unavailable_reason("analysis") is None
    opts = {"inputs": [str(clip8)], "frames": 5, "noise_level": 0.6, "alpha": None, "metric": "density",
            "estimator": "eps", "seed": 0, "model": analysis_model, "device": "cpu", "steps": 6, "max_calls": 20,
            "name": "from-tui"}
    cancel = threading.Event()

    def progress(phase: str, done: int, total: int | None, info: dict) -> None:
        if phase == "solve":
            cancel.set()

    with pytest.raises(Cancelled):
        engine.start("analysis", opts, tmp_path, progress, cancel)
    assert _manifest(tmp_path / "from-tui")["status"] == "interrupted"
    cancel.clear()
    run = engine.start("analysis", {**opts, "resume": True}, tmp_path, lambda *a: None, cancel)
    assert run == tmp_path / "from-tui" and _manifest(run)["status"] == "complete"
    assert _manifest(run)["config"]["frames"] == 5
