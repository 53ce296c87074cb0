"""The run-directory writer (geovid/runs/store.py) against docs/run-directory.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from geovid.errors import GeovidError, InputError
from geovid.progress import Cancelled
from geovid.runs import store
from geovid.runs.store import Run, to_jsonable

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


def _manifest(run: Run) -> dict:
    return json.loads((run.path / "manifest.json").read_text())


def _make(tmp_path: Path, **kw) -> Run:
    kw.setdefault("inputs", [tmp_path / "clip.mp4"])
    kw.setdefault("config", {"noise_level": 0.6, "alpha": 1.0})
    return Run.create(tmp_path / "runs", "analysis", **kw)


def _write_required(run: Run) -> None:
    """The outputs every complete analysis run has."""
    run.write_json("summary.json", {"verdict": "ok"})
    run.write_table("per_frame", pd.DataFrame({"path": ["video"], "frame": [0]}))
    run.write_frames("frames", [np.zeros((2, 2, 3), np.uint8)])
    run.write_frames("optimised", [np.zeros((2, 2, 3), np.uint8)])


def test_create_writes_running_manifest_first(tmp_path: Path) -> None:
    run = _make(tmp_path, name="first", model="bundled:geovid-tiny-sd", seed=7,
                command=["geovid", "analyze", "clip.mp4"], config={"noise_level": np.float32(0.5), "k": np.int64(3)})
    m = _manifest(run)
    assert run.path == tmp_path / "runs" / "first" and sorted(p.name for p in run.path.iterdir()) == ["manifest.json"]
    assert m["schema"] == 1 and m["kind"] == "analysis" and m["name"] == "first"
    assert m["status"] == "running" and m["error"] is None
    assert ISO_UTC.match(m["created"]) and ISO_UTC.match(m["updated"])
    assert m["inputs"] == [str(tmp_path / "clip.mp4")]
    assert m["command"] == ["geovid", "analyze", "clip.mp4"]
    assert m["config"] == {"noise_level": 0.5, "k": 3}
    assert to_jsonable(np.float32(0.6)) == 0.6 and to_jsonable(np.float16(0.1)) == 0.1
    assert m["model"] == "bundled:geovid-tiny-sd" and m["seed"] == 7
    assert m["timings"] == {} and m["phases_done"] == [] and m["network_calls"] == 0
    assert set(m["versions"]) == {"geovid", "torch", "diffusers", "numpy", "python"}
    assert m["versions"]["numpy"] == np.__version__
    assert m["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))


def test_relative_inputs_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = Run.create("runs", "interpolation", name="x", inputs=["a.png", Path("b.png")])
    assert _manifest(run)["inputs"] == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]


def test_existing_name_is_never_overwritten(tmp_path: Path) -> None:
    run = _make(tmp_path, name="same")
    run.write_json("summary.json", {"keep": True})
    with pytest.raises(InputError, match=r"^run same already exists; use --name or --resume$"):
        _make(tmp_path, name="same")
    assert json.loads((run.path / "summary.json").read_text()) == {"keep": True}
    assert _manifest(run)["config"] == {"noise_level": 0.6, "alpha": 1.0}


def test_default_names_and_collisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert re.match(r"^my-clip-\d{8}-\d{6}$", _make(tmp_path, inputs=["/videos/my clip.mp4"]).name)
    monkeypatch.setattr(store, "_stamp", lambda: "20261123-101500")
    names = [_make(tmp_path, inputs=["/videos/clip.mp4"]).name for _ in range(3)]
    assert names == ["clip-20261123-101500", "clip-20261123-101500-2", "clip-20261123-101500-3"]
    assert Run.create(tmp_path / "runs", "extrapolation").name == "extrapolation-20261123-101500"


@pytest.mark.parametrize("bad", ["", "a/b", "..", "with space", "-x"])
def test_invalid_names_and_kinds(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InputError, match="invalid run name"):
        _make(tmp_path, name=bad)
    with pytest.raises(InputError, match="unknown run kind"):
        Run.create(tmp_path, "training")


def test_phase_records_timings_and_done_phases(tmp_path: Path) -> None:
    run = _make(tmp_path)
    with run.phase("decode"):
        pass
    m = _manifest(run)
    assert m["phases_done"] == ["decode"] and m["timings"]["decode"] >= 0
    with pytest.raises(RuntimeError), run.phase("encode"):
        raise RuntimeError("boom")
    assert _manifest(run)["phases_done"] == ["decode"] and "encode" not in _manifest(run)["timings"]
    assert run.is_done("decode") and not run.is_done("encode")


def test_network_calls_are_counted_and_flushed(tmp_path: Path) -> None:
    run = _make(tmp_path)
    run.add_network_calls(8)
    run.add_network_calls(np.int64(8))
    assert run.manifest["network_calls"] == 16
    with run.phase("solve"):
        pass
    assert _manifest(run)["network_calls"] == 16
    run.set_network_calls(1234)
    run.fail("stop")
    assert _manifest(run)["network_calls"] == 1234


def test_write_json_is_atomic_and_json_safe(tmp_path: Path) -> None:
    run = _make(tmp_path)
    obj = {"a": np.float64(1.5), "b": np.arange(3), "c": tmp_path, "d": (1, 2), "e": float("nan"),
           "f": np.bool_(True), "g": {3: np.float32(0.25)}, "h": [float("inf")]}
    target = run.write_json("sub/summary.json", obj)
    text = target.read_text()
    assert json.loads(text) == {"a": 1.5, "b": [0, 1, 2], "c": str(tmp_path), "d": [1, 2], "e": None,
                                "f": True, "g": {"3": 0.25}, "h": [None]}
    assert "NaN" not in text and not list(run.path.rglob("*.tmp"))
    with pytest.raises(ValueError, match="relative"):
        run.write_json("../escape.json", {})
    with pytest.raises(TypeError, match="cannot store"):
        run.write_json("x.json", {"obj": object()})


def test_to_jsonable_handles_tensors_and_dataclasses() -> None:
    import dataclasses

    import torch

    @dataclasses.dataclass
    class P:
        x: float
        y: np.ndarray

    assert to_jsonable({"t": torch.tensor([1.0, 2.0]), "p": P(1.0, np.ones(2))}) == {
        "t": [1.0, 2.0], "p": {"x": 1.0, "y": [1.0, 1.0]}}


def test_write_table_writes_csv_and_parquet(tmp_path: Path) -> None:
    run = _make(tmp_path)
    df = pd.DataFrame({"path": ["video", "video", "line"], "frame": [0, 1, 0], "time_s": [0.0, 0.04, 0.0],
                       "residual": [0.1, np.nan, 0.3]})
    csv, pq = run.write_table("per_frame", df)
    assert (csv.name, pq.name) == ("per_frame.csv", "per_frame.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(pq), df)
    pd.testing.assert_frame_equal(pd.read_csv(csv), df)
    assert not list(run.path.rglob("*.tmp"))


def test_write_image_and_frames(tmp_path: Path) -> None:
    run = _make(tmp_path)
    img = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    p = run.write_image("plots/x.png", img)
    assert (np.asarray(Image.open(p)) == img).all()
    f = run.write_image("f.png", np.full((2, 2), 0.5))
    assert np.asarray(Image.open(f)).tolist() == [[128, 128], [128, 128]]
    paths = run.write_frames("frames", [img, img, img])
    assert [q.name for q in paths] == ["0000.png", "0001.png", "0002.png"]
    with pytest.raises(ValueError, match="unknown image format"):
        run.write_image("x.nope", img)


def test_complete_requires_outputs(tmp_path: Path) -> None:
    run = _make(tmp_path)
    run.write_json("summary.json", {})
    (run.path / "frames").mkdir()  # an empty folder does not count
    with pytest.raises(GeovidError, match=r"incomplete: missing per_frame\.csv, per_frame\.parquet, frames/, "
                                          r"optimised/$"):
        run.complete()
    m = _manifest(run)
    assert m["status"] == "failed" and "per_frame.csv" in m["error"]

    run = _make(tmp_path)
    _write_required(run)
    run.expect("plots/residual.png")
    with pytest.raises(GeovidError, match=r"missing plots/residual\.png$"):
        run.complete()
    run = _make(tmp_path)
    _write_required(run)
    with pytest.raises(GeovidError, match=r"missing strip\.png$"):
        run.complete(required=["strip.png"])
    run = _make(tmp_path)
    _write_required(run)
    run.write_image("strip.png", np.zeros((2, 4, 3), np.uint8))
    run.complete(required=["strip.png"])
    assert _manifest(run)["status"] == "complete" and _manifest(run)["error"] is None
    assert store.REQUIRED_FILES["interpolation"][-1] == "baselines/"


def test_guard_marks_interrupted_on_ctrl_c_and_cancel(tmp_path: Path) -> None:
    for exc in (KeyboardInterrupt(), Cancelled()):
        run = _make(tmp_path)
        with pytest.raises(type(exc)), run.guard():
            with run.phase("decode"):
                pass
            raise exc
        m = _manifest(run)
        assert m["status"] == "interrupted" and m["phases_done"] == ["decode"]


def test_guard_marks_failed_with_one_line_and_traceback(tmp_path: Path) -> None:
    run = _make(tmp_path)
    with pytest.raises(ZeroDivisionError), run.guard():
        raise ZeroDivisionError("division\nby zero")
    m = _manifest(run)
    assert m["status"] == "failed" and m["error"] == "ZeroDivisionError: division by zero"
    assert "ZeroDivisionError" in (run.path / "traceback.txt").read_text()

    run = _make(tmp_path)
    with pytest.raises(InputError), run.guard():
        raise InputError("clip.mp4 has 3 frames; need at least 16")
    assert _manifest(run)["error"] == "clip.mp4 has 3 frames; need at least 16"
    assert not (run.path / "traceback.txt").exists()


def test_guard_never_leaves_a_half_written_run_complete(tmp_path: Path) -> None:
    run = _make(tmp_path)
    with pytest.raises(OSError), run.guard():
        _write_required(run)
        run.complete()
        raise OSError("disk full while writing video.mp4")
    assert _manifest(run)["status"] == "failed"

    run = _make(tmp_path)
    with pytest.raises(GeovidError, match="missing"), run.guard():
        pass  # normal exit without outputs: auto-complete refuses
    assert _manifest(run)["status"] == "failed"

    run = _make(tmp_path)
    with run.guard():
        _write_required(run)
    assert _manifest(run)["status"] == "complete"


def test_resume(tmp_path: Path) -> None:
    run = _make(tmp_path, name="r")
    with pytest.raises(KeyboardInterrupt), run.guard():
        with run.phase("decode"):
            pass
        run.add_network_calls(5)
        raise KeyboardInterrupt
    again = Run.resume(run.path, config={"noise_level": 0.6, "alpha": 1.0})
    assert again.status == "running" and _manifest(again)["status"] == "running"
    assert again.is_done("decode") and again.manifest["network_calls"] == 5
    with again.guard():
        _write_required(again)
    with pytest.raises(InputError, match=r"run r is already complete"):
        Run.resume(run.path)


def test_resume_refuses_a_different_config_without_touching_the_run(tmp_path: Path) -> None:
    run = _make(tmp_path, name="r")
    run.interrupt()
    before = (run.path / "manifest.json").read_text()
    msg = r"different options \(alpha: 1\.0 -> 2\.0; noise_level: 0\.6 -> \(unset\); steps: \(unset\) -> 4\)"
    with pytest.raises(InputError, match=msg):
        Run.resume(run.path, config={"alpha": 2.0, "steps": 4})
    assert (run.path / "manifest.json").read_text() == before
    # numpy values compare by what they print: float32(0.6) is stored and compared as 0.6.
    Run.resume(run.path).check_same_config({"alpha": np.float64(1.0), "noise_level": np.float32(0.6)})


def test_resume_of_damaged_or_foreign_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a run folder"):
        Run.resume(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(InputError, match=r"manifest\.json is unreadable"):
        Run.resume(tmp_path)
    (tmp_path / "manifest.json").write_text('{"kind": "something"}')
    with pytest.raises(InputError, match="not a geovid run manifest"):
        Run.resume(tmp_path)


def test_store_import_and_create_do_not_import_heavy_packages(tmp_path: Path) -> None:
    code = ("import sys; from geovid.runs.store import Run; "
            f"Run.create({str(tmp_path)!r}, 'analysis', name='light'); "
            "print(sorted(m for m in ('torch', 'diffusers', 'pandas', 'rich', 'textual') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
