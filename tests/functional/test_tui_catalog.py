"""The tolerant run reader (geovid.runs.catalog) against fixture runs, damaged ones included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from geovid.runs import catalog
from geovid.runs.catalog import list_baselines, list_frames, list_plots, load_per_frame, load_run, scan_runs
from tests import fixtures_runs as fx


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return fx.write_all(tmp_path_factory.mktemp("runs"))


def test_scan_finds_every_case_newest_first(runs: dict[str, Path]) -> None:
    records = scan_runs(runs["analysis"].parent)
    assert {r.path for r in records} == set(runs.values())
    dated = [r.created for r in records if r.created]
    assert dated == sorted(dated, reverse=True)
    # Runs without a creation time (damaged) come last.
    assert {r.name for r in records[-2:]} == {"bad-json", "no-manifest"}


def test_complete_runs_have_their_key_numbers(runs: dict[str, Path]) -> None:
    a = load_run(runs["analysis"])
    assert (a.kind, a.status, a.problems) == ("analysis", "complete", [])
    assert a.numbers["excess"] == pytest.approx(1.07)
    assert (a.numbers["tests_passed"], a.numbers["tests_total"]) == (2, 3)
    assert a.numbers["residual_video"] == pytest.approx(0.30)
    assert a.verdict and a.verdict.startswith("The clip is close")
    assert a.created == "2026-11-23T10:15:00+00:00" and a.inputs == ["/data/clip-walk.mp4"]

    i = load_run(runs["interpolation"])
    assert (i.kind, i.status, i.problems) == ("interpolation", "complete", [])
    assert i.numbers["ppl"] == pytest.approx(0.42) and i.numbers["pdv_lerp"] == pytest.approx(0.023)

    e = load_run(runs["extrapolation"])
    assert (e.kind, e.status, e.problems) == ("extrapolation", "complete", [])
    assert e.numbers["steps"] == 20 and e.numbers["frames_decoded"] == 6


@pytest.mark.parametrize(("case", "status", "problem"), [
    ("running", "running", None),
    ("interrupted", "interrupted", None),
    ("failed", "failed", None),
    ("missing_manifest", "damaged", "manifest.json missing"),
    ("bad_json", "damaged", "manifest.json is not valid JSON"),
    ("missing_summary", "complete", "summary.json missing"),
    ("missing_frames", "complete", "frames/ missing or empty"),
])
def test_damaged_and_partial_runs_are_reported_not_raised(runs: dict[str, Path], case: str, status: str,
                                                          problem: str | None) -> None:
    record = load_run(runs[case])
    assert record.status == status
    if problem is None:
        assert record.problems == []
    else:
        assert any(p.startswith(problem) for p in record.problems), record.problems


def test_failed_run_keeps_its_error(runs: dict[str, Path]) -> None:
    assert load_run(runs["failed"]).error == "solver diverged: non-finite residual at iteration 12"


def test_missing_manifest_kind_is_inferred_from_summary(runs: dict[str, Path]) -> None:
    record = load_run(runs["missing_manifest"])
    assert record.kind == "extrapolation" and record.numbers["steps"] == 4


def test_odd_contents_never_raise(tmp_path: Path) -> None:
    (tmp_path / "stray-file.txt").write_text("not a run")
    (tmp_path / ".hidden").mkdir()
    weird = {
        "list-manifest": b"[1, 2, 3]",
        "binary-manifest": b"\xff\xfe\x00garbage",
        "bad-fields": json.dumps({"kind": 7, "status": None, "inputs": "x", "created": 5}).encode(),
        "nan-numbers": b'{"kind": "analysis", "status": "complete"}',
    }
    for name, content in weird.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_bytes(content)
    (tmp_path / "nan-numbers" / "summary.json").write_text('{"geodesic_excess": NaN, "tests": {"i": 3}}')
    batch = tmp_path / "batch-20261123"
    batch.mkdir()
    (batch / "batch_summary.csv").write_text("name,run\n")

    records = {r.name: r for r in scan_runs(tmp_path)}
    assert set(records) == set(weird)  # no stray file, hidden folder or batch folder
    assert records["list-manifest"].problems == ["manifest.json is not a JSON object"]
    assert records["binary-manifest"].status == "damaged"
    bad = records["bad-fields"]
    assert bad.kind == "unknown" and bad.inputs == [] and bad.created is None
    assert "excess" not in records["nan-numbers"].numbers  # NaN is not a number to show
    assert scan_runs(tmp_path / "does-not-exist") == []
    assert load_run(tmp_path / "stray-file.txt").problems == ["not a folder"]


def test_per_frame_table_csv_then_parquet_then_none(runs: dict[str, Path], tmp_path: Path) -> None:
    table = load_per_frame(runs["analysis"])
    assert table is not None
    assert set(table["path"]) == set(fx.ANALYSIS_PATHS) and len(table) == 5 * 8

    only_parquet = tmp_path / "pq"
    only_parquet.mkdir()
    (only_parquet / "per_frame.parquet").write_bytes((runs["interpolation"] / "per_frame.parquet").read_bytes())
    (only_parquet / "per_frame.csv").write_text("garbage\x00\n\"unterminated")
    table = load_per_frame(only_parquet)
    assert table is not None and set(table["path"]) == set(fx.INTERP_METHODS)

    assert load_per_frame(runs["failed"]) is None
    (tmp_path / "nocols").mkdir()
    (tmp_path / "nocols" / "per_frame.csv").write_text("a,b\n1,2\n")
    assert load_per_frame(tmp_path / "nocols") is None


def test_frames_are_listed_in_numeric_order(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (0, 2, 10, 1, 100):
        (folder / f"{i:04d}.png").write_bytes(b"")
    (folder / "strip.png").write_bytes(b"")
    (folder / "notes.txt").write_text("")
    assert [p.name for p in list_frames(tmp_path)] == ["0000.png", "0001.png", "0002.png", "0010.png", "0100.png"]
    assert list_frames(tmp_path, "missing") == []


def test_baselines_and_plots(runs: dict[str, Path]) -> None:
    assert list_baselines(runs["interpolation"]) == ["lerp", "slerp"]
    assert list_baselines(runs["analysis"]) == []
    assert [p.name for p in list_plots(runs["analysis"])] == ["log_density.png", "projection.png",
                                                              "residual.png", "strip.png"]


def test_signature_changes_when_a_run_changes(runs: dict[str, Path], tmp_path: Path) -> None:
    fx.write_complete_runs(tmp_path)
    before = catalog.runs_signature(tmp_path)
    assert catalog.runs_signature(tmp_path) == before
    manifest = tmp_path / "clip-walk" / "manifest.json"
    stat = manifest.stat()
    os.utime(manifest, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert catalog.runs_signature(tmp_path) != before
    assert catalog.runs_signature(tmp_path / "nope") == ()


def test_sort_keys(runs: dict[str, Path]) -> None:
    records = scan_runs(runs["analysis"].parent)
    names = [r.name for r in catalog.sort_records(records, "name")]
    assert names == sorted(names)
    by_result = catalog.sort_records(records, "result")
    # Numbers first, smallest first: interpolation PPL 0.42 before analysis excess 1.07.
    assert by_result[0].numbers.get("ppl") == pytest.approx(0.42)
    has = [any(k in r.numbers for k in ("excess", "ppl", "final_speed")) for r in by_result]
    assert has == sorted(has, reverse=True) and not has[-1]  # runs without a number last


def test_catalog_imports_no_front_end() -> None:
    code = ("import sys, geovid.runs.catalog; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'tui', 'pandas')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
