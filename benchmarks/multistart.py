"""Multi-start BVP (issue #14, docs/method.md §5): how often several starts change the geodesic, by how much, at
what cost in network calls.

Problems:

* analytic Gaussian mixtures in D = 1024 (sphere on, ν = 0.6, α = 1, exact score): the random 8-component
  mixtures of ``benchmarks.bvp_efficiency`` and ``two-route`` mixtures designed with two routes of different
  length (a single via-component next to the chord, and a longer chain of five components on another axis that
  is far shorter under the metric); lengths are the exact log L̃;
* pairs of world scenes on the bundled model (``moved_pair``: same objects, one moved) at the ``geovid
  interpolate`` defaults (17 frames, eps score, α = 0.002, ν = 0.6, 150 calls per start); lengths are log L̃ by
  the score line integral on the final path (scores after the run, not counted).

Every problem is solved once with K = 8 extra starts (``select=final``); the outcome for K ∈ {0, 2, 4} is the
best of the first K + 1 starts by the solver's own objective (the bends come in a fixed seeded order, so the
first K + 1 starts of a K = 8 run are exactly the starts of a K run). ``select=coarse`` is run separately for
K = 8. "Changed" = the chosen path is more than 1 % shorter than the K = 0 path.

Usage: python -m benchmarks.multistart [--pairs 10] [--no-model] [--quick]
Writes benchmarks/results/multistart.{json,md} and section 6 "Multi-start BVP" of docs/benchmarks.md (only that
section; ``--doc-only`` rewrites it from the saved results, adding the 2-D table of ``benchmarks.accuracy``).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from geovid.backbones.analytic import GaussianMixture, GaussianMixtureBackbone
from geovid.geometry.bvp import _subdivide, solve_bvp
from geovid.geometry.estimators import make_estimator
from geovid.geometry.measures import log_relative_length
from geovid.geometry.metrics import DensityMetric
from geovid.geometry.paths import Sphere, initial_path

RESULTS = Path(__file__).parent / "results"
DOC = Path(__file__).parent.parent / "docs" / "benchmarks.md"
SECTION = "## 6. Multi-start BVP (global starts, docs/method.md §5)"
F64 = torch.float64
KS = (0, 2, 4, 8)
CHANGED = math.log(1.01)


def two_route_problem(seed: int, d: int = 1024) -> tuple[str, torch.Tensor, Any, Sphere, Any, float]:
    """Endpoints near components at ∓6 e₁; route 1 through one component at 3 e₂ (next to the chord: the
    straight path's basin), route 2 along a half-circle chain of five components of radius 6 in the (e₁, e₃)
    plane (longer in Euclidean terms, far shorter under the metric). Clean std 0.5, ν = 0.6."""
    gen = torch.Generator().manual_seed(2000 + seed)
    e = torch.eye(d, dtype=F64)
    means = [-6 * e[0], 6 * e[0], 3 * e[1]]
    for k in range(5):
        th = math.pi * (k + 1) / 6
        means.append(-6 * math.cos(th) * e[0] + 6 * math.sin(th) * e[2])
    mu = torch.stack(means)
    bb = GaussianMixtureBackbone(GaussianMixture(torch.ones(len(means), dtype=F64), mu,
                                                 torch.full((len(means), d), 0.25, dtype=F64)))
    t = bb.noise_level_to_timestep(0.6)
    ab = bb.alpha_bar(t)
    a = math.sqrt(ab) * mu[0] + math.sqrt(1 - ab) * 0.9 * torch.randn(d, generator=gen, dtype=F64)
    b = math.sqrt(ab) * mu[1] + math.sqrt(1 - ab) * 0.9 * torch.randn(d, generator=gen, dtype=F64)
    sphere = Sphere.for_points(torch.stack([a, b]))
    return (f"two-route-s{seed}", initial_path(a, b, 17, sphere), make_estimator("eps", bb, t), sphere,
            _exact_log_len(bb, t), 1.0)


def _exact_log_len(bb: Any, t: int) -> Any:
    def log_len(x: torch.Tensor) -> float:
        mid = 0.5 * (x[1:] + x[:-1])
        ell = bb.log_prob(mid, t) - bb.log_prob(x[:1], t)
        return float(torch.logsumexp(-ell + torch.log((x[1:] - x[:-1]).norm(dim=1)), 0))
    return log_len


def random_problem(seed: int) -> tuple[str, torch.Tensor, Any, Sphere, Any, float]:
    from benchmarks.bvp_efficiency import analytic_problem

    bb, est, x0, sphere, _ = analytic_problem(1024, seed)
    return f"mixture-D1024-s{seed}", x0, est, sphere, _exact_log_len(bb, bb.noise_level_to_timestep(0.6)), 1.0


def model_problems(n_pairs: int, first_seed: int, alphas: tuple[float, ...]
                   ) -> list[tuple[str, torch.Tensor, Any, Sphere, Any, float]]:
    import numpy as np

    from geovid.backbones.loader import load_backbone
    from geovid.tasks.interpolate import sequence_alpha
    from geovid.tasks.latents import images_to_points, make_score
    from geovid.world.clips import moved_pair
    from geovid.world.render import render

    bb = load_backbone(None)
    probs = []
    for k in range(n_pairs):
        s0, s1, _ = moved_pair(first_seed + k)
        enc = images_to_points(bb, np.stack([render(s0), render(s1)]), 0.6)
        sphere = Sphere.for_points(enc.points)
        ends = sphere.project_points(enc.points)
        est = make_score(bb, "eps", enc.t, seed=0)

        for alpha in alphas or (sequence_alpha("eps"),):
            def log_len(x: torch.Tensor, est: Any = est, alpha: float = alpha) -> float:
                return log_relative_length(x, est(x), DensityMetric(alpha))

            probs.append((f"world-{first_seed + k}", initial_path(ends[0], ends[1], 17, sphere), est, sphere,
                          log_len, alpha))
    return probs


def measure(name: str, x0: torch.Tensor, est: Any, sphere: Sphere, log_len: Any, alpha: float,
            max_calls: int | None) -> dict[str, Any]:
    metric = DensityMetric(alpha)
    t0 = time.perf_counter()
    res = solve_bvp(x0, est, metric, sphere, starts=max(KS), max_calls=max_calls, keep_start_paths=True)
    wall = time.perf_counter() - t0
    per_start = []
    for i, xi in enumerate(res.info["start_paths"]):
        per_start.append({"objective": res.info["starts"][i]["objective"], "calls": res.info["starts"][i]["calls"],
                          "iterations": res.info["starts"][i]["iterations"], "log_len": log_len(xi),
                          "log_len_33": log_len(_subdivide(xi, sphere))})
    out: dict[str, Any] = {"problem": name, "alpha": alpha, "straight_log_len": log_len(x0), "wall_s_K8": wall,
                           "starts": per_start, "K": {}}
    for k in KS:
        sub = per_start[: k + 1]
        pick = min(range(len(sub)), key=lambda i: (sub[i]["objective"], i))
        calls = sum(s["calls"] for s in sub) - 2 * k  # the endpoint scores are shared
        out["K"][k] = {"chosen": pick, "log_len": sub[pick]["log_len"], "log_len_33": sub[pick]["log_len_33"],
                       "calls": calls}
    t0 = time.perf_counter()
    rc = solve_bvp(x0, est, metric, sphere, starts=max(KS), max_calls=max_calls, select="coarse")
    out["coarse_K8"] = {"chosen": rc.info["chosen"], "log_len": log_len(rc.path), "calls": rc.network_calls,
                        "wall_s": time.perf_counter() - t0}
    out["best_seen"] = min([s["log_len"] for s in per_start] + [out["coarse_K8"]["log_len"]])
    return out


def to_markdown(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| problem | α | log L̃ straight | K = 0: log L̃ (calls) | K = 2 | K = 4 | K = 8 | K = 8, select=coarse "
             "| start chosen by K = 8 | Δ log L̃ K = 8 − K = 0 | same on 33 points |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ks = r["K"]
        cells = [f"{ks[k]['log_len']:.2f} ({ks[k]['calls']})" for k in KS]
        co = r["coarse_K8"]
        lines.append(f"| {r['problem']} | {r['alpha']:g} | {r['straight_log_len']:.2f} | " + " | ".join(cells)
                     + f" | {co['log_len']:.2f} ({co['calls']}) | {ks[8]['chosen']} "
                     f"| {ks[8]['log_len'] - ks[0]['log_len']:+.2f} "
                     f"| {ks[8]['log_len_33'] - ks[0]['log_len_33']:+.2f} |")
    return lines


def summary(rows: list[dict[str, Any]], label: str) -> list[str]:
    if not rows:
        return []
    out = [f"**{label}** ({len(rows)} problems):", ""]
    out += ["| K | changed (> 1 % shorter than K = 0) | median Δ log L̃ where changed | largest gain | "
            "longer than K = 0 (> 1 %) | changed, 33-point check | median calls / K = 0 calls |",
            "|---|---|---|---|---|---|---|"]
    for k in KS[1:]:
        d = [r["K"][k]["log_len"] - r["K"][0]["log_len"] for r in rows]
        d33 = [r["K"][k]["log_len_33"] - r["K"][0]["log_len_33"] for r in rows]
        ch = [v for v in d if v < -CHANGED]
        worse = sum(v > CHANGED for v in d)
        ratio = statistics.median(r["K"][k]["calls"] / max(1, r["K"][0]["calls"]) for r in rows)
        out.append(f"| {k} | {len(ch)}/{len(rows)} | {statistics.median(ch) if ch else 0.0:+.2f} | {min(0.0, *d):+.2f} "
                   f"| {worse}/{len(rows)} | {sum(v < -CHANGED for v in d33)}/{len(rows)} | {ratio:.1f}× |")
    co_d = [r["coarse_K8"]["log_len"] - r["K"][8]["log_len"] for r in rows]
    co_ok = sum(v <= CHANGED for v in co_d)
    co_ratio = statistics.median(r["coarse_K8"]["calls"] / max(1, r["K"][8]["calls"]) for r in rows)
    out += ["", f"K = 8 with `select=coarse`: as short as `select=final` (within 1 %) on {co_ok}/{len(rows)}, "
            f"median {co_ratio:.2f}× its calls."]
    return out


def section_lines() -> list[str]:
    """This section of docs/benchmarks.md (also results/multistart.md, which ``run_all`` assembles): the
    measurement (results/multistart_runs.md), then the 2-D multi-modal accuracy table of
    ``python -m benchmarks.accuracy`` (results/accuracy_multimodal.md) when it exists."""
    lines = (RESULTS / "multistart_runs.md").read_text(encoding="utf-8").rstrip("\n").splitlines()
    mm = RESULTS / "accuracy_multimodal.md"
    if mm.exists():
        lines += ["", "**2-D multi-modal problems** (`python -m benchmarks.accuracy`; `geovid.toy.multimodal_problems`, "
                  "α = 1, 65 points; error of the exact length against the fine reference: 401² grid with offsets "
                  "up to 5 cells, then L-BFGS on a 129-point polyline):", ""]
        lines += mm.read_text(encoding="utf-8").rstrip("\n").splitlines()
        lines += ["", "In 2-D the grid start is the method: within 1.1 % of the reference before refinement, within 0.06 % after. "
                  "Bent starts break the ring's saddle but miss the side bridge: a bend of 0.5 × chord puts the path "
                  "far below the bridge where p ≈ 0 and the descent drifts away; the reference schedule from the "
                  "segment ends in the side minimum (and leaves the exact saddle only through round-off)."]
    return lines


def write_doc(lines: list[str]) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md, leaving the others untouched."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    body = SECTION + "\n\n" + "\n".join(lines).rstrip() + "\n"
    pat = re.compile(re.escape(SECTION) + r"\n.*?(?=\n## |\Z)", re.S)
    if pat.search(text):
        text = pat.sub(lambda _m: body.rstrip("\n") + "\n", text)
    else:
        notes = text.find("\n## Notes")
        text = (text[:notes] + "\n" + body + text[notes:]) if notes >= 0 else text.rstrip("\n") + "\n\n" + body
    DOC.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=10, help="world pairs on the bundled model (0: skip)")
    ap.add_argument("--first-seed", type=int, default=5000)
    ap.add_argument("--mixtures", type=int, default=5, help="random D = 1024 mixtures (bvp_efficiency's)")
    ap.add_argument("--two-route", type=int, default=5, help="two-route D = 1024 mixtures")
    ap.add_argument("--max-calls", type=int, default=1500, help="budget per start on the mixtures")
    ap.add_argument("--model-max-calls", type=int, default=150, help="budget per start on the world pairs "
                    "(interpolate's default)")
    ap.add_argument("--model-alphas", default="0.002,1", help="α values on the world pairs (0.002: interpolate's "
                    "default; 1: the paper's metric, used by the analysis)")
    ap.add_argument("--no-doc", action="store_true", help="do not touch docs/benchmarks.md")
    ap.add_argument("--doc-only", action="store_true", help="only rewrite the section from the saved results")
    args = ap.parse_args(argv)
    if args.doc_only:
        rows = _load(json.loads((RESULTS / "multistart.json").read_text()))
        publish(rows, sum(r["problem"].startswith("world") for r in rows) // max(1, len(
            {r["alpha"] for r in rows if r["problem"].startswith("world")})))
        return
    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    probs = [two_route_problem(s) for s in range(args.two_route)] + [random_problem(s) for s in range(args.mixtures)]
    for p in probs:
        rows.append(measure(*p, max_calls=args.max_calls))
        print(to_markdown(rows[-1:])[-1], flush=True)
    if args.pairs:
        alphas = tuple(float(v) for v in args.model_alphas.split(","))
        for p in model_problems(args.pairs, args.first_seed, alphas):
            rows.append(measure(*p, max_calls=args.model_max_calls))
            print(to_markdown(rows[-1:])[-1], f"{rows[-1]['wall_s_K8']:.1f} s", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "multistart.json").write_text(json.dumps(rows, indent=1, default=float))
    publish(rows, args.pairs, write=not args.no_doc)


def _load(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as saved in JSON (integer keys of "K" became strings) back to integer keys."""
    for r in rows:
        r["K"] = {int(k): v for k, v in r["K"].items()}
    return rows


def rule_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The rule for the defaults, written before the measurement (docs/method.md §5), applied to the rows."""
    from geovid.tasks.interpolate import DEFAULT_STARTS, sequence_alpha

    world = [r for r in rows if r["problem"].startswith("world") and r["alpha"] == sequence_alpha("eps")]
    chosen = 0
    for k in KS[1:]:
        if world and sum(r["K"][k]["log_len"] - r["K"][0]["log_len"] < -CHANGED for r in world) >= 0.2 * len(world):
            chosen = k
            break
    ok = sum(r["coarse_K8"]["log_len"] - r["K"][8]["log_len"] <= CHANGED
             and r["coarse_K8"]["calls"] < r["K"][8]["calls"] for r in rows)
    coarse = bool(rows) and ok >= 0.9 * len(rows)
    return [
        "**Rule for the defaults** (written down before this measurement): the default K of `geovid interpolate` is "
        "the smallest K in {2, 4, 8} that makes the path more than 1 % shorter than K = 0 on at least 20 % of the "
        "world pairs at the interpolate defaults (α = 0.002, 150 calls per start), else 0; `select=coarse` becomes "
        "the default if it is within 1 % of `select=final` at fewer calls on at least 90 % of all problems.",
        f"Outcome: K = {chosen} on {len(world)} pairs (`DEFAULT_STARTS` = {DEFAULT_STARTS}"
        + ("" if chosen == DEFAULT_STARTS else " — MISMATCH, update geovid/tasks/interpolate.py") + "); "
        f"`select=coarse` passes on {ok}/{len(rows)} → default `select={'coarse' if coarse else 'final'}`. The toy "
        "keeps K = 0: its 2-D grid start is global (table below).",
        "",
        "Reading: at interpolate's α = 0.002 the metric is nearly the sphere's own, every start converges to the "
        "same path, and extra starts only cost calls. At α = 1 (the paper's metric; the analysis default) local "
        "minima are common: on the world pairs and the random mixtures K = 8 finds a path tens of nats shorter in "
        "8 of 10 problems at ~9× the calls. The starts are ranked by the solver's own estimate of log L̃ (score "
        "line integral on 17 points); on the mixtures that estimate is off by up to ~20 nats in D = 1024, so the "
        "chosen start is sometimes not the shortest in exact log L̃ (column \"longer than K = 0\"). The 33-point "
        "column re-measures the chosen paths after one 4-point subdivision: the gains mostly survive but shrink — "
        "17-point lengths at α = 1 in D = 1024 are not resolved (docs/method.md §5 notes).",
    ]


def report_lines(rows: list[dict[str, Any]], pairs: int) -> list[str]:
    analytic = [r for r in rows if not r["problem"].startswith("world")]
    world = [r for r in rows if r["problem"].startswith("world")]
    lines = [f"`python -m benchmarks.multistart --pairs {pairs} --mixtures 5 --two-route 5` (one torch thread). "
             "K extra starts (bends of the slerp, amplitude 0.5 × chord) solved in one batch, the shortest by the "
             "solver's objective kept. log L̃: exact on the D = 1024 mixtures (1500 calls per start), score line "
             "integral on the world pairs (150 calls per start, interpolate's budget); calls: all starts together; "
             "a cell is log L̃ (calls). Δ < 0: multi-start is shorter (in nats: −23 means e²³ times shorter).", ""]
    lines += [*to_markdown(rows), ""]
    lines += [*summary(analytic, "Analytic mixtures, D = 1024, α = 1"), ""]
    for alpha in sorted({r["alpha"] for r in world}):
        lines += [*summary([r for r in world if r["alpha"] == alpha], f"World pairs, bundled model, α = {alpha:g}"),
                  ""]
    return lines + rule_lines(rows)


def publish(rows: list[dict[str, Any]], pairs: int, write: bool = True) -> None:
    lines = report_lines(rows, pairs)
    (RESULTS / "multistart_runs.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "multistart.md").write_text("\n".join(section_lines()) + "\n")
    print("\n".join(lines))
    if write:
        write_doc(section_lines())


if __name__ == "__main__":
    main()
