"""``geovid extrapolate`` end to end through the CLI: from two images, from a clip, from an interpolation run;
error paths; Ctrl-C + --resume.

Uses the bundled model when it is installed, else a tiny random SD (``analysis_model`` in conftest).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from geovid import method
from geovid.cli import app
from tests.functional.test_cli_interpolate import manifest, model_args, one_line_error, scene_pair

runner = CliRunner()
FAST = ["--steps", "3", "--decode-steps", "2", "--device", "cpu", "--threads", "1", "--quiet"]
#: For inputs A B (the run source inherits the run's inverted conditions): a short prompt-embedding inversion.
INV = ["--invert-steps", "4"]


pytestmark = pytest.mark.usefixtures("one_thread_private_cache")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    a, b, _ = scene_pair(7, tmp_path_factory.mktemp("images"))
    return a, b


@pytest.fixture(scope="module")
def interp_run(pair: tuple[Path, Path], analysis_model: str | None, tmp_path_factory: pytest.TempPathFactory
               ) -> Path:
    from geovid.tasks.interpolate import InterpolationConfig, run_interpolation

    out = tmp_path_factory.mktemp("interp")
    return run_interpolation(InterpolationConfig(
        image_a=pair[0], image_b=pair[1], frames=5, max_calls=8, decode_steps=1, baselines=["slerp"], invert_steps=4,
        uniform=False, model=analysis_model, device="cpu", out=out, name="src"))


def test_extrapolate_two_images(pair: tuple[Path, Path], analysis_model: str | None, tmp_path: Path) -> None:
    res = runner.invoke(app, ["extrapolate", str(pair[0]), str(pair[1]), *FAST, *INV, "--decode-every", "2", "--out",
                              str(tmp_path), "--name", "ab", *model_args(analysis_model)])
    assert res.exit_code == 0, res.output
    run = tmp_path / "ab"
    m = manifest(run)
    assert m["kind"] == "extrapolation" and m["status"] == "complete" and m["network_calls"] > 3 * 4
    assert m["config"]["source"] == "images" and m["config"]["tangent"] == "slerp"
    for rel in ("summary.json", "per_frame.csv", "per_frame.parquet", "strip.png", "anim.gif", "video.mp4",
                "path.safetensors", "plots/log_density.png"):
        assert (run / rel).is_file(), rel
    s = json.loads((run / "summary.json").read_text())
    # Steps 0, 2 and the last (3) are decoded.
    assert s["decoded_steps"] == [0, 2, 3] and s["frames_decoded"] == 3
    assert s["method"] == {"doc": "docs/method.md", "version": method.VERSION, "section": "§6"}
    assert len(list((run / "frames").glob("*.png"))) == 3
    assert s["steps"] == 3 and s["step_size"] == 1.0 and len(s["log_density"]) == 4 and s["log_density"][0] == 0
    # Speed restored after every RK4 step (docs/method.md §6), equal to the A→B distance (step size 1 = same pace).
    assert s["initial_speed"] == pytest.approx(s["final_speed"], rel=1e-9)
    assert s["initial_speed"] == pytest.approx(s["reference_distance"], rel=1e-9)
    table = pd.read_csv(run / "per_frame.csv")
    assert list(table.columns[:5]) == ["path", "frame", "t", "log_density", "speed"]
    assert set(table["path"]) == {"shot"} and len(table) == 4
    assert table["t"].tolist() == pytest.approx([0, 1, 2, 3])
    from geovid.tasks.report import load_path

    pts, times, meta = load_path(run / "path.safetensors")
    assert pts.shape[0] == 4 and meta["kind"] == "extrapolation" and times.tolist() == [0, 1, 2, 3]
    assert torch.allclose(pts.norm(dim=-1), torch.full((4,), meta["radius"], dtype=torch.float64), rtol=1e-9)
    # strip.png: the given images above the shot.
    strip = np.asarray(Image.open(run / "strip.png"))
    frame = np.asarray(Image.open(run / "frames" / "0000.png"))
    assert strip.shape[0] > 2 * 2 * frame.shape[0]


def test_extrapolate_a_clip_and_a_geodesic_tangent(pair: tuple[Path, Path], analysis_model: str | None,
                                                   tmp_path: Path) -> None:
    from geovid.world.clips import write_clip

    clip = write_clip(tmp_path / "walk.mp4", motion="linear", frames=6, seed=3)
    res = runner.invoke(app, ["extrapolate", str(clip), *FAST, *INV, "--context", "3", "--out", str(tmp_path / "runs"),
                              "--name", "clip", *model_args(analysis_model)])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "runs" / "clip" / "summary.json").read_text())
    assert s["source"] == "clip" and s["frames_decoded"] == 4
    assert manifest(tmp_path / "runs" / "clip")["config"]["context"] == 3
    res = runner.invoke(app, ["extrapolate", str(pair[0]), str(pair[1]), *FAST, *INV, "--tangent", "geodesic",
                              "--out", str(tmp_path / "runs"), "--name", "geo", *model_args(analysis_model)])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "runs" / "geo" / "summary.json").read_text())
    # The budget is checked before each iteration; a new level may start with one more path evaluation (9 points,
    # 2 calls each with the default contrast estimator since issue #13).
    assert s["tangent"] == "geodesic" and 0 < s["shot"]["tangent_bvp_calls"] <= 60 + 2 * 9


def test_extrapolate_from_an_interpolation_run(interp_run: Path, analysis_model: str | None, tmp_path: Path) -> None:
    res = runner.invoke(app, ["extrapolate", "--from-run", str(interp_run), *FAST, "--out", str(tmp_path),
                              "--name", "more"])
    assert res.exit_code == 0, res.output
    run = tmp_path / "more"
    m = manifest(run)
    assert m["inputs"] == [str(interp_run.resolve())] and m["config"]["source"] == "run"
    assert m["model"] == manifest(interp_run)["model"]
    from geovid.tasks.report import load_path

    src, _, src_meta = load_path(interp_run / "path.safetensors")
    shot, _, meta = load_path(run / "path.safetensors")
    # The shot starts where the interpolation ended, on its sphere, at the pace of its last frames.
    assert torch.allclose(shot[0], src[-1]) and meta["radius"] == pytest.approx(src_meta["radius"])
    s = json.loads((run / "summary.json").read_text())
    assert s["reference_distance"] == pytest.approx(float((src[-1] - src[-2]).norm()))
    # The run folder as the only input does the same.
    res = runner.invoke(app, ["extrapolate", str(interp_run), *FAST, "--out", str(tmp_path), "--name", "more2"])
    assert res.exit_code == 0, res.output
    assert torch.equal(load_path(tmp_path / "more2" / "path.safetensors")[0], shot)
    # A run lives at one noise level.
    err = one_line_error(runner.invoke(app, ["extrapolate", "--from-run", str(interp_run), "--noise-level", "0.4",
                                             *FAST, "--out", str(tmp_path)]))
    assert "noise level 0.6" in err


def test_extrapolate_errors(pair: tuple[Path, Path], tmp_path: Path) -> None:
    from tests.fixtures_runs import write_analysis

    analysis = write_analysis(tmp_path / "other")
    out = tmp_path / "runs"
    a, b = str(pair[0]), str(pair[1])
    cases = [
        (["extrapolate", a], "one image gives no direction"),
        (["extrapolate"], "nothing to extrapolate"),
        (["extrapolate", a, b, a], "two images A B or one clip"),
        (["extrapolate", "--from-run", str(analysis)], "needs an interpolation run; clip-walk is an analysis run"),
        (["extrapolate", "--from-run", str(tmp_path / "nowhere")], "no such run folder"),
        (["extrapolate", a, b, "--from-run", str(analysis)], "either inputs"),
        (["extrapolate", a, str(tmp_path / "missing.png")], "image B"),
        (["extrapolate", a, b, "--steps", "0"], "--steps must be at least 1"),
        (["extrapolate", a, b, "--step-size", "-1"], "--step-size must be positive"),
        (["extrapolate", a, b, "--decode-every", "0"], "--decode-every must be at least 1"),
        (["extrapolate", a, b, "--tangent", "spline"], "unknown tangent"),
        (["extrapolate", a, b, "--metric", "score", "--lambda", "-1"], "--lambda must be positive"),
    ]
    for args, message in cases:
        err = one_line_error(runner.invoke(app, [*args, "--out", str(out)]))
        assert message in err, (args, err)
    assert not out.exists() or not any(out.iterdir())


def test_extrapolate_resume_after_ctrl_c(pair: tuple[Path, Path], analysis_model: str | None,
                                         tmp_path: Path) -> None:
    from geovid.tasks.extrapolate import ExtrapolationConfig, run_extrapolation

    cfg = ExtrapolationConfig(inputs=[pair[0], pair[1]], steps=3, decode_steps=2, invert_steps=4,
                              model=analysis_model, device="cpu", out=tmp_path, name="x")

    def ctrl_c(phase: str, done: int, total: int | None, info: dict) -> None:
        if phase == "decode":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_extrapolation(cfg, progress=ctrl_c)
    m = manifest(tmp_path / "x")
    assert m["status"] == "interrupted" and "shoot" in m["phases_done"]
    shot_state = tmp_path / "x" / "state" / "shoot.safetensors"
    stamp = shot_state.stat().st_mtime_ns
    # --resume without --name finds the newest unfinished run of the same inputs and options.
    res = runner.invoke(app, ["extrapolate", str(pair[0]), str(pair[1]), *FAST, *INV, "--out", str(tmp_path), "--resume",
                              *model_args(analysis_model)])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines()[-1] == str(tmp_path / "x")
    assert manifest(tmp_path / "x")["status"] == "complete"
    assert shot_state.stat().st_mtime_ns == stamp


def test_a_resumed_shot_is_the_shot_an_uninterrupted_run_makes(pair: tuple[Path, Path], analysis_model: str | None,
                                                              tmp_path: Path) -> None:
    """Resuming after the shoot phase restores the shot at whole steps (its state also keeps the RK4 sub-steps)."""
    from geovid.runs.store import read_frames
    from geovid.tasks.extrapolate import ExtrapolationConfig, run_extrapolation

    cfg = ExtrapolationConfig(inputs=[pair[0], pair[1]], steps=3, substeps=2, decode_steps=2, invert_steps=4,
                              model=analysis_model, device="cpu", out=tmp_path, name="whole")
    whole = run_extrapolation(cfg)

    def ctrl_c(phase: str, done: int, total: int | None, info: dict) -> None:
        if phase == "decode":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_extrapolation(cfg.replace(name="cut"), progress=ctrl_c)
    resumed = run_extrapolation(cfg.replace(name="cut", resume=True))
    a, b = (json.loads((r / "summary.json").read_text()) for r in (whole, resumed))
    assert b["decoded_steps"] == a["decoded_steps"] == [0, 1, 2, 3]
    assert b["log_density"] == a["log_density"] and b["distance_travelled"] == a["distance_travelled"]
    assert (read_frames(resumed / "frames") == read_frames(whole / "frames")).all()
