"""Interpolation on the scene world (issue #5): geodesic vs lerp vs slerp on scene pairs with the same objects moved.

For each pair (A = first, B = last scene of a world clip ``linear`` of seed s: one object moves 1.2–2.6 world units,
the others stay; every scene valid by construction) the script runs ``geovid interpolate`` through the library
(``run_interpolation``, default options unless given) and judges every intermediate frame of every method with the
plausibility checker (``geovid.world.checker.check``, with A's caption): a frame *passes* when it is plausible and
its objects match the caption (count, colours, confident shapes). *Ghosting* counts frames rejected for a double,
a semi-transparent or a faint ghost copy of an object. Also per method: PPL and PDV (perceptual distance of the
run), log relative length L̃ (docs/method.md §3, comparable between the methods of one pair: same start point), and the
checker pass rate of the decoded endpoints (the ceiling set by the model's reconstructions).

Usage: python -m benchmarks.interp_world [--pairs 20] [--preset lenient] [--out DIR] [-- extra options]
Writes benchmarks/results/interp_world.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import weights_fingerprint

RESULTS = Path(__file__).parent / "results"
GHOST_WORDS = ("ghost", "duplicate", "semi-transparent", "faint")


def scene_pair(seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Images of the first and last scene of a ``linear`` world clip (same objects, one moved) and A's caption."""
    from geovid.world.clips import moved_pair
    from geovid.world.render import render

    a, b, text = moved_pair(seed)
    return render(a), render(b), text


def judge(frames: np.ndarray, text: str, preset: str) -> list[dict[str, Any]]:
    """Checker verdicts for frames (N, H, W, 3)."""
    from geovid.world.checker import check

    out = []
    for f in frames:
        r = check(f, text, thresholds=preset)
        out.append({"pass": bool(r.plausible and r.matches_caption),
                    "ghost": any(w in reason for reason in r.reasons for w in GHOST_WORDS),
                    "reasons": r.reasons})
    return out


def read_frames(folder: Path) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))])


SHOTS = {"from run (pace: 1 frame)": ("run", 1.0), "A B, step 1 (pace: A→B)": ("ab", 1.0),
         "A B, step 0.25": ("ab", 0.25)}


def shots(run: Path, pa: Path, pb: Path, text: str, args: argparse.Namespace, stamp: str, seed: int
          ) -> dict[str, Any]:
    """Extrapolate 8 steps three ways and check every shot frame after the start (step 1…8)."""
    from geovid.tasks.extrapolate import ExtrapolationConfig, run_extrapolation

    out = {}
    for label, (src, h) in SHOTS.items():
        cfg = ExtrapolationConfig(inputs=[] if src == "run" else [pa, pb], from_run=run if src == "run" else None,
                                  steps=8, step_size=h, estimator=args.estimator if src != "run" else None,
                                  alpha=args.alpha, decode_steps=args.decode_steps, model=args.model, device="cpu",
                                  out=args.out, name=f"shot{seed}-{src}-{h}-{stamp}{args.tag}")
        shot = run_extrapolation(cfg)
        frames = read_frames(shot / "frames")
        summary = json.loads((shot / "summary.json").read_text())
        out[label] = {"run": str(shot), "pass": [v["pass"] for v in judge(frames[1:], text, args.preset)],
                      "log_density": summary["log_density"]}
    return out


def shot_table(per_pair: list[dict[str, Any]]) -> list[str]:
    lines = ["Extrapolation, 8 steps beyond the end: share of shot frames passing the checker, by step.", "",
             "| start | " + " | ".join(str(i) for i in range(1, 9)) + " | all |", "|---|" + "---|" * 9]
    for label in SHOTS:
        rows = np.array([p["shots"][label]["pass"] for p in per_pair], float)
        lines.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in rows.mean(0)) + f" | {rows.mean():.2f} |")
    return lines


