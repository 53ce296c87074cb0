"""α by one rule (docs/method.md §3.7), contrast draws, and the BVP trust region (docs/method.md §7.5)."""

from __future__ import annotations

import math

import pytest
import torch

from geovid.geometry.alpha import RHO, calibrate_alpha, calibrate_alpha_ray
from geovid.geometry.paths import Sphere, initial_path


def _field(c: torch.Tensor):
    def score(x: torch.Tensor) -> torch.Tensor:  # a constant field: ‖N s‖ = |c_perp|
        return c.expand_as(x).clone()
    return score


def test_rule_makes_the_density_term_the_half_circle_curvature_on_the_line() -> None:
    a, b = torch.zeros(3, dtype=torch.float64), torch.tensor([4.0, 0.0, 0.0], dtype=torch.float64)
    cal = calibrate_alpha(_field(torch.tensor([1.0, 3.0, 0.0], dtype=torch.float64)), a, b, Sphere(None))
    # Across the line only the y-component counts: S = 3, d = 4, α = ρ/(d S) = 2/12.
    assert cal.chord == pytest.approx(4.0) and cal.normal_score == pytest.approx(3.0)
    assert cal.alpha == pytest.approx(RHO / 12.0) and cal.network_calls == 7
    # Then α·S = 2/d, the curvature of the half circle over the chord, whatever the score's scale.
    big = calibrate_alpha(_field(torch.tensor([0.0, 300.0, 0.0], dtype=torch.float64)), a, b, Sphere(None))
    assert big.alpha * big.normal_score == pytest.approx(2 / 4.0) == cal.alpha * cal.normal_score


def test_rule_refuses_a_score_that_vanishes_across_the_line() -> None:
    from geovid.errors import InputError

    a, b = torch.zeros(3, dtype=torch.float64), torch.tensor([4.0, 0.0, 0.0], dtype=torch.float64)
    with pytest.raises(InputError, match="--alpha"):
        calibrate_alpha(_field(torch.tensor([5.0, 0.0, 0.0], dtype=torch.float64)), a, b, Sphere(None))


def test_ray_rule_uses_the_straight_continuation_on_the_sphere() -> None:
    sphere = Sphere(2.0)
    x = torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64)
    v = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    cal = calibrate_alpha_ray(_field(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)), x, v, 1.0, sphere)
    end = sphere.project_points(torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64))[0]
    assert cal.chord == pytest.approx(float((end - x).norm()))
    assert cal.normal_score == pytest.approx(1.0) and math.isfinite(cal.alpha)


def test_contrast_draws_average_and_keep_common_random_numbers(tmp_path) -> None:
    from geovid.backbones.loader import load_backbone
    from geovid.geometry.estimators import ContrastEstimator
    from geovid.model.architecture import TINY, build_random_pipeline

    bb = load_backbone(build_random_pipeline(str(tmp_path / "m"), TINY, seed=0), device="cpu")
    x = torch.randn(6, 4 * 16 * 16, generator=torch.Generator().manual_seed(0))
    one = [ContrastEstimator(bb, 581, bb.embed_prompt(""), seed=s)(x) for s in range(8)]
    four = [ContrastEstimator(bb, 581, bb.embed_prompt(""), seed=s, draws=4)(x) for s in range(8)]
    assert ContrastEstimator(bb, 581, "", draws=4).calls_per_point == 8
    assert torch.equal(four[0], ContrastEstimator(bb, 581, bb.embed_prompt(""), seed=0, draws=4)(x))  # CRN
    spread1 = torch.stack(one).std(0).mean()
    spread4 = torch.stack(four).std(0).mean()
    assert float(spread4) < 0.7 * float(spread1)  # averaging 4 draws: ~1/2 the spread


def test_trust_region_bounds_every_point_of_the_optimised_path() -> None:
    from geovid.geometry.bvp import solve_bvp
    from geovid.geometry.metrics import make_metric

    sphere = Sphere(None)
    a, b = torch.tensor([0.0, 0.0], dtype=torch.float64), torch.tensor([1.0, 0.0], dtype=torch.float64)
    x0 = initial_path(a, b, 9, sphere)
    x0[1:-1, 1] = 0.4 * torch.sin(torch.linspace(0, math.pi, 9, dtype=torch.float64)[1:-1])  # a bump
    free = solve_bvp(x0, lambda x: torch.zeros_like(x), make_metric("density", alpha=1.0), sphere, mode="normal",
                     max_iters=200)
    held = solve_bvp(x0, lambda x: torch.zeros_like(x), make_metric("density", alpha=1.0), sphere, mode="normal",
                     max_iters=200, trust=0.05)
    moved_free = float((free.path - x0).norm(dim=-1).max())
    moved = (held.path - x0).norm(dim=-1)
    assert moved_free > 0.2  # with no score the bump is straightened
    assert float(moved.max()) <= 0.05 + 1e-9 and float(moved.max()) > 0.04


def test_unknown_solver_options_are_refused_not_swallowed() -> None:
    from geovid.errors import InputError
    from geovid.geometry.bvp import solve_bvp
    from geovid.geometry.metrics import make_metric

    x0 = initial_path(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64), 5, Sphere(None))
    zero = lambda x: torch.zeros_like(x)  # noqa: E731
    with pytest.raises(InputError, match=r"geovid solver does not take the option.*trust_radius"):
        solve_bvp(x0, zero, make_metric("density"), Sphere(None), trust_radius=1.0)
    with pytest.raises(InputError, match=r"reference solver does not take the option.*mode"):
        solve_bvp(x0, zero, make_metric("density"), Sphere(None), solver="reference", mode="normal")
