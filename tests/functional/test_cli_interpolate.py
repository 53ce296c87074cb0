"""``geovid interpolate`` end to end through the CLI: the run-directory contract, image formats and sizes, error
paths, Ctrl-C / cancel + --resume, determinism.

Uses the bundled model when it is installed, else a tiny random SD (``analysis_model`` in conftest). Small sizes:
5 frames, a 12-call solve, 2 DDIM steps per decoded frame.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from geovid import method
from geovid.cli import app

runner = CliRunner()
FAST = ["--frames", "5", "--max-calls", "12", "--decode-steps", "2", "--invert-steps", "4", "--device", "cpu",
        "--threads", "1", "--quiet"]
TINY = ["--frames", "3", "--max-calls", "4", "--decode-steps", "1", "--invert-steps", "2", "--baselines", "slerp",
        "--no-uniform", "--device", "cpu", "--threads", "1", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread_private_cache")


def scene_pair(seed: int, folder: Path) -> tuple[Path, Path, str]:
    """Two world scenes with the same objects, moved (mirrored left-right): A.png, B.png, caption of A."""
    from geovid.world.render import render
    from geovid.world.scene import Scene, caption, random_scene

    scene = random_scene(seed, n_objects=2)
    moved = Scene(tuple(o.moved(x=1.0 - o.x) for o in scene.objects))
    a, b = folder / f"a{seed}.png", folder / f"b{seed}.png"
    Image.fromarray(render(scene)).save(a)
    Image.fromarray(render(moved)).save(b)
    return a, b, caption(scene)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    a, b, _ = scene_pair(4, tmp_path_factory.mktemp("images"))
    return a, b


def model_args(model: str | None) -> list[str]:
    return [] if model is None else ["--model", model]


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    err = res.stderr
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def done_run(pair: tuple[Path, Path], analysis_model: str | None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    res = runner.invoke(app, ["interpolate", str(pair[0]), str(pair[1]), *FAST, "--out", str(out), "--name", "r1",
                              *model_args(analysis_model)])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines()[-1] == str(out / "r1")
    return out / "r1"


def test_interpolation_writes_the_run_contract(done_run: Path, analysis_model: str | None) -> None:
    m = manifest(done_run)
    assert m["kind"] == "interpolation" and m["status"] == "complete" and m["error"] is None
    # Defaults since issue #13: contrast estimator (1 draw), per-endpoint prompt-embedding inversion, α by the rule.
    assert m["config"]["frames"] == 5 and m["config"]["estimator"] == "contrast" and m["config"]["alpha"] is None
    assert m["config"]["draws"] == 1 and m["config"]["conditioning"] == "invert"
    assert m["config"]["baselines"] == ["lerp", "slerp"] and m["config"]["uniform"] is True
    assert set(m["phases_done"]) >= {"load", "encode", "solve", "decode", "uniform", "measure", "write"}
    assert set(m["timings"]) >= {"encode", "solve", "decode"}
    # Inversion (2 × 30 DDIM steps) + a 12-call solve + decoding are all counted.
    assert m["network_calls"] > 60 + 12
    for rel in ("summary.json", "per_frame.csv", "per_frame.parquet", "strip.png", "compare.png", "anim.gif",
                "video.mp4", "path.safetensors", "plots/log_density.png"):
        assert (done_run / rel).is_file(), rel
    frames = sorted((done_run / "frames").glob("*.png"))
    assert [f.name for f in frames] == [f"{i:04d}.png" for i in range(5)]
    res = np.asarray(Image.open(frames[0])).shape[0]
    for b in ("lerp", "slerp"):
        assert len(list((done_run / "baselines" / b / "frames").glob("*.png"))) == 5
    # Shared endpoints: every method starts and ends on the same decoded image.
    for b in ("lerp", "slerp"):
        for i in (0, 4):
            same = np.asarray(Image.open(done_run / "baselines" / b / "frames" / f"{i:04d}.png"))
            assert np.array_equal(same, np.asarray(Image.open(frames[i])))
    # compare.png: three rows of 2× frames; the GIF/MP4 are 4× upscaled.
    cmp_h = np.asarray(Image.open(done_run / "compare.png")).shape[0]
    assert 3 * 2 * res < cmp_h < 3 * 2 * res + 20
    gif = Image.open(done_run / "anim.gif")
    assert gif.size == (4 * res, 4 * res) and gif.n_frames == 5
    from geovid.media.decode import probe

    info = probe(done_run / "video.mp4")
    assert info.frame_count == 5 and (info.width, info.height) == (4 * res, 4 * res)

    s = json.loads((done_run / "summary.json").read_text())
    assert s["perceptual_distance"] == "ssim" and s["frames"] == 5
    rule = s["alpha_rule"]
    assert rule["rho"] == 2.0 and s["alpha"] == pytest.approx(2.0 / (rule["chord"] * rule["normal_score"]))
    assert s["conditioning"] == "invert" and (done_run / "conditions.safetensors").is_file()
    assert s["method"] == {"doc": "docs/method.md", "version": method.VERSION, "section": "§5, §8"}
    assert set(s["methods"]) == {"geodesic", "lerp", "slerp"}
    for name, st in s["methods"].items():
        d = np.asarray(st["distances"])
        assert len(d) == 4 and np.all(d >= 0)
        assert st["ppl"] == pytest.approx(d.sum()) and st["pdv"] == pytest.approx(d.var())
        assert len(st["log_density"]) == 5 and st["log_density"][0] == 0.0
        assert np.isfinite(st["log_relative_length"]), name
        assert st["positions"][0] == 0 and st["positions"][-1] == 4
    # The budget is checked before each iteration, so the solve may end one path evaluation past it (3 interior
    # points × 2 calls with the default contrast estimator since issue #13).
    assert s["solver"]["solver"] == "geovid" and 0 < s["solver"]["network_calls"] <= 12 + 3 * 2
    rec = s["endpoint_reconstruction"]
    assert np.isfinite(rec["a_psnr"]) and np.isfinite(rec["b_psnr"])

    table = pd.read_csv(done_run / "per_frame.csv")
    assert list(table.columns) == ["path", "frame", "t", "residual", "log_density", "speed"]
    assert len(table) == 15 and set(table["path"]) == {"geodesic", "lerp", "slerp"}
    geo = table[table["path"] == "geodesic"]
    assert geo["t"].iloc[0] == 0 and geo["t"].iloc[-1] == pytest.approx(1)
    assert np.isnan(geo["residual"].iloc[0]) and np.isfinite(geo["residual"].iloc[1:-1]).all()
    pq = pd.read_parquet(done_run / "per_frame.parquet")
    assert pq.shape == table.shape

    from geovid.tasks.report import load_path

    pts, times, meta = load_path(done_run / "path.safetensors")
    assert pts.shape[0] == 5 and times.shape == (5,) and meta["timestep"] == 581
    assert meta["noise_level"] == 0.6 and meta["kind"] == "interpolation"
    # All points on the sphere of radius R (docs/method.md §1).
    assert torch.allclose(pts.norm(dim=-1), torch.full((5,), meta["radius"], dtype=torch.float64), rtol=1e-6)


def test_same_seed_same_numbers(done_run: Path, pair: tuple[Path, Path], analysis_model: str | None) -> None:
    out = done_run.parent
    res = runner.invoke(app, ["interpolate", str(pair[0]), str(pair[1]), *FAST, "--out", str(out), "--name", "r2",
                              *model_args(analysis_model)])
    assert res.exit_code == 0, res.output
    from geovid.tasks.report import load_path

    p1, t1, _ = load_path(done_run / "path.safetensors")
    p2, t2, _ = load_path(out / "r2" / "path.safetensors")
    assert torch.equal(p1, p2) and torch.equal(t1, t2)
    s1, s2 = (json.loads((r / "summary.json").read_text()) for r in (done_run, out / "r2"))
    assert s1["methods"] == s2["methods"]
    for i in range(5):
        assert np.array_equal(np.asarray(Image.open(done_run / "frames" / f"{i:04d}.png")),
                              np.asarray(Image.open(out / "r2" / "frames" / f"{i:04d}.png")))


def test_image_formats_and_sizes(tmp_path: Path, pair: tuple[Path, Path], analysis_model: str | None) -> None:
    """RGBA PNG, 16-bit grayscale PNG, grayscale JPEG and WebP of different sizes all become model-size RGB."""
    src = np.asarray(Image.open(pair[0]))
    big = np.asarray(Image.fromarray(src).resize((96, 80)))
    rgba = np.dstack([big, np.full(big.shape[:2], 255, np.uint8)])
    rgba[:8, 40:56, 3] = 0  # a transparent patch at the top centre (kept by the centre crop), on white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    gray16 = (np.asarray(Image.fromarray(src).convert("L").resize((50, 70)), np.uint16) * 257)
    Image.fromarray(gray16).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I")
    Image.fromarray(src).convert("L").save(tmp_path / "gray.jpg", quality=90)
    Image.fromarray(np.asarray(Image.open(pair[1]).resize((40, 40)))).save(tmp_path / "small.webp")
    out = tmp_path / "runs"
    for name, (a, b) in {"rgba-16bit": ("rgba.png", "gray16.png"), "jpeg-webp": ("gray.jpg", "small.webp")}.items():
        res = runner.invoke(app, ["interpolate", str(tmp_path / a), str(tmp_path / b), *TINY, "--out", str(out),
                                  "--name", name, *model_args(analysis_model)])
        assert res.exit_code == 0, res.output
        run = out / name
        assert manifest(run)["status"] == "complete"
        frame = np.asarray(Image.open(run / "frames" / "0000.png"))
        assert frame.ndim == 3 and frame.shape[2] == 3 and frame.shape[0] == frame.shape[1]
        from geovid.runs.state import load_state
        from geovid.runs.store import Run

        tensors, _ = load_state(Run(run, manifest(run)), "encode")
        imgs = tensors["images"].numpy()
        assert imgs.shape == (2, frame.shape[0], frame.shape[1], 3) and imgs.dtype == np.uint8
        if name == "rgba-16bit":
            assert np.all(imgs[0, 0, imgs.shape[2] // 2] == 255)  # the transparent patch is white
            assert np.all(imgs[1][..., 0] == imgs[1][..., 1])  # grayscale → equal channels


def test_same_file_twice_gives_a_constant_sequence(tmp_path: Path, pair: tuple[Path, Path],
                                                   analysis_model: str | None) -> None:
    res = runner.invoke(app, ["interpolate", str(pair[0]), str(pair[0]), *TINY, "--out", str(tmp_path),
                              "--name", "same", *model_args(analysis_model)])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "same" / "summary.json").read_text())
    assert s["solver"]["solver"] == "none" and s["endpoint_distance"] == 0
    assert s["methods"]["geodesic"]["ppl"] == pytest.approx(0.0, abs=1e-9)


def test_option_errors_are_one_line_and_create_no_run(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    a, b = str(pair[0]), str(pair[1])
    out = tmp_path / "runs"
    cases = {
        ("--frames", "2"): "--frames must be at least 3",
        ("--noise-level", "1.5"): "--noise-level must be in (0, 1]",
        ("--noise-level", "0"): "--noise-level must be in (0, 1]",
        ("--baselines", "lerp,cubic"): "unknown baseline 'cubic'",
        ("--baselines", "none"): "--baselines needs at least one",
        ("--estimator", "magic"): "unknown estimator",
        ("--solver", "newton"): "unknown solver",
        ("--alpha", "-1"): "--alpha must be positive",
        ("--perceptual", "l1"): "unknown perceptual distance",
        ("--resize", "squash"): "unknown resize policy",
        ("--conditioning", "psychic"): "unknown conditioning",
        ("--draws", "0"): "--draws must be a whole number from 1 to 64",
        ("--invert-steps", "-1"): "--invert-steps must be a whole number from 0 to 10000",
        ("--conditioning", "invert", "--prompt-b", "x"): "--prompt-b needs --conditioning prompt",
        ("--estimator", "eps", "--draws", "4"): "--draws needs the contrast estimator",
    }
    for opts, message in cases.items():
        res = runner.invoke(app, ["interpolate", a, b, *opts, "--out", str(out)])
        assert message in one_line_error(res), (opts, res.stderr)
    err = one_line_error(runner.invoke(app, ["interpolate", a, str(tmp_path / "nope.png"), "--out", str(out)]))
    assert "image B" in err and "no such file" in err
    assert not out.exists() or not any(out.iterdir())


def test_not_an_image_marks_the_run_failed(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    out = tmp_path / "runs"
    err = one_line_error(runner.invoke(app, ["interpolate", str(pair[0]), str(bad), "--out", str(out), "--name",
                                             "bad", "--quiet"]))
    assert "notes.png is not a readable image" in err
    m = manifest(out / "bad")
    assert m["status"] == "failed" and "not a readable image" in m["error"]
    # Never overwritten: the same name again is refused.
    err = one_line_error(runner.invoke(app, ["interpolate", str(pair[0]), str(pair[1]), "--out", str(out),
                                             "--name", "bad", "--quiet"]))
    assert "already exists" in err


def test_interrupt_then_resume_skips_finished_phases(tmp_path: Path, pair: tuple[Path, Path], done_run: Path,
                                                     analysis_model: str | None) -> None:
    from geovid.tasks.interpolate import InterpolationConfig, run_interpolation

    out = tmp_path / "runs"
    cfg = InterpolationConfig(image_a=pair[0], image_b=pair[1], frames=5, max_calls=12, decode_steps=2, invert_steps=4,
                              model=analysis_model, device="cpu", out=out, name="ctrl-c")

    def ctrl_c(phase: str, done: int, total: int | None, info: dict) -> None:
        if phase == "decode":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_interpolation(cfg, progress=ctrl_c)
    m = manifest(out / "ctrl-c")
    assert m["status"] == "interrupted" and {"encode", "solve"} <= set(m["phases_done"])
    assert "decode" not in m["phases_done"]
    solve_state = out / "ctrl-c" / "state" / "solve.safetensors"
    stamp = solve_state.stat().st_mtime_ns
    calls_before = m["network_calls"]

    res = runner.invoke(app, ["interpolate", str(pair[0]), str(pair[1]), *FAST, "--out", str(out), "--name",
                              "ctrl-c", "--resume", *model_args(analysis_model)])
    assert res.exit_code == 0, res.output
    m = manifest(out / "ctrl-c")
    assert m["status"] == "complete" and m["network_calls"] > calls_before
    assert solve_state.stat().st_mtime_ns == stamp  # the solve was not redone
    from geovid.tasks.report import load_path

    # Same options as the uninterrupted run: the same path.
    assert torch.equal(load_path(out / "ctrl-c" / "path.safetensors")[0], load_path(done_run / "path.safetensors")[0])
    # Resuming a complete run is a no-op that prints the folder; other options are refused.
    res = runner.invoke(app, ["interpolate", str(pair[0]), str(pair[1]), *FAST, "--out", str(out), "--name",
                              "ctrl-c", "--resume", *model_args(analysis_model)])
    assert res.exit_code == 0 and res.stdout.strip().endswith("ctrl-c")
    err = one_line_error(runner.invoke(app, ["interpolate", str(pair[0]), str(pair[1]), *FAST, "--frames", "7",
                                             "--out", str(out), "--name", "ctrl-c", "--resume",
                                             *model_args(analysis_model)]))
    assert "different options" in err


def test_cancel_event_marks_the_run_interrupted(tmp_path: Path, pair: tuple[Path, Path],
                                                analysis_model: str | None) -> None:
    from geovid.progress import Cancelled
    from geovid.tasks.interpolate import InterpolationConfig, run_interpolation

    cancel = threading.Event()
    seen: list[str] = []

    def progress(phase: str, done: int, total: int | None, info: dict) -> None:
        seen.append(phase)
        if phase == "solve":
            cancel.set()

    cfg = InterpolationConfig(image_a=pair[0], image_b=pair[1], frames=5, max_calls=12, decode_steps=2, invert_steps=4,
                              model=analysis_model, device="cpu", out=tmp_path, name="cancelled")
    with pytest.raises(Cancelled):
        run_interpolation(cfg, progress=progress, cancel=cancel)
    m = manifest(tmp_path / "cancelled")
    assert m["status"] == "interrupted" and "solve" not in m["phases_done"]
    assert seen[0] == "load" and "encode" in seen


def test_prompt_b_conditions_only_the_inversion_of_b(tmp_path: Path, pair: tuple[Path, Path],
                                                     analysis_model: str | None) -> None:
    from geovid.tasks.report import load_path

    out = tmp_path / "runs"
    # --prompt-b selects the prompt conditioning; the plain run asks for it (its default is the inversion).
    for name, extra in (("plain", ["--conditioning", "prompt"]), ("prompt-b", ["--prompt-b", "a large blue cube"])):
        res = runner.invoke(app, ["interpolate", str(pair[0]), str(pair[1]), *TINY, *extra, "--out", str(out),
                                  "--name", name, *model_args(analysis_model)])
        assert res.exit_code == 0, res.output
    assert manifest(out / "prompt-b")["config"]["prompt_b"] == "a large blue cube"
    plain, _, _ = load_path(out / "plain" / "path.safetensors")
    cond, _, meta = load_path(out / "prompt-b" / "path.safetensors")
    assert meta["prompt_b"] == "a large blue cube"
    cos = torch.nn.functional.cosine_similarity
    # A is inverted with the (empty) --prompt in both runs: same direction (the radius R may differ); B is not.
    assert float(cos(plain[0], cond[0], dim=0)) == pytest.approx(1.0, abs=1e-9)
    assert float(cos(plain[-1], cond[-1], dim=0)) < 1 - 1e-6