def mean_sd(values: list[float]) -> str:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    if not vals:
        return "n/a"
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.3g} ± {sd:.2g}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=100)
    ap.add_argument("--preset", default="lenient", help="checker thresholds: strict, default or lenient")
    ap.add_argument("--out", type=Path, default=Path("/tmp/geovid-interp-world"), help="runs directory")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tag", default="", help="suffix of the results files")
    ap.add_argument("--estimator", default="eps")
    ap.add_argument("--alpha", type=float, default=None)
    ap.add_argument("--max-calls", type=int, default=None)
    ap.add_argument("--decode-steps", type=int, default=None)
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--no-uniform", action="store_true")
    ap.add_argument("--model", default=None)
    ap.add_argument("--shots", action="store_true",
                    help="also extrapolate each pair (from the interpolation run, and from A B at step sizes 1 "
                         "and 0.25) and check the shot frames")
    args = ap.parse_args(argv)

    import torch
    from PIL import Image

    from geovid.tasks.interpolate import InterpolationConfig, run_interpolation

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    methods = ("geodesic", "lerp", "slerp")
    per_pair: list[dict[str, Any]] = []
    for k in range(args.pairs):
        seed = args.first_seed + k
        a, b, text = scene_pair(seed)
        img_dir = args.out / "images"
        img_dir.mkdir(exist_ok=True)
        pa, pb = img_dir / f"{seed}-a.png", img_dir / f"{seed}-b.png"
        Image.fromarray(a).save(pa)
        Image.fromarray(b).save(pb)
        cfg = InterpolationConfig(image_a=pa, image_b=pb, frames=args.frames, estimator=args.estimator,
                                  alpha=args.alpha, max_calls=args.max_calls, decode_steps=args.decode_steps,
                                  uniform=not args.no_uniform, model=args.model, device="cpu", out=args.out,
                                  name=f"pair{seed}-{stamp}{args.tag}")
        t0 = time.perf_counter()
        run = run_interpolation(cfg)
        wall = time.perf_counter() - t0
        summary = json.loads((run / "summary.json").read_text())
        manifest = json.loads((run / "manifest.json").read_text())
        row: dict[str, Any] = {"seed": seed, "caption": text, "run": str(run), "wall_s": wall,
                               "timings": manifest["timings"], "network_calls": manifest["network_calls"],
                               "endpoint_psnr": summary["endpoint_reconstruction"], "methods": {}}
        for m in methods:
            frames = read_frames(run / "frames" if m == "geodesic" else run / "baselines" / m / "frames")
            verdicts = judge(frames[1:-1], text, args.preset)
            ends = judge(frames[[0, -1]], text, args.preset)
            st = summary["methods"][m]
            row["methods"][m] = {
                "pass_rate": float(np.mean([v["pass"] for v in verdicts])),
                "ghost_rate": float(np.mean([v["ghost"] for v in verdicts])),
                "endpoints_pass": float(np.mean([v["pass"] for v in ends])),
                "ppl": st["ppl"], "pdv": st["pdv"], "log_relative_length": st["log_relative_length"],
                "mean_residual": st["mean_residual"],
                "reasons": [r for v in verdicts for r in v["reasons"]],
            }
        if args.shots:
            row["shots"] = shots(run, pa, pb, text, args, stamp, seed)
        per_pair.append(row)
        g = row["methods"]
        print(f"pair {k + 1}/{args.pairs} seed {seed}: {wall:.1f} s, pass geo {g['geodesic']['pass_rate']:.2f} "
              f"lerp {g['lerp']['pass_rate']:.2f} slerp {g['slerp']['pass_rate']:.2f}; "
              f"PPL geo {g['geodesic']['ppl']:.3f} lerp {g['lerp']['ppl']:.3f} slerp {g['slerp']['ppl']:.3f}",
              flush=True)

    agg: dict[str, Any] = {}
    for m in methods:
        rows = [p["methods"][m] for p in per_pair]
        agg[m] = {key: [r[key] for r in rows] for key in ("pass_rate", "ghost_rate", "endpoints_pass", "ppl", "pdv",
                                                          "log_relative_length", "mean_residual")}
    wins = {}
    for other in ("lerp", "slerp"):
        for key, better in (("pass_rate", 1), ("ppl", -1), ("pdv", -1), ("log_relative_length", -1)):
            g = np.array(agg["geodesic"][key], float)
            o = np.array(agg[other][key], float)
            wins[f"{key} vs {other}"] = {"geodesic_better": int(np.sum(better * (g - o) > 1e-12)),
                                         "tie": int(np.sum(np.abs(g - o) <= 1e-12)),
                                         "geodesic_worse": int(np.sum(better * (g - o) < -1e-12))}
    if args.shots:
        lines_shots = shot_table(per_pair)
    walls = [p["wall_s"] for p in per_pair]
    result = {"pairs": len(per_pair), "preset": args.preset, "options": {k: str(v) for k, v in vars(args).items()},
              "per_pair": per_pair, "wins": wins, "median_wall_s": statistics.median(walls),
              "perceptual_distance": summary["perceptual_distance"]}
    weights = weights_fingerprint(args.model)
    result["unet_sha256"] = weights
    cmd = " ".join(["python -m benchmarks.interp_world", *(sys.argv[1:] if argv is None else argv)])
    lines = [f"Measured {time.strftime('%Y-%m-%d')} with `{cmd}` on the model `{args.model or 'bundled'}` "
             f"(UNet weights sha256 {weights}…).", "",
             f"{len(per_pair)} scene pairs (seeds {args.first_seed}–{args.first_seed + args.pairs - 1}), "
             f"{args.frames} frames, checker preset `{args.preset}`, perceptual distance "
             f"`{summary['perceptual_distance']}`, estimator `{args.estimator}`; mean ± sd over pairs.", "",
             "| method | pass rate (intermediate frames) | ghosting rate | PPL | PDV | log L̃ | endpoints pass |",
             "|---|---|---|---|---|---|---|"]
    for m in methods:
        a = agg[m]
        lines.append(f"| {m} | {mean_sd(a['pass_rate'])} | {mean_sd(a['ghost_rate'])} | {mean_sd(a['ppl'])} | "
                     f"{mean_sd(a['pdv'])} | {mean_sd(a['log_relative_length'])} | {mean_sd(a['endpoints_pass'])} |")
    lines += ["", "| geodesic vs | better | tie | worse |", "|---|---|---|---|"]
    for key, w in wins.items():
        lines.append(f"| {key} | {w['geodesic_better']} | {w['tie']} | {w['geodesic_worse']} |")
    lines += ["", f"median wall time per pair (17 frames, 3 methods, threads={args.threads}): "
              f"{statistics.median(walls):.1f} s"]
    if args.shots:
        lines += ["", *lines_shots]
    RESULTS.mkdir(exist_ok=True)
    name = f"interp_world{args.tag}"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
