"""Benchmark 7 (issue #15): ``geovid analyze`` on 8 world clips with the local engine and with the Ray engine (1 and 2
workers) on this machine, and a paper estimate of clips per GPU-hour for SD2 at 512² from the measured network calls.

Each engine runs once as a subprocess, as a user runs it (``geovid analyze c*.mp4 [--engine ray --workers N]
--threads 1``, default analysis settings: 16 frames, ν = 0.6, 50-step schedule, 640-call solve, γ_o decoded), with
the inversion cache off (``GEOVID_NO_CACHE=1``) so every engine pays for every inversion. Reported: wall time of the
whole command (Ray start-up and shutdown included), the Ray engine's overhead over the local engine with one worker
(target ≤ 15 %), and the speed-up with two. One torch thread per worker, so one worker and the local engine do the
same work on one core. On a shared machine the load changes between the commands, so the table also gives the
runs' own compute time (their phase times, from the manifests): wall − compute is what the engine itself adds.

The GPU line is an estimate, not a measurement: network calls per clip are measured here (they depend on the
settings, not on the model); the UNet throughput of SD2 at 512² (64×64 latents) is an assumption stated in the
table. ``python -m benchmarks.gpu`` measures it on a GPU.

Usage: python -m benchmarks.batch [--clips 8] [--frames 16]
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

RESULTS = Path(__file__).parent / "results"
#: Assumed SD2 UNet evaluations per second per GPU at 512² (64×64 latents), fp16, batches of 16–32 latents (the
#: analysis batches all frames of a DDIM step or a solver iteration): a conservative and an optimistic figure for
#: an A100-class GPU. Not measured here (no GPU on this machine).
GPU_EVALS_PER_S = (60.0, 120.0)
#: Assumed non-UNet time per clip on a GPU worker (decoding the clip, VAE encode/decode of 16 frames at 512²,
#: writing PNGs and plots), seconds.
GPU_OTHER_S_PER_CLIP = 5.0


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, proc.returncode, proc.stderr[-2000:]


def runs_of(out: Path) -> list[dict]:
    manifests = []
    for mf in sorted(out.glob("*/manifest.json")):
        m = json.loads(mf.read_text())
        if m.get("kind") == "analysis":
            manifests.append(m)
    return manifests


def record(label: str, workers: int, wall: float, rc: int, manifests: list[dict], load: tuple[float, ...]) -> dict:
    """One engine's numbers. ``compute_s``: the runs' phase times summed over the complete runs, without
    ``load_model`` (the local engine's first run pays the model load there, a Ray worker in its constructor)."""
    done = [m for m in manifests if m.get("status") == "complete"]
    per_clip = [sum(v for k, v in m["timings"].items() if k != "load_model") for m in done]
    return {"engine": label, "workers": workers, "wall_s": wall, "exit": rc, "complete": len(done),
            "compute_s": sum(per_clip),
            "clip_s_median": statistics.median(per_clip) if per_clip else None,
            "network_calls": [m.get("network_calls") for m in manifests], "load_avg": list(load)}


def render(results: list[dict], clips: int, frames: int, note: str = "") -> tuple[list[str], dict]:
    """The markdown table and text of docs/benchmarks.md's section, and the numbers behind them."""
    local = results[0]
    calls = [c for r in results for c in r["network_calls"] if isinstance(c, int)]
    per_clip_calls = statistics.median(calls) if calls else float("nan")
    lines = [f"{clips} world clips, `geovid analyze` default settings ({frames} frames, {per_clip_calls:.0f} "
             "network calls per clip), one torch thread per worker, inversion cache off; each command run once as a "
             "subprocess (wall time includes starting and stopping Ray). *compute* is the runs' own phase time "
             "summed over the clips (model loading excluded); *wall − compute ÷ workers* is what the engine adds "
             "(process start, imports, model load, Ray start-up and shutdown, scheduling, idle workers)." + note, "",
             "| engine | wall (s) | compute (s) | median per clip (s) | wall − compute ÷ workers (s) "
             "| load avg (start → end) | wall vs local | speed-up |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        over = r["wall_s"] / local["wall_s"] - 1
        la = r.get("load_avg")
        load = f"{la[0]:.1f} → {la[1]:.1f}" if la else "—"
        lines.append(f"| {r['engine']} | {r['wall_s']:.1f} | {r['compute_s']:.1f} | {r['clip_s_median']:.1f} | "
                     f"{r['wall_s'] - r['compute_s'] / r['workers']:.1f} | {load} | "
                     f"{'—' if r is local else f'{100 * over:+.1f} %'} | {local['wall_s'] / r['wall_s']:.2f}× |")
    one, two = results[1], results[-1]
    over = one["wall_s"] / local["wall_s"] - 1
    fixed = (one["wall_s"] - one["compute_s"]) - (local["wall_s"] - local["compute_s"])
    lines += ["", f"Ray engine, 1 worker: wall time {100 * over:+.1f} % against the local engine (target ≤ 15 %: "
                  f"{'met' if over <= 0.15 else 'missed'}). Of that, the engine's own cost — the difference in "
                  f"wall − compute — is {fixed:+.1f} s ({100 * fixed / local['wall_s']:+.1f} % of the local wall "
                  f"time); the rest is the per-clip compute changing with the machine's load between the runs "
                  f"(median {local['clip_s_median']:.1f} s per clip local, {one['clip_s_median']:.1f} s in the Ray "
                  f"worker, the same work on one thread). Two workers: {local['wall_s'] / two['wall_s']:.2f}× the "
                  f"local engine's speed, with {two['clip_s_median']:.1f} s per clip in each worker "
                  f"({two['clip_s_median'] / one['clip_s_median']:.1f}× the one-worker figure: on two cores the "
                  "second worker gains only what the rest of the machine leaves free).", ""]
    lo, hi = GPU_EVALS_PER_S
    est = [3600 / (per_clip_calls / rate + GPU_OTHER_S_PER_CLIP) for rate in (lo, hi)]
    lines += [f"**GPU cluster, paper estimate (not measured).** Network calls per clip at these settings: "
              f"{per_clip_calls:.0f} (median of the runs above; UNet evaluations of one latent — the count depends "
              f"on frames, schedule and solver budget, not on the model, so SD2 at 512² makes the same). Assuming "
              f"SD2's UNet at 512² (64×64 latents) runs {lo:.0f}–{hi:.0f} evaluations/s on one A100-class GPU "
              f"(fp16, batches of 16–32 latents) plus ~{GPU_OTHER_S_PER_CLIP:.0f} s per clip of video decoding, VAE "
              f"and writing: **{est[0]:.0f}–{est[1]:.0f} clips per GPU-hour**, i.e. 1 000 clips in "
              f"{1000 / est[1]:.1f}–{1000 / est[0]:.1f} GPU-hours with `--engine ray --gpus-per-worker 1` (one "
              "worker per GPU, the model loaded once per worker; the Ray start-up above is paid once per batch). "
              "`python -m benchmarks.gpu` measures the UNet rate on a real GPU (section 5)."]
    return lines, {"per_clip_calls": per_clip_calls, "gpu_clips_per_hour": est}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--frames", type=int, default=16)
    args = ap.parse_args(argv)
    geovid = str(Path(sys.executable).with_name("geovid"))
    env = {**os.environ, "GEOVID_NO_CACHE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    tmp = Path(tempfile.mkdtemp(prefix="geovid-batch-", dir=os.environ.get("GEOVID_BENCH_TMP")))
    RESULTS.mkdir(exist_ok=True)
    try:
        from geovid.world.clips import MOTIONS, write_clip

        clips = [str(write_clip(tmp / f"clip{k}.mp4", motion=MOTIONS[k % len(MOTIONS)], frames=args.frames + 8,
                                fps=8, seed=k)) for k in range(args.clips)]
        base = [geovid, "analyze", *clips, "--frames", str(args.frames), "--threads", "1", "--device", "cpu", "-q"]
        engines = {"local": (1, []), "ray, 1 worker": (1, ["--engine", "ray", "--workers", "1"]),
                   "ray, 2 workers": (2, ["--engine", "ray", "--workers", "2"])}
        results = []
        for label, (workers, extra) in engines.items():
            out = tmp / label.replace(", ", "-").replace(" ", "")
            load0 = os.getloadavg()[0]
            wall, rc, err = run([*base, "--out", str(out), *extra], env)
            if rc:
                print(f"{label}: exit code {rc}\n{err}", file=sys.stderr)
            results.append(record(label, workers, wall, rc, runs_of(out), (load0, os.getloadavg()[0])))
            print(results[-1], flush=True)
            (RESULTS / "batch.json").write_text(json.dumps({"results": results}, indent=1))  # raw, as they come
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines, numbers = render(results, args.clips, args.frames)
    (RESULTS / "batch.json").write_text(json.dumps({"results": results, **numbers}, indent=1))
    (RESULTS / "batch.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
