"""Path construction of the video analysis (docs/method.md §7.2): endpoints, sphere, perturbation size, smoothing, γ_o."""

from __future__ import annotations

import math

import pytest
import torch

from analysis import paths
from geovid.errors import InputError
from geovid.geometry.metrics import make_metric
from geovid.geometry.paths import Sphere, slerp

D = 1024


def _wobbly_path(n: int = 12, seed: int = 0) -> torch.Tensor:
    """Points of very different norms along a bent curve (like encoded frames before the sphere)."""
    g = torch.Generator().manual_seed(seed)
    a, b, c = (torch.randn(D, generator=g, dtype=torch.float64) for _ in range(3))
    t = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
    x = (1 - t) * a + t * b + 0.3 * torch.sin(math.pi * t) * c
    return x * (1 + 0.2 * torch.rand(n, 1, generator=g, dtype=torch.float64))


def test_video_path_is_on_the_sphere_of_mean_norm() -> None:
    raw = _wobbly_path()
    x, sphere = paths.video_path(raw)
    assert sphere.radius == pytest.approx(float(raw.norm(dim=-1).mean()), rel=1e-12)
    assert torch.allclose(x.norm(dim=-1), torch.full((12,), sphere.radius, dtype=torch.float64), rtol=1e-12)
    # only the norms change: directions are the frames'
    assert torch.allclose(x / x.norm(dim=-1, keepdim=True), raw / raw.norm(dim=-1, keepdim=True), atol=1e-12)
    x_off, off = paths.video_path(raw, sphere_on=False)
    assert not off.on and torch.equal(x_off, raw)


def test_video_path_needs_three_frames() -> None:
    with pytest.raises(InputError, match="at least 3"):
        paths.video_path(torch.randn(2, D, dtype=torch.float64))


def test_all_comparison_paths_share_the_endpoints_and_the_sphere() -> None:
    x, sphere = paths.video_path(_wobbly_path())
    comp = paths.comparison_paths(x, sphere, delta=0.5, smooth_sigma=1.0, seed=3)
    assert set(comp) == {"perturbed", "smoothed", "line"}
    for name, p in comp.items():
        assert p.shape == x.shape and p.dtype == torch.float64, name
        assert torch.equal(p[0], x[0]) and torch.equal(p[-1], x[-1]), name
        assert torch.allclose(p.norm(dim=-1), torch.full((x.shape[0],), sphere.radius, dtype=torch.float64),
                              rtol=1e-10), name
        assert not torch.equal(p[1:-1], x[1:-1]), name  # every comparison path really differs inside


def test_perturbation_size_is_delta_times_the_median_step() -> None:
    x, sphere = paths.video_path(_wobbly_path(n=40))
    step = paths.median_step(x)
    for delta in (0.25, 0.5, 1.0):
        p = paths.perturbed_path(x, sphere, delta=delta, seed=0)
        disp = (p[1:-1] - x[1:-1]).norm(dim=-1)
        # isotropic noise of expected norm δ·step; re-projection removes only its radial share (~1/√D)
        assert float(disp.mean()) == pytest.approx(delta * step, rel=0.05)
        assert float(disp.std()) < 0.1 * delta * step  # concentrated: every frame moves by about δ steps
    # isotropic: the displacement is not aligned with the path
    p = paths.perturbed_path(x, sphere, delta=0.5, seed=0)
    tangent = (x[2:] - x[:-2]) / (x[2:] - x[:-2]).norm(dim=-1, keepdim=True)
    d = p[1:-1] - x[1:-1]
    cos = ((d * tangent).sum(-1) / d.norm(dim=-1)).abs()
    assert float(cos.mean()) < 0.15


def test_perturbation_is_seeded() -> None:
    x, sphere = paths.video_path(_wobbly_path())
    a = paths.perturbed_path(x, sphere, 0.5, seed=1)
    assert torch.equal(a, paths.perturbed_path(x, sphere, 0.5, seed=1))
    assert not torch.equal(a, paths.perturbed_path(x, sphere, 0.5, seed=2))


