"""Fixture runs written to the run-directory contract (docs/run-directory.md), for TUI and catalog tests.

Deterministic: fixed timestamps, fixed numbers, frames drawn with numpy (64×64 coloured images
with a moving disc). Besides complete analysis/interpolation/extrapolation runs it writes the
damaged and partial cases the reader must survive: running, interrupted, failed, missing
manifest, bad JSON, missing summary, missing frames.

Also usable by hand::

    .venv/bin/python -m tests.fixtures_runs /tmp/fixture-runs
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SIZE = 64
ANALYSIS_PATHS = ("video", "optimised", "perturbed", "smoothed", "line")
INTERP_METHODS = ("geodesic", "lerp", "slerp")


def frame_image(i: int, n: int, hue: float = 0.0, size: int = SIZE) -> np.ndarray:
    """An RGB uint8 frame: a colour gradient with a disc moving left to right (frame i of n)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    t = i / max(n - 1, 1)
    r = 0.5 + 0.5 * np.sin(2 * np.pi * (xx + hue))
    g = 0.3 + 0.7 * yy
    b = np.full_like(xx, 0.35 + 0.5 * t)
    img = np.stack([r, g, b], axis=-1)
    cx, cy = 0.15 + 0.7 * t, 0.5 + 0.2 * np.sin(np.pi * t)
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 < 0.12**2
    img[disc] = (1.0, 1.0, 0.2)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_frames(folder: Path, n: int, hue: float = 0.0) -> list[Path]:
    """Write ``n`` numbered PNG frames into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{i:04d}.png"
        Image.fromarray(frame_image(i, n, hue)).save(p)
        paths.append(p)
    return paths


def write_strip(run: Path, rows: list[list[Path]]) -> None:
    """``strip.png``: one row of frames per sequence."""
    cols = max(len(r) for r in rows)
    strip = Image.new("RGB", (cols * SIZE, len(rows) * SIZE))
    for y, row in enumerate(rows):
        for x, p in enumerate(row):
            strip.paste(Image.open(p), (x * SIZE, y * SIZE))
    strip.save(run / "strip.png")


def write_plot_png(path: Path, seed: int) -> None:
    """A small placeholder plot PNG (white with a coloured polyline), deterministic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((48, 96, 3), 255, np.uint8)
    xs = np.arange(96)
    ys = (24 + 16 * np.sin(xs / 10 + seed)).astype(int)
    img[ys, xs] = (30, 90, 200)
    Image.fromarray(img).save(path)


