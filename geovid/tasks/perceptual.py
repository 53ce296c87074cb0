"""Perceptual distances between decoded frames, and the interpolation metrics built on them (docs/method.md §8).

Registry ``DISTANCES`` (name → class); :func:`get_distance` picks one by name, ``"auto"`` meaning LPIPS where it
can run without a download and the SSIM fallback otherwise.

``lpips``
    LPIPS (Zhang et al. 2018) with the AlexNet backbone, through the ``lpips`` package. It needs torchvision and
    torchvision's pretrained AlexNet checkpoint in the torch hub cache; geovid never downloads it. When any
    of these is missing :func:`lpips_unavailable_reason` says which and ``auto`` falls back.
``ssim``
    1 − SSIM (Wang et al. 2004) on the RGB frames, scikit-image's ``structural_similarity`` with the paper's
    settings (11×11 Gaussian window, σ = 1.5, K₁ = 0.01, K₂ = 0.03, population covariances), averaged over
    the three channels. 0 for identical frames, up to 2 in theory, about 0.3–0.6 between unrelated world
    scenes. No weights, no download.

PPL is the sum of consecutive distances of a frame sequence, PDV their variance; :func:`uniform_positions` inverts
the cumulative distance piecewise-linearly (perceptually uniform re-timing, docs/method.md §8).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from geovid.errors import InputError

#: torchvision's AlexNet checkpoint that ``lpips.LPIPS(net="alex")`` loads through torch hub.
_ALEXNET_CHECKPOINT = "alexnet-owt-7be5be79.pth"


def _check_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim == 3:
        a, b = a[None], b[None]
    if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3:
        raise InputError(f"perceptual distance needs two equal batches of (H, W, 3) frames, got {a.shape} "
                         f"and {b.shape}")
    return a, b


class SSIMDistance:
    """1 − SSIM on RGB uint8 frames (scikit-image, Wang et al. settings); needs no weights."""

    name = "ssim"
    description = "1 - SSIM (scikit-image, Gaussian window sigma 1.5, RGB mean); LPIPS weights not available"

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Distances between frame pairs a[i], b[i] (uint8 (N, H, W, 3) or one (H, W, 3) pair) → (N,)."""
        from skimage.metrics import structural_similarity

        a, b = _check_pairs(a, b)
        out = np.empty(a.shape[0])
        for i in range(a.shape[0]):
            s = structural_similarity(a[i], b[i], channel_axis=-1, data_range=255, gaussian_weights=True,
                                      sigma=1.5, use_sample_covariance=False)
            out[i] = 1.0 - float(s)
        return out


def lpips_unavailable_reason() -> str | None:
    """Why LPIPS cannot run here without a download (``None`` when it can). Imports nothing heavy."""
    if os.environ.get("GEOVID_NO_LPIPS") == "1":
        return "disabled by GEOVID_NO_LPIPS=1"
    for module in ("lpips", "torchvision"):
        if importlib.util.find_spec(module) is None:
            return f"the {module} package is not installed"
    import torch

    ckpt = Path(torch.hub.get_dir()) / "checkpoints" / _ALEXNET_CHECKPOINT
    if not ckpt.is_file():
        return f"torchvision's AlexNet weights are not in the torch hub cache ({ckpt})"
    return None


class LPIPSDistance:
    """LPIPS-AlexNet (``lpips`` package) on frames scaled to [−1, 1]; only when its weights are local."""

    name = "lpips"
    description = "LPIPS (AlexNet, lpips package)"

    def __init__(self) -> None:
        reason = lpips_unavailable_reason()
        if reason is not None:
            raise InputError(f"LPIPS is not available: {reason}; use --perceptual ssim")
        import lpips

        self._net = lpips.LPIPS(net="alex", verbose=False).eval()

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import torch

        a, b = _check_pairs(a, b)

        def prep(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1.0

        with torch.no_grad():
            d = self._net(prep(a), prep(b))
        return d.reshape(-1).double().numpy()


DISTANCES: dict[str, Callable[[], Any]] = {"lpips": LPIPSDistance, "ssim": SSIMDistance}


def get_distance(name: str = "auto") -> Any:
    """A perceptual distance by name: ``lpips``, ``ssim`` or ``auto`` (LPIPS if local weights exist, else SSIM).

    Raises:
        InputError: unknown name, or ``lpips`` asked for where it cannot run.
    """
    key = (name or "auto").lower()
    if key == "auto":
        return LPIPSDistance() if lpips_unavailable_reason() is None else SSIMDistance()
    if key not in DISTANCES:
        raise InputError(f"unknown perceptual distance {name!r}; choose from auto, {', '.join(DISTANCES)}")
    return DISTANCES[key]()


def consecutive_distances(frames: np.ndarray, distance: Any) -> np.ndarray:
    """Perceptual distance between each frame and the next: (n−1,) for frames (n, H, W, 3)."""
    frames = np.asarray(frames)
    if frames.shape[0] < 2:
        raise InputError("need at least two frames for perceptual distances")
    return np.asarray(distance(frames[:-1], frames[1:]), dtype=np.float64)


def ppl_pdv(distances: np.ndarray) -> tuple[float, float]:
    """PPL = Σ dᵢ and PDV = Var(dᵢ) (population variance) of consecutive distances (docs/method.md §8)."""
    d = np.asarray(distances, dtype=np.float64)
    return float(d.sum()), float(d.var())


def uniform_positions(distances: np.ndarray, n: int | None = None) -> np.ndarray:
    """Fractional frame positions that make consecutive perceptual distances equal (docs/method.md §8).

    The cumulative distance C(i) at the frames i = 0…n−1 is inverted piecewise-linearly at n equally spaced
    targets. Position 2.25 means a quarter of the way from frame 2 to frame 3. Segments of zero distance are
    skipped over (any point on them has the same cumulative distance).

    Args:
        distances: (n−1,) consecutive distances, all ≥ 0.
        n: number of positions to return (default: len(distances) + 1).

    Returns:
        (n,) increasing positions, first 0 and last len(distances).
    """
    d = np.clip(np.asarray(distances, dtype=np.float64), 0.0, None)
    m = d.shape[0]
    n = m + 1 if n is None else int(n)
    cum = np.concatenate([[0.0], np.cumsum(d)])
    if cum[-1] <= 0:
        return np.linspace(0.0, m, n)
    target = np.linspace(0.0, cum[-1], n)
    idx = np.clip(np.searchsorted(cum, target, side="right") - 1, 0, m - 1)
    frac = np.where(d[idx] > 0, (target - cum[idx]) / np.where(d[idx] > 0, d[idx], 1.0), 0.0)
    pos = idx + np.clip(frac, 0.0, 1.0)
    pos[0], pos[-1] = 0.0, float(m)
    return pos
