"""geovid.batch without a model or Ray: clip lists, globs, pairs CSVs, the summary file, the control folder, the
shared-folder probe, the resume plan."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from geovid.batch import (
    BatchControl,
    BatchSummary,
    CancelFlag,
    expand_inputs,
    probe_out,
    read_list,
    read_pairs,
)
from geovid.distributed import _batch_rows
from geovid.errors import InputError


def test_globs_lists_and_plain_paths(tmp_path: Path) -> None:
    for name in ("b.mp4", "a.mp4", "sub/c.mp4", "notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    listed = tmp_path / "list.txt"
    listed.write_text("# clips\nsub/c.mp4\n\n  /abs/z.mp4  \n")
    got = expand_inputs([tmp_path / "*.mp4", "missing.mp4", str(tmp_path / "**" / "c.mp4")], listed)
    assert got == [tmp_path / "a.mp4", tmp_path / "b.mp4", Path("missing.mp4"), tmp_path / "sub" / "c.mp4",
                   tmp_path / "sub" / "c.mp4", Path("/abs/z.mp4")]
    with pytest.raises(InputError, match="no file matches"):
        expand_inputs([tmp_path / "*.avi"])
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(InputError, match="names no file"):
        read_list(tmp_path / "empty.txt")
    with pytest.raises(InputError, match="no such file"):
        read_list(tmp_path / "none.txt")


def test_pairs_csv(tmp_path: Path) -> None:
    f = tmp_path / "pairs.csv"
    f.write_text('a,b,prompt\nx/a.png,/abs/b.png,"a cube, red"\n\nc.png,d.png,\n')
    assert read_pairs(f) == [{"a": tmp_path / "x/a.png", "b": Path("/abs/b.png"), "prompt": "a cube, red"},
                             {"a": tmp_path / "c.png", "b": tmp_path / "d.png", "prompt": None}]
    f.write_text("c.png,d.png\n")  # no header
    assert read_pairs(f) == [{"a": tmp_path / "c.png", "b": tmp_path / "d.png", "prompt": None}]
    for text, message in (("a,b\n", "has no pair"), ("a,b\nc.png\n", "line 2: needs two image paths"),
                          ("a,b,prompt\nc.png,d.png,a cube,red\n", "quote a prompt"),
                          ("a,b,seed\nc.png,d.png,1\n", "unknown column")):
        f.write_text(text)
        with pytest.raises(InputError, match=message):
            read_pairs(f)


def test_summary_is_complete_from_the_start_and_atomic(tmp_path: Path) -> None:
    rows = [{"name": None, "status": "pending"}, {"name": "r", "status": "complete"}]
    s = BatchSummary.create(tmp_path, ["name", "status"], rows)
    assert s.folder.name.startswith("batch-") and s.csv.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [s.folder.name]  # no hidden leftovers
    rows[0]["status"] = "failed"
    s.write(rows)
    assert pd.read_csv(s.csv)["status"].tolist() == ["failed", "complete"]
    assert pd.read_parquet(s.folder / "batch_summary.parquet")["status"].tolist() == ["failed", "complete"]
    assert sorted(p.name for p in s.folder.iterdir()) == ["batch_summary.csv", "batch_summary.parquet"]
    other = BatchSummary.create(tmp_path, ["name"], rows)  # same second: a new folder, never the same one
    assert other.folder != s.folder

    from geovid.runs.catalog import scan_runs

    assert scan_runs(tmp_path) == []  # batch folders are not runs


def test_control_folder_and_probe(tmp_path: Path) -> None:
    control = BatchControl.create(tmp_path)
    assert control.path.name.startswith(".geovid-batch-")
    flag = CancelFlag(control, interval=0.0)
    assert not flag.is_set() and control.start_attempt(3) == 0 and control.start_attempt(3) == 1
    assert control.started() == {3}
    assert probe_out(str(control.path), control.token) == (probe_out(str(control.path), control.token)[0], None)
    assert "another folder" in probe_out(str(control.path), "wrong-token")[1]
    assert "not visible" in probe_out(str(tmp_path / "elsewhere"), control.token)[1]
    control.cancel()
    assert flag.is_set() and control.cancelled()
    control.remove()
    assert not control.path.exists()


def test_ray_data_batch_formats() -> None:
    import numpy as np
    import pyarrow as pa

    want = [{"clip": "a.mp4", "item": 0}, {"clip": "b.mp4", "item": 1}]
    as_numpy = {"clip": np.array(["a.mp4", "b.mp4"]), "item": np.array([0, 1])}
    for batch in (want, as_numpy, pd.DataFrame(want), pa.Table.from_pylist(want)):
        rows = _batch_rows(batch)
        assert rows == want and all(type(r["item"]) is int and type(r["clip"]) is str for r in rows)


def test_resume_plan_skips_complete_and_continues_the_rest(tmp_path: Path) -> None:
    from geovid.batch import _plan_resume, kind_spec

    spec = kind_spec("analysis")
    template = spec.template({"out": tmp_path, "frames": 4})
    config = spec.run_config(template, {})

    def run(name: str, clip: str, status: str, cfg: dict, created: str) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps({
            "kind": "analysis", "status": status, "inputs": [str(tmp_path / clip)], "config": cfg,
            "created": created}))

    run("a-1", "a.mp4", "complete", config, "2026-01-01T00:00:00")
    run("b-1", "b.mp4", "complete", config, "2026-01-01T00:00:00")
    run("b-2", "b.mp4", "interrupted", config, "2026-01-02T00:00:00")  # newer: continued
    run("c-1", "c.mp4", "complete", {**config, "frames": 8}, "2026-01-01T00:00:00")  # other options: new run
    items = [{"item": k, "clip": str(tmp_path / c), "name": None} for k, c in enumerate(("a.mp4", "b.mp4", "c.mp4"))]
    todo, skipped = _plan_resume(spec, template, items, tmp_path)
    assert skipped == {0: tmp_path / "a-1"}
    assert [(t["item"], t["name"], t["resume"]) for t in todo] == [(1, "b-2", True), (2, None, False)]