def test_smoothing_keeps_endpoints_and_removes_jitter() -> None:
    x, sphere = paths.video_path(_wobbly_path(n=20))
    g = torch.Generator().manual_seed(5)
    jitter = x.clone()
    jitter[1:-1] += 0.3 * paths.median_step(x) * torch.randn(18, D, generator=g, dtype=torch.float64) / math.sqrt(D)
    jitter = torch.cat([x[:1], sphere.project_points(jitter[1:-1]), x[-1:]])
    s = paths.smoothed_path(jitter, sphere, sigma=1.0)
    assert torch.equal(s[0], jitter[0]) and torch.equal(s[-1], jitter[-1])

    def roughness(p: torch.Tensor) -> float:
        return float((p[2:] - 2 * p[1:-1] + p[:-2]).norm(dim=-1).mean())

    assert roughness(s) < 0.5 * roughness(jitter)
    # wider kernels smooth more
    assert roughness(paths.smoothed_path(jitter, sphere, sigma=2.0)) < roughness(s)


def test_smoothing_barely_moves_an_evenly_sampled_great_circle() -> None:
    sphere = Sphere(10.0)
    g = torch.Generator().manual_seed(0)
    a, b = (sphere.project_points(torch.randn(1, D, generator=g, dtype=torch.float64))[0] for _ in range(2))
    arc = slerp(a, b, torch.linspace(0, 1, 16))
    s = paths.smoothed_path(arc, sphere, sigma=1.0)
    step = paths.median_step(arc)
    # away from the ends a symmetric kernel on an evenly sampled arc only shrinks it slightly (then re-projected)
    assert float((s[4:-4] - arc[4:-4]).norm(dim=-1).max()) < 0.01 * step


def test_line_is_the_slerp_between_the_endpoints() -> None:
    x, sphere = paths.video_path(_wobbly_path())
    line = paths.line_path(x, sphere)
    ref = slerp(x[0], x[-1], torch.linspace(0, 1, x.shape[0], dtype=torch.float64))
    assert torch.allclose(line, ref, atol=1e-9)
    # a great circle: all points in the plane of the endpoints
    basis = torch.linalg.qr(torch.stack([x[0], x[-1]], dim=1))[0]
    resid = line - (line @ basis) @ basis.T
    assert float(resid.norm(dim=-1).max()) < 1e-8 * sphere.radius


@pytest.mark.parametrize(("fn", "kwargs", "match"), [
    (paths.perturbed_path, {"delta": 0.0}, "delta"),
    (paths.perturbed_path, {"delta": float("nan")}, "delta"),
    (paths.smoothed_path, {"sigma": -1.0}, "smooth-sigma"),
])
def test_bad_parameters_are_one_line_input_errors(fn, kwargs, match) -> None:
    x, sphere = paths.video_path(_wobbly_path())
    with pytest.raises(InputError, match=match):
        fn(x, sphere, **kwargs)


def test_optimised_path_lowers_the_residual_with_normal_moves_only() -> None:
    """γ_o on an anisotropic Gaussian density: endpoints fixed, on the sphere, lower mean ‖r‖, budget kept."""
    from geovid.geometry.measures import path_measures

    d = 16
    g = torch.Generator().manual_seed(0)
    prec = torch.diag(torch.linspace(0.2, 3.0, d, dtype=torch.float64))

    def score(z: torch.Tensor) -> torch.Tensor:
        return -z @ prec

    raw = torch.randn(3, d, generator=g, dtype=torch.float64) * 2
    t = torch.linspace(0, 1, 9, dtype=torch.float64)[:, None]
    start = (1 - t) * raw[0] + t * raw[1] + 0.8 * torch.sin(math.pi * t) * raw[2]
    x, sphere = paths.video_path(start)
    metric = make_metric("density", alpha=0.5)
    res = paths.optimised_path(x, score, metric, sphere, max_calls=200, seed=0)
    assert res.network_calls <= 200
    xo = res.path
    assert torch.equal(xo[0], x[0]) and torch.equal(xo[-1], x[-1])
    assert torch.allclose(xo.norm(dim=-1), torch.full((9,), sphere.radius, dtype=torch.float64), rtol=1e-9)
    before = path_measures(x, score(x), metric, sphere).mean_residual
    after = path_measures(xo, score(xo), metric, sphere).mean_residual
    assert after < 0.7 * before