def write_json(path: Path, data: Any) -> None:
    """Write JSON the way the contract says (atomic replace)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def manifest(kind: str, name: str, status: str, minute: int, inputs: list[str], **extra: Any) -> dict[str, Any]:
    """A contract manifest with fixed timestamps (2026-11-23 10:MM)."""
    data: dict[str, Any] = {
        "schema": 1,
        "kind": kind,
        "name": name,
        "status": status,
        "error": None,
        "created": f"2026-11-23T10:{minute:02d}:00+00:00",
        "updated": f"2026-11-23T10:{minute:02d}:42+00:00",
        "inputs": inputs,
        "command": ["geovid", {"analysis": "analyze", "interpolation": "interpolate",
                               "extrapolation": "extrapolate"}[kind], *inputs],
        "config": {"noise_level": 0.6, "alpha": 1.0, "metric": "density", "estimator": "eps", "frames": 8},
        "model": "bundled:geovid-tiny-sd",
        "versions": {"geovid": "0.1.0", "torch": "2.13.0", "diffusers": "0.42.1", "python": "3.11.7"},
        "seed": 0,
        "timings": {"decode": 0.4, "encode": 1.2, "solve": 8.1},
        "phases_done": ["decode", "encode", "solve", "write"] if status == "complete" else ["decode"],
        "network_calls": 1234,
    }
    data.update(extra)
    return data


def _write_table(run: Path, rows: list[dict[str, Any]], parquet: bool = True) -> None:
    with open(run / "per_frame.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if parquet:
        import pandas as pd

        pd.DataFrame(rows).to_parquet(run / "per_frame.parquet")


def _profile(n: int, scale: float, phase: float) -> list[float]:
    return [round(scale * float(np.sin(np.pi * i / max(n - 1, 1) + phase)), 4) for i in range(n)]


def write_analysis(runs_dir: Path, name: str = "clip-walk", minute: int = 15, n: int = 8,
                   status: str = "complete", excess: float = 1.07) -> Path:
    """A complete analysis run (docs/method.md §7): frames/, optimised/, strip, plots, tables, summary."""
    run = runs_dir / name
    run.mkdir(parents=True)
    write_json(run / "manifest.json", manifest("analysis", name, status, minute, [f"/data/{name}.mp4"]))
    video = write_frames(run / "frames", n, hue=0.0)
    optimised = write_frames(run / "optimised", n, hue=0.25)
    write_strip(run, [video, optimised])
    for i, plot in enumerate(("residual", "log_density", "projection")):
        write_plot_png(run / "plots" / f"{plot}.png", i)
    rows = []
    base = {"video": 0.30, "optimised": 0.10, "perturbed": 0.80, "smoothed": 0.45, "line": 0.60}
    for pname in ANALYSIS_PATHS:
        for f in range(n):
            interior = 0 < f < n - 1
            rows.append({
                "path": pname, "frame": f, "time_s": round(f / 8, 3),
                "residual": round(base[pname] * (1 + 0.3 * np.sin(f)) if interior else 0.0, 4),
                "log_density": _profile(n, 40 * base[pname], 0.0)[f],
                "speed": round(1.0 + 0.1 * base[pname] * f, 4),
            })
    _write_table(run, rows)
    stats = {p: {"mean_residual": base[p], "median_residual": round(base[p] * 0.95, 4),
                 "relative_length": round(10 * (1 + base[p]), 3),
                 "log_relative_length": round(float(np.log(10 * (1 + base[p]))), 4),
                 "energy": round(5 * (1 + base[p]) ** 2, 3), "frames": n} for p in ANALYSIS_PATHS}
    summary = {
        "paths": stats,
        "tests": {
            "i": {"passed": True, "description": "video residual is small", "value": 0.30, "threshold": 0.5},
            "ii": {"passed": False, "description": "video residual close to optimised",
                   "value": 3.0, "threshold": 2.0},
            "iii": {"passed": True, "description": "perturbed and smoothed paths have larger residual",
                    "perturbed_ratio": 2.67, "smoothed_ratio": 1.5},
        },
        "geodesic_excess": excess,
        "verdict": ("The clip is close to a geodesic of the model's density: its residual is small and the "
                    "perturbed and smoothed paths score worse, but the optimised path is still clearly "
                    "straighter."),
    }
    write_json(run / "summary.json", summary)
    return run


def write_interpolation(runs_dir: Path, name: str = "cat-to-dog", minute: int = 20, n: int = 9) -> Path:
    """A complete interpolation run (docs/method.md §8): geodesic frames plus lerp/slerp baselines."""
    run = runs_dir / name
    run.mkdir(parents=True)
    write_json(run / "manifest.json",
               manifest("interpolation", name, "complete", minute, ["/data/cat.png", "/data/dog.png"],
                        config={"noise_level": 0.6, "alpha": 0.002, "metric": "density",
                                "estimator": "contrast", "frames": n}))
    geo = write_frames(run / "frames", n, hue=0.5)
    lerp = write_frames(run / "baselines" / "lerp" / "frames", n, hue=0.6)
    slerp = write_frames(run / "baselines" / "slerp" / "frames", n, hue=0.7)
    write_strip(run, [geo, lerp, slerp])
    write_plot_png(run / "plots" / "log_density.png", 3)
    methods: dict[str, Any] = {}
    rows = []
    for k, m in enumerate(INTERP_METHODS):
        prof = _profile(n, 30 - 10 * k, 0.0)
        methods[m] = {"ppl": round(0.42 + 0.2 * k, 3), "pdv": round(0.013 + 0.01 * k, 4),
                      "relative_length": round(12.0 + k, 3), "log_relative_length": round(2.48 + 0.08 * k, 3),
                      "log_density": prof}
        for f in range(n):
            rows.append({"path": m, "frame": f, "t": round(f / (n - 1), 4),
                         "residual": round(0.1 * (k + 1) * (1 + 0.2 * np.cos(f)), 4),
                         "log_density": prof[f], "speed": 1.0})
    _write_table(run, rows)
    write_json(run / "summary.json", {"perceptual_distance": "ssim-latent", "methods": methods,
                                      "endpoint_reconstruction": {"a_psnr": 31.2, "b_psnr": 29.8},
                                      "frames": n})
    return run


def write_extrapolation(runs_dir: Path, name: str = "shot-forward", minute: int = 25, n: int = 6) -> Path:
    """A complete extrapolation run (docs/method.md §6)."""
    run = runs_dir / name
    run.mkdir(parents=True)
    write_json(run / "manifest.json",
               manifest("extrapolation", name, "complete", minute, ["/data/start.png"],
                        config={"noise_level": 0.6, "alpha": 1.0, "metric": "density", "estimator": "eps",
                                "steps": 20}))
    frames = write_frames(run / "frames", n, hue=0.1)
    write_strip(run, [frames])
    prof = _profile(n, 20, 0.5)
    _write_table(run, [{"path": "shot", "frame": f, "t": round(f / (n - 1), 4), "log_density": prof[f],
                        "speed": 1.0} for f in range(n)])
    write_json(run / "summary.json", {"steps": 20, "step_size": 0.05, "initial_speed": 1.25,
                                      "final_speed": 1.25, "log_density": prof, "frames_decoded": n})
    return run


def write_running(runs_dir: Path, name: str = "clip-running", minute: int = 30) -> Path:
    """A run still being written: manifest says running, a few frames, no summary."""
    run = runs_dir / name
    run.mkdir(parents=True)
    write_json(run / "manifest.json", manifest("analysis", name, "running", minute, [f"/data/{name}.mp4"]))
    write_frames(run / "frames", 3)
    return run


def write_interrupted(runs_dir: Path, name: str = "clip-ctrl-c", minute: int = 31) -> Path:
    """A run stopped with Ctrl-C."""
    run = runs_dir / name
    run.mkdir(parents=True)
    write_json(run / "manifest.json", manifest("analysis", name, "interrupted", minute, [f"/data/{name}.mp4"]))
    write_frames(run / "frames", 8)
    return run


def write_failed(runs_dir: Path, name: str = "bad-interp", minute: int = 32) -> Path:
    """A run that failed with an error message."""
    run = runs_dir / name
    run.mkdir(parents=True)
    write_json(run / "manifest.json",
               manifest("interpolation", name, "failed", minute, ["/data/a.png", "/data/b.png"],
                        error="solver diverged: non-finite residual at iteration 12"))
    return run


def write_missing_manifest(runs_dir: Path, name: str = "no-manifest") -> Path:
    """A folder with frames and a summary but no manifest."""
    run = runs_dir / name
    write_frames(run / "frames", 4)
    write_json(run / "summary.json", {"steps": 4, "frames_decoded": 4})
    return run


def write_bad_json(runs_dir: Path, name: str = "bad-json") -> Path:
    """A manifest cut off mid-write (invalid JSON)."""
    run = runs_dir / name
    run.mkdir(parents=True)
    (run / "manifest.json").write_text('{"schema": 1, "kind": "analysis", "status": "compl')
    return run


def write_missing_summary(runs_dir: Path, name: str = "no-summary", minute: int = 33) -> Path:
    """Claims complete but summary.json is gone."""
    run = write_analysis(runs_dir, name, minute=minute, n=4)
    (run / "summary.json").unlink()
    return run


def write_missing_frames(runs_dir: Path, name: str = "no-frames", minute: int = 34) -> Path:
    """Claims complete but the frame folders are gone."""
    import shutil

    run = write_interpolation(runs_dir, name, minute=minute, n=4)
    shutil.rmtree(run / "frames")
    shutil.rmtree(run / "baselines")
    return run


def write_complete_runs(runs_dir: Path) -> dict[str, Path]:
    """Only the three complete runs."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    return {"analysis": write_analysis(runs_dir), "interpolation": write_interpolation(runs_dir),
            "extrapolation": write_extrapolation(runs_dir)}


def write_all(runs_dir: Path) -> dict[str, Path]:
    """Every fixture case; returns case name → run folder."""
    runs = write_complete_runs(runs_dir)
    runs.update({
        "running": write_running(runs_dir), "interrupted": write_interrupted(runs_dir),
        "failed": write_failed(runs_dir), "missing_manifest": write_missing_manifest(runs_dir),
        "bad_json": write_bad_json(runs_dir), "missing_summary": write_missing_summary(runs_dir),
        "missing_frames": write_missing_frames(runs_dir),
    })
    return runs


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "fixture-runs")
    for case, path in write_all(target).items():
        print(f"{case:18s} {path}")
