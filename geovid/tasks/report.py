"""Writing the pictures and tensors of interpolation and extrapolation runs (docs/run-directory.md).

Frames are written at the model's resolution; the strip and comparison images are upscaled ×2 and the GIF/MP4
×4 with nearest-neighbour sampling, so that a 64×64 frame is viewable and no resampling blur hides what the
model produced. Plots use Matplotlib's object API (no pyplot global state: jobs run in TUI worker threads).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geovid.runs.files import atomic_output
from geovid.runs.state import read_tensors, write_tensors
from geovid.runs.store import Run, to_jsonable

STRIP_SCALE = 2
ANIM_SCALE = 4


def upscale(frames: np.ndarray | Sequence[np.ndarray], k: int) -> np.ndarray:
    """Nearest-neighbour ×k upscaling of frames (N, H, W, 3)."""
    arr = np.asarray(frames)
    return arr if k <= 1 else np.repeat(np.repeat(arr, k, axis=-3), k, axis=-2)


def write_sequence_outputs(run: Run, frames: np.ndarray, fps: float = 8.0, strip_rows: Mapping[str, np.ndarray]
                           | None = None) -> list[str]:
    """``frames/0000.png…``, ``strip.png``, ``anim.gif`` and ``video.mp4`` for one frame sequence.

    Args:
        run: the run.
        frames: uint8 (N, H, W, 3).
        fps: frame rate of the GIF and the MP4.
        strip_rows: when given, ``strip.png`` is a labelled grid of these rows instead of a single strip.

    Returns:
        The relative paths written (for :meth:`Run.complete`).
    """
    from geovid.media.writers import make_grid, make_strip, write_gif, write_video

    run.write_frames("frames", list(frames))
    if strip_rows:
        strip = make_grid([list(v) for v in strip_rows.values()], labels=list(strip_rows), scale=STRIP_SCALE)
    else:
        strip = make_strip(list(upscale(frames, STRIP_SCALE)))
    run.write_image("strip.png", strip)
    big = list(upscale(frames, ANIM_SCALE))
    _atomic(run.path / "anim.gif", lambda p: write_gif(big, p, fps=fps))
    _atomic(run.path / "video.mp4", lambda p: write_video(big, p, fps=fps))
    return ["frames/", "strip.png", "anim.gif", "video.mp4"]


def _atomic(target: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary name, then rename: a reader never sees half a GIF or MP4."""
    with atomic_output(target, keep_suffix=True) as tmp:  # the suffix picks the format
        write(tmp)


def write_compare(run: Run, rows: Mapping[str, np.ndarray], relpath: str = "compare.png") -> str:
    """One labelled row per method, same frame indices (``compare.png``)."""
    from geovid.media.writers import make_grid

    run.write_image(relpath, make_grid([list(v) for v in rows.values()], labels=list(rows), scale=STRIP_SCALE))
    return relpath


def plot_series(run: Run, relpath: str, series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                title: str, xlabel: str, ylabel: str) -> str:
    """A line plot of named (x, y) series as a PNG inside the run."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    styles = {"geodesic": ("C0", "-", 2.2), "lerp": ("C1", "--", 1.4), "slerp": ("C2", ":", 1.6)}
    for name, (x, y) in series.items():
        colour, ls, lw = styles.get(name, (None, "-", 1.6))
        ax.plot(np.asarray(x, float), np.asarray(y, float), ls, color=colour, lw=lw, marker="o", ms=3, label=name)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    run.write_image(relpath, np.asarray(Image.open(buf).convert("RGB")))
    return relpath


def save_path(run: Run, points: torch.Tensor, times: torch.Tensor | np.ndarray, latent_shape: Sequence[int],
              meta: Mapping[str, Any], relpath: str = "path.safetensors") -> str:
    """``path.safetensors``: ``points`` (n, *latent_shape) float64 and ``times`` (n,), plus JSON metadata
    (timestep, noise level, model, prompts, radius) so that ``extrapolate --from-run`` can continue the path."""
    tensors = {"points": points.detach().cpu().to(torch.float64).reshape(points.shape[0], *latent_shape)
               .contiguous(),
               "times": torch.as_tensor(np.asarray(times, dtype=np.float64)).contiguous()}
    write_tensors(run.path / relpath, tensors, {"json": json.dumps(to_jsonable(dict(meta)))})
    return relpath


def load_path(path: Path) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Read a ``path.safetensors``: flat points (n, D) float64, times (n,), metadata."""
    tensors, header = read_tensors(path)
    meta = json.loads(header.get("json", "{}"))
    points, times = tensors["points"], tensors["times"]
    return points.reshape(points.shape[0], -1).to(torch.float64), times.to(torch.float64), meta
