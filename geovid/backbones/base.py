"""The ``Backbone`` protocol and a shared DDIM implementation (docs/method.md §1).

A backbone supplies everything the geometry needs from a diffusion model:

* ``encode`` / ``decode`` between images (float tensors ``(B, 3, H, W)`` in [0, 1]) and
  clean latents z₀ (``(B, *latent_shape)``);
* the noise predictor ``eps(x, t, cond)`` and the DDPM schedule ``alphas_cumprod``;
* the map noise level ν → timestep t_ν (reference behaviour, docs/method.md §1), ᾱ_t (``alpha_bar``) and
  σ_t (``sigma``);
* deterministic DDIM ``invert`` (z₀ → x_t) and ``denoise`` (x_t → z₀);
* ``embed_prompt`` (text → condition; ``""`` is the unconditional condition).

``DDIMMixin`` implements invert/denoise/timesteps on top of ``eps`` and
``alphas_cumprod`` so every backbone shares one DDIM (and one network-call count).
Network calls are counted per sample: a batch of 8 latents is 8 calls
(``network_calls``) and 1 batch (``network_batches``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

Condition = Any  # a backbone-specific conditioning object (text embedding, mixture name, ...)


@runtime_checkable
class Backbone(Protocol):
    """What the geometry, the analysis and the interpolation need from a model."""

    name: str
    latent_shape: tuple[int, ...]
    resolution: int | None
    alphas_cumprod: torch.Tensor
    num_train_timesteps: int
    device: torch.device
    dtype: torch.dtype
    network_calls: int
    network_batches: int

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...
    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...
    def eps(self, x: torch.Tensor, t: int | torch.Tensor, cond: Condition) -> torch.Tensor: ...
    def embed_prompt(self, prompt: str | None) -> Condition: ...
    def timesteps(self, num_inference_steps: int = 50) -> torch.Tensor: ...
    def noise_level_to_timestep(self, nu: float, num_inference_steps: int = 50) -> int: ...
    def alpha_bar(self, t: int) -> float: ...
    def sigma(self, t: int) -> float: ...
    def invert(self, z0: torch.Tensor, t: int, cond: Condition, guidance: float = 1.0,
               num_inference_steps: int = 50, uncond: Condition | None = None,
               progress: Callable[[int, int], None] | None = None) -> torch.Tensor: ...
    def denoise(self, x: torch.Tensor, t: int, cond: Condition, guidance: float = 1.0,
                num_inference_steps: int = 50, uncond: Condition | None = None,
                progress: Callable[[int, int], None] | None = None) -> torch.Tensor: ...


def leading_timesteps(num_train_timesteps: int, num_inference_steps: int, steps_offset: int = 1) -> torch.Tensor:
    """DDIM "leading" timestep spacing as used by SD2 (descending), e.g. 981, 961, …, 1 for 50 steps."""
    ratio = num_train_timesteps // num_inference_steps
    ts = (torch.arange(num_inference_steps) * ratio).round().long() + steps_offset
    return ts.flip(0)


def noise_level_timestep(timesteps: torch.Tensor, nu: float, num_inference_steps: int = 50) -> int:
    """docs/method.md §1: t_ν = timesteps[-max(1, int(50·ν))] (ν = 0.6 → 581 on SD2)."""
    if not 0.0 <= nu <= 1.0:
        raise ValueError(f"noise level must be in [0, 1], got {nu}")
    k = max(1, int(num_inference_steps * nu))
    return int(timesteps[-k])


def scaled_linear_alphas_cumprod(num_train_timesteps: int = 1000, beta_start: float = 0.00085,
                                 beta_end: float = 0.012) -> torch.Tensor:
    """The SD2 DDPM schedule ᾱ_t (scaled-linear betas), float64."""
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


class DDIMMixin:
    """Deterministic DDIM inversion and denoising on top of ``eps`` (docs/method.md §1).

    Subclasses set ``alphas_cumprod`` (float64, CPU), ``num_train_timesteps`` and
    implement ``eps``. ``steps_offset`` follows the SD2 scheduler config.
    """

    alphas_cumprod: torch.Tensor
    num_train_timesteps: int = 1000
    steps_offset: int = 1

    def timesteps(self, num_inference_steps: int = 50) -> torch.Tensor:
        return leading_timesteps(self.num_train_timesteps, num_inference_steps, self.steps_offset)

    def noise_level_to_timestep(self, nu: float, num_inference_steps: int = 50) -> int:
        return noise_level_timestep(self.timesteps(num_inference_steps), nu, num_inference_steps)

    def alpha_bar(self, t: int) -> float:
        """ᾱ_t; t < 0 means the clean data (ᾱ = 1)."""
        return 1.0 if t < 0 else float(self.alphas_cumprod[int(t)])

    def sigma(self, t: int) -> float:
        """σ_t = √(1 − ᾱ_t)."""
        return (1.0 - self.alpha_bar(t)) ** 0.5

    def _guided_eps(self, x: torch.Tensor, t: int, cond: Condition, guidance: float,
                    uncond: Condition | None) -> torch.Tensor:
        e = self.eps(x, t, cond)  # type: ignore[attr-defined]
        if guidance != 1.0:
            if uncond is None:
                uncond = self.embed_prompt("")  # type: ignore[attr-defined]
            e_u = self.eps(x, t, uncond)  # type: ignore[attr-defined]
            e = e_u + guidance * (e - e_u)
        return e

    @staticmethod
    def _ddim_step(x: torch.Tensor, e: torch.Tensor, a_from: float, a_to: float) -> torch.Tensor:
        x0 = (x - (1 - a_from) ** 0.5 * e) / a_from**0.5
        return a_to**0.5 * x0 + (1 - a_to) ** 0.5 * e

    def _path(self, t: int, num_inference_steps: int) -> list[int]:
        """Ascending DDIM timesteps up to and including t (t must be on the grid)."""
        ts = sorted(int(v) for v in self.timesteps(num_inference_steps))
        if t not in ts:
            raise ValueError(f"timestep {t} is not on the {num_inference_steps}-step DDIM grid")
        return [v for v in ts if v <= t]

    @torch.no_grad()
    def invert(self, z0: torch.Tensor, t: int, cond: Condition, guidance: float = 1.0,
               num_inference_steps: int = 50, uncond: Condition | None = None,
               progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """DDIM inversion z₀ → x_t (deterministic). docs/method.md §1."""
        path = self._path(t, num_inference_steps)
        x = z0
        prev = -1
        for i, ti in enumerate(path):
            # Standard DDIM inversion: the noise is predicted at the current (lower) level.
            e = self._guided_eps(x, prev if prev >= 0 else ti, cond, guidance, uncond)
            x = self._ddim_step(x, e, self.alpha_bar(prev), self.alpha_bar(ti))
            prev = ti
            if progress:
                progress(i + 1, len(path))
        return x

    @torch.no_grad()
    def denoise(self, x: torch.Tensor, t: int, cond: Condition, guidance: float = 1.0,
                num_inference_steps: int = 50, uncond: Condition | None = None,
                progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """DDIM denoising x_t → z₀ (deterministic, η = 0). docs/method.md §1."""
        path = self._path(t, num_inference_steps)[::-1]
        for i, ti in enumerate(path):
            nxt = path[i + 1] if i + 1 < len(path) else -1
            e = self._guided_eps(x, ti, cond, guidance, uncond)
            x = self._ddim_step(x, e, self.alpha_bar(ti), self.alpha_bar(nxt))
            if progress:
                progress(i + 1, len(path))
        return x
