"""Global geodesics (issue #14, docs/method.md §5): a critical start is reported and broken, the 2-D grid start
finds the global route, several starts are solved in one batch and the shortest is kept.

The 2-D references are independent of the solver: Dijkstra on a fine grid with a wide stencil (401², offsets up
to 5 cells) followed by L-BFGS on the 8-point Gauss–Legendre length of a 129-point polyline
(``geovid.geometry.reference.refined_reference``). That takes minutes, so the values are stored below and
``test_stored_references_are_reproduced`` (slow, GEOVID_SLOW=1) recomputes them.
"""

from __future__ import annotations

import math

import pytest
import torch

from geovid.geometry.bvp import bent_paths, solve_bvp
from geovid.geometry.estimators import FunctionEstimator, zero_score
from geovid.geometry.measures import exact_length
from geovid.geometry.metrics import DensityMetric
from geovid.geometry.paths import Sphere, initial_path
from geovid.geometry.reference import refined_reference
from geovid.toy import ToyConfig, multimodal_problems, run_toy

F64 = torch.float64
PROBLEMS = multimodal_problems()


def t(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=F64)


#: refined_reference(...) with its defaults (401², stencil 5, 129 points, up to 5000 L-BFGS iterations).
REFERENCE = {"ring-saddle": 320.2895278474905, "side-bridge": 49.61090254988608}


