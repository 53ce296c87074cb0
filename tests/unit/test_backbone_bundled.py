"""The bundled tiny Stable Diffusion: the shipped folder, its tokenizer, the round trip, the pipeline."""

from __future__ import annotations

import json

import pytest
import torch

from geovid.backbones.loader import BUNDLED_NAME, bundled_model_path, load_backbone, model_info
from geovid.model.data import heldout_seeds, psnr, render_scenes


@pytest.fixture(scope="module")
def bb():
    return load_backbone(None, device="cpu")


def test_bundled_folder_is_a_complete_sd_folder_within_budget() -> None:
    path = bundled_model_path()
    index = json.loads((path / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    for comp in ("vae", "unet", "text_encoder", "tokenizer", "scheduler"):
        assert (path / comp).is_dir()
    assert index["safety_checker"] == [None, None] and index["feature_extractor"] == [None, None]
    weights = list(path.rglob("*.safetensors"))
    assert len(weights) == 3 and not list(path.rglob("*.bin"))
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert total <= 25_000_000
    sched = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
    assert sched["beta_schedule"] == "scaled_linear" and sched["prediction_type"] == "epsilon"
    assert sched["steps_offset"] == 1 and sched["set_alpha_to_one"] is False


def test_bundled_is_the_default(bb) -> None:
    assert bb.name == BUNDLED_NAME
    assert load_backbone("bundled", device="cpu") is bb
    assert bb.resolution == 64 and bb.latent_shape == (4, 16, 16)
    info = model_info()
    assert info["resolution"] == 64 and info["latent_shape"] == [4, 16, 16]
    assert info["parameters"]["total"] == bb.parameter_counts()["total"]


def test_tokenizer_gives_one_token_per_caption_word(bb) -> None:
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(bundled_model_path() / "tokenizer"))
    _, captions = render_scenes(heldout_seeds(20), size=64)
    for cap in captions:
        ids = tok(cap).input_ids
        words = cap.replace(",", " ,").split()
        assert len(ids) == len(words) + 2, cap  # BOS + one token per word + EOS
        assert tok.unk_token_id not in ids[1:-1]
    # Unknown words never fail; they fall back to characters.
    assert len(tok("zebra").input_ids) > 3


def test_round_trip_at_nu_06_on_world_images(bb) -> None:
    """Invert to ν = 0.6 and denoise back (docs/method.md §1): the decoded image stays close to the original."""
    images, captions = render_scenes(heldout_seeds(4, start=2_000_000), size=64)
    z0 = bb.encode(images)
    t = bb.noise_level_to_timestep(0.6)
    assert t == 581
    cond = torch.cat([bb.embed_prompt(c) for c in captions])
    x = bb.invert(z0, t, cond)
    back = bb.decode(bb.denoise(x, t, cond))
    p = psnr(back, images)
    assert float(p.mean()) >= 25.0, p
    # The noised point is really noisy: far from the clean latent.
    assert float((x - z0).norm() / z0.norm()) > 0.5


def test_vae_reconstructs_world_images(bb) -> None:
    images, _ = render_scenes(heldout_seeds(8, start=2_000_000), size=64)
    p = psnr(bb.decode(bb.encode(images)), images)
    assert float(p.mean()) >= 28.0, p


def test_stable_diffusion_pipeline_loads_the_bundled_folder() -> None:
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(bundled_model_path()), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    out = pipe("a large red sphere", num_inference_steps=4, height=64, width=64, output_type="np",
               generator=torch.Generator().manual_seed(0)).images
    assert out.shape == (1, 64, 64, 3)


def _palette_share(images, colour: str) -> float:
    """Share of the saturated pixels whose hue is nearest to the palette colour ``colour``."""
    import cv2
    import numpy as np

    from geovid.world.scene import PALETTE

    names = list(PALETTE)
    pal = cv2.cvtColor(np.array([list(PALETTE.values())], np.uint8), cv2.COLOR_RGB2HSV)[0, :, 0].astype(int)
    hits = total = 0
    for img in images:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        sat = hsv[..., 1] > 90
        hue = hsv[..., 0][sat].astype(int)[:, None]
        d = np.minimum(abs(hue - pal[None]), 180 - abs(hue - pal[None]))
        nearest = d.argmin(1)
        hits += int((nearest == names.index(colour)).sum())
        total += int(sat.sum())
    return hits / max(total, 1)


def test_samples_follow_the_prompt_colour(bb) -> None:
    """Text conditioning works: a red prompt gives mostly red pixels, a blue prompt mostly blue ones."""
    from geovid.model.sampling import sample_images

    red = sample_images(bb, "a large red sphere", n=3, steps=25, guidance=5.0, seed=0)
    blue = sample_images(bb, "a large blue cube", n=3, steps=25, guidance=5.0, seed=0)
    assert _palette_share(red, "red") > 0.5 > _palette_share(blue, "red")
    assert _palette_share(blue, "blue") > 0.5 > _palette_share(red, "blue")


@pytest.mark.xfail(strict=True, reason="known miss (docs/model.md): after two sessions of CPU training (150 min) 60 % "
                   "of samples pass the checker with their caption's colours, target 80 %; needs more training "
                   "(a GPU)")
def test_samples_pass_the_checker_at_the_target_rate(bb) -> None:
    """The real threshold of docs/model.md: >= 80 % of samples are plausible and have their caption's colours."""
    import torch

    from geovid.model.data import heldout_seeds, render_scenes, tensor_to_images
    from geovid.world.checker import check

    _, captions = render_scenes(heldout_seeds(20, start=1_700_000))
    cond = torch.cat([bb.embed_prompt(c) for c in captions])
    noise = torch.randn((len(captions), *bb.latent_shape), generator=torch.Generator().manual_seed(0))
    z = bb.denoise(noise, int(bb.timesteps(25)[0]), cond, guidance=5.0, num_inference_steps=25,
                   uncond=bb.embed_prompt(""))
    results = [check(img, cap) for img, cap in zip(tensor_to_images(bb.decode(z)), captions)]
    assert sum(r.plausible and bool(r.colours_match) for r in results) >= 0.8 * len(results)
