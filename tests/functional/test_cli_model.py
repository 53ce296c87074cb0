"""``geovid sample``, ``geovid model info`` and ``geovid train`` through the CLI (Typer CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from geovid.cli import app

runner = CliRunner()


def test_model_info_json_for_the_bundled_model() -> None:
    res = runner.invoke(app, ["model", "info", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert {"path", "resolution", "latent_shape", "parameters", "scheduler"} <= set(info)
    assert info["resolution"] == 64 and info["latent_shape"] == [4, 16, 16]
    p = info["parameters"]
    assert p["total"] == p["vae"] + p["unet"] + p["text_encoder"] > 1_000_000
    assert Path(info["path"], "model_index.json").is_file()
    assert info["scheduler"]["prediction_type"] == "epsilon"


def test_model_info_text() -> None:
    res = runner.invoke(app, ["model", "info"])
    assert res.exit_code == 0, res.output
    assert "resolution   64 px" in res.stdout and "4×16×16" in res.stdout


def test_missing_model_is_a_one_line_error(tmp_path: Path) -> None:
    res = runner.invoke(app, ["model", "info", "--model", str(tmp_path / "nowhere")])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: model folder") and res.stderr.count("\n") == 1
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["model", "info", "--model", "stabilityai/stable-diffusion-2-1-base"],
                        env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")})
    assert res.exit_code == 2
    assert "not in the local Hugging Face cache" in res.stderr and "--model PATH" in res.stderr


def test_sample_writes_pngs_and_prints_paths(tmp_path: Path) -> None:
    out = tmp_path / "samples"
    res = runner.invoke(app, ["sample", "--prompt", "a large red sphere", "--n", "2", "--steps", "3",
                              "--upscale", "2", "--out", str(out), "--device", "cpu", "--quiet"])
    assert res.exit_code == 0, res.output
    paths = [Path(line) for line in res.stdout.split()]
    assert len(paths) == 4 and all(p.is_file() for p in paths)
    small = np.asarray(Image.open(out / "sample-000.png"))
    assert small.shape == (64, 64, 3)
    assert np.asarray(Image.open(out / "sample-000-x2.png")).shape == (128, 128, 3)
    # Same seed and options, same pixels; sample i does not depend on --n (up to float rounding in the batch).
    again = runner.invoke(app, ["sample", "--prompt", "a large red sphere", "--n", "2", "--steps", "3",
                                "--out", str(tmp_path / "again"), "--quiet"])
    assert again.exit_code == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "again" / "sample-000.png")), small)
    one = runner.invoke(app, ["sample", "--prompt", "a large red sphere", "--n", "1", "--steps", "3",
                              "--out", str(tmp_path / "one"), "--quiet"])
    assert one.exit_code == 0
    diff = np.abs(np.asarray(Image.open(tmp_path / "one" / "sample-000.png")).astype(int) - small.astype(int))
    assert diff.max() <= 3


def test_sample_rejects_bad_options(tmp_path: Path) -> None:
    res = runner.invoke(app, ["sample", "--prompt", "x", "--n", "0", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--n must be at least 1" in res.stderr
    res = runner.invoke(app, ["sample", "--prompt", "x", "--dtype", "fp64", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--dtype" in res.stderr


def test_evaluate_rejects_bad_options_before_loading(tmp_path: Path) -> None:
    for args, message in ((["--n", "0"], "--n must be at least 1, got 0"),
                          (["--steps", "0"], "--steps must be at least 1, got 0"),
                          (["--noise-level", "2"], "--noise-level must be in (0, 1], got 2.0")):
        res = runner.invoke(app, ["model", "evaluate", *args, "--out", str(tmp_path / "e.json")])
        assert res.exit_code == 2 and message in res.stderr, (args, res.output)
    assert not (tmp_path / "e.json").exists()


def test_train_smoke_builds_a_loadable_model(tmp_path: Path) -> None:
    """A few steps of both stages on the test-sized architecture; the result loads with the one loader."""
    out = tmp_path / "model"
    res = runner.invoke(app, ["train", "all", "--out", str(out), "--steps", "3", "--batch", "2", "--size", "tiny",
                              "--log-every", "1"])
    assert res.exit_code == 0, res.output
    assert "vae: 3 steps" in res.stdout and "unet: 3 steps" in res.stdout and "total time" in res.stdout
    assert (out / "model_index.json").is_file() and (out / "train-unet.json").is_file()
    info = runner.invoke(app, ["model", "info", "--model", str(out), "--json"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout)["latent_shape"] == [4, 16, 16]
    import torch

    from geovid.backbones.loader import load_backbone

    bb = load_backbone(str(out), device="cpu")
    assert bb.encode(torch.rand(1, 3, 32, 32)).shape == (1, 4, 16, 16)


def test_train_needs_a_budget_and_a_vae(tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", "vae", "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "budget" in res.stderr
    res = runner.invoke(app, ["train", "unet", "--out", str(tmp_path / "m"), "--steps", "1", "--size", "tiny"])
    assert res.exit_code == 2 and "no trained VAE" in res.stderr
    res = runner.invoke(app, ["train", "gan", "--out", str(tmp_path / "m"), "--steps", "1"])
    assert res.exit_code == 2 and "stage must be" in res.stderr


def test_train_cache_then_unet_from_the_cache(tmp_path: Path) -> None:
    """`geovid train cache` writes the latent set once; `train unet --cache` trains on it (model v2 recipe)."""
    out, cache = tmp_path / "model", tmp_path / "latents"
    res = runner.invoke(app, ["train", "vae", "--out", str(out), "--steps", "2", "--batch", "2", "--size", "tiny"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", "cache", "--out", str(out), "--cache", str(cache), "--scenes", "12",
                              "--workers", "0", "--artefacts", "0.5"])
    assert res.exit_code == 0, res.output
    assert "latent cache" in res.stdout and json.loads((cache / "manifest.json").read_text())["complete"]
    res = runner.invoke(app, ["train", "unet", "--out", str(out), "--cache", str(cache), "--steps", "2",
                              "--batch", "2", "--size", "tiny"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "train-unet.json").read_text())
    assert summary["cache"]["scenes"] == 12
    info = json.loads(runner.invoke(app, ["model", "info", "--model", str(out), "--json"]).stdout)
    assert "ghosting" in info["negative_prompt"]
    res = runner.invoke(app, ["train", "cache", "--out", str(out)])
    assert res.exit_code == 2 and "--cache" in res.stderr
