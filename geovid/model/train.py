"""Training the tiny Stable Diffusion on the procedural world (docs/model.md).

Two stages, each writing into one SD-format folder ``out``:

1. :func:`train_vae` -- the ``AutoencoderKL`` on scenes rendered on the fly: L1 + MSE weighted up on objects,
   an edge term (L1 of the image gradients, keeps object outlines sharp for the plausibility checker), a chroma
   term (keeps the grey ground free of colour halos) and a very small KL, as SD's VAE (no GAN, no perceptual
   loss: nothing to download). Writes ``out/vae`` with ``scaling_factor`` set to
   1 / std of the latents so the diffusion sees unit-variance data, as in SD.
2. :func:`train_unet` -- the tokenizer (:mod:`geovid.model.tokenizer`), a fresh CLIP text encoder trained
   jointly with the ``UNet2DConditionModel`` by the standard ε-prediction loss with min-SNR-5 weighting (faster
   convergence for small budgets), captions as prompts with 10 % caption dropout (the empty prompt is the
   unconditional branch for classifier-free guidance), AdamW, warm-up + cosine learning rate, EMA of the
   weights. Writes the whole pipeline with ``StableDiffusionPipeline.save_pretrained(safe_serialization=True)``.

Both stop at ``steps`` or after ``minutes`` (whichever first); the learning-rate schedule follows whichever
budget is the tighter, so a time-limited run still ends with a fully decayed rate. Fixed ``seed`` and
``steps`` (no ``minutes``) reproduce a run exactly on one machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from geovid.model.architecture import (
    BUNDLED,
    ModelSpec,
    assemble_pipeline,
    build_scheduler,
    build_text_encoder,
    build_unet,
    build_vae,
)
from geovid.model.data import render_scenes, scene_stream
from geovid.model.tokenizer import build_tokenizer
from geovid.progress import ProgressFn, null_progress

__all__ = ["TrainConfig", "build_text_encoder", "build_tokenizer", "latent_scaling_factor", "train_all",
           "train_unet", "train_vae"]


@dataclass
class TrainConfig:
    """Budget and optimiser settings of one training stage."""

    steps: int = 2000
    """Optimiser steps (upper bound)."""
    batch: int = 16
    """Scenes per step."""
    lr: float = 1e-3
    """Peak learning rate (AdamW)."""
    seed: int = 0
    """Seeds the weights, the scene stream and the noise."""
    minutes: float | None = None
    """Wall-clock budget; training stops when it is used up (the LR schedule follows it)."""
    warmup: int = 100
    """Linear warm-up steps."""
    weight_decay: float = 0.01
    threads: int = 1
    """torch CPU threads. On the shared two-core build machine one thread was 5x faster than two (2.2 vs
    10.5 s per VAE step): with other processes running, two OpenMP threads mostly wait for each other."""
    checkpoint_minutes: float = 5.0
    """Save the current weights this often (so a killed run leaves a usable model)."""
    resume: bool = False
    """Start from the weights already in the output folder (a new warm-up + cosine cycle)."""
    device: str = "cpu"
    """Where to train (cpu, cuda, mps); the noise is drawn on the CPU so a seed means the same everywhere."""
    workers: int = 0
    """Background processes rendering scenes (0: render in the training process; use several on a GPU)."""


class _Budget:
    """Progress fraction of a run limited by steps and, optionally, minutes; drives the LR schedule."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def fraction(self, step: int) -> float:
        f = step / max(1, self.cfg.steps)
        if self.cfg.minutes:
            f = max(f, self.elapsed() / (60.0 * self.cfg.minutes))
        return f

    def lr(self, step: int) -> float:
        warm = min(1.0, (step + 1) / max(1, self.cfg.warmup))
        f = min(1.0, self.fraction(step))
        return self.cfg.lr * warm * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * f)))


def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


