"""Options every job shares (analysis, interpolation, extrapolation): model, device, seed and the run folder.

:class:`SequenceOptions` adds what the image-sequence jobs (interpolation, extrapolation) share.
The job configs (``analysis.run.AnalysisConfig``, ``geovid.tasks.interpolate.InterpolationConfig``,
``geovid.tasks.extrapolate.ExtrapolationConfig``) inherit these fields; they are keyword-only, so each config's
own fields keep their positions. Names follow the CLI options (``--model`` → ``model``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(kw_only=True)
class RunOptions:
    """Model, device, seed and run-folder options of a job."""

    model: str | None = None
    """Bundled model (``None``), a local Stable-Diffusion folder, or a hub id in the local cache (never downloaded)."""
    device: str | None = None
    """``cpu``, ``cuda``, ``mps`` or ``None`` (auto: cuda if present, else mps, else cpu)."""
    dtype: str = "fp32"
    """``fp32``, ``fp16`` (GPU only) or ``bf16``."""
    seed: int = 0
    """Random seed; the same seed, inputs and options give the same numbers."""
    out: Path = Path("runs")
    """Runs directory; each run gets its own sub-folder."""
    name: str | None = None
    """Run folder name (default: from the (first) input and the time). An existing run is never overwritten."""
    resume: bool = False
    """Continue an unfinished run with the same inputs and options (``out/name``, else the newest) instead of
    starting a new one; phases already done are skipped, a complete run is returned as it is."""


@dataclass(kw_only=True)
class SequenceOptions(RunOptions):
    """Options shared by the image-sequence jobs (interpolation and extrapolation), on top of :class:`RunOptions`."""

    lam: float = 1000.0
    """λ of the score metric I + λ s sᵀ (docs/method.md §4)."""
    decode_steps: int | None = None
    """DDIM steps when decoding a frame; ``None``: 10 (30 reproduces the 50-step grid below t at ν = 0.6 exactly)."""
    sphere: bool = True
    """Keep all points on the sphere of radius R (docs/method.md §1)."""
    resize: str = "center-crop"
    """How inputs of another size are fitted: ``center-crop``, ``pad`` or ``stretch``."""
    fps: float = 8.0
    """Frame rate of anim.gif and video.mp4."""
