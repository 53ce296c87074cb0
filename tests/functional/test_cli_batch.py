"""Batches through the CLI (docs/batch.md): ``geovid analyze CLIPS --engine ray`` and ``geovid interpolate --pairs``
on both engines.

The Ray tests share one local Ray cluster of two CPUs (the CLI uses an initialised Ray as it is) and run two
workers. Tiny settings (4 frames, 6 DDIM steps, a 30-call solve; 3-frame interpolations) keep the module well
under 90 s on two shared cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from geovid.cli import app

runner = CliRunner()
FAST = ["--frames", "4", "--steps", "6", "--max-calls", "30", "--device", "cpu", "--threads", "1",
        "--no-decode-optimised", "--quiet"]
TINY = ["--frames", "3", "--max-calls", "4", "--decode-steps", "1", "--baselines", "slerp", "--no-uniform",
        "--device", "cpu", "--threads", "1", "--quiet"]

pytestmark = pytest.mark.usefixtures("one_thread_private_cache")


@pytest.fixture(scope="module")
def ray_cluster(one_thread_private_cache: None):
    """One local Ray cluster (2 CPUs) for the module, started as the CLI starts its own; after the private cache is
    set, so the workers inherit it."""
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'geovid[ray]')")
    from geovid.batch import ray_session

    with ray_session(None, num_cpus=2) as ray:
        yield ray


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three short world clips and one file that is not a video."""
    from geovid.world.clips import write_clip

    folder = tmp_path_factory.mktemp("clips")
    out = [write_clip(folder / f"{m}.mp4", motion=m, frames=6, seed=k)
           for k, m in enumerate(("linear", "jitter", "orbit"))]
    broken = folder / "broken.mp4"
    broken.write_text("this is not a video\n" * 20)
    return [*out, broken]


def _model(model: str | None) -> list[str]:
    return [] if model is None else ["--model", model]


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def _batch(out: Path) -> pd.DataFrame:
    (csv,) = sorted(out.glob("batch-*/batch_summary.csv"))[-1:]
    table = pd.read_csv(csv)
    assert pd.read_parquet(csv.with_suffix(".parquet"))["status"].tolist() == table["status"].tolist()
    return table


def test_ray_engine_same_runs_as_local_then_resume(clips: list[Path], analysis_model: str | None,
                                                   ray_cluster, tmp_path: Path) -> None:
    local, distributed = tmp_path / "local", tmp_path / "ray"
    res = runner.invoke(app, ["analyze", *map(str, clips[:3]), "--out", str(local), *FAST, *_model(analysis_model)])
    assert res.exit_code == 0, res.output

    # Clips as arguments and a glob; the broken file fails alone.
    res = runner.invoke(app, ["analyze", str(clips[0]), str(clips[0].parent / "[jo]*.mp4"), str(clips[3]),
                              "--out", str(distributed), "--engine", "ray", "--workers", "2", *FAST,
                              *_model(analysis_model)])
    assert res.exit_code == 2, res.output
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: 1 of 4 items failed: broken.mp4: ") and \
        "not a readable video" in err[0], res.stderr
    rows = _batch(distributed)
    assert [Path(c).name for c in rows["clip"]] == ["linear.mp4", "jitter.mp4", "orbit.mp4", "broken.mp4"]
    assert rows["status"].tolist() == ["complete", "complete", "complete", "failed"]
    assert "not a readable video" in rows["error"][3] and _manifest(Path(rows["run"][3]))["status"] == "failed"
    assert res.stdout.strip().splitlines()[-4:] == rows["run"].tolist()  # run folders last

    # Same run folders and numbers as the local engine (names: <stem>-<time>, as the local engine makes them).
    for clip, run in zip(clips[:3], rows["run"][:3]):
        run = Path(run)
        (twin,) = [p for p in local.iterdir() if p.name.startswith(clip.stem + "-")]
        assert run.name.startswith(clip.stem + "-")
        assert _summary(run) == _summary(twin)
        assert (run / "per_frame.csv").read_bytes() == (twin / "per_frame.csv").read_bytes()
        assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == \
            sorted(p.relative_to(twin).as_posix() for p in twin.rglob("*"))
        m = _manifest(run)
        assert m["command"] == _manifest(twin)["command"] and m["config"] == _manifest(twin)["config"]

    # The TUI's catalog sees the batch's runs (not the batch folder, not the control folder).
    from geovid.runs.catalog import scan_runs

    assert sorted(r.status for r in scan_runs(distributed)) == ["complete", "complete", "complete", "failed"]
    assert not list(distributed.glob(".geovid-batch-*"))

    # --resume: the complete runs are skipped (no worker starts), the batch summary lists them.
    res = runner.invoke(app, ["analyze", *map(str, clips[:3]), "--out", str(distributed), "--engine", "ray",
                              "--workers", "2", "--resume", *FAST, *_model(analysis_model)])
    assert res.exit_code == 0, res.output
    again = _batch(distributed)
    assert again["status"].tolist() == ["complete"] * 3 and again["run"].tolist() == rows["run"][:3].tolist()
    assert res.stdout.strip().splitlines() == rows["run"][:3].tolist()
    assert len([p for p in distributed.iterdir() if not p.name.startswith("batch-")]) == 4  # no new run


