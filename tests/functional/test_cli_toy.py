"""`geovid toy` end to end through the Typer app, and the CLI's fast start."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from geovid.cli import app

runner = CliRunner()


def test_toy_writes_plot_and_json(tmp_path: Path) -> None:
    out, js = tmp_path / "toy.png", tmp_path / "toy.json"
    res = runner.invoke(app, ["toy", "--out", str(out), "--json", str(js), "--quiet"])
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    for key in ("points", "length", "straight_length", "network_calls", "iterations"):
        assert key in data
    pts = np.array(data["points"])
    assert pts.shape[1] == 2
    assert np.allclose(pts[0], [3, 0]) and np.allclose(pts[-1], [-3, 0])
    assert data["length"] < data["straight_length"] / 50  # around the gap, not across it
    assert data["network_calls"] > 0 and data["iterations"] > 0
    img = Image.open(out)
    assert img.size[0] > 800 and img.size[1] > 400
    # Not a blank picture: many distinct colours (contours, paths).
    assert len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)) > 500


def test_toy_custom_density_start_end_and_reference_solver(tmp_path: Path) -> None:
    dens = {"weights": [1, 1], "means": [[0, 1.5], [0, -3]], "covs": [[[2, 0], [0, 2]], [[1, 0], [0, 1]]]}
    (tmp_path / "d.json").write_text(json.dumps(dens))
    js = tmp_path / "r.json"
    res = runner.invoke(app, ["toy", "--density", str(tmp_path / "d.json"), "--start", "-2.5,0", "--end", "2.5,0",
                              "--solver", "reference", "--alpha", "0.5", "--out", str(tmp_path / "r.png"),
                              "--json", str(js), "-q"])
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    assert data["solver"] == "reference" and len(data["points"]) == 17
    assert data["length"] <= data["straight_length"]


def test_toy_score_metric(tmp_path: Path) -> None:
    js = tmp_path / "s.json"
    res = runner.invoke(app, ["toy", "--metric", "score", "--points", "17", "--out", str(tmp_path / "s.png"),
                              "--json", str(js), "-q"])
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    assert data["energy"] < data["straight_energy"]


def test_toy_bad_inputs_give_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "npd.json").write_text(json.dumps({"weights": [1], "means": [[0, 0]], "covs": [[[1, 2], [2, 1]]]}))
    (tmp_path / "keys.json").write_text(json.dumps({"weights": [1]}))
    cases = [
        (["--density", str(tmp_path / "bad.json")], "cannot read density file"),
        (["--density", str(tmp_path / "missing.json")], "not found"),
        (["--density", str(tmp_path / "npd.json")], "not positive definite"),
        (["--density", str(tmp_path / "keys.json")], "expected keys"),
        (["--start", "100,0"], "outside the density's sane range"),
        (["--end", "1;2"], "must look like X,Y"),
        (["--alpha", "-1"], "alpha must be positive"),
        (["--solver", "magic"], "unknown solver"),
        (["--metric", "taxicab"], "unknown metric"),
    ]
    for args, msg in cases:
        res = runner.invoke(app, ["toy", *args, "--out", str(tmp_path / "x.png"), "-q"])
        assert res.exit_code == 2, (args, res.output)
        lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and msg in lines[0], (args, res.output)
        assert "Traceback" not in res.output
    assert not (tmp_path / "x.png").exists()


def test_help_and_version_are_fast() -> None:
    for args in (["--help"], ["--version"]):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "geovid", *args], capture_output=True, text=True, check=True)
        assert time.perf_counter() - t0 < 3.0  # generous bound for a loaded CI box; typical 0.3 s
        assert "geovid" in out.stdout


def test_core_never_imports_front_ends() -> None:
    code = ("import sys, geovid.geometry.bvp, geovid.geometry.ivp, geovid.backbones.analytic, geovid.toy;"
            "bad=[m for m in sys.modules if m.split('.')[0] in ('textual','rich','tui') or m=='geovid.cli'];"
            "print(bad); sys.exit(1 if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True)