def reference_length(name: str) -> float:
    return REFERENCE[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_stored_references_are_reproduced(name: str) -> None:
    dens, a, b, alpha, box = PROBLEMS[name]
    length, _, grid = refined_reference(dens.log_prob, a, b, alpha, box)
    assert length == pytest.approx(REFERENCE[name], rel=1e-6)
    assert length <= grid * 1.001  # the continuous refinement does not lose the grid's route


def _finite_numbers(obj: object) -> bool:
    """True when every float inside a (nested) dict/list is finite."""
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite_numbers(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return all(_finite_numbers(v) for v in obj)
    return True


def test_critical_start_is_reported_and_broken() -> None:
    # The straight segment across the ring's empty centre: residual 0 by symmetry (issue #14: |r| = nan, 0 iterations).
    dens, a, b, alpha, _ = PROBLEMS["ring-saddle"]
    sphere = Sphere(None)
    events: list[dict] = []
    res = solve_bvp(initial_path(t(*a), t(*b), 65, sphere), FunctionEstimator(dens.score), DensityMetric(alpha),
                    sphere, progress=lambda ph, d, tot, info: events.append(dict(info)))
    info = res.info
    assert info["critical_start"] and info["critical_broken"]
    assert info["starts"][0]["critical"] and info["chosen"] != 0 and "critical point" in info["note"]
    assert res.iterations > 0
    assert events and all(math.isfinite(e["|r|"]) for e in events if "|r|" in e)
    assert _finite_numbers(res.history) and _finite_numbers(info["starts"])
    length = exact_length(res.path, dens.log_prob, alpha)
    straight = exact_length(initial_path(t(*a), t(*b), 65, sphere), dens.log_prob, alpha)
    assert float(res.path[:, 1].abs().max()) > 2.0  # along the ring, not across the centre
    assert length < straight / 1e4
    assert abs(length - reference_length("ring-saddle")) / reference_length("ring-saddle") < 0.01


def test_critical_start_that_is_the_geodesic_is_kept() -> None:
    # Zero score: the straight segment is a critical point and the true geodesic; breaking it must come back to it.
    sphere = Sphere(None)
    a, b = torch.zeros(6, dtype=F64), torch.arange(6, dtype=F64)
    res = solve_bvp(initial_path(a, b, 17, sphere), FunctionEstimator(zero_score), DensityMetric(1.0), sphere)
    assert res.info["critical_start"] and len(res.info["starts"]) == 3
    u = (b - a) / (b - a).norm()
    off = (res.path - a) - ((res.path - a) @ u)[:, None] * u
    assert float(off.norm(dim=1).max()) < 1e-6


def test_reference_solver_reports_a_critical_start() -> None:
    dens, a, b, alpha, _ = PROBLEMS["ring-saddle"]
    sphere = Sphere(None)
    res = solve_bvp(initial_path(t(*a), t(*b), 17, sphere), FunctionEstimator(dens.score), DensityMetric(alpha),
                    sphere, solver="reference", iters_per_level=5)
    assert res.info["critical_start"] and not res.info["critical_broken"] and "reference" in res.info["note"]
    with pytest.raises(Exception, match="one start"):
        solve_bvp(initial_path(t(*a), t(*b), 17, sphere), FunctionEstimator(dens.score), DensityMetric(alpha),
                  sphere, solver="reference", starts=2)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_grid_start_finds_the_global_geodesic(name: str) -> None:
    dens, a, b, alpha, _ = PROBLEMS[name]
    out = run_toy(ToyConfig(density=dens, start=a, end=b, alpha=alpha))
    ref = reference_length(name)
    assert out["init"] == "grid" and out["grid"]["neighbours"] == 32
    assert abs(out["length"] - ref) / ref < 0.01, f"{name}: {out['length']:.5g} vs reference {ref:.5g}"
    assert _finite_numbers(out)
    if name == "side-bridge":
        # The side minimum exists: local descent from the segment ends far above the bridge.
        local = run_toy(ToyConfig(density=dens, start=a, end=b, alpha=alpha, init="straight"))
        assert local["length"] > 4 * ref
        assert min(p[1] for p in out["points"]) < -1.1 < -0.2 < min(p[1] for p in local["points"])


def test_several_starts_share_one_batch_and_the_shortest_is_kept() -> None:
    dens, a, b, alpha, _ = PROBLEMS["ring-saddle"]
    sphere = Sphere(None)
    batches: list[int] = []

    def score(x: torch.Tensor) -> torch.Tensor:
        batches.append(x.shape[0])
        return dens.score(x)

    x0 = initial_path(t(*a), t(*b), 33, sphere)
    res = solve_bvp(x0, FunctionEstimator(score), DensityMetric(alpha), sphere, starts=4)
    starts = res.info["starts"]
    assert len(starts) == 5 and [s["kind"] for s in starts] == ["initial"] + ["bend"] * 4
    # One call per round for all live starts: the first rounds carry the 3 interior points of every start.
    assert batches[1] == 5 * 3
    assert res.network_calls == sum(batches) == sum(s["calls"] for s in starts) - 2 * 4
    objectives = [s["objective"] for s in starts]
    assert res.info["chosen"] == objectives.index(min(objectives)) != 0
    # The straight start is critical; the bends (not extra saddle-break starts) take it round the ring.
    assert res.info["critical_start"] and res.info["critical_broken"]
    length = exact_length(res.path, dens.log_prob, alpha)
    assert abs(length - reference_length("ring-saddle")) / reference_length("ring-saddle") < 0.01


def test_bent_paths_come_in_opposite_pairs_on_the_sphere() -> None:
    gen = torch.Generator().manual_seed(0)
    sphere = Sphere(4.0)
    a, b = sphere.project_points(torch.randn(2, 32, generator=gen, dtype=F64))
    paths = bent_paths(a, b, 9, sphere, 4, seed=3)
    base = initial_path(a, b, 9, sphere)
    assert len(paths) == 4
    for p in paths:
        assert torch.equal(p[0], a) and torch.equal(p[-1], b)
        assert torch.allclose(p.norm(dim=1), torch.full((9,), 4.0, dtype=F64))
    d0, d1 = paths[0][4] - base[4], paths[1][4] - base[4]
    assert float((d0 @ d1) / (d0.norm() * d1.norm())) < -0.5  # antithetic pair (opposite up to the sphere)
    assert torch.equal(bent_paths(a, b, 9, sphere, 2, seed=3)[1], paths[1])  # K starts = the first K of more


def test_an_extra_start_that_fails_is_dropped() -> None:
    # The score is NaN beyond |x| > 3.4: the wide bends start there and fail; the others go on.
    from geovid.toy import example_problems

    dens, a, b, alpha, _ = example_problems()["ring-gap"]

    def fragile(x: torch.Tensor) -> torch.Tensor:
        s = dens.score(x)
        s[x.norm(dim=1) > 3.4] = math.nan
        return s

    sphere = Sphere(None)
    res = solve_bvp(initial_path(t(*a), t(*b), 17, sphere), FunctionEstimator(fragile), DensityMetric(alpha), sphere,
                    starts=4)
    errors = [s.get("error") for s in res.info["starts"]]
    assert errors[0] is None and any(e and "not finite" in e for e in errors)
    assert res.info["starts"][res.info["chosen"]].get("error") is None
    assert torch.all(torch.isfinite(res.path)) and float(res.path.norm(dim=1).max()) <= 3.4
