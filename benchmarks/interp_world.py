"""Interpolation on the scene world (issues #5, #13): geodesic vs lerp vs slerp on world scene pairs.

Pairs (all from held-out seeds, ``geovid.model.data.HELDOUT_SEED_START`` + offset; the model never saw them):

* **moved** (``--moved N``): A = first, B = last scene of a world clip ``linear`` of seed s (one object moves
  1.2–2.6 world units, the others stay; ``geovid.world.clips.moved_pair``);
* **changed** (``--changed M``): alternately a ``colour`` clip (one object changes colour) and an ``appear`` clip
  (an object appears), first and last scene.

The script runs ``geovid interpolate`` through the library (``run_interpolation``, default options unless given)
and judges every intermediate frame of every method twice, with judges independent of the model:

* the **object count** (``geovid.world.objects``, docs/method.md §8.6): a frame is *clean* when it shows exactly the
  objects of A or of B (colour multiset) and no ghost (faint colour without a saturated core);
* the **plausibility checker** (``geovid.world.checker.check``, preset ``lenient``): a frame *passes* when it is
  plausible and matches A's or B's caption (count, colours, confident shapes); *ghosting* counts frames rejected
  for a double, semi-transparent or faint copy.

Per method also PPL, PDV, log L̃ (docs/method.md §3) and the endpoints' rates (the ceiling set by the model's
reconstructions). The geodesic is compared with each baseline by a paired one-sided Wilcoxon signed-rank test on
the per-pair clean-frame rates (H₁: geodesic > baseline; zero differences dropped), and a sign test.
With ``--shots`` every pair is also extrapolated (``geovid extrapolate`` at its defaults, 3 steps) from the
interpolation run and from A B, and the shot frames at steps 1, 2, 3 are judged against B.

Usage: python -m benchmarks.interp_world [--moved 30] [--changed 10] [--shots] [--out DIR] [--tag T]
Writes benchmarks/results/interp_world{TAG}.{json,md}.
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
#: First held-out seed of the pairs, as an offset from HELDOUT_SEED_START (final measurement; development used
#: offset 10 000). Kind k of pair i uses seed HELDOUT_SEED_START + offset + 1000·k + i.
SEED_OFFSET = 20_000
KINDS = ("moved", "colour", "appear")
METHODS = ("geodesic", "lerp", "slerp")


def scene_pair(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray, list[str], list[Any]]:
    """Images of the first and last scene of a world clip, their captions and colour multisets."""
    from geovid.world.clips import clip_scenes
    from geovid.world.objects import scene_colours
    from geovid.world.render import render
    from geovid.world.scene import caption

    scenes, _ = clip_scenes("linear" if kind == "moved" else kind, frames=2, seed=seed)
    a, b = scenes[0], scenes[-1]
    return render(a), render(b), [caption(a), caption(b)], [scene_colours(a), scene_colours(b)]


def judge(frames: np.ndarray, captions: list[str], colours: list[Any], preset: str) -> list[dict[str, Any]]:
    """Checker and object-count verdicts for frames (N, H, W, 3)."""
    from geovid.world.checker import check
    from geovid.world.objects import count_objects, frame_is_clean

    out = []
    for f in frames:
        rs = [check(f, c, thresholds=preset) for c in captions]
        cnt = count_objects(f)
        out.append({"pass": any(bool(r.plausible and r.matches_caption) for r in rs),
                    "ghost": any(w in reason for reason in rs[0].reasons for w in GHOST_WORDS),
                    "clean": frame_is_clean(cnt, colours), "n_objects": cnt.n_objects, "n_ghosts": cnt.n_ghosts,
                    "reasons": rs[0].reasons})
    return out


def read_frames(folder: Path) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))])


SHOTS = {"from run (pace: 1 frame)": "run", "A B (pace: A→B)": "ab"}
SHOT_STEPS = 3


def shots(run: Path, pa: Path, pb: Path, captions: list[str], colours: list[Any], args: argparse.Namespace,
          stamp: str, seed: int) -> dict[str, Any]:
    """Extrapolate 3 steps at the defaults from the run and from A B; judge shot frames 1…3 against B."""
    from geovid.tasks.extrapolate import ExtrapolationConfig, run_extrapolation

    out = {}
    for label, src in SHOTS.items():
        cfg = ExtrapolationConfig(inputs=[] if src == "run" else [pa, pb], from_run=run if src == "run" else None,
                                  steps=SHOT_STEPS, alpha=args.alpha, model=args.model, device="cpu", out=args.out,
                                  name=f"shot{seed}-{src}-{stamp}{args.tag}")
        shot = run_extrapolation(cfg)
        frames = read_frames(shot / "frames")
        v = judge(frames[1:], captions[1:], colours[1:], args.preset)
        out[label] = {"run": str(shot), "pass": [x["pass"] for x in v], "clean": [x["clean"] for x in v]}
    return out


def shot_table(per_pair: list[dict[str, Any]]) -> list[str]:
    lines = [f"Extrapolation at the defaults, {SHOT_STEPS} steps beyond B ({len(per_pair)} pairs): share of shot "
             "frames clean by the object count (B's objects, no ghost) / passing the checker, by step.", "",
             "| start | " + " | ".join(f"step {i}" for i in range(1, SHOT_STEPS + 1)) + " |",
             "|---|" + "---|" * SHOT_STEPS]
    for label in SHOTS:
        clean = np.array([p["shots"][label]["clean"] for p in per_pair], float)
        ok = np.array([p["shots"][label]["pass"] for p in per_pair], float)
        lines.append(f"| {label} | " + " | ".join(f"{c:.2f} / {o:.2f}" for c, o in zip(clean.mean(0), ok.mean(0)))
                     + " |")
    return lines


def mean_sd(values: list[float]) -> str:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    if not vals:
        return "n/a"
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.3g} ± {sd:.2g}"


def paired_test(g: np.ndarray, o: np.ndarray) -> dict[str, Any]:
    """One-sided paired tests of H₁: g > o (Wilcoxon signed-rank, zero differences dropped; sign test)."""
    from scipy.stats import binomtest, wilcoxon

    d = np.asarray(g, float) - np.asarray(o, float)
    nz = d[np.abs(d) > 1e-12]
    better, worse = int((nz > 0).sum()), int((nz < 0).sum())
    p_w = float(wilcoxon(nz, alternative="greater").pvalue) if len(nz) else 1.0
    p_s = float(binomtest(better, better + worse, 0.5, alternative="greater").pvalue) if better + worse else 1.0
    return {"mean_difference": float(d.mean()), "better": better, "tie": int(len(d) - len(nz)), "worse": worse,
            "wilcoxon_p": p_w, "sign_p": p_s}


def method_rows(per_pair: list[dict[str, Any]], label: str) -> list[str]:
    lines = []
    for m in METHODS:
        rows = [p["methods"][m] for p in per_pair]
        frames = [v for r in rows for v in r["clean_frames"]]
        lines.append(f"| {label} | {m} | {np.mean(frames):.3f} | {mean_sd([r['clean_rate'] for r in rows])} | "
                     f"{mean_sd([r['pass_rate'] for r in rows])} | {mean_sd([r['ghost_rate'] for r in rows])} | "
                     f"{mean_sd([r['ppl'] for r in rows])} | {mean_sd([r['pdv'] for r in rows])} | "
                     f"{mean_sd([r['log_relative_length'] for r in rows])} | "
                     f"{mean_sd([r['endpoints_clean'] for r in rows])} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moved", type=int, default=30, help="pairs where one object moves")
    ap.add_argument("--changed", type=int, default=10, help="pairs where an object changes colour or appears")
    ap.add_argument("--seed-offset", type=int, default=SEED_OFFSET,
                    help="first seed = HELDOUT_SEED_START + this (development used 10000)")
    ap.add_argument("--preset", default="lenient", help="checker thresholds: strict, default or lenient")
    ap.add_argument("--out", type=Path, default=Path("/tmp/geovid-interp-world"), help="runs directory")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tag", default="", help="suffix of the results files")
    ap.add_argument("--estimator", default=None)
    ap.add_argument("--draws", type=int, default=None)
    ap.add_argument("--conditioning", default=None)
    ap.add_argument("--invert-steps", type=int, default=None)
    ap.add_argument("--alpha", type=float, default=None)
    ap.add_argument("--max-calls", type=int, default=None)
    ap.add_argument("--decode-steps", type=int, default=None)
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--no-uniform", action="store_true")
    ap.add_argument("--model", default=None)
    ap.add_argument("--shots", action="store_true", help=f"also extrapolate each pair {SHOT_STEPS} steps")
    args = ap.parse_args(argv)

    import torch
    from PIL import Image

    from geovid.model.data import HELDOUT_SEED_START
    from geovid.tasks.interpolate import DEFAULT_ESTIMATOR, InterpolationConfig, run_interpolation

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = HELDOUT_SEED_START + args.seed_offset
    todo = [("moved", base + i) for i in range(args.moved)]
    todo += [(KINDS[1 + i % 2], base + 1000 * (1 + i % 2) + i // 2) for i in range(args.changed)]
    per_pair: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for k, (kind, seed) in enumerate(todo):
        a, b, captions, colours = scene_pair(kind, seed)
        img_dir = args.out / "images"
        img_dir.mkdir(exist_ok=True)
        pa, pb = img_dir / f"{kind}{seed}-a.png", img_dir / f"{kind}{seed}-b.png"
        Image.fromarray(a).save(pa)
        Image.fromarray(b).save(pb)
        cfg = InterpolationConfig(image_a=pa, image_b=pb, frames=args.frames,
                                  estimator=args.estimator or DEFAULT_ESTIMATOR, draws=args.draws,
                                  conditioning=args.conditioning, invert_steps=args.invert_steps,
                                  alpha=args.alpha, max_calls=args.max_calls, decode_steps=args.decode_steps,
                                  uniform=not args.no_uniform, model=args.model, device="cpu", out=args.out,
                                  name=f"{kind}{seed}-{stamp}{args.tag}")
        t0 = time.perf_counter()
        run = run_interpolation(cfg)
        wall = time.perf_counter() - t0
        summary = json.loads((run / "summary.json").read_text())
        manifest = json.loads((run / "manifest.json").read_text())
        row: dict[str, Any] = {"kind": kind, "seed": seed, "captions": captions, "run": str(run), "wall_s": wall,
                               "timings": manifest["timings"], "network_calls": manifest["network_calls"],
                               "alpha": summary.get("alpha"), "endpoint_psnr": summary["endpoint_reconstruction"],
                               "methods": {}}
        for m in METHODS:
            frames = read_frames(run / "frames" if m == "geodesic" else run / "baselines" / m / "frames")
            verdicts = judge(frames[1:-1], captions, colours, args.preset)
            ends = judge(frames[[0, -1]], captions, colours, args.preset)
            st = summary["methods"][m]
            row["methods"][m] = {
                "clean_rate": float(np.mean([v["clean"] for v in verdicts])),
                "clean_frames": [bool(v["clean"]) for v in verdicts],
                "pass_rate": float(np.mean([v["pass"] for v in verdicts])),
                "ghost_rate": float(np.mean([v["ghost"] for v in verdicts])),
                "n_objects": [v["n_objects"] for v in verdicts], "n_ghosts": [v["n_ghosts"] for v in verdicts],
                "endpoints_clean": float(np.mean([v["clean"] for v in ends])),
                "endpoints_pass": float(np.mean([v["pass"] for v in ends])),
                "ppl": st["ppl"], "pdv": st["pdv"], "log_relative_length": st["log_relative_length"],
                "mean_residual": st["mean_residual"],
                "reasons": [r for v in verdicts for r in v["reasons"]],
            }
        if args.shots:
            row["shots"] = shots(run, pa, pb, captions, colours, args, stamp, seed)
        per_pair.append(row)
        g = row["methods"]
        print(f"pair {k + 1}/{len(todo)} {kind} {seed}: {wall:.1f} s, α {row['alpha']:.3g}, clean geo "
              f"{g['geodesic']['clean_rate']:.2f} lerp {g['lerp']['clean_rate']:.2f} slerp "
              f"{g['slerp']['clean_rate']:.2f}; pass geo {g['geodesic']['pass_rate']:.2f} lerp "
              f"{g['lerp']['pass_rate']:.2f} slerp {g['slerp']['pass_rate']:.2f}"
              + (f"; shots clean {[v['clean'] for v in row['shots'].values()]}" if args.shots else ""), flush=True)

    groups = {"moved": [p for p in per_pair if p["kind"] == "moved"],
              "colour/appear": [p for p in per_pair if p["kind"] != "moved"], "pooled": per_pair}
    tests: dict[str, Any] = {}
    for gname, rows in groups.items():
        if len(rows) < 2:
            continue
        for other in ("lerp", "slerp"):
            g = np.array([p["methods"]["geodesic"]["clean_rate"] for p in rows])
            o = np.array([p["methods"][other]["clean_rate"] for p in rows])
            tests[f"{gname}: geodesic vs {other}"] = paired_test(g, o)
    walls = [p["wall_s"] for p in per_pair]
    weights = weights_fingerprint(args.model)
    result = {"pairs": len(per_pair), "preset": args.preset, "options": {k: str(v) for k, v in vars(args).items()},
              "per_pair": per_pair, "tests": tests, "median_wall_s": statistics.median(walls),
              "perceptual_distance": summary.get("perceptual_distance"), "unet_sha256": weights}
    cmd = " ".join(["python -m benchmarks.interp_world", *(sys.argv[1:] if argv is None else argv)])
    psnr = [min(p["endpoint_psnr"]["a_psnr"], p["endpoint_psnr"]["b_psnr"]) for p in per_pair]
    lines = [f"Measured {time.strftime('%Y-%m-%d')} with `{cmd}` on the model `{args.model or 'bundled'}` "
             f"(UNet weights sha256 {weights}…).", "",
             f"{len(per_pair)} pairs ({len(groups['moved'])} moved, {len(groups['colour/appear'])} colour/appear; "
             f"held-out seeds from {base}), {args.frames} frames, defaults unless in the command "
             f"(estimator `{args.estimator or DEFAULT_ESTIMATOR}`), checker preset `{args.preset}`, perceptual "
             f"distance `{summary.get('perceptual_distance')}`. *clean*: interior frames with exactly A's or B's "
             "objects and no ghost (object count); *pass*: checker; mean ± sd over pairs (*clean, frames*: over all "
             "interior frames).", "",
             "| pairs | method | clean (frames) | clean rate | checker pass | ghosting (checker) | PPL | PDV | log L̃ "
             "| endpoints clean |", "|---|---|---|---|---|---|---|---|---|---|"]
    for gname, rows in groups.items():
        if rows:
            lines += method_rows(rows, f"{gname} ({len(rows)})")
    lines += ["", "Paired one-sided tests on the per-pair clean rates (H₁: geodesic > baseline):", "",
              "| comparison | mean difference | better / tie / worse | Wilcoxon p | sign-test p |", "|---|---|---|---|---|"]
    for key, t in tests.items():
        lines.append(f"| {key} | {t['mean_difference']:+.3f} | {t['better']} / {t['tie']} / {t['worse']} | "
                     f"{t['wilcoxon_p']:.2g} | {t['sign_p']:.2g} |")
    alphas = [p["alpha"] for p in per_pair if p.get("alpha") is not None]
    lines += ["", f"α by the rule: median {statistics.median(alphas):.3g} (range {min(alphas):.3g}–{max(alphas):.3g}); "
              f"endpoint PSNR (worse endpoint of a pair): median {statistics.median(psnr):.1f} dB, worst "
              f"{min(psnr):.1f} dB; median wall time per pair ({args.frames} frames, 3 methods, "
              f"threads={args.threads}): {statistics.median(walls):.1f} s"]
    if args.shots:
        lines += ["", *shot_table(per_pair)]
    RESULTS.mkdir(exist_ok=True)
    name = f"interp_world{args.tag}"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1, default=str))
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
