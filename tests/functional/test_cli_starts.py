"""``--starts`` on ``geovid toy`` and ``geovid interpolate``, and the critical start on the CLI (issue #14,
docs/method.md §5): reported, broken, never printed or written as NaN."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geovid.cli import app
from geovid.toy import multimodal_problems

runner = CliRunner()


def _no_nan(text: str) -> dict:
    def bad(token: str) -> None:
        raise AssertionError(f"{token} in JSON")

    return json.loads(text, parse_constant=bad)


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("density") / "ring.json"
    path.write_text(json.dumps(multimodal_problems()["ring-saddle"][0].to_dict()))
    return path


def test_toy_reports_and_breaks_a_critical_start(tmp_path: Path, ring: Path) -> None:
    js = tmp_path / "r.json"
    res = runner.invoke(app, ["toy", "--density", str(ring), "--start", "3,0", "--end", "-3,0", "--init", "straight",
                              "--points", "17", "--out", str(tmp_path / "r.png"), "--json", str(js)])
    assert res.exit_code == 0, res.output
    assert "critical start" in res.output and "nan" not in res.output.lower()
    data = _no_nan(js.read_text())
    assert data["critical_start"] and data["critical_broken"] and data["iterations"] > 0
    assert data["length"] < data["straight_length"] / 1e4
    assert len(data["start_report"]) == 3 and data["start_report"][0]["critical"]


def test_toy_starts_option(tmp_path: Path) -> None:
    js = tmp_path / "s.json"
    res = runner.invoke(app, ["toy", "--starts", "2", "--init", "straight", "--points", "17",
                              "--out", str(tmp_path / "s.png"), "--json", str(js), "-q"])
    assert res.exit_code == 0, res.output
    data = _no_nan(js.read_text())
    assert data["starts"] == 2 and [s["kind"] for s in data["start_report"]] == ["initial", "bend", "bend"]
    for args, msg in ((["--starts", "-1"], "--starts must be 0 or more"), (["--init", "magic"], "unknown initial")):
        bad = runner.invoke(app, ["toy", *args, "--out", str(tmp_path / "x.png"), "-q"])
        assert bad.exit_code == 2 and msg in bad.output, bad.output


@pytest.mark.usefixtures("one_thread_private_cache")
def test_interpolate_starts(tmp_path: Path, analysis_model: str | None) -> None:
    from tests.functional.test_cli_interpolate import TINY, model_args, scene_pair

    a, b, _ = scene_pair(4, tmp_path)
    out = tmp_path / "runs"
    # eps (1 call per point) keeps the call count a count of path evaluations (the default contrast estimator,
    # issue #13, costs 2 calls per point).
    res = runner.invoke(app, ["interpolate", str(a), str(b), *TINY, "--max-calls", "6", "--starts", "2",
                              "--estimator", "eps", "--out", str(out), "--name", "ms", *model_args(analysis_model)])
    assert res.exit_code == 0, res.output
    s = _no_nan((out / "ms" / "summary.json").read_text())
    solver = s["solver"]
    assert solver["starts"] == 2 and len(solver["start_report"]) == 3
    assert solver["network_calls"] <= 3 * 6
    bad = runner.invoke(app, ["interpolate", str(a), str(b), "--solver", "reference", "--starts", "1",
                              "--out", str(out)])
    assert bad.exit_code == 2 and "--starts needs the geovid solver" in bad.stderr, bad.output
