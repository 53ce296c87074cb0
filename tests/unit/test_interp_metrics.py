"""Interpolation metrics and helpers (docs/method.md §8): perceptual distances, PPL/PDV, uniform re-timing, baselines,
path times, and the decoding schedule shared with the analysis."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geovid.errors import InputError
from geovid.geometry.paths import Sphere, lerp, slerp
from geovid.tasks.interpolate import chord_times, parse_baselines, retime
from geovid.tasks.latents import denoise_timesteps
from geovid.tasks.perceptual import (
    SSIMDistance,
    consecutive_distances,
    get_distance,
    lpips_unavailable_reason,
    ppl_pdv,
    uniform_positions,
)


def disc_frame(x: float, size: int = 64) -> np.ndarray:
    """A grey frame with a red disc centred at horizontal position x ∈ [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    img = np.full((size, size, 3), 128, np.uint8)
    img[(xx - (0.2 + 0.6 * x)) ** 2 + (yy - 0.5) ** 2 < 0.1**2] = (200, 40, 40)
    return img


def test_ssim_distance_is_zero_for_identical_frames_and_grows_with_change() -> None:
    d = SSIMDistance()
    a = disc_frame(0.0)
    assert d(a, a)[0] == pytest.approx(0.0, abs=1e-12)
    near, far = d(a, disc_frame(0.1))[0], d(a, disc_frame(0.6))[0]
    assert 0 < near < far
    # Symmetric, batched like one-by-one.
    b = np.stack([disc_frame(0.1), disc_frame(0.6)])
    both = d(np.stack([a, a]), b)
    assert both == pytest.approx([near, far])
    assert d(disc_frame(0.6), a)[0] == pytest.approx(far)


def test_perceptual_registry_falls_back_without_lpips_weights() -> None:
    reason = lpips_unavailable_reason()
    if reason is None:  # pragma: no cover - machines with torchvision + AlexNet weights
        assert get_distance("auto").name == "lpips"
    else:
        assert get_distance("auto").name == "ssim"
        with pytest.raises(InputError, match="LPIPS is not available"):
            get_distance("lpips")
    with pytest.raises(InputError, match="unknown perceptual distance"):
        get_distance("l2")


def test_ppl_and_pdv() -> None:
    ppl, pdv = ppl_pdv(np.array([0.1, 0.2, 0.3]))
    assert ppl == pytest.approx(0.6)
    assert pdv == pytest.approx(np.var([0.1, 0.2, 0.3]))
    assert ppl_pdv(np.full(16, 0.05))[1] == pytest.approx(0.0)


def test_uniform_positions_invert_the_cumulative_distance() -> None:
    # cum = [0, 1, 4]; targets 0, 2, 4 → frame 0, a third of the way from frame 1 to 2, frame 2.
    assert uniform_positions(np.array([1.0, 3.0])) == pytest.approx([0.0, 1 + 1 / 3, 2.0])
    # Zero-length segments are skipped; all-zero distances keep the frames.
    pos = uniform_positions(np.array([0.0, 2.0, 0.0, 2.0]))
    assert pos[0] == 0 and pos[-1] == 4 and np.all(np.diff(pos) > 0)
    assert uniform_positions(np.zeros(4)) == pytest.approx(np.arange(5))
    # Already uniform: unchanged.
    assert uniform_positions(np.full(6, 0.3)) == pytest.approx(np.arange(7))


def test_uniform_retiming_evens_out_perceptual_steps() -> None:
    """docs/method.md §8 on a path whose frames are badly paced: re-timing lowers PDV and keeps the endpoints."""
    dist = SSIMDistance()
    xs = np.linspace(0, 1, 9) ** 3  # slow start, fast end
    frames = np.stack([disc_frame(x) for x in xs])
    d0 = consecutive_distances(frames, dist)
    pos = uniform_positions(d0)
    # Re-render at the re-timed positions (piecewise-linear in the path parameter, as retime() does for points).
    new_x = np.interp(pos, np.arange(len(xs)), xs)
    d1 = consecutive_distances(np.stack([disc_frame(x) for x in new_x]), dist)
    assert new_x[0] == 0 and new_x[-1] == 1
    assert ppl_pdv(d1)[1] < 0.2 * ppl_pdv(d0)[1]


def test_retime_interpolates_between_neighbours_on_the_sphere() -> None:
    torch.manual_seed(0)
    sphere = Sphere(5.0)
    a, b = sphere.project_points(torch.randn(2, 32, dtype=torch.float64))
    pts = sphere.project_points(slerp(a, b, torch.linspace(0, 1, 5, dtype=torch.float64)))
    times = torch.linspace(0, 1, 5, dtype=torch.float64)
    same, t_same = retime(pts, times, np.arange(5.0), spherical=True)
    assert torch.allclose(same, pts) and torch.allclose(t_same, times)
    new, t_new = retime(pts, times, np.array([0.0, 0.5, 2.25, 4.0]), spherical=True)
    assert torch.allclose(new.norm(dim=-1), torch.full((4,), 5.0, dtype=torch.float64))
    # On a great circle, slerp between neighbours is the slerp of the whole arc at the interpolated time.
    assert torch.allclose(new, slerp(a, b, t_new), atol=1e-10)
    assert t_new.tolist() == pytest.approx([0.0, 0.125, 0.5625, 1.0])
    flat, _ = retime(pts, times, np.array([0.5]), spherical=False)
    assert torch.allclose(flat[0], 0.5 * (pts[0] + pts[1]))


def test_chord_times_of_constant_speed_paths() -> None:
    a, b = torch.randn(2, 16, dtype=torch.float64)
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    assert torch.allclose(chord_times(lerp(a, b, t)), t)
    sphere = Sphere(3.0)
    a, b = sphere.project_points(torch.stack([a, b]))
    assert torch.allclose(chord_times(slerp(a, b, t)), t, atol=1e-12)
    # A constant path (the same image twice) gets evenly spaced times instead of NaN.
    assert torch.allclose(chord_times(a[None].repeat(4, 1)), torch.linspace(0, 1, 4, dtype=torch.float64))


def test_parse_baselines() -> None:
    assert parse_baselines("lerp,slerp") == ["lerp", "slerp"]
    assert parse_baselines(" slerp , lerp,slerp") == ["slerp", "lerp"]
    assert parse_baselines("none") == [] and parse_baselines("") == [] and parse_baselines(None) == []
    assert parse_baselines(["lerp"]) == ["lerp"]
    with pytest.raises(InputError, match="unknown baseline 'nlerp'"):
        parse_baselines("lerp,nlerp")


def test_denoise_timesteps_reproduce_the_50_step_grid() -> None:
    from geovid.backbones.base import leading_timesteps

    grid = [int(v) for v in leading_timesteps(1000, 50) if v <= 581]
    assert denoise_timesteps(581, 30) == grid
    short = denoise_timesteps(581, 10)
    assert len(short) == 10 and short[0] == 581 and short[-1] == 1 and short == sorted(short, reverse=True)
    assert denoise_timesteps(581, 1) == [581]
    with pytest.raises(InputError):
        denoise_timesteps(581, 0)
    assert math.isclose(len(denoise_timesteps(5, 30)), 5)