def _pairs_csv(folder: Path) -> Path:
    from PIL import Image

    from geovid.world.render import render
    from geovid.world.scene import Scene, random_scene

    lines = ["a,b,prompt"]
    for seed in (3, 4):
        scene = random_scene(seed, n_objects=2)
        moved = Scene(tuple(o.moved(x=1.0 - o.x) for o in scene.objects))
        Image.fromarray(render(scene)).save(folder / f"a{seed}.png")
        Image.fromarray(render(moved)).save(folder / f"b{seed}.png")
        lines.append(f"a{seed}.png,b{seed}.png," + ('"a red cube, moved"' if seed == 4 else ""))
    lines.append("a3.png,missing.png,")
    (folder / "pairs.csv").write_text("\n".join(lines) + "\n")
    return folder / "pairs.csv"


def test_pairs_csv_on_both_engines(analysis_model: str | None, ray_cluster, tmp_path: Path) -> None:
    pairs = _pairs_csv(tmp_path)
    tables = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        extra = ["--workers", "2"] if engine == "ray" else []
        res = runner.invoke(app, ["interpolate", "--pairs", str(pairs), "--engine", engine, *extra, "--out", str(out),
                                  *TINY, *_model(analysis_model)])
        assert res.exit_code == 2, res.output
        assert res.stderr.startswith("error: 1 of 3 items failed: a3.png,missing.png: ") and "no such file" in \
            res.stderr and res.stderr.count("\n") == 1, res.stderr
        tables[engine] = t = _batch(out)
        assert t["status"].tolist() == ["complete", "complete", "failed"] and pd.isna(t["run"][2])
        assert [Path(a).name for a in t["a"]] == ["a3.png", "a4.png", "a3.png"]
        assert t["prompt"].fillna("").tolist() == ["", "a red cube, moved", ""]
        assert _manifest(Path(t["run"][1]))["config"]["prompt"] == "a red cube, moved"
        assert t["ppl"][:2].notna().all() and t["ppl_slerp"][:2].notna().all()
    for col in ("ppl", "pdv", "log_relative_length", "ppl_slerp", "a_psnr"):
        assert tables["local"][col][:2].tolist() == tables["ray"][col][:2].tolist(), col
    for a, b in zip(tables["local"]["run"][:2], tables["ray"]["run"][:2]):
        sa, sb = _summary(Path(a)), _summary(Path(b))
        sa["solver"].pop("seconds"), sb["solver"].pop("seconds")  # wall time
        assert sa == sb


def test_pairs_ctrl_c_then_resume(analysis_model: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the second pair → it is interrupted, the third cancelled, exit 130; --resume skips the first,
    finishes the second in its folder (phases done are not repeated) and runs the third. (Local engine; the Ray
    engine shares this bookkeeping, and its Ctrl-C goes through the batch's cancel flag: docs/batch.md.)"""
    import geovid.tasks.interpolation_job as task

    pairs = _pairs_csv(tmp_path)
    pairs.write_text("\n".join([*pairs.read_text().splitlines()[:3], "a4.png,b3.png"]) + "\n")
    real, seen = task.InterpolationJob.measure, []

    def measure(self):
        seen.append(self.paths)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(task.InterpolationJob, "measure", measure)
    args = ["interpolate", "--pairs", str(pairs), "--out", str(tmp_path / "runs"), *TINY, *_model(analysis_model)]
    res = runner.invoke(app, args)
    assert res.exit_code == 130 and res.stderr.strip() == "interrupted", res.output
    rows = _batch(tmp_path / "runs")
    assert rows["status"].tolist() == ["complete", "interrupted", "cancelled"]
    second = Path(rows["run"][1])
    assert _manifest(second)["phases_done"] == ["load", "encode", "solve", "decode"]
    solved = (second / "state" / "solve.safetensors").stat().st_mtime_ns

    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    again = _batch(tmp_path / "runs")
    assert again["status"].tolist() == ["complete"] * 3
    assert again["run"][:2].tolist() == rows["run"][:2].tolist()
    assert (second / "state" / "solve.safetensors").stat().st_mtime_ns == solved  # not solved again
    assert len(seen) == 4  # the first pair was skipped: measured once before, then pairs 2 and 3
    assert res.stdout.strip().splitlines()[-3:] == again["run"].tolist()


def test_engine_errors_are_one_line(clips: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    cases = [
        (["analyze", str(clips[0]), "--workers", "2"], "--workers need --engine ray"),
        (["analyze", str(tmp_path / "nothing-*.mp4")], "no file matches"),
        (["analyze", "--list", str(tmp_path / "list.txt")], "no such file"),
        (["interpolate", "--engine", "ray"], "give two images A B, or --pairs FILE"),
        (["interpolate", "--pairs", str(tmp_path / "p.csv")], "--pairs"),
    ]
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    cases.append((["analyze", str(clips[0]), "--engine", "ray", "--out", str(tmp_path)],
                  "--engine ray needs Ray, which is not installed: pip install 'geovid[ray]'"))
    for args, expected in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and expected in res.stderr, \
            (args, res.stderr)
    assert not list(tmp_path.iterdir())  # nothing was started
