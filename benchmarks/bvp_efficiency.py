"""Benchmark 1 (issue #7): geovid's default BVP solver versus the reference schedule (docs/method.md §5).

Figure of merit: network calls (per-point score evaluations) and wall time to reach a relative length within 1 %
of the best length either solver found, and the final mean ‖r‖. Lengths are compared on 17-point paths only
(the reference's last level and geovid's finest level), as log L̃ (docs/method.md §3):

* analytic mixtures (D = 1024 and D = 16384, sphere on, ν = 0.6, eps estimator = exact score): L̃ uses the
  exact log-density at the segment midpoints;
* the bundled model (world image pairs): L̃ is estimated by the score line integral, with scores evaluated
  after the run (not counted).

Usage: python -m benchmarks.bvp_efficiency [--quick] [--repeats 3] [--model-pairs 5]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from geovid.backbones.analytic import GaussianMixture, GaussianMixtureBackbone
from geovid.geometry.bvp import solve_bvp
from geovid.geometry.estimators import make_estimator
from geovid.geometry.measures import log_relative_length, path_measures
from geovid.geometry.metrics import DensityMetric
from geovid.geometry.paths import Sphere, initial_path

RESULTS = Path(__file__).parent / "results"
F64 = torch.float64


@dataclass
class Trace:
    calls: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    paths: list[torch.Tensor] = field(default_factory=list)


def analytic_problem(d: int, seed: int, k: int = 8) -> tuple[Any, Any, torch.Tensor, Sphere, Any]:
    gen = torch.Generator().manual_seed(1000 + seed)
    means = torch.randn(k, d, generator=gen, dtype=F64) * 0.6
    covs = 0.3 + torch.rand(k, d, generator=gen, dtype=F64) * 0.4
    bb = GaussianMixtureBackbone(GaussianMixture(torch.ones(k, dtype=F64), means, covs))
    t = bb.noise_level_to_timestep(0.6)
    ab = bb.alpha_bar(t)
    i, j = seed % k, (seed + 3) % k
    a = math.sqrt(ab) * means[i] + math.sqrt(1 - ab) * 0.9 * torch.randn(d, generator=gen, dtype=F64)
    b = math.sqrt(ab) * means[j] + math.sqrt(1 - ab) * 0.9 * torch.randn(d, generator=gen, dtype=F64)
    sphere = Sphere.for_points(torch.stack([a, b]))
    est = make_estimator("eps", bb, t)

    def exact_log_len(x: torch.Tensor, alpha: float = 1.0) -> float:
        mid = 0.5 * (x[1:] + x[:-1])
        ell = bb.log_prob(mid, t) - bb.log_prob(x[:1], t)
        seg = (x[1:] - x[:-1]).norm(dim=1)
        return float(torch.logsumexp(-alpha * ell + torch.log(seg), 0))

    return bb, est, initial_path(a, b, 17, sphere), sphere, exact_log_len


def run_solver(solver: str, x0: torch.Tensor, est: Any, sphere: Sphere, budget: int | None) -> tuple[Trace, Any]:
    tr = Trace()
    t0 = time.perf_counter()

    def monitor(x: torch.Tensor, calls: int) -> None:
        if x.shape[0] == 17:
            tr.calls.append(calls)
            tr.seconds.append(time.perf_counter() - t0)
            tr.paths.append(x.detach().clone())

    res = solve_bvp(x0, est, DensityMetric(1.0), sphere, solver=solver, max_calls=budget, monitor=monitor)
    return tr, res


def first_reaching(trace: Trace, lengths: list[float], target: float) -> tuple[int | None, float | None]:
    for c, s, ln in zip(trace.calls, trace.seconds, lengths):
        if ln <= target:
            return c, s
    return None, None


def compare(name: str, x0: torch.Tensor, est: Any, sphere: Sphere, log_len: Any, repeats: int,
            budget: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"problem": name, "D": int(x0.shape[1])}
    traces: dict[str, Trace] = {}
    lens: dict[str, list[float]] = {}
    walls: dict[str, list[float]] = {"reference": [], "geovid": []}
    finals: dict[str, Any] = {}
    for rep in range(repeats):
        for solver in ("reference", "geovid"):
            tr, res = run_solver(solver, x0, est, sphere, budget if solver == "geovid" else None)
            walls[solver].append(tr.seconds[-1] if tr.seconds else math.nan)
            if rep == 0:
                traces[solver] = tr
                finals[solver] = res
    for solver, tr in traces.items():
        lens[solver] = [log_len(p) for p in tr.paths]
    best = min(min(v) for v in lens.values() if v)
    target = best + math.log(1.01)
    for solver in ("reference", "geovid"):
        tr, res = traces[solver], finals[solver]
        calls, secs = first_reaching(tr, lens[solver], target)
        # Wall time to target scaled by the median over repeats of the whole run.
        scale = statistics.median(walls[solver]) / walls[solver][0] if walls[solver][0] else 1.0
        pm = path_measures(res.path, est(res.path), DensityMetric(1.0), sphere)
        out[solver] = {
            "final_log_length": lens[solver][-1], "best_log_length": min(lens[solver]),
            "calls_to_1pct": calls, "seconds_to_1pct": None if secs is None else secs * scale,
            "total_calls": res.network_calls, "total_seconds_median": statistics.median(walls[solver]),
            "final_mean_residual": pm.mean_residual,
        }
    # Equal length: the reference's own length (within 1 % of its best) versus geovid's calls to reach it.
    ref_target = min(lens["reference"]) + math.log(1.01)
    rc_eq, _ = first_reaching(traces["reference"], lens["reference"], ref_target)
    gc_eq, gs_eq = first_reaching(traces["geovid"], lens["geovid"], ref_target)
    out["equal_length"] = {"reference_calls": rc_eq, "geovid_calls": gc_eq,
                           "geovid_seconds": gs_eq}
    out["call_ratio"] = (gc_eq / rc_eq) if (rc_eq and gc_eq) else None
    out["best_log_length"] = best
    return out


def model_problems(n_pairs: int) -> list[tuple[str, torch.Tensor, Any, Sphere, Any]]:
    from geovid.backbones.loader import load_backbone
    from geovid.tasks.latents import images_to_points, make_score
    from geovid.world.clips import moved_pair
    from geovid.world.render import render

    bb = load_backbone(None)
    probs = []
    for k in range(n_pairs):
        s0, s1, _ = moved_pair(5000 + k)  # same objects, one moved within the view
        imgs = __import__("numpy").stack([render(s0), render(s1)])
        enc = images_to_points(bb, imgs, 0.6)
        sphere = Sphere.for_points(enc.points)
        est = make_score(bb, "eps", enc.t, seed=0)

        def log_len(x: torch.Tensor, est: Any = est) -> float:
            return log_relative_length(x, est(x), DensityMetric(1.0))

        probs.append((f"bundled-pair-{k}", initial_path(enc.points[0], enc.points[1], 17, sphere), est, sphere, log_len))
    return probs


def to_markdown(rows: list[dict[str, Any]]) -> str:
    def f(v: Any, fmt: str = "{:.4g}") -> str:
        return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)

    lines = ["| problem | D | ref calls to 1 % of best | geovid calls to 1 % of best | ref calls to its length "
             "| geovid calls to ref length | call ratio at equal length | ref s to 1 % | geovid s to 1 % "
             "| final log L̃ ref / geovid | final mean ‖r‖ ref / geovid |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref, gv, eq = r["reference"], r["geovid"], r["equal_length"]
        lines.append(f"| {r['problem']} | {r['D']} | {f(ref['calls_to_1pct'], '{}')} | {f(gv['calls_to_1pct'], '{}')} "
                     f"| {f(eq['reference_calls'], '{}')} | {f(eq['geovid_calls'], '{}')} "
                     f"| {f(r['call_ratio'], '{:.1%}')} | {f(ref['seconds_to_1pct'], '{:.2f}')} "
                     f"| {f(gv['seconds_to_1pct'], '{:.2f}')} | {ref['final_log_length']:.2f} / "
                     f"{gv['final_log_length']:.2f} | {ref['final_mean_residual']:.3g} / {gv['final_mean_residual']:.3g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one seed per dimension, one repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model-pairs", type=int, default=5, help="world image pairs on the bundled model (0: skip)")
    ap.add_argument("--no-analytic", action="store_true", help="skip the analytic mixtures (reuse their saved rows)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    repeats = 1 if args.quick else args.repeats
    rows = []
    saved = RESULTS / "bvp_efficiency.json"
    if args.no_analytic and saved.exists():
        rows = [r for r in json.loads(saved.read_text()) if r["problem"].startswith("mixture")]
    for d in () if args.no_analytic else (1024, 16384):
        for seed in range(1 if args.quick else 3):
            _, est, x0, sphere, log_len = analytic_problem(d, seed)
            rows.append(compare(f"mixture-D{d}-s{seed}", x0, est, sphere, log_len, repeats))
            print(to_markdown(rows[-1:]).splitlines()[-1], flush=True)
    if args.model_pairs:
        try:
            probs = model_problems(args.model_pairs)
        except Exception as exc:  # the bundled model may be missing in a dev checkout
            print(f"skipping the bundled model: {exc}")
            probs = []
        for name, x0, est, sphere, log_len in probs:
            rows.append(compare(name, x0, est, sphere, log_len, repeats))
            print(to_markdown(rows[-1:]).splitlines()[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bvp_efficiency.json").write_text(json.dumps(rows, indent=1))
    md = to_markdown(rows)
    ratios = [r["call_ratio"] for r in rows if r["call_ratio"] is not None]
    summary = (f"\nMedian call ratio at equal length (geovid's calls to reach the reference's final length / the "
               f"reference's calls to reach it): "
               f"{statistics.median(ratios):.1%} over {len(ratios)} problems." if ratios else "")
    (RESULTS / "bvp_efficiency.md").write_text(md + summary + "\n")
    print(md + summary)


if __name__ == "__main__":
    main()
