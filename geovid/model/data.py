"""Training and evaluation data: world scenes rendered on the fly.

Training draws scene seeds uniformly from ``[0, HELDOUT_SEED_START)`` (a million scenes, rendered when needed
at ~2.5 ms each, so the data is effectively infinite and never stored); evaluation uses seeds from
``HELDOUT_SEED_START`` upwards, which training never sees.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

#: First held-out seed: training seeds are below it, evaluation seeds at or above it.
HELDOUT_SEED_START = 10**6


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 → (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)


def tensor_to_images(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float in [0, 1] → (N, H, W, 3) uint8 (rounded, clipped)."""
    arr = x.detach().float().clamp(0, 1).mul(255.0).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return np.ascontiguousarray(arr)


def render_scenes(seeds: Sequence[int], size: int = 64) -> tuple[torch.Tensor, list[str]]:
    """Render world scenes: ``(images (N, 3, size, size) float [0, 1], captions)``."""
    from geovid.world.render import render_batch

    images, captions = render_batch([int(s) for s in seeds], size=size)
    return images_to_tensor(images), list(captions)


def heldout_seeds(n: int, start: int = HELDOUT_SEED_START) -> list[int]:
    """``n`` held-out seeds (consecutive from ``start``)."""
    return list(range(start, start + n))


def scene_stream(batch: int, size: int = 64, seed: int = 0,
                 workers: int = 0) -> Iterator[tuple[torch.Tensor, list[str]]]:
    """An endless stream of training batches; deterministic in ``seed`` (and ``workers``).

    ``workers > 0`` renders in that many background processes (a ``DataLoader``), for GPU training where
    one CPU core cannot render scenes as fast as the GPU trains on them.
    """
    if workers <= 0:
        rng = np.random.default_rng(seed)
        while True:
            yield render_scenes(rng.integers(0, HELDOUT_SEED_START, size=batch).tolist(), size=size)
    loader = torch.utils.data.DataLoader(_SceneBatches(batch, size, seed), batch_size=None, num_workers=workers,
                                         persistent_workers=True, prefetch_factor=4)
    yield from loader


class _SceneBatches(torch.utils.data.IterableDataset):
    """Endless batches of scenes; each loader worker draws from its own seeded generator."""

    def __init__(self, batch: int, size: int, seed: int) -> None:
        self.batch, self.size, self.seed = batch, size, seed

    def __iter__(self) -> Iterator[tuple[torch.Tensor, list[str]]]:
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info is not None else 0])
        while True:
            yield render_scenes(rng.integers(0, HELDOUT_SEED_START, size=self.batch).tolist(), size=self.size)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB between images in [0, 1] (``(N, 3, H, W)``), after clipping both to [0, 1]."""
    mse = (a.float().clamp(0, 1) - b.float().clamp(0, 1)).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-12))
