"""``geovid world ...`` through the Typer app, as a user runs it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from geovid.cli import app
from geovid.world.render import render_seed

runner = CliRunner()


def test_world_image_prints_caption_and_writes_the_rendered_scene(tmp_path) -> None:
    out = tmp_path / "scene.png"
    res = runner.invoke(app, ["world", "image", str(out), "--seed", "7", "--size", "64"])
    assert res.exit_code == 0, res.output
    img, cap, _ = render_seed(7, 64)
    assert res.output.strip() == cap
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), img)


def test_world_clip_writes_video_and_pngs(tmp_path) -> None:
    decord = pytest.importorskip("decord")
    out = tmp_path / "clip.mp4"
    res = runner.invoke(app, ["world", "clip", str(out), "--motion", "orbit", "--frames", "6", "--fps", "6",
                              "--seed", "3", "--size", "40", "--png-dir", str(tmp_path / "png")])
    assert res.exit_code == 0, res.output
    assert "circles" in res.output
    vr = decord.VideoReader(str(out))
    assert len(vr) == 6 and vr[0].shape == (40, 40, 3)
    assert len(list((tmp_path / "png").glob("frame_*.png"))) == 6


def test_world_dataset_and_check(tmp_path) -> None:
    res = runner.invoke(app, ["world", "dataset", str(tmp_path / "ds"), "--n", "5", "--start-seed", "10", "-q"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in (tmp_path / "ds" / "captions.jsonl").read_text().splitlines()]
    assert [d["seed"] for d in lines] == [10, 11, 12, 13, 14]
    first = tmp_path / "ds" / lines[0]["file"]
    assert first.is_file() and lines[0]["caption"] == render_seed(10)[1]
    ok = runner.invoke(app, ["world", "check", str(first), "--caption", lines[0]["caption"]])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("plausible") and "caption match: True" in ok.output
    noisy = np.asarray(Image.open(first)).astype(float) + np.random.default_rng(0).normal(0, 25, (64, 64, 3))
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(tmp_path / "noisy.png")
    bad = runner.invoke(app, ["world", "check", str(tmp_path / "noisy.png")])
    assert bad.exit_code == 1 and "implausible" in bad.output and "noisy" in bad.output


@pytest.mark.parametrize("args", [
    ["world", "image", "x.png", "--size", "2"],
    ["world", "image", "x.xyz"],
    ["world", "clip", "x.mp4", "--motion", "spin"],
    ["world", "clip", "x.mp4", "--frames", "1"],
    ["world", "clip", "x.mp4", "--fps", "0"],
    ["world", "clip", "x.flv"],
    ["world", "dataset", "d", "--n", "0"],
    ["world", "check", "missing.png"],
    ["world", "check", "missing.png", "--strictness", "extreme"],
])
def test_bad_options_give_one_line_error_and_exit_2(tmp_path, monkeypatch, args) -> None:
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert "Traceback" not in res.output
