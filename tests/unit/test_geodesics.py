"""Correctness of the geodesic engine against references each test computes itself (issue #2, docs/method.md §3–§6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geovid.backbones.analytic import GaussianMixture, GaussianMixtureBackbone
from geovid.geometry.bvp import solve_bvp
from geovid.geometry.estimators import FunctionEstimator, make_estimator, zero_score
from geovid.geometry.ivp import initial_velocity, solve_ivp
from geovid.geometry.measures import exact_length, log_density_profile, path_measures, residual_vectors
from geovid.geometry.metrics import DensityMetric, ScoreMetric
from geovid.geometry.paths import Sphere, curvature_vectors, initial_path, slerp
from geovid.geometry.reference import dijkstra_geodesic
from geovid.toy import example_problems

F64 = torch.float64


def t(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=F64)


# Three 2-D problems: (mixture, start, end, alpha, grid bounds). "ring-gap" forces the geodesic around an empty
# gap (the straight segment crosses p ≈ 4e-5 while the ring keeps p ≈ 0.05).
DENSITIES = example_problems()


@pytest.mark.parametrize("name", list(DENSITIES))
def test_bvp_length_matches_grid_dijkstra(name: str) -> None:
    dens, a, b, alpha, bounds = DENSITIES[name]
    sphere = Sphere(None)
    est = FunctionEstimator(dens.score)
    res = solve_bvp(initial_path(t(*a), t(*b), 65, sphere), est, DensityMetric(alpha), sphere)
    length = exact_length(res.path, dens.log_prob, alpha)
    straight = exact_length(initial_path(t(*a), t(*b), 65, sphere), dens.log_prob, alpha)

    def logp(p: np.ndarray) -> np.ndarray:
        return dens.log_prob(torch.from_numpy(p)).numpy()

    ref = dijkstra_geodesic(logp, a, b, alpha, bounds, resolution=181, stencil=4)
    rel = abs(length - ref.length) / ref.length
    assert rel < 0.01, f"{name}: BVP length {length:.5g} vs grid {ref.length:.5g} ({100 * rel:.2f} %)"
    assert length <= straight * (1 + 1e-9)
    assert res.converged
    if name == "ring-gap":
        # The geodesic goes around the gap: it stays on the ring where the straight segment drops 1000×.
        assert straight > 50 * length
        assert float(res.path[:, 1].max()) > 2.0


def _wiggly(a: torch.Tensor, b: torch.Tensor, n: int, sphere: Sphere, amp: float = 0.3) -> torch.Tensor:
    x = initial_path(a, b, n, sphere)
    tt = torch.linspace(0, 1, n, dtype=F64)
    gen = torch.Generator().manual_seed(3)
    bump = torch.randn(x.shape[1], generator=gen, dtype=F64)
    bump -= (bump @ (b - a)) / ((b - a) @ (b - a)) * (b - a)
    x = x + amp * torch.sin(math.pi * tt)[:, None] * torch.sin(3 * math.pi * tt)[:, None] * bump
    return sphere.project_points(x)


def test_zero_score_gives_straight_line_without_sphere() -> None:
    sphere = Sphere(None)
    a, b = torch.zeros(5, dtype=F64), torch.arange(5, dtype=F64)
    est = FunctionEstimator(zero_score)
    res = solve_bvp(_wiggly(a, b, 17, sphere, amp=1.0), est, DensityMetric(1.0), sphere, xtol=1e-9)
    # Distance of every point to the segment a–b.
    u = (b - a) / (b - a).norm()
    off = (res.path - a) - ((res.path - a) @ u)[:, None] * u
    assert float(off.norm(dim=1).max()) < 1e-6
    pm = path_measures(res.path, torch.zeros_like(res.path), DensityMetric(1.0), sphere)
    assert pm.mean_residual < 1e-6


def test_zero_score_gives_great_circle_on_sphere() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, generator=gen, dtype=F64), torch.randn(64, generator=gen, dtype=F64)
    sphere = Sphere(5.0)
    a, b = sphere.project_points(a[None])[0], sphere.project_points(b[None])[0]
    est = FunctionEstimator(zero_score)
    res = solve_bvp(_wiggly(a, b, 17, sphere, amp=0.8), est, DensityMetric(1.0), sphere, xtol=1e-9)
    # Great circle: every point in span(a, b) and on the sphere.
    q, _ = torch.linalg.qr(torch.stack([a, b], 1))
    off = res.path - (res.path @ q) @ q.T
    assert float(off.norm(dim=1).max()) < 1e-5
    assert torch.allclose(res.path.norm(dim=1), torch.full((17,), 5.0, dtype=F64))
    pm = path_measures(res.path, torch.zeros_like(res.path), DensityMetric(1.0), sphere)
    assert pm.mean_residual < 1e-5


@pytest.mark.parametrize("spacing", ["uniform", "quadratic", "random"])
@pytest.mark.parametrize("radius", [0.5, 3.0])
def test_circle_residual_is_one_over_radius(spacing: str, radius: float) -> None:
    n = 25
    if spacing == "uniform":
        th = torch.linspace(0, 5.0, n, dtype=F64)
    elif spacing == "quadratic":
        th = 5.0 * torch.linspace(0, 1, n, dtype=F64) ** 2
    else:
        th = torch.sort(torch.rand(n, generator=torch.Generator().manual_seed(1), dtype=F64) * 5.0).values
    # A circle embedded in 6-D, in a rotated plane.
    q, _ = torch.linalg.qr(torch.randn(6, 2, generator=torch.Generator().manual_seed(2), dtype=F64))
    x = radius * torch.stack([torch.cos(th), torch.sin(th)], 1) @ q.T
    pm = path_measures(x, torch.zeros_like(x), DensityMetric(1.0), Sphere(None))
    assert torch.allclose(pm.residual[1:-1], torch.full((n - 2,), 1 / radius, dtype=F64), rtol=1e-9)
    kappa, _ = curvature_vectors(x)
    # The curvature vector points to the centre (the origin here).
    cos = (kappa * -x[1:-1]).sum(1) / (kappa.norm(dim=1) * x[1:-1].norm(dim=1))
    assert torch.allclose(cos, torch.ones_like(cos))


def test_ivp_shooting_lands_on_the_bvp_endpoint() -> None:
    dens, a, b, _, _ = DENSITIES["bump-aside"]
    alpha = 0.5
    sphere = Sphere(None)
    est = FunctionEstimator(dens.score)
    res = solve_bvp(initial_path(t(*a), t(*b), 65, sphere), est, DensityMetric(alpha), sphere)
    length = float((res.path[1:] - res.path[:-1]).norm(dim=1).sum())
    straight_miss = float((res.path[0] + (res.path[-1] - res.path[0]) - t(*b)).norm())
    assert straight_miss == 0.0
    v0 = initial_velocity(res.path, sphere, at_end=False)
    shot = solve_ivp(t(*a), v0, est, DensityMetric(alpha), sphere, steps=64)
    miss = float((shot.path[-1] - t(*b)).norm())
    assert miss < 0.01 * length, f"missed B by {miss / length:.4f} of the path length"
    # The path bends (it is not a straight shot that lands trivially).
    assert float(res.path[:, 1].max()) > 0.3


def test_ivp_zero_score_on_sphere_traces_great_circle_at_constant_speed() -> None:
    gen = torch.Generator().manual_seed(4)
    sphere = Sphere(2.0)
    x0 = sphere.project_points(torch.randn(1, 32, generator=gen, dtype=F64))[0]
    v0 = sphere.project_vectors(x0[None], torch.randn(1, 32, generator=gen, dtype=F64))[0]
    v0 = v0 / v0.norm() * 1.5
    shot = solve_ivp(x0, v0, FunctionEstimator(zero_score), DensityMetric(1.0), sphere, steps=40, horizon=3.0)
    # Exact great circle: x(t) = cos(ωt) x0 + sin(ωt) R v̂0, ω = |v|/R.
    w = 1.5 / 2.0
    exact = torch.cos(w * shot.times)[:, None] * x0 + torch.sin(w * shot.times)[:, None] * 2.0 * v0 / v0.norm()
    assert float((shot.path - exact).norm(dim=1).max()) < 1e-6
    arcs = 2.0 * torch.arccos(((shot.path[1:] * shot.path[:-1]).sum(1) / 4.0).clamp(-1, 1))
    assert torch.allclose(arcs, arcs[0].expand_as(arcs), rtol=1e-6)


def test_line_integral_log_density_matches_exact_mixture() -> None:
    dens, *_ = DENSITIES["anisotropic"]
    # A curved fine path through high and low density.
    tt = torch.linspace(0, 1, 2001, dtype=F64)
    x = torch.stack([-3 + 6 * tt, 2 * torch.sin(2 * math.pi * tt) + 0.5], 1)
    ell = log_density_profile(x, dens.score(x))
    exact = dens.log_prob(x) - dens.log_prob(x[:1])
    rel = float((ell - exact).abs().max() / exact.abs().max())
    assert rel <= 1e-3
    # Also in D = 64 with a full-covariance noised mixture through the backbone's exact score.
    gen = torch.Generator().manual_seed(5)
    d = 64
    a_ = torch.randn(d, d, generator=gen, dtype=F64) / 8
    mix = GaussianMixture(t(1.0, 2.0), torch.randn(2, d, generator=gen, dtype=F64),
                          torch.stack([a_ @ a_.T + 0.5 * torch.eye(d, dtype=F64), 0.8 * torch.eye(d, dtype=F64)]))
    bb = GaussianMixtureBackbone(mix)
    tstep = bb.noise_level_to_timestep(0.3)
    p = slerp(torch.randn(d, generator=gen, dtype=F64), torch.randn(d, generator=gen, dtype=F64) * 2,
              torch.linspace(0, 1, 3001, dtype=F64))
    ell = log_density_profile(p, bb.score(p, tstep))
    exact = bb.log_prob(p, tstep) - bb.log_prob(p[:1], tstep)
    assert float((ell - exact).abs().max() / exact.abs().max()) <= 1e-3


def _ring(n: int = 24, radius: float = 3.0, std: float = 0.3) -> GaussianMixture:
    ang = torch.arange(n, dtype=F64) * 2 * math.pi / n
    return GaussianMixture(torch.ones(n, dtype=F64), radius * torch.stack([torch.cos(ang), torch.sin(ang)], 1),
                           (std**2 * torch.eye(2, dtype=F64)).repeat(n, 1, 1))


def test_score_metric_geodesic_follows_the_ring() -> None:
    ring = _ring()
    a = 3.0 * t(1.0, 0.0)
    b = 3.0 * t(math.cos(2 * math.pi / 3), math.sin(2 * math.pi / 3))
    sphere = Sphere(None)
    est = FunctionEstimator(ring.score)
    res = solve_bvp(initial_path(a, b, 33, sphere), est, ScoreMetric(lam=10.0), sphere, max_iters=200)
    assert res.solver == "energy"
    radii = res.path.norm(dim=1)
    straight_radii = initial_path(a, b, 33, sphere).norm(dim=1)
    assert float(straight_radii.min()) < 1.6  # the chord cuts across the ring's hole
    assert float((radii - 3.0).abs().max()) < 0.35, radii  # the geodesic stays near the ring
    # And it is cheaper in the score metric's energy than the straight segment.
    def energy(x: torch.Tensor) -> float:
        pm = path_measures(x, ring.score(x), ScoreMetric(10.0), sphere, score_fn=ring.score)
        return pm.log_energy
    assert energy(res.path) < energy(initial_path(a, b, 33, sphere))


def test_score_metric_hvp_autograd_matches_finite_difference() -> None:
    ring = _ring()
    x = torch.tensor([[2.0, 1.0], [0.5, -2.5]], dtype=F64)
    v = torch.tensor([[0.3, -1.0], [1.0, 0.2]], dtype=F64)
    from geovid.geometry.metrics import hessian_vector

    assert torch.allclose(hessian_vector(ring.score, x, v, "autograd"), hessian_vector(ring.score, x, v, "fd"),
                          rtol=1e-5, atol=1e-6)


def _high_dim_problem(d: int = 1024, k: int = 8, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(k, d, generator=gen, dtype=F64) * 0.6
    covs = 0.3 + torch.rand(k, d, generator=gen, dtype=F64) * 0.4
    bb = GaussianMixtureBackbone(GaussianMixture(torch.ones(k, dtype=F64), means, covs))
    tstep = bb.noise_level_to_timestep(0.6)
    ab = bb.alpha_bar(tstep)
    a = math.sqrt(ab) * means[0] + math.sqrt(1 - ab) * 0.9 * torch.randn(d, generator=gen, dtype=F64)
    b = math.sqrt(ab) * means[1] + math.sqrt(1 - ab) * 0.9 * torch.randn(d, generator=gen, dtype=F64)
    sphere = Sphere.for_points(torch.stack([a, b]))
    return bb, tstep, initial_path(a, b, 17, sphere), sphere


BUDGET_D1024 = 3000  # per-point score evaluations


def test_default_bvp_reduces_residual_tenfold_in_d1024_within_budget() -> None:
    bb, tstep, x0, sphere = _high_dim_problem()
    est = make_estimator("eps", bb, tstep)
    metric = DensityMetric(1.0)
    r0 = path_measures(x0, est(x0), metric, sphere).mean_residual
    res = solve_bvp(x0, est, metric, sphere, max_calls=BUDGET_D1024)
    assert res.network_calls <= BUDGET_D1024
    r1 = path_measures(res.path, res.scores, metric, sphere).mean_residual
    assert r0 / r1 >= 10, f"mean |r| {r0:.4g} -> {r1:.4g}"
    assert torch.allclose(res.path.norm(dim=1), torch.full((17,), sphere.radius, dtype=F64))
    assert torch.equal(res.path[0], x0[0]) and torch.equal(res.path[-1], x0[-1])


def test_reference_solver_runs_the_published_schedule() -> None:
    bb, tstep, x0, sphere = _high_dim_problem(d=256, seed=1)
    est = make_estimator("eps", bb, tstep)
    res = solve_bvp(x0, est, DensityMetric(1.0), sphere, solver="reference")
    sched = res.schedule
    levels = [s["control_points"] for s in sched]
    # Levels in order 1 → 3 → 7 → 15, at most 100 iterations each, k counting 0…399 across levels.
    seen = list(dict.fromkeys(levels))
    assert seen == [1, 3, 7, 15]
    for m in (1, 3, 7, 15):
        its = [s for s in sched if s["control_points"] == m]
        assert 1 <= len(its) <= 100
        assert [s["iteration"] for s in its] == list(range(len(its)))
        for s in its:
            assert s["k"] == (1, 3, 7, 15).index(m) * 100 + s["iteration"]
            assert s["eta"] == pytest.approx(0.1 * (1 - s["k"] / 400) / m)
        # A level ends early exactly when the curvature term dominates the score term.
        if len(its) < 100:
            assert its[-1]["skipped"] and its[-1]["mean_Ns"] < its[-1]["mean_Nacc"]
            assert not any(s["skipped"] for s in its[:-1])
    assert res.path.shape == (17, 256)
    # Every control-point evaluation is counted (plus the 17 final scores).
    assert res.network_calls == sum(s["control_points"] for s in sched) + 17


def test_solvers_fail_clearly_on_nan_scores() -> None:
    from geovid.errors import SolverError

    sphere = Sphere(None)
    est = FunctionEstimator(lambda x: torch.full_like(x, math.nan))
    with pytest.raises(SolverError, match="not finite"):
        solve_bvp(initial_path(t(0, 0), t(1, 1), 9, sphere), est, DensityMetric(1.0), sphere)


def test_solver_recovers_from_a_score_that_blows_up_far_away() -> None:
    # The score is NaN beyond |x| > 4: big trial steps land there and must be rejected, not propagated.
    dens, a, b, alpha, _ = DENSITIES["ring-gap"]

    def fragile(x: torch.Tensor) -> torch.Tensor:
        s = dens.score(x)
        s[x.norm(dim=1) > 3.4] = math.nan
        return s

    sphere = Sphere(None)
    res = solve_bvp(initial_path(t(*a), t(*b), 17, sphere), FunctionEstimator(fragile), DensityMetric(alpha),
                    sphere, step=1e4)
    assert torch.all(torch.isfinite(res.path))
    assert float(res.path.norm(dim=1).max()) <= 3.4


def test_contrast_estimator_is_reproducible_and_progress_is_reported() -> None:
    bb, tstep, x0, sphere = _high_dim_problem(d=64, seed=2)
    bb.mixtures["negative"] = GaussianMixture(t(1.0), torch.zeros(1, 64, dtype=F64), torch.ones(1, 64, dtype=F64))
    events: list[tuple[str, int]] = []

    def run(seed: int) -> torch.Tensor:
        est = make_estimator("contrast", bb, tstep, seed=seed, neg_cond="negative")
        return solve_bvp(x0, est, DensityMetric(1.0), sphere, max_iters=30,
                         progress=lambda ph, d, tot, info: events.append((ph, d))).path

    p1, p2, p3 = run(7), run(7), run(8)
    assert torch.equal(p1, p2)
    assert not torch.equal(p1, p3)
    assert events and events[0][0] == "solve"


def test_call_budget_is_respected() -> None:
    bb, tstep, x0, sphere = _high_dim_problem(d=128, seed=3)
    est = make_estimator("eps", bb, tstep)
    for solver in ("geovid", "reference"):
        res = solve_bvp(x0, est, DensityMetric(1.0), sphere, solver=solver, max_calls=100)
        assert res.network_calls <= 100 + 17  # the reference adds the final 17 scores


def test_residual_is_parametrisation_invariant() -> None:
    dens, *_ = DENSITIES["anisotropic"]
    tt = torch.linspace(0, 1, 41, dtype=F64)
    curve = lambda u: torch.stack([-2 + 4 * u, torch.sin(3 * u) + 0.3 * u**2], 1)  # noqa: E731
    x1, x2 = curve(tt), curve(tt**1.7)
    r1, _, _ = residual_vectors(x1, dens.score(x1)[1:-1], DensityMetric(0.7), Sphere(None))
    r2, _, _ = residual_vectors(x2, dens.score(x2)[1:-1], DensityMetric(0.7), Sphere(None))
    # Compare at the same curve points by interpolating |r| of the second sampling onto the first.
    u2 = (tt**1.7)[1:-1].numpy()
    interp = np.interp(tt[1:-1].numpy(), u2, r2.norm(dim=1).numpy())
    mask = (tt[1:-1] > 0.15) & (tt[1:-1] < 0.85)
    r1n = r1.norm(dim=1).numpy()
    assert np.allclose(r1n[mask.numpy()], interp[mask.numpy()], rtol=0.03, atol=0.03 * r1n.max())