def _object_weights(x: torch.Tensor, object_weight: float) -> torch.Tensor:
    """Per-pixel loss weights: 1 on the grey ground, 1 + ``object_weight`` on and around saturated objects.

    The ground is most of every image, so a plain pixel loss reaches a high PSNR while objects stay soft and
    washed out -- exactly what the plausibility checker (and a viewer) notices. Chroma (max − min channel,
    images in [0, 1]) above 0.15 marks objects; a 3×3 max-pool adds their outline.
    """
    chroma = (x.amax(1, keepdim=True) - x.amin(1, keepdim=True)) > 0.15
    mask = F.max_pool2d(chroma.float(), 3, stride=1, padding=1)
    return 1.0 + object_weight * mask


def _chroma(x: torch.Tensor) -> torch.Tensor:
    """Colour deviation from grey per pixel (x minus its channel mean): zero on the neutral ground."""
    return x - x.mean(1, keepdim=True)


def _edge_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    dx = (x[..., :, 1:] - x[..., :, :-1]) - (y[..., :, 1:] - y[..., :, :-1])
    dy = (x[..., 1:, :] - x[..., :-1, :]) - (y[..., 1:, :] - y[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


@torch.no_grad()
def latent_scaling_factor(vae: Any, spec: ModelSpec, n: int = 256, seed: int = 12345) -> float:
    """1 / std of the VAE's latent means over ``n`` training scenes (SD's recipe for ``scaling_factor``)."""
    rng = torch.Generator().manual_seed(seed)
    seeds = torch.randint(0, 10**6, (n,), generator=rng).tolist()
    zs = []
    for i in range(0, n, 64):
        x, _ = render_scenes(seeds[i:i + 64], size=spec.resolution)
        zs.append(vae.encode(x.to(vae.device) * 2 - 1).latent_dist.mean.cpu())
    return float(1.0 / torch.cat(zs).std())


def _random_crops(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """One random ``size``×``size`` crop per image (the VAE is convolutional; crops cost 1/4 at half size)."""
    h, w = x.shape[-2:]
    ys = torch.randint(0, h - size + 1, (x.shape[0],), generator=gen).tolist()
    xs = torch.randint(0, w - size + 1, (x.shape[0],), generator=gen).tolist()
    return torch.stack([img[:, y:y + size, x0:x0 + size] for img, y, x0 in zip(x, ys, xs)])


def train_vae(out: str | Path, cfg: TrainConfig | None = None, spec: ModelSpec = BUNDLED,
              kl_weight: float = 1e-6, edge_weight: float = 0.5, object_weight: float = 4.0,
              chroma_weight: float = 3.0,
              crop: int | None = None,
              crop_fraction: float = 0.75, progress: ProgressFn = null_progress) -> dict[str, Any]:
    """Train the VAE on world scenes and save it to ``out/vae`` (see the module docstring).

    Args:
        out: model folder (created); the VAE goes to ``out/vae``.
        cfg: budget and optimiser settings (default: :class:`TrainConfig` ()).
        spec: component sizes.
        kl_weight: weight of the mean per-element KL term.
        edge_weight: weight of the image-gradient L1 term.
        object_weight: extra pixel-loss weight on and around objects (:func:`_object_weights`).
        chroma_weight: weight of an L1 term on the colour deviation from grey (:func:`_chroma`): keeps the
            grey ground free of colour halos that read as faint ghosts.
        crop: train on random ``crop``×``crop`` crops (twice the batch) for the first ``crop_fraction`` of the
            budget, then on full images: the same compute sees more scenes. ``None``: half the resolution.
            0: always full images.
        crop_fraction: share of the budget spent on crops.
        progress: ``progress("vae", step, steps, info)`` after every step.

    Returns:
        A summary: steps, seconds, final training loss and PSNR, the scaling factor, the config.
    """
    cfg = cfg or TrainConfig()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(out)
    vae = _load_vae(out) if cfg.resume else build_vae(spec)
    vae.to(cfg.device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    budget = _Budget(cfg)
    crop = spec.resolution // 2 if crop is None else crop
    stream = scene_stream(cfg.batch, size=spec.resolution, seed=cfg.seed, workers=cfg.workers)
    gen = torch.Generator().manual_seed(cfg.seed)
    last_save = time.monotonic()
    ema_loss = ema_psnr = None
    step = 0
    while step < cfg.steps and budget.fraction(step) < 1.0:
        _set_lr(opt, budget.lr(step))
        x, _ = next(stream)
        if crop and budget.fraction(step) < crop_fraction:
            x = _random_crops(torch.cat([x, next(stream)[0]]), crop, gen)
        x = x.to(cfg.device)
        w = _object_weights(x, object_weight)
        w = w / w.mean()
        x = x * 2 - 1  # diffusers VAEs work on [-1, 1]
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        kl = post.kl().mean() / post.mean[0].numel()
        err = rec - x
        loss = (((err.abs() + err.pow(2)) * w).mean() + edge_weight * _edge_loss(rec, x)
                + chroma_weight * (_chroma(rec) - _chroma(x)).abs().mean() + kl_weight * kl)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        with torch.no_grad():
            mse = ((rec.clamp(-1, 1) - x) / 2).pow(2).flatten(1).mean(1)
            p = float((10 * torch.log10(1 / mse.clamp_min(1e-12))).mean())
        ema_loss = loss.item() if ema_loss is None else 0.95 * ema_loss + 0.05 * loss.item()
        ema_psnr = p if ema_psnr is None else 0.95 * ema_psnr + 0.05 * p
        progress("vae", step, cfg.steps, {"loss": ema_loss, "psnr": ema_psnr, "lr": budget.lr(step),
                                          "px": x.shape[-1], "s": round(budget.elapsed())})
        if time.monotonic() - last_save > 60.0 * cfg.checkpoint_minutes:
            _save_vae(vae, spec, out)
            last_save = time.monotonic()
    scale = _save_vae(vae, spec, out)
    return {"stage": "vae", "steps": step, "seconds": round(budget.elapsed(), 1), "loss": ema_loss,
            "train_psnr": ema_psnr, "scaling_factor": scale, "crop": crop, "object_weight": object_weight,
            "chroma_weight": chroma_weight, "edge_weight": edge_weight, "kl_weight": kl_weight,
            "config": asdict(cfg)}


def _save_vae(vae: Any, spec: ModelSpec, out: Path) -> float:
    from geovid.backbones.loader import quiet_libraries

    vae.eval()
    scale = latent_scaling_factor(vae, spec)
    vae.register_to_config(scaling_factor=scale)
    with quiet_libraries():
        vae.save_pretrained(str(out / "vae"), safe_serialization=True)  # saves CPU copies of the tensors
    vae.train()
    return scale


def _load_vae(out: Path) -> Any:
    from diffusers import AutoencoderKL

    from geovid.backbones.loader import quiet_libraries

    if not (out / "vae" / "config.json").is_file():
        from geovid.errors import ModelError

        raise ModelError(f"no trained VAE in {out / 'vae'}; run `geovid train vae --out {out}` first")
    with quiet_libraries():
        return AutoencoderKL.from_pretrained(str(out / "vae"))


def _text_and_unet(out: Path, cfg: TrainConfig, spec: ModelSpec) -> tuple[Any, Any, Any]:
    """Tokenizer, text encoder and UNet in training mode: the saved ones (``cfg.resume``) or new ones."""
    if cfg.resume:
        from diffusers import UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        from geovid.backbones.loader import quiet_libraries

        with quiet_libraries():
            tokenizer = CLIPTokenizer.from_pretrained(str(out / "tokenizer"))
            text_encoder = CLIPTextModel.from_pretrained(str(out / "text_encoder")).train()
            unet = UNet2DConditionModel.from_pretrained(str(out / "unet")).train()
        return tokenizer, text_encoder, unet
    tokenizer = build_tokenizer(out / "tokenizer")
    text_encoder = build_text_encoder(tokenizer, spec, seed=cfg.seed).train()
    unet = build_unet(spec, cross_attention_dim=text_encoder.config.hidden_size).train()
    return tokenizer, text_encoder, unet


#: One training batch: captions, and the VAE posterior's mean and std of their scenes (CPU tensors).
_Batch = tuple[list[str], torch.Tensor, torch.Tensor]


def _posterior_batches(out: Path, cfg: TrainConfig, spec: ModelSpec, vae: Any, cache: str | Path | None,
                       gen: torch.Generator) -> tuple[Any, Any]:
    """(a function that draws the next batch, the latent cache or None): from the cache (indices drawn with
    ``gen``), else scenes rendered and encoded on the fly."""
    if cache is not None:
        from geovid.model.cache import load_latent_cache

        data = load_latent_cache(cache, out / "vae", partial=True)
        if tuple(data.mean.shape[1:]) != (spec.latent_channels, spec.latent_size, spec.latent_size):
            raise ValueError(f"the cache holds latents of shape {tuple(data.mean.shape[1:])}, not this model's")

        def cached() -> _Batch:
            idx = torch.randint(0, len(data), (cfg.batch,), generator=gen)
            return [data.captions[i] for i in idx.tolist()], data.mean[idx].float(), data.std[idx].float()

        return cached, data
    stream = scene_stream(cfg.batch, size=spec.resolution, seed=cfg.seed + 1, workers=cfg.workers)

    def encoded() -> _Batch:
        x, captions = next(stream)
        with torch.no_grad():
            post = vae.encode(x.to(cfg.device) * 2 - 1).latent_dist
            return captions, post.mean.cpu(), post.std.cpu()

    return encoded, None


@dataclass
class _Denoiser:
    """Text encoder + UNet and the schedule: the min-SNR-weighted ε-prediction loss of a batch."""

    tokenizer: Any
    text_encoder: Any
    unet: Any
    acp: torch.Tensor
    weights: torch.Tensor
    num_train_timesteps: int
    device: str

    def loss(self, batch: _Batch, scale: float, caption_dropout: float, gen: torch.Generator) -> torch.Tensor:
        captions, mean, std = batch
        drop = torch.rand(len(captions), generator=gen) < caption_dropout
        captions = ["" if d else c for c, d in zip(captions, drop.tolist())]
        # Posterior sample with CPU-drawn noise (same numbers on every device).
        z0 = ((mean + std * torch.randn(mean.shape, generator=gen)) * scale).to(self.device)
        noise = torch.randn(z0.shape, generator=gen).to(self.device)
        t = torch.randint(0, self.num_train_timesteps, (z0.shape[0],), generator=gen)
        a = self.acp[t].view(-1, 1, 1, 1).to(self.device)
        t = t.to(self.device)
        xt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        ids = self.tokenizer(captions, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(self.device)
        cond = self.text_encoder(ids)[0]
        pred = self.unet(xt, t, encoder_hidden_states=cond).sample
        per = (pred - noise).pow(2).flatten(1).mean(1)
        return (per * self.weights[t]).mean()


def train_unet(out: str | Path, cfg: TrainConfig | None = None, spec: ModelSpec = BUNDLED,
               caption_dropout: float = 0.1, ema_decay: float = 0.995, min_snr_gamma: float | None = 5.0,
               cache: str | Path | None = None, progress: ProgressFn = null_progress) -> dict[str, Any]:
    """Train text encoder + UNet on the latents of ``out/vae`` and save the whole pipeline into ``out``.

    Args:
        out: model folder holding a trained ``vae/``; receives tokenizer, text encoder, UNet, scheduler and
            ``model_index.json``.
        cfg: budget and optimiser settings (default: ``TrainConfig(batch=32, lr=5e-4)``).
        spec: component sizes (must match the VAE's).
        caption_dropout: fraction of captions replaced by ``""`` (the unconditional branch).
        ema_decay: EMA decay of the saved weights (0 disables EMA).
        min_snr_gamma: min-SNR loss weighting γ for ε-prediction (``None``: plain MSE).
        cache: a latent cache made with this VAE (:mod:`geovid.model.cache`, clean and degraded scenes with
            their captions): batches are drawn from it, so a step is only text encoder + UNet. ``None``:
            render and encode clean scenes on the fly (slow on a CPU: encoding costs 5× a UNet step).
        progress: ``progress("unet", step, steps, info)`` after every step.

    Returns:
        A summary: steps, seconds, samples per second, final loss, the config.
    """
    from diffusers.training_utils import EMAModel

    cfg = cfg or TrainConfig(batch=32, lr=5e-4)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(out)
    vae = _load_vae(out).to(cfg.device).eval().requires_grad_(False)
    scale = float(vae.config.scaling_factor)
    tokenizer, text_encoder, unet = _text_and_unet(out, cfg, spec)
    scheduler = build_scheduler()
    text_encoder.to(cfg.device)
    unet.to(cfg.device)
    params = list(text_encoder.parameters()) + list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = EMAModel(params, decay=ema_decay) if ema_decay > 0 else None
    acp = scheduler.alphas_cumprod.float()
    snr = acp / (1 - acp)
    weights = ((snr.clamp(max=min_snr_gamma) / snr) if min_snr_gamma else torch.ones_like(snr)).to(cfg.device)
    denoiser = _Denoiser(tokenizer, text_encoder, unet, acp, weights, scheduler.config.num_train_timesteps,
                         cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    budget = _Budget(cfg)
    next_batch, data = _posterior_batches(out, cfg, spec, vae, cache, gen)
    last_save = time.monotonic()
    ema_loss = None
    step = 0
    while step < cfg.steps and budget.fraction(step) < 1.0:
        _set_lr(opt, budget.lr(step))
        loss = denoiser.loss(next_batch(), scale, caption_dropout, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if ema is not None:
            ema.step(params)
        step += 1
        ema_loss = loss.item() if ema_loss is None else 0.98 * ema_loss + 0.02 * loss.item()
        progress("unet", step, cfg.steps, {"loss": ema_loss, "lr": budget.lr(step),
                                           "samples/s": round(step * cfg.batch / max(budget.elapsed(), 1e-9), 1),
                                           "s": round(budget.elapsed())})
        if time.monotonic() - last_save > 60.0 * cfg.checkpoint_minutes:
            _save_pipeline(out, vae, text_encoder, tokenizer, unet, params, ema)
            last_save = time.monotonic()
    _save_pipeline(out, vae, text_encoder, tokenizer, unet, params, ema)
    if data is not None:
        _write_extras(out, data.manifest)
    seconds = budget.elapsed()
    return {"stage": "unet", "steps": step, "seconds": round(seconds, 1), "loss": ema_loss,
            "samples_per_second": round(step * cfg.batch / max(seconds, 1e-9), 1),
            "ema_decay": ema_decay, "caption_dropout": caption_dropout, "min_snr_gamma": min_snr_gamma,
            "cache": None if data is None else {"path": str(cache), "scenes": len(data),
                                                "manifest": data.manifest},
            "spec": asdict(spec), "config": asdict(cfg)}


def _write_extras(out: Path, manifest: dict[str, Any]) -> None:
    """geovid.json: the negative prompt made of the artefact words the model was trained on."""
    import json

    from geovid.backbones.loader import EXTRAS_FILE
    from geovid.model.artefacts import KIND_WORDS, NEGATIVE_PROMPT

    extras = {"negative_prompt": NEGATIVE_PROMPT, "artefact_kinds": KIND_WORDS,
              "artefact_fraction": manifest.get("artefact_fraction"),
              "note": "trained on degraded world scenes captioned with these words (docs/model.md)"}
    (out / EXTRAS_FILE).write_text(json.dumps(extras, indent=2) + "\n")


def _save_pipeline(out: Path, vae: Any, text_encoder: Any, tokenizer: Any, unet: Any,
                   params: list[torch.nn.Parameter], ema: Any | None) -> None:
    """Save with the EMA weights swapped in (then swap the training weights back)."""
    if ema is not None:
        ema.store(params)
        ema.copy_to(params)
    from geovid.backbones.loader import quiet_libraries

    try:
        pipe = assemble_pipeline(vae, text_encoder, tokenizer, unet, build_scheduler())
        with quiet_libraries():
            pipe.save_pretrained(str(out), safe_serialization=True)
    finally:
        if ema is not None:
            ema.restore(params)


def train_all(out: str | Path, vae_cfg: TrainConfig | None = None, unet_cfg: TrainConfig | None = None,
              spec: ModelSpec = BUNDLED, progress: ProgressFn = null_progress) -> dict[str, Any]:
    """Both stages into one folder: :func:`train_vae` then :func:`train_unet`."""
    a = train_vae(out, vae_cfg, spec, progress=progress)
    b = train_unet(out, unet_cfg, spec, progress=progress)
    return {"vae": a, "unet": b}
