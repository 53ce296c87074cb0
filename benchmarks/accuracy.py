"""Benchmark 3 (issue #7): length error of both BVP solvers against the grid Dijkstra reference (2-D mixtures).

The reference length comes from Dijkstra on a 301² grid with a 5-neighbourhood stencil (metrication error
≪ 0.1 %); solver lengths are ∫ p^(−α) ‖dγ‖ with the exact density along their polylines.

Usage: python -m benchmarks.accuracy
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
from geovid.geometry.reference import dijkstra_geodesic
from geovid.toy import example_problems

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    torch.set_num_threads(2)
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
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "accuracy.json").write_text(json.dumps(rows, indent=1, default=float))
    (RESULTS / "accuracy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _ = np  # numpy is used through the grid reference


if __name__ == "__main__":
    main()
