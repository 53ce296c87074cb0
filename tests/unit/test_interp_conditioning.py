"""Per-endpoint conditioning of interpolation/extrapolation (issue #13; docs/interpolation.md "Conditioning"):
the joint endpoint prompt-embedding inversion, the condition field c(x) and the estimators conditioned on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geovid.errors import InputError
from geovid.geometry.estimators import make_estimator
from geovid.tasks.common import (
    ConditionField,
    blend_conditions,
    field_estimator,
    invert_endpoint_embeddings,
    invert_with_conditions,
)
from geovid.tasks.interpolate import resolve_conditioning


@pytest.fixture(scope="module")
def bb(analysis_model: str | None, tmp_path_factory: pytest.TempPathFactory):
    from geovid.backbones.loader import load_backbone

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.setenv("GEOVID_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield load_backbone(analysis_model, device="cpu")
    mp.undo()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def z0(bb) -> torch.Tensor:
    from geovid.media.images import to_tensor
    from geovid.world.clips import moved_pair
    from geovid.world.render import render

    a, b, _ = moved_pair(9_500_000)
    with torch.no_grad():
        return bb.encode(to_tensor(np.stack([render(a), render(b)])).float())


def test_joint_inversion_is_cached_deterministic_and_per_endpoint(bb, z0) -> None:
    calls = bb.network_calls
    c = invert_endpoint_embeddings(bb, z0, steps=3)
    assert c.shape == (2, *bb.embed_prompt("").shape[1:])
    assert bb.network_calls - calls == 3 * 2 * 2  # steps × endpoints × batch
    assert not torch.equal(c[0], c[1]) and not torch.equal(c[0], bb.embed_prompt("")[0])
    calls = bb.network_calls
    assert torch.equal(invert_endpoint_embeddings(bb, z0, steps=3), c) and bb.network_calls == calls  # cache
    assert torch.equal(invert_endpoint_embeddings(bb, z0, steps=3, use_cache=False), c)  # same seed, same result
    # Each endpoint's problem is its own: inverting A alone gives A's embedding of the joint run (same draws).
    same = invert_endpoint_embeddings(bb, z0[[0, 0]], steps=3)
    assert torch.equal(same[0], same[1])  # the same image twice gets one embedding
    assert torch.equal(invert_endpoint_embeddings(bb, z0, steps=0), bb.embed_prompt("").repeat(2, 1, 1))
    with pytest.raises(InputError, match="--invert-steps"):
        invert_endpoint_embeddings(bb, z0, steps=-1)


def test_inversion_with_own_conditions_equals_separate_inversions(bb, z0) -> None:
    ca, cb = bb.embed_prompt("a red sphere"), bb.embed_prompt("a blue cube")
    both = invert_with_conditions(bb, z0, torch.cat([ca, cb]), 0.6, steps=10)
    a = invert_with_conditions(bb, z0[:1], ca, 0.6, steps=10)
    b = invert_with_conditions(bb, z0[1:], cb, 0.6, steps=10)
    assert torch.allclose(both, torch.cat([a, b]), rtol=1e-3, atol=1e-3)  # batched float32 sums


def test_condition_field_blends_by_position_along_the_chord(bb) -> None:
    ca, cb = bb.embed_prompt("a red sphere"), bb.embed_prompt("a blue cube")
    a, b = torch.zeros(8, dtype=torch.float64), torch.ones(8, dtype=torch.float64)
    f = ConditionField(ca, cb, a, b)
    x = torch.stack([a, 0.25 * b, b, 2 * b, -b])
    assert f.position(x).tolist() == [0.0, 0.25, 1.0, 1.0, 0.0]  # clamped beyond the endpoints
    assert torch.equal(f(x), blend_conditions(ca, cb, np.array([0.0, 0.25, 1.0, 1.0, 0.0])))
    same = ConditionField(ca, ca, a, b)
    assert same.constant and same(x).shape[0] == 1


@pytest.mark.parametrize("name", ["eps", "contrast"])
def test_field_estimator_equals_the_plain_one_per_row(bb, name: str) -> None:
    d = int(np.prod(bb.latent_shape))
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(d, generator=gen, dtype=torch.float64), torch.randn(d, generator=gen, dtype=torch.float64)
    ca, cb = bb.embed_prompt("a red sphere"), bb.embed_prompt("a blue cube")
    neg = bb.embed_prompt(bb.default_negative_prompt)
    kw = {"neg_cond": neg} if name == "contrast" else {}
    # Constant field: the plain estimator exactly.
    x = torch.stack([a, 0.5 * (a + b), b])
    same = field_estimator(name, bb, 581, ConditionField(ca, ca, a, b), seed=3)
    assert torch.equal(same(x), make_estimator(name, bb, 581, ca, seed=3, **kw)(x))
    # Endpoints with their own embedding: row i is the plain estimator with c(x_i) (draws: same rows, same draws).
    f = ConditionField(ca, cb, a, b)
    s = field_estimator(name, bb, 581, f, seed=3, draws=2 if name == "contrast" else 1)(x)
    kw2 = {**kw, "draws": 2} if name == "contrast" else {}
    ref_a = make_estimator(name, bb, 581, ca, seed=3, **kw2)(x)
    ref_b = make_estimator(name, bb, 581, cb, seed=3, **kw2)(x)
    assert torch.allclose(s[0], ref_a[0], atol=1e-5) and torch.allclose(s[2], ref_b[2], atol=1e-5)
    assert not torch.allclose(s[1], ref_a[1], atol=1e-5)
    with pytest.raises(InputError, match="unknown estimator"):
        field_estimator("exact", bb, 581, f)


def test_conditioning_rule() -> None:
    assert resolve_conditioning(None, "") == "invert"
    assert resolve_conditioning(None, "a red cube") == "prompt"
    assert resolve_conditioning(None, "", "a blue cube") == "prompt"
    assert resolve_conditioning("invert", "a red cube") == "invert"
    with pytest.raises(InputError, match="unknown conditioning"):
        resolve_conditioning("telepathy", "")
