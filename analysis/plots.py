"""The analysis plots (PNG, matplotlib Agg, no pyplot state so they are safe in TUI worker threads).

* ``residual.png`` — ‖r‖ per frame for every path, in the style of the paper's Figure 3 (docs/method.md §7.3);
* ``log_density.png`` — relative log-density profiles log p(γ(t)) − log p(γ(0)) (docs/method.md §3);
* ``projection.png`` — a 2-D projection of all paths (PCA of all their points together).

Each function writes atomically (``*.tmp`` then ``os.replace``) and returns the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import torch

#: One style per path, the same in every plot (colour-blind-safe Okabe–Ito colours).
STYLES: dict[str, dict[str, Any]] = {
    "video": {"color": "#000000", "marker": "o", "lw": 2.4, "label": "video γ_v", "zorder": 5},
    "optimised": {"color": "#0072B2", "marker": "s", "lw": 2.0, "label": "optimised γ_o", "zorder": 4},
    "perturbed": {"color": "#D55E00", "marker": "^", "lw": 1.4, "label": "perturbed γ_δ", "zorder": 3},
    "smoothed": {"color": "#009E73", "marker": "D", "lw": 1.4, "label": "smoothed γ_s", "zorder": 3},
    "line": {"color": "#CC79A7", "marker": "v", "lw": 1.4, "label": "line γ_l (slerp)", "zorder": 2, "ls": "--"},
    "shuffled": {"color": "#E69F00", "marker": "x", "lw": 1.2, "label": "control: shuffled frames", "zorder": 2,
                 "ls": ":"},
    "reversed": {"color": "#56B4E9", "marker": "+", "lw": 1.2, "label": "control: reversed (by position)",
                 "zorder": 2, "ls": ":"},
}


def _figure(width: float = 9.0, height: float = 4.4) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig


def _save(fig: Any, path: Path) -> Path:
    from geovid.runs.files import atomic_output

    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _style(name: str) -> dict[str, Any]:
    return STYLES.get(name, {"color": "#777777", "marker": ".", "lw": 1.2, "label": name, "zorder": 1})


def plot_residuals(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """‖r‖ per interior frame for every path (Figure 3 style), log scale when the values span a decade."""
    fig = _figure()
    ax = fig.add_subplot()
    values = []
    for name, df in table.groupby("path", sort=False):
        df = df.dropna(subset=["residual"])
        if df.empty:
            continue
        st = _style(str(name))
        mean = float(df["residual"].mean())
        ax.plot(df["frame"], df["residual"], color=st["color"], marker=st["marker"], lw=st["lw"], ms=5,
                ls=st.get("ls", "-"), zorder=st["zorder"], label=f"{st['label']}  (mean {mean:.3g})")
        values.extend(df["residual"].tolist())
    arr = np.asarray([v for v in values if np.isfinite(v) and v > 0])
    if arr.size and arr.max() / max(arr.min(), 1e-300) > 10:
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")  # 2, 5, 10 rather than 2×10⁰, 5×10⁰, 10¹
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    else:
        ax.set_ylim(bottom=0)  # "near zero" (test i) is read against zero, not against the smallest value
    ax.set_xlabel("frame  (the two endpoints are fixed: no ‖r‖ there)")
    ax.set_ylabel("geodesic gradient ‖r‖")
    ax.set_title(title or "geodesic gradient per frame", fontsize=10)
    return _finish_per_frame(fig, ax, table, path, which="both")


def _finish_per_frame(fig: Any, ax: Any, table: pd.DataFrame, path: Path, which: str = "major") -> Path:
    """Frame ticks (when few enough to label), grid, legend outside; save."""
    frames = sorted(table["frame"].unique())
    if len(frames) <= 24:
        ax.set_xticks(frames)
    ax.grid(True, which=which, alpha=0.3)
    _legend_outside(ax)
    return _save(fig, path)


def _legend_outside(ax: Any) -> None:
    # Outside the axes, so no curve is ever hidden behind it.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)


def plot_log_density(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Relative log-density profiles (log p(γ_i) − log p(γ_0), line integral of the score) per path."""
    fig = _figure()
    ax = fig.add_subplot()
    for name, df in table.groupby("path", sort=False):
        st = _style(str(name))
        ax.plot(df["frame"], df["log_density"], color=st["color"], marker=st["marker"], lw=st["lw"], ms=4,
                ls=st.get("ls", "-"), zorder=st["zorder"], label=st["label"])
    ax.axhline(0.0, color="#999999", lw=0.8)
    ax.set_xlabel("frame")
    ax.set_ylabel("log p(γ(t)) − log p(γ(0))  [nats]")
    ax.set_title(title or "relative log-density along each path", fontsize=10)
    return _finish_per_frame(fig, ax, table, path)


def pca_2d(paths: Mapping[str, torch.Tensor]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Project all points of all paths on the first two principal components of their union.

    Returns:
        name → (n, 2) coordinates, and the explained-variance fractions of the two components.
    """
    import torch

    names = list(paths)
    allp = torch.cat([paths[k].detach().cpu().to(torch.float64) for k in names])
    centred = allp - allp.mean(dim=0, keepdim=True)
    # PCA through the small (points × points) Gram matrix: the points are few, D may be 16384.
    evals, evecs = torch.linalg.eigh(centred @ centred.T)
    evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)
    coords = (evecs[:, :2] * evals[:2].sqrt()).numpy()
    total = float(evals.sum())
    frac = (evals[:2] / total).numpy() if total > 0 else np.zeros(2)
    out, k = {}, 0
    for name in names:
        n = int(paths[name].shape[0])
        out[name] = coords[k:k + n]
        k += n
    return out, frac


def plot_projection(paths: Mapping[str, torch.Tensor], path: Path, title: str = "") -> Path:
    """2-D PCA projection of every path; the shared endpoints are marked."""
    coords, frac = pca_2d(paths)
    fig = _figure(7.6, 5.4)
    ax = fig.add_subplot()
    for name, xy in coords.items():
        st = _style(name)
        ax.plot(xy[:, 0], xy[:, 1], color=st["color"], marker=st["marker"], lw=st["lw"] * 0.8, ms=4,
                ls=st.get("ls", "-"), zorder=st["zorder"], label=st["label"])
    any_xy = next(iter(coords.values()))
    ax.scatter(any_xy[[0, -1], 0], any_xy[[0, -1], 1], s=140, facecolors="none", edgecolors="#000000", lw=1.5,
               zorder=6, label="shared endpoints")
    ax.annotate("first", any_xy[0], textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.annotate("last", any_xy[-1], textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel(f"PC 1 ({100 * frac[0]:.0f} % of variance)")
    ax.set_ylabel(f"PC 2 ({100 * frac[1]:.0f} % of variance)")
    ax.set_title(title or "paths in latent space (PCA of all points)", fontsize=10)
    ax.grid(True, alpha=0.3)
    _legend_outside(ax)
    return _save(fig, path)
