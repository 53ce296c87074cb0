"""Benchmark 2 (issue #7): the main jobs end to end on this machine's CPU, wall time and peak memory.

Each command runs as a subprocess (as a user runs it), ``repeats`` times; the table reports the median wall time
and the peak resident memory of the process tree. The on-disk inversion cache is disabled (GEOVID_NO_CACHE=1) so
every run pays for encoding and inversion. Targets: interpolate (17 frames) ≤ 20 s, analyze (16-frame clip)
≤ 30 s, the README's main job (``geovid demo``) ≤ 60 s.

Usage: python -m benchmarks.end_to_end [--repeats 3] [--jobs interpolate,analyze,demo] [--tag T]

``--jobs interpolate`` times only ``geovid interpolate`` (issue #13: its cold cache includes the endpoint
prompt-embedding inversion, which GEOVID_NO_CACHE=1 also disables). Results: benchmarks/results/end_to_end{T}.*
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).parent / "results"


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) of the process tree, exit code."""
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    if proc.returncode:
        print(proc.stderr.read().decode()[-2000:] if proc.stderr else "", file=sys.stderr)
    return wall, peak / 2**20, proc.returncode


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jobs", default="interpolate,analyze,demo",
                    help="comma-separated subset of interpolate, analyze, demo")
    ap.add_argument("--tag", default="", help="suffix of the results files")
    args = ap.parse_args(argv)
    wanted = {j.strip() for j in args.jobs.split(",") if j.strip()}
    geovid = str(Path(sys.executable).with_name("geovid"))
    env = {**os.environ, "GEOVID_NO_CACHE": "1", "HF_HUB_OFFLINE": "1"}
    tmp = Path(tempfile.mkdtemp(prefix="geovid-e2e-"))
    try:
        from PIL import Image

        from geovid.world.clips import moved_pair, write_clip
        from geovid.world.render import render

        s0, s1, _ = moved_pair(21)  # same objects, one moved within the view
        Image.fromarray(render(s0)).save(tmp / "a.png")
        Image.fromarray(render(s1)).save(tmp / "b.png")
        clip = write_clip(tmp / "clip.mp4", motion="linear", frames=16, fps=8, seed=5)
        jobs = {
            "interpolate (17 frames)": ([geovid, "interpolate", str(tmp / "a.png"), str(tmp / "b.png"), "--frames", "17",
                                         "--out", str(tmp / "runs"), "-q"], 20.0),
            "analyze (16-frame clip)": ([geovid, "analyze", str(clip), "--frames", "16", "--out", str(tmp / "runs"),
                                         "-q"], 30.0),
            "README main job (geovid demo)": ([geovid, "demo", "--out", str(tmp / "demo"), "-q"], 60.0),
        }
        keys = {"interpolate (17 frames)": "interpolate", "analyze (16-frame clip)": "analyze",
                "README main job (geovid demo)": "demo"}
        rows = []
        for name, (cmd, target) in jobs.items():
            if keys[name] not in wanted:
                continue
            walls, peaks = [], []
            for _ in range(args.repeats):
                shutil.rmtree(tmp / "demo", ignore_errors=True)
                wall, peak, rc = measure(cmd, env)
                if rc:
                    print(f"{name}: exit code {rc}", file=sys.stderr)
                    break
                walls.append(wall)
                peaks.append(peak)
            if walls:
                rows.append({"job": name, "median_s": statistics.median(walls), "runs": walls,
                             "peak_mib": max(peaks), "target_s": target})
                print(rows[-1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = ["| job | median wall (s) | runs (s) | target (s) | met | peak memory (MiB) |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['job']} | {r['median_s']:.1f} | {', '.join(f'{w:.1f}' for w in r['runs'])} "
                     f"| {r['target_s']:.0f} | {'yes' if r['median_s'] <= r['target_s'] else 'no'} | {r['peak_mib']:.0f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"end_to_end{args.tag}.json").write_text(json.dumps(rows, indent=1))
    (RESULTS / f"end_to_end{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
