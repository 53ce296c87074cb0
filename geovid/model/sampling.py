"""Text-to-image sampling with a backbone, writing PNGs, and sample grids (``geovid sample``, docs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from geovid.backbones.base import Backbone
from geovid.model.data import tensor_to_images


def sample_images(backbone: Backbone, prompt: str, n: int = 4, steps: int = 50, guidance: float = 5.0, seed: int = 0,
                  negative_prompt: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """``n`` samples for ``prompt`` (DDIM, CFG ``guidance``): (n, H, W, 3) uint8.

    Sample ``i`` uses noise seed ``seed + i`` (all in one batch), so sample ``i`` is the same whatever ``n`` is,
    up to float rounding (batch size changes the kernels' summation order).
    """
    gen_noise = [torch.randn((1, *backbone.latent_shape), generator=torch.Generator().manual_seed(seed + i))
                 for i in range(n)]
    x = torch.cat(gen_noise).to(backbone.device)
    cond = backbone.embed_prompt(prompt)
    uncond = backbone.embed_prompt(negative_prompt or "")
    t_top = int(backbone.timesteps(steps)[0])
    with torch.no_grad():
        z0 = backbone.denoise(x, t_top, cond, guidance=guidance, num_inference_steps=steps, uncond=uncond,
                              progress=progress)
        return tensor_to_images(backbone.decode(z0))


def save_images(images: np.ndarray, out: str | Path, stem: str = "sample", upscale: int = 1) -> list[Path]:
    """Write ``stem-000.png`` … into ``out`` (and ``stem-000-x{upscale}.png`` nearest-neighbour copies)."""
    from PIL import Image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        p = out / f"{stem}-{i:03d}.png"
        im = Image.fromarray(img)
        im.save(p)
        paths.append(p)
        if upscale > 1:
            q = out / f"{stem}-{i:03d}-x{upscale}.png"
            im.resize((im.width * upscale, im.height * upscale), Image.NEAREST).save(q)
            paths.append(q)
    return paths


def grid(rows: Sequence[np.ndarray], pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile rows of (k, H, W, 3) uint8 images into one image with ``pad`` pixels of ``fill`` between."""
    k = max(len(r) for r in rows)
    h, w = rows[0].shape[1:3]
    out = np.full((len(rows) * (h + pad) + pad, k * (w + pad) + pad, 3), fill, np.uint8)
    for i, r in enumerate(rows):
        for j, img in enumerate(r):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y:y + h, x:x + w] = img
    return out


def prompt_grid(backbone: Backbone, prompts: Sequence[str], seeds: Sequence[int], steps: int = 50,
                guidance: float = 5.0, scale: int = 1) -> np.ndarray:
    """A grid image: one row per prompt, one column per seed (nearest-neighbour enlarged ``scale`` times)."""
    rows = []
    for p in prompts:
        imgs = np.stack([sample_images(backbone, p, n=1, steps=steps, guidance=guidance, seed=s)[0] for s in seeds])
        if scale > 1:
            imgs = imgs.repeat(scale, axis=1).repeat(scale, axis=2)
        rows.append(imgs)
    return grid(rows)
