"""Model v2 training data: degraded scenes with artefact captions and the latent cache (docs/model.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from geovid.model.artefacts import KIND_WORDS, KINDS, NEGATIVE_PROMPT, render_degraded
from geovid.world.render import render_seed


@pytest.mark.parametrize("kind", KINDS)
def test_each_artefact_changes_the_scene_and_is_captioned_with_its_words(kind: str) -> None:
    clean, clean_caption, _ = render_seed(5)
    img, cap, got = render_degraded(5, kind=kind)
    again = render_degraded(5, kind=kind)
    assert got == kind and img.shape == clean.shape and img.dtype == np.uint8
    assert np.array_equal(img, again[0]) and cap == again[1]  # deterministic in the seed
    assert np.abs(img.astype(int) - clean.astype(int)).mean() > 1.0  # visibly degraded
    words = [w.strip() for w in cap.replace(clean_caption, "").split(",") if w.strip()]
    assert words and all(w in NEGATIVE_PROMPT for w in words)
    assert cap == NEGATIVE_PROMPT or set(KIND_WORDS[kind]) <= set(words)


def test_artefact_words_are_single_tokens_of_the_bundled_vocabulary() -> None:
    from geovid.model.tokenizer import EXTRA_WORDS

    for phrase in NEGATIVE_PROMPT.split(","):
        assert all(w in EXTRA_WORDS for w in phrase.split())


def test_colour_artefact_tints_the_grey_ground() -> None:
    # A hue rotation alone maps the palette onto itself and can look clean; the cast must reach the ground.
    clean = render_seed(11)[0].astype(float)
    img = render_degraded(11, kind="colour")[0].astype(float)
    corner = (slice(0, 6), slice(0, 6))  # ground, far from objects
    assert np.abs(img[corner].mean((0, 1)) - clean[corner].mean((0, 1))).max() > 10


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geovid.model.architecture import TINY, build_random_pipeline

    return Path(build_random_pipeline(str(tmp_path_factory.mktemp("m") / "model"), TINY, seed=0))


def test_cache_is_built_resumed_loaded_and_tied_to_its_vae(tiny_model: Path, tmp_path: Path) -> None:
    from geovid.errors import InputError, ModelError
    from geovid.model.cache import build_latent_cache, load_latent_cache

    cache = tmp_path / "cache"
    # An interrupted build (manifest says 8 of 24 done) is continued, not restarted.
    build_latent_cache(tiny_model, cache, n=24, artefact_fraction=0.5, workers=0, chunk=8)
    first = load_latent_cache(cache, tiny_model / "vae")
    man = json.loads((cache / "manifest.json").read_text())
    (cache / "manifest.json").write_text(json.dumps({**man, "done": 8, "complete": False}))
    assert len(load_latent_cache(cache, partial=True)) == 8
    with pytest.raises(ModelError, match="incomplete"):
        load_latent_cache(cache)
    man2 = build_latent_cache(tiny_model, cache, n=24, artefact_fraction=0.5, workers=0, chunk=8)
    data = load_latent_cache(cache, tiny_model / "vae")
    assert man2["complete"] and len(data) == 24 and data.mean.dtype == torch.float16
    assert torch.equal(data.mean, first.mean) and data.captions == first.captions
    assert tuple(data.mean.shape[1:]) == (4, 16, 16) and float(data.std.float().min()) > 0
    assert 0 < sum(k != "" for k in data.kinds) < 24  # some degraded, some clean
    # The latents are the VAE posterior mean of the rendered scene.
    from geovid.backbones.loader import load_backbone
    from geovid.model.data import images_to_tensor

    bb = load_backbone(str(tiny_model), device="cpu")
    i = data.kinds.index("")
    img, cap, _ = render_seed(i, size=32)
    z = bb.vae.encode(images_to_tensor(img[None]) * 2 - 1).latent_dist.mean
    assert torch.allclose(z[0], data.mean[i].float(), atol=2e-3) and data.captions[i] == cap
    with pytest.raises(InputError, match="other settings"):
        build_latent_cache(tiny_model, cache, n=30, workers=0)
    other = tmp_path / "other"
    from geovid.model.architecture import TINY, build_random_pipeline

    build_random_pipeline(str(other), TINY, seed=1)
    with pytest.raises(ModelError, match="another VAE"):
        load_latent_cache(cache, other / "vae")


def test_refresh_re_encodes_only_the_rows_of_the_given_kinds(tiny_model: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from geovid.model import artefacts
    from geovid.model.cache import build_latent_cache, load_latent_cache, refresh_latent_cache

    fresh = tmp_path / "fresh"
    build_latent_cache(tiny_model, fresh, n=32, artefact_fraction=0.6, workers=0, chunk=8)
    want = load_latent_cache(fresh)
    # A cache built by an older generator whose colour artefact was different ...
    old = tmp_path / "old"
    real = artefacts.degrade
    monkeypatch.setattr(artefacts, "degrade", lambda scene, kind, rng, size=64: (
        real(scene, "blur", rng, size) if kind == "colour" else real(scene, kind, rng, size)))
    build_latent_cache(tiny_model, old, n=32, artefact_fraction=0.6, workers=0, chunk=8)
    monkeypatch.setattr(artefacts, "degrade", real)
    before = load_latent_cache(old)
    colour = [i for i, k in enumerate(before.kinds) if k == "colour"]
    assert colour and not torch.equal(before.mean[colour], want.mean[colour])
    # ... is mended row by row: the colour rows now equal a fresh build, the others are untouched.
    assert refresh_latent_cache(tiny_model, old, ["colour"], workers=0) == {"colour": len(colour)}
    after = load_latent_cache(old)
    others = [i for i in range(32) if i not in colour]
    assert torch.equal(after.mean[others], before.mean[others])
    # (encoder batches of another size may differ in the last float16 bit)
    assert torch.allclose(after.mean.float(), want.mean.float(), atol=2e-3)
    assert torch.allclose(after.std.float(), want.std.float(), atol=2e-3)
    assert after.captions == want.captions and after.kinds == want.kinds
    assert json.loads((old / "manifest.json").read_text())["refreshed"] == {"colour": len(colour)}


def test_unet_trains_from_the_cache_and_records_the_negative_prompt(tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    from geovid.backbones.loader import clear_cache, load_backbone, model_info
    from geovid.model.architecture import TINY
    from geovid.model.cache import build_latent_cache
    from geovid.model.train import TrainConfig, train_unet

    out = tmp_path / "m"
    shutil.copytree(tiny_model / "vae", out / "vae")
    build_latent_cache(out, tmp_path / "c", n=16, artefact_fraction=0.5, workers=0, chunk=8)
    summary = train_unet(out, TrainConfig(steps=2, batch=4, warmup=1), TINY, cache=tmp_path / "c")
    assert summary["steps"] == 2 and summary["cache"]["scenes"] == 16 and summary["samples_per_second"] > 0
    assert json.loads((out / "geovid.json").read_text())["negative_prompt"] == NEGATIVE_PROMPT
    clear_cache()
    assert load_backbone(str(out), device="cpu").negative_prompt == NEGATIVE_PROMPT
    info = model_info(str(out))
    assert info["negative_prompt"] == NEGATIVE_PROMPT and info["trained_on_artefacts"] is True


def test_denoising_loss_uses_the_same_draws_for_every_condition(tiny_model: Path) -> None:
    from geovid.backbones.loader import load_backbone
    from geovid.model.evaluate import denoising_loss

    bb = load_backbone(str(tiny_model), device="cpu")
    z0 = torch.randn(3, 4, 16, 16)
    c = bb.embed_prompt("a red sphere")
    a, b = denoising_loss(bb, z0, c, seed=3), denoising_loss(bb, z0, c, seed=3)
    assert a.shape == (3,) and torch.equal(a, b) and bool((a > 0).all())
    assert not torch.equal(a, denoising_loss(bb, z0, bb.embed_prompt(""), seed=3))
