"""The analytic Gaussian-mixture backbone: exact noised scores, ε, schedule and DDIM (docs/method.md §1–§2)."""

from __future__ import annotations

import math

import pytest
import torch

from geovid.backbones.analytic import GaussianMixture, GaussianMixtureBackbone
from geovid.backbones.base import Backbone
from geovid.errors import InputError
from geovid.geometry.estimators import make_estimator

F64 = torch.float64


def _mix(d: int = 6, diagonal: bool = False, seed: int = 0) -> GaussianMixture:
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(3, d, generator=g, dtype=F64)
    if diagonal:
        covs = 0.2 + torch.rand(3, d, generator=g, dtype=F64)
    else:
        a = torch.randn(3, d, d, generator=g, dtype=F64) / math.sqrt(d)
        covs = a @ a.transpose(1, 2) + 0.3 * torch.eye(d, dtype=F64)
    return GaussianMixture(torch.tensor([1.0, 2.0, 0.5], dtype=F64), means, covs)


@pytest.mark.parametrize("diagonal", [False, True])
def test_score_is_gradient_of_log_density_at_every_noise_level(diagonal: bool) -> None:
    bb = GaussianMixtureBackbone(_mix(diagonal=diagonal))
    x = torch.randn(5, 6, dtype=F64, generator=torch.Generator().manual_seed(1))
    for t in (-1, 0, 250, 581, 999):
        xg = x.clone().requires_grad_(True)
        lp = bb.log_prob(xg, t).sum()
        (g,) = torch.autograd.grad(lp, xg)
        assert torch.allclose(bb.score(x, t), g, atol=1e-10)


def test_noised_mixture_parameters_and_eps() -> None:
    mix = _mix()
    a = 0.3
    means, covs = mix.noised(a)
    assert torch.allclose(means, math.sqrt(a) * mix.means)
    assert torch.allclose(covs, a * mix.covs + (1 - a) * torch.eye(6, dtype=F64))
    bb = GaussianMixtureBackbone(mix)
    x = torch.randn(4, 6, dtype=F64)
    assert torch.allclose(bb.eps(x, 581), -bb.sigma(581) * bb.score(x, 581))
    # Per-sample timesteps.
    ts = torch.tensor([10, 581, 581, 900])
    e = bb.eps(x, ts)
    for i, tv in enumerate(ts):
        assert torch.allclose(e[i], bb.eps(x[i:i + 1], int(tv))[0])
    assert isinstance(bb, Backbone)


def test_noise_level_maps_to_sd2_timestep() -> None:
    bb = GaussianMixtureBackbone(_mix())
    assert bb.noise_level_to_timestep(0.6) == 581
    assert abs(bb.alpha_bar(581) - 0.18) < 0.005
    ts = bb.timesteps(50)
    assert int(ts[0]) == 981 and int(ts[-1]) == 1 and len(ts) == 50
    with pytest.raises(ValueError):
        bb.noise_level_to_timestep(1.5)


def test_ddim_inversion_round_trip_converges_with_exact_denoiser() -> None:
    bb = GaussianMixtureBackbone(_mix(d=8, diagonal=True))
    z0 = torch.randn(3, 8, dtype=F64, generator=torch.Generator().manual_seed(2))
    errs = {}
    for n in (50, 200, 1000):
        t = bb.noise_level_to_timestep(0.6, n)
        before = bb.network_calls
        back = bb.denoise(bb.invert(z0, t, "", num_inference_steps=n), t, "", num_inference_steps=n)
        steps = sum(1 for v in bb.timesteps(n) if int(v) <= t)
        assert bb.network_calls - before == 2 * 3 * steps  # one call per sample and step, each way
        errs[n] = float((back - z0).norm() / z0.norm())
    # DDIM is a first-order discretisation of the probability-flow ODE: the round-trip error shrinks ~1/steps.
    assert errs[200] < errs[50] / 2.5 and errs[1000] < errs[200] / 2.5
    assert errs[1000] < 0.01


def test_conditions_and_contrast_estimator() -> None:
    base = _mix(d=4)
    neg = GaussianMixture(torch.ones(1, dtype=F64), torch.zeros(1, 4, dtype=F64), torch.ones(1, 4, dtype=F64) * 4)
    bb = GaussianMixtureBackbone(base, conditions={"negative": neg})
    assert bb.default_negative_prompt == "negative"
    est = make_estimator("contrast", bb, 581, cond="", seed=3)
    x = torch.randn(6, 4, dtype=F64)
    s1, s2 = est(x), est(x)
    assert torch.equal(s1, s2)  # fixed draws per evaluation
    assert bb.network_calls == 6 * 2 * 2
    with pytest.raises(InputError):
        bb.embed_prompt("nope")


@pytest.mark.parametrize("bad", [
    {"weights": [1], "means": [[0, 0]], "covs": [[[1, 0], [0, -1]]]},
    {"weights": [1, 1], "means": [[0, 0]], "covs": [[[1, 0], [0, 1]]]},
    {"weights": [-1], "means": [[0, 0]], "covs": [[[1, 0], [0, 1]]]},
    {"weights": [1], "means": [[0, 0]], "covs": [[[1, 0.5], [0, 1]]]},
    {"weights": [1], "means": [[0, 0]], "covs": [[1, 2, 3]]},
])
def test_invalid_mixtures_are_rejected(bad: dict) -> None:
    with pytest.raises(InputError):
        GaussianMixture.from_dict(bad)


def test_eps_estimator_refuses_noise_level_zero() -> None:
    bb = GaussianMixtureBackbone(_mix())
    with pytest.raises(InputError):
        make_estimator("eps", bb, -1)
    assert make_estimator("exact", bb, -1)(torch.zeros(1, 6, dtype=F64)).shape == (1, 6)
