"""Re-timing an interpolation path (docs/method.md §8): where its points lie along it (:func:`chord_times`), points at
fractional frame positions between path neighbours (:func:`retime`), and which re-timed frames reuse a frame
already decoded (:func:`reused_frame`). The positions themselves come from the perceptual distances
(:func:`geovid.tasks.perceptual.uniform_positions`).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def chord_times(x: torch.Tensor) -> torch.Tensor:
    """Position of each point along a path: cumulative chord length / total, in [0, 1] (0…1 for a lerp or a
    slerp at constant speed; comparable between methods)."""
    seg = (x[1:] - x[:-1]).norm(dim=-1)
    cum = torch.cat([seg.new_zeros(1), torch.cumsum(seg, 0)])
    total = float(cum[-1])
    return cum / total if total > 0 else torch.linspace(0, 1, x.shape[0], dtype=x.dtype)


def retime(points: torch.Tensor, times: torch.Tensor, positions: np.ndarray, spherical: bool
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Points at fractional frame positions (docs/method.md §8): slerp (or lerp) between neighbouring path points.

    Returns the new points and their times t (interpolated linearly between the neighbours' times).
    """
    from geovid.geometry.paths import lerp, slerp

    n = points.shape[0]
    out = torch.empty(len(positions), points.shape[1], dtype=points.dtype)
    t_out = torch.empty(len(positions), dtype=times.dtype)
    for j, pos in enumerate(positions):
        i = min(math.floor(float(pos)), n - 2)
        f = float(pos) - i
        tt = torch.tensor([f], dtype=points.dtype)
        if f <= 0.0:
            out[j] = points[i]
        elif f >= 1.0:
            out[j] = points[i + 1]
        else:
            out[j] = (slerp if spherical else lerp)(points[i], points[i + 1], tt)[0]
        t_out[j] = times[i] + f * (times[i + 1] - times[i])
    return out, t_out


def reused_frame(position: float, n: int) -> int | None:
    """The frame a re-timed position reuses: the first or the last of ``n`` when the position is on it (the
    first pass's interiors are previews, only its endpoints are final frames), else ``None`` (decoded again)."""
    if abs(position - round(position)) <= 1e-9 and round(position) in (0, n - 1):
        return round(float(position))
    return None


__all__ = ["chord_times", "retime", "reused_frame"]
