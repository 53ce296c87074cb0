"""Benchmark 3 (issue #7): length error of both BVP solvers against the grid Dijkstra reference (2-D mixtures).

The reference length comes from Dijkstra on a 301² grid with a 5-neighbourhood stencil (metrication error
≪ 0.1 %); solver lengths are ∫ p^(−α) ‖dγ‖ with the exact density along their polylines.

Multi-modal section (issue #14, docs/method.md §5): the 2-D problems of ``geovid.toy.multimodal_problems`` (a
symmetric saddle, a side minimum), where local descent from the segment fails. The reference there is
``refined_reference`` (401² grid, 5-neighbourhood offsets, then L-BFGS on a 129-point polyline's exact length);
the table gives the global error of the grid start (32-neighbourhood) alone and refined by geovid, of local descent
from the segment, of the segment plus 4 bent starts, and of the reference schedule, with their score calls.

Usage: python -m benchmarks.accuracy [--multimodal-only]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from geovid.geometry.bvp import solve_bvp
from geovid.geometry.estimators import FunctionEstimator
from geovid.geometry.measures import exact_length
from geovid.geometry.metrics import DensityMetric
from geovid.geometry.paths import Sphere, initial_path
from geovid.geometry.reference import dijkstra_geodesic, refined_reference
from geovid.toy import ToyConfig, example_problems, multimodal_problems, run_toy

RESULTS = Path(__file__).parent / "results"


def multimodal() -> list[str]:
    """Global error on the multi-modal 2-D problems; writes results/accuracy_multimodal.{json,md}."""
    rows = []
    for name, (dens, a, b, alpha, box) in multimodal_problems().items():
        t0 = time.perf_counter()
        ref, _, _ = refined_reference(dens.log_prob, a, b, alpha, box)
        row: dict = {"problem": name, "reference_length": ref, "reference_seconds": time.perf_counter() - t0}
        at, bt = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
        row["straight_length"] = exact_length(initial_path(at, bt, 65, Sphere(None)), dens.log_prob, alpha)
        for label, kw in (("grid", {}), ("straight", {"init": "straight"}),
                          ("straight+4", {"init": "straight", "starts": 4}),
                          ("reference-17", {"solver": "reference"})):
            t0 = time.perf_counter()
            out = run_toy(ToyConfig(density=dens, start=a, end=b, alpha=alpha, **kw))
            row[label] = {"length": out["length"], "error": (out["length"] - ref) / ref,
                          "calls": out["network_calls"], "seconds": time.perf_counter() - t0,
                          "critical_start": out["critical_start"], "grid": out["grid"]}
            if label == "grid":
                g = out["grid"]
                from geovid.toy import grid_initial_path

                x_init, _ = grid_initial_path(dens, DensityMetric(alpha), a, b, 65, box)
                init_len = exact_length(x_init, dens.log_prob, alpha)
                row["grid-only"] = {"length": init_len, "error": (init_len - ref) / ref, "nodes": g["nodes"],
                                    "evaluations": g["evaluations"], "seconds": g["seconds"]}
        rows.append(row)
        print(name, {k: (f"{100 * v['error']:+.3f} %" if isinstance(v, dict) else v) for k, v in row.items()},
              flush=True)
    lines = ["| problem | fine reference L | straight L | grid start alone (32-nbhd) | geovid-65, grid start "
             "| geovid-65 from the segment | segment + 4 bent starts | reference schedule (17 pts) "
             "| score calls: grid start / segment / +4 starts / reference | grid: nodes, density evaluations, s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def e(k: str, r: dict = r) -> str:
            return f"{100 * r[k]['error']:+.3f} %"
        g = r["grid-only"]
        lines.append(f"| {r['problem']} | {r['reference_length']:.6g} | {r['straight_length']:.4g} | {e('grid-only')} "
                     f"| {e('grid')} | {e('straight')} | {e('straight+4')} | {e('reference-17')} "
                     f"| {r['grid']['calls']} / {r['straight']['calls']} / {r['straight+4']['calls']} / "
                     f"{r['reference-17']['calls']} | {g['nodes']}, {g['evaluations']}, {g['seconds']:.2f} |")
    _write_results("accuracy_multimodal", rows, lines)
    return lines


def _write_results(name: str, rows: list[dict], lines: list[str]) -> None:
    """``results/<name>.json`` (the rows) and ``results/<name>.md`` (the table), and print the table."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=1, default=float))
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    import sys

    torch.set_num_threads(2)
    if "--multimodal-only" in sys.argv[1:]:
        multimodal()
        return
    rows = []
    for name, (dens, a, b, alpha, bounds) in example_problems().items():
        t0 = time.perf_counter()
        ref = dijkstra_geodesic(lambda p, d=dens: d.log_prob(torch.from_numpy(p)).numpy(), a, b, alpha, bounds,
                                resolution=301, stencil=5)
        t_ref = time.perf_counter() - t0
        sphere = Sphere(None)
        at, bt = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
        straight = exact_length(initial_path(at, bt, 65, sphere), dens.log_prob, alpha)
        row = {"problem": name, "grid_length": ref.length, "grid_seconds": t_ref, "straight_length": straight}
        for solver, n in (("geovid", 65), ("geovid", 17), ("reference", 17)):
            est = FunctionEstimator(dens.score)
            t0 = time.perf_counter()
            res = solve_bvp(initial_path(at, bt, n, sphere), est, DensityMetric(alpha), sphere, solver=solver)
            length = exact_length(res.path, dens.log_prob, alpha)
            row[f"{solver}-{n}"] = {"length": length, "error": (length - ref.length) / ref.length,
                                    "calls": res.network_calls, "seconds": time.perf_counter() - t0}
        rows.append(row)
        print(name, {k: (v if not isinstance(v, dict) else f"{100 * v['error']:+.3f} %") for k, v in row.items()},
              flush=True)
    lines = ["| problem | grid reference L | straight L | geovid (65 pts) error | geovid (17 pts) error "
             "| reference (17 pts) error | calls geovid-65 / geovid-17 / reference |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        g65, g17, rf = r["geovid-65"], r["geovid-17"], r["reference-17"]
        lines.append(f"| {r['problem']} | {r['grid_length']:.5g} | {r['straight_length']:.5g} | {100 * g65['error']:+.3f} % "
                     f"| {100 * g17['error']:+.3f} % | {100 * rf['error']:+.3f} % "
                     f"| {g65['calls']} / {g17['calls']} / {rf['calls']} |")
    _write_results("accuracy", rows, lines)
    _ = np  # numpy is used through the grid reference
    multimodal()


if __name__ == "__main__":
    main()
