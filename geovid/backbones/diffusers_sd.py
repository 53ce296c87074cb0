"""The diffusers backbone: any Stable-Diffusion-format model (SD2, the bundled tiny SD) as a ``Backbone``.

This is the one module that touches diffusers/transformers model internals (docs/method.md §1–§2):

* ``encode``/``decode`` through the ``AutoencoderKL`` (latent-distribution mean × ``scaling_factor``), batched;
* ``eps(x, t, cond)``: the UNet's noise prediction ε_θ in the backbone dtype, returned as float32, chunked to
  ``max_batch`` latents per call; every sample counts as one network call;
* ``embed_prompt``: the CLIP text encoder's last hidden state (what ``StableDiffusionPipeline`` feeds the
  UNet), cached per string; ``""`` / ``None`` is the unconditional embedding;
* DDIM inversion/denoising from :class:`~geovid.backbones.base.DDIMMixin`, with classifier-free guidance done
  in one batched call (same numbers as the mixin's two calls);
* :meth:`DiffusersBackbone.invert_prompt_embedding`: optimise a prompt embedding for given latents
  (textual-inversion style), cached on disk by content hash.

Folders are loaded and validated by :mod:`geovid.backbones.loader`; build instances with
:func:`geovid.backbones.loader.load_backbone`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from geovid.backbones.base import DDIMMixin

#: docs/method.md §2: the fixed negative prompt c_neg of the ``contrast`` estimator, describing the artefacts a
#: geodesic should avoid (doubling, ghosting, distortions, blur, low detail).
DEFAULT_NEGATIVE_PROMPT = ("doubled, duplicate, ghosting, distorted, deformed, distortions, blurry, blur, "
                           "low detail, low quality")

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32, "float32": torch.float32,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}


def cache_dir() -> Path:
    """geovid's on-disk cache: ``$GEOVID_CACHE_DIR`` or ``~/.cache/geovid``."""
    env = os.environ.get("GEOVID_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "geovid"


class DiffusersBackbone(DDIMMixin):
    """A Stable-Diffusion-format latent diffusion model behind the :class:`~geovid.backbones.base.Backbone`
    protocol.

    Attributes:
        name: model id (``bundled:geovid-tiny-sd``, a folder path or a hub id).
        path: the folder the weights came from.
        latent_shape: (C, h, w) of one latent.
        resolution: image side in pixels.
        alphas_cumprod: ᾱ_t of the scheduler, float64 on the CPU.
        num_train_timesteps, steps_offset: from the scheduler config.
        device, dtype: where and in which precision the networks run.
        max_batch: most latents (or images) per network call.
        network_calls: per-sample UNet evaluations so far; ``network_batches``: UNet calls so far.
        negative_prompt: the c_neg text (default :data:`DEFAULT_NEGATIVE_PROMPT`).
    """

    default_negative_prompt: str = DEFAULT_NEGATIVE_PROMPT

    def __init__(self, *, name: str, path: Path, vae: Any, unet: Any, text_encoder: Any, tokenizer: Any,
                 scheduler_config: dict[str, Any], alphas_cumprod: torch.Tensor, device: torch.device,
                 dtype: torch.dtype, vae_dtype: torch.dtype | None = None, max_batch: int = 64) -> None:
        self.name = name
        self.path = Path(path)
        self.vae, self.unet, self.text_encoder, self.tokenizer = vae, unet, text_encoder, tokenizer
        self.scheduler_config = dict(scheduler_config)
        self.alphas_cumprod = alphas_cumprod.detach().to("cpu", torch.float64)
        self.num_train_timesteps = int(scheduler_config.get("num_train_timesteps", len(alphas_cumprod)))
        self.steps_offset = int(scheduler_config.get("steps_offset", 0))
        self.device = torch.device(device)
        self.dtype = dtype
        self.vae_dtype = vae_dtype or dtype
        self.max_batch = int(max_batch)
        self.network_calls = 0
        self.network_batches = 0
        self.negative_prompt = self.default_negative_prompt
        self.vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
        size = unet.config.sample_size
        size = size[0] if isinstance(size, list | tuple) else int(size)
        self.latent_shape: tuple[int, ...] = (int(unet.config.in_channels), size, size)
        self.resolution: int | None = size * self.vae_scale
        self.scaling_factor = float(vae.config.scaling_factor)
        shift = getattr(vae.config, "shift_factor", None)
        self.shift_factor = float(shift) if shift is not None else 0.0
        self._prompt_cache: dict[str, torch.Tensor] = {}

    # -- bookkeeping ----------------------------------------------------------------------------------------

    def reset_counters(self) -> None:
        """Zero ``network_calls`` and ``network_batches`` (loaded backbones are shared within a process)."""
        self.network_calls = 0
        self.network_batches = 0

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per component and in total."""
        counts = {k: sum(p.numel() for p in m.parameters())
                  for k, m in (("vae", self.vae), ("text_encoder", self.text_encoder), ("unet", self.unet))}
        counts["total"] = sum(counts.values())
        return counts

    def __repr__(self) -> str:
        return (f"DiffusersBackbone({self.name!r}, resolution={self.resolution}, latent_shape={self.latent_shape}, "
                f"device={self.device}, dtype={self.dtype})")

    # -- VAE ------------------------------------------------------------------------------------------------

    def _check_images(self, images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        if images.shape[-1] % self.vae_scale or images.shape[-2] % self.vae_scale:
            raise ValueError(f"image size {tuple(images.shape[-2:])} is not a multiple of {self.vae_scale}")

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1] → z₀ = (latent mean − shift) × scaling factor (docs/method.md §1), float32."""
        self._check_images(images)
        out = []
        for chunk in images.split(self.max_batch):
            x = chunk.to(self.device, self.vae_dtype) * 2 - 1
            mean = self.vae.encode(x).latent_dist.mean
            out.append((mean.float() - self.shift_factor) * self.scaling_factor)
        return torch.cat(out)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """z₀ (B, C, h, w) → images (B, 3, H, W) in [0, 1], float32."""
        out = []
        for chunk in latents.split(self.max_batch):
            z = chunk.to(self.device, torch.float32) / self.scaling_factor + self.shift_factor
            img = self.vae.decode(z.to(self.vae_dtype)).sample
            out.append(((img.float() + 1) / 2).clamp(0, 1))
        return torch.cat(out)

    # -- text -----------------------------------------------------------------------------------------------

    def tokenize(self, prompt: str) -> torch.Tensor:
        """Token ids (1, L) padded/truncated to the tokenizer's length, as the SD pipeline does."""
        return self.tokenizer(prompt, padding="max_length", max_length=self.tokenizer.model_max_length,
                              truncation=True, return_tensors="pt").input_ids

    @torch.no_grad()
    def embed_prompt(self, prompt: str | None) -> torch.Tensor:
        """The text condition c (1, L, H) in the backbone dtype; ``""``/``None`` is the unconditional one."""
        key = prompt or ""
        if key not in self._prompt_cache:
            ids = self.tokenize(key).to(self.device)
            self._prompt_cache[key] = self.text_encoder(ids)[0].to(self.dtype)
        return self._prompt_cache[key]

    # -- noise prediction -----------------------------------------------------------------------------------

    def eps(self, x: torch.Tensor, t: int | torch.Tensor, cond: Any) -> torch.Tensor:
        """ε_θ(x, t, c) (docs/method.md §2), float32, in chunks of ``max_batch``.

        Args:
            x: latents (B, C, h, w), any float dtype/device.
            t: one timestep for all, or a (B,) tensor of per-sample timesteps.
            cond: prompt embedding with 1 row (broadcast) or B rows.

        Gradients flow to ``x`` if it requires grad (the weights never do).
        """
        b = x.shape[0]
        tt = torch.as_tensor(t, dtype=torch.long).to(self.device)
        tt = tt.expand(b) if tt.ndim == 0 else tt
        if tt.shape[0] != b:
            raise ValueError(f"t has {tt.shape[0]} entries for {b} latents")
        c = cond.to(self.device, self.dtype)
        if c.shape[0] not in (1, b):
            raise ValueError(f"cond has {c.shape[0]} rows for {b} latents (need 1 or {b})")
        out = []
        for s in range(0, b, self.max_batch):
            e = min(b, s + self.max_batch)
            cc = c.expand(e - s, *c.shape[1:]) if c.shape[0] == 1 else c[s:e]
            pred = self.unet(x[s:e].to(self.device, self.dtype), tt[s:e], encoder_hidden_states=cc).sample
            out.append(pred.float())
            self.network_batches += 1
        self.network_calls += b
        return torch.cat(out)

    def _guided_eps(self, x: torch.Tensor, t: int, cond: Any, guidance: float, uncond: Any | None) -> torch.Tensor:
        """ε_u + g (ε_c − ε_u), both branches in one batched call (same values as DDIMMixin's two calls)."""
        if guidance == 1.0:
            return self.eps(x, t, cond)
        if uncond is None:
            uncond = self.embed_prompt("")
        b = x.shape[0]
        c = cond.expand(b, *cond.shape[1:]) if cond.shape[0] == 1 else cond
        u = uncond.expand(b, *uncond.shape[1:]) if uncond.shape[0] == 1 else uncond
        both = self.eps(torch.cat([x, x]), t, torch.cat([c.to(self.dtype), u.to(self.dtype)]))
        e_c, e_u = both[:b], both[b:]
        return e_u + guidance * (e_c - e_u)

    # -- sampling -------------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, prompt: str, n: int = 1, steps: int = 50, guidance: float = 5.0, seed: int = 0,
               negative_prompt: str | None = None,
               progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Text-to-image: DDIM (η = 0) from pure noise at the top of the ``steps`` grid, CFG ``guidance``.

        Returns images (n, 3, H, W) in [0, 1]. Noise is drawn on the CPU from ``seed`` (device-independent).
        """
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn((n, *self.latent_shape), generator=gen).to(self.device)
        cond = self.embed_prompt(prompt)
        uncond = self.embed_prompt(negative_prompt or "")
        t_top = int(self.timesteps(steps)[0])
        z0 = self.denoise(x, t_top, cond, guidance=guidance, num_inference_steps=steps, uncond=uncond,
                          progress=progress)
        return self.decode(z0)

    # -- prompt-embedding inversion -------------------------------------------------------------------------

    def invert_prompt_embedding(self, latents: torch.Tensor, prompt: str | None, t: int | None = None,
                                steps: int = 500, lr: float = 5e-3, batch: int = 2, seed: int = 0,
                                use_cache: bool = True,
                                progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Optimise a prompt embedding so that ε_θ explains the noise added to ``latents`` (text inversion).

        As the reference code does for its endpoint images: starting from ``embed_prompt(prompt)``, minimise
        ‖ε_θ(√ᾱ_τ z₀ + σ_τ ε, τ, c) − ε‖² over c with AdamW, each step on ``batch`` latents drawn from
        ``latents`` with fresh ε ~ N(0, I) and τ uniform over all training timesteps (``t=None``, the
        reference) or fixed at ``t``. Defaults follow the reference (500 steps, lr 5·10⁻³, batch 2). The result
        is cached on disk under ``cache_dir()/prompt-inversion/<sha256>.safetensors``; the hash covers the
        latents' bytes and shape, the prompt, the model id and every parameter.

        Args:
            latents: clean latents z₀ (B, C, h, w) of the images the condition should describe.
            prompt: starting prompt (``None``/``""``: the unconditional embedding).
            t: fixed timestep, or ``None`` for uniform random timesteps.
            steps: optimisation steps; lr: AdamW learning rate; batch: latents per step; seed: noise seed.
            use_cache: read/write the on-disk cache.
            progress: ``progress(done, total)``.

        Returns:
            The embedding (1, L, H) in the backbone dtype, detached.
        """
        from safetensors.torch import load_file, save_file

        z0 = latents.detach().to("cpu", torch.float32).contiguous()
        h = hashlib.sha256()
        h.update(z0.numpy().tobytes())
        h.update(str(tuple(z0.shape)).encode())
        h.update(f"|{prompt or ''}|{self.name}|t={t}|steps={steps}|lr={lr}|batch={batch}|seed={seed}".encode())
        path = cache_dir() / "prompt-inversion" / f"{h.hexdigest()}.safetensors"
        if use_cache and path.is_file():
            return load_file(str(path))["embedding"].to(self.device, self.dtype)

        emb = self.embed_prompt(prompt).detach().float().clone().requires_grad_(True)
        opt = torch.optim.AdamW([emb], lr=lr)
        gen = torch.Generator().manual_seed(seed)
        acp = self.alphas_cumprod.float()
        for i in range(steps):
            idx = torch.randint(0, z0.shape[0], (batch,), generator=gen)
            z = z0[idx]
            noise = torch.randn(z.shape, generator=gen)
            tt = (torch.randint(0, self.num_train_timesteps, (batch,), generator=gen) if t is None
                  else torch.full((batch,), int(t), dtype=torch.long))
            a = acp[tt].view(-1, 1, 1, 1)
            xt = (a.sqrt() * z + (1 - a).sqrt() * noise).to(self.device)
            with torch.enable_grad():
                pred = self.eps(xt, tt, emb.to(self.dtype))
                loss = (pred - noise.to(self.device)).pow(2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()
            if progress:
                progress(i + 1, steps)
        result = emb.detach().to(self.dtype)
        if use_cache:
            from geovid.runs.files import atomic_output

            with atomic_output(path) as tmp:
                save_file({"embedding": result.float().cpu().contiguous()}, str(tmp))
        return result
