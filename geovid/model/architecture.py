"""Component configs and builders of the tiny Stable Diffusion (bundled and test-sized).

The bundled model (docs/model.md) is a Stable Diffusion with every component shrunk to the procedural world:

* 64×64 RGB images; an ``AutoencoderKL`` with three blocks (two downsamplings, ×4) to 4×16×16 latents
  (D = 1024), KL-regularised like SD's VAE;
* a 2-layer CLIP text encoder (hidden size 64) over a word-level vocabulary (:mod:`geovid.model.tokenizer`);
* a ``UNet2DConditionModel`` on 16×16 latents (channels 32/64/128, one layer per block, cross-attention to the
  text at 16×16, 8×8 and in the middle, self-attention only at 8×8 and in the middle), predicting ε -- chosen
  by quality per CPU-minute among four variants (``benchmarks/unet_arch.py``, docs/model.md);
* SD2's DDIM scheduler config (scaled-linear β 0.00085–0.012, 1000 steps, ``steps_offset`` 1, ε-prediction),
  so docs/method.md §1's ν → t map gives the same timesteps as on SD2.

:data:`TINY` is a much smaller variant for tests and smoke runs (same code path, seconds to build and train).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: SD2's scheduler config (stabilityai/stable-diffusion-2-1-base), with ε-prediction so the score estimators
#: of docs/method.md §2 apply directly.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}


@dataclass(frozen=True)
class ModelSpec:
    """Sizes of all components of a tiny SD (see the module docstring)."""

    resolution: int = 64
    vae_channels: tuple[int, ...] = (32, 64, 64)
    vae_layers: int = 2
    vae_groups: int = 32
    latent_channels: int = 4
    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 4
    text_intermediate: int = 256
    unet_channels: tuple[int, ...] = (32, 64, 128)
    unet_layers: int = 1
    unet_groups: int = 32
    unet_head_dim: int = 16
    unet_only_cross_attention: tuple[bool, ...] | bool = (True, False, False)
    """Per down block (or for all): replace the self-attention of its transformer layers by a second
    cross-attention to the text (diffusers' ``only_cross_attention``). Self-attention over the 256 tokens of
    the 16×16 level is most of a CPU training step's attention cost."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def latent_size(self) -> int:
        return self.resolution // 2 ** (len(self.vae_channels) - 1)


#: The bundled model's sizes.
BUNDLED = ModelSpec()

#: A test-sized model: a few thousand parameters per component, builds and trains in a second.
TINY = ModelSpec(resolution=32, vae_channels=(8, 16), vae_layers=1, vae_groups=8, text_hidden=16,
                 text_layers=1, text_heads=2, text_intermediate=32, unet_channels=(16, 32), unet_layers=1,
                 unet_groups=8, unet_head_dim=8, unet_only_cross_attention=False)


def build_vae(spec: ModelSpec = BUNDLED, scaling_factor: float = 1.0):
    """A fresh ``AutoencoderKL`` (``scaling_factor`` is set after training from the latent spread)."""
    from diffusers import AutoencoderKL

    n = len(spec.vae_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(spec.vae_channels),
        layers_per_block=spec.vae_layers, latent_channels=spec.latent_channels, norm_num_groups=spec.vae_groups,
        sample_size=spec.resolution, scaling_factor=scaling_factor, force_upcast=False,
    )


def build_text_encoder(tokenizer: Any, spec: ModelSpec = BUNDLED, seed: int = 0):
    """A fresh CLIP text encoder sized by ``spec`` for ``tokenizer`` (vocabulary and special-token ids)."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=spec.text_hidden, intermediate_size=spec.text_intermediate,
        num_hidden_layers=spec.text_layers, num_attention_heads=spec.text_heads,
        max_position_embeddings=tokenizer.model_max_length, projection_dim=spec.text_hidden,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return CLIPTextModel(config)


def build_unet(spec: ModelSpec = BUNDLED, cross_attention_dim: int | None = None):
    """A fresh ``UNet2DConditionModel`` on the latents of ``spec`` (cross-attention at all but the last level)."""
    from diffusers import UNet2DConditionModel

    n = len(spec.unet_channels)
    down = ("CrossAttnDownBlock2D",) * (n - 1) + ("DownBlock2D",)
    up = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (n - 1)
    return UNet2DConditionModel(
        sample_size=spec.latent_size, in_channels=spec.latent_channels, out_channels=spec.latent_channels,
        down_block_types=down, up_block_types=up, block_out_channels=tuple(spec.unet_channels),
        layers_per_block=spec.unet_layers, norm_num_groups=spec.unet_groups,
        cross_attention_dim=cross_attention_dim or spec.text_hidden,
        # diffusers' "attention_head_dim" historically means the number of heads; give per-block head counts
        # from a fixed head width instead.
        attention_head_dim=tuple(max(1, c // spec.unet_head_dim) for c in spec.unet_channels),
        use_linear_projection=True,
        only_cross_attention=(list(spec.unet_only_cross_attention)
                              if isinstance(spec.unet_only_cross_attention, tuple)
                              else spec.unet_only_cross_attention),
    )


def build_scheduler():
    """SD2's DDIM scheduler (:data:`SCHEDULER_CONFIG`)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(**SCHEDULER_CONFIG)


def assemble_pipeline(vae: Any, text_encoder: Any, tokenizer: Any, unet: Any, scheduler: Any | None = None):
    """A ``StableDiffusionPipeline`` from components (no safety checker, no feature extractor)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=scheduler or build_scheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )


def save_pipeline(pipe: Any, out_dir: str, variant_fp16: bool = False) -> None:
    """Save in the SD folder format (safetensors), as ``pipe.save_pretrained`` writes it."""
    pipe.save_pretrained(out_dir, safe_serialization=True)


def build_random_pipeline(out_dir: str, spec: ModelSpec = TINY, seed: int = 0) -> str:
    """Build a random-weight SD folder of size ``spec`` (for tests: exercises the real loading code path)."""
    import torch

    from geovid.model.tokenizer import build_tokenizer

    torch.manual_seed(seed)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        tok = build_tokenizer(Path(tmp) / "tokenizer")
        pipe = assemble_pipeline(build_vae(spec), build_text_encoder(tok, spec, seed), tok, build_unet(spec))
        save_pipeline(pipe, out_dir)
    return out_dir
