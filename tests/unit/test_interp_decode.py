"""Decoding helpers of the interpolation (docs/method.md §1): DDIM from t_ν with any number of steps and per-frame
prompt embeddings, on the bundled model (or a tiny random one where it is not installed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geovid.tasks.common import blend_conditions
from geovid.tasks.latents import decode_points, points_to_images


@pytest.fixture(scope="module")
def bb(analysis_model: str | None):
    from geovid.backbones.loader import load_backbone

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_backbone(analysis_model, device="cpu")
    torch.set_num_threads(threads)


def test_decode_points_on_the_50_step_grid_matches_the_backbone_denoiser(bb) -> None:
    gen = torch.Generator().manual_seed(0)
    pts = torch.randn(3, int(np.prod(bb.latent_shape)), generator=gen, dtype=torch.float64)
    cond = bb.embed_prompt("a red sphere")
    ref = points_to_images(bb, pts, 581, prompt="a red sphere")
    assert np.array_equal(decode_points(bb, pts, 581, cond, steps=None), ref)
    # 30 evenly spaced steps from t = 581 are that same grid.
    assert np.array_equal(decode_points(bb, pts, 581, cond, steps=30), ref)
    calls = bb.network_calls
    fast = decode_points(bb, pts, 581, cond, steps=4)
    assert bb.network_calls - calls == 3 * 4 and fast.shape == ref.shape and fast.dtype == np.uint8


def test_per_frame_conditions_equal_separate_decodes(bb) -> None:
    gen = torch.Generator().manual_seed(1)
    pts = torch.randn(3, int(np.prod(bb.latent_shape)), generator=gen)
    ca, cb = bb.embed_prompt("a red sphere"), bb.embed_prompt("a blue cube")
    conds = blend_conditions(ca, cb, np.array([0.0, 0.5, 1.0]))
    assert conds.shape[0] == 3
    assert torch.allclose(conds[0], ca[0]) and torch.allclose(conds[2], cb[0])
    assert torch.allclose(conds[1], 0.5 * (ca[0] + cb[0]))
    together = decode_points(bb, pts, 581, conds, steps=3)
    apart = np.concatenate([decode_points(bb, pts[i:i + 1], 581, conds[i:i + 1], steps=3) for i in range(3)])
    assert np.abs(together.astype(int) - apart.astype(int)).max() <= 1
