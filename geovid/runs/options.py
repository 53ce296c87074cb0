"""Options every job shares (analysis, interpolation, extrapolation), and the rule for validating them once.

* :class:`RunOptions` — model, device, dtype, seed, the run folder, and the options whose meaning and default are the
  same in every job (λ of the score metric, the sphere constraint, how inputs of another size are fitted).
* :class:`SequenceOptions` — what the image-sequence jobs (interpolation, extrapolation) add.
* :class:`Resolvable` — every job config is a frozen dataclass; :meth:`Resolvable.resolve` validates it once and
  returns the resolved config (defaults filled in, ``dataclasses.replace``), marked so that resolving it again
  (the CLI resolves first, to report bad options before anything starts; the job then receives the resolved
  config) does not validate twice. A resolved config gives the manifest's ``config`` with ``manifest_config()``.

The job configs (``analysis.run.AnalysisConfig``, ``geovid.tasks.interpolate.InterpolationConfig``,
``geovid.tasks.extrapolate.ExtrapolationConfig``) inherit these fields; they are keyword-only, so each config's
own fields keep their positions. Names follow the CLI options (``--model`` → ``model``; ``--lambda`` → ``lam``,
a Python keyword). Choice lists come from the registries
(``geovid.geometry.estimators.ESTIMATORS``, ``geovid.geometry.bvp.SOLVERS``, ``geovid.geometry.metrics.METRICS``,
``geovid.tasks.perceptual.DISTANCES``, :data:`RESIZE_POLICIES`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

#: How inputs of another size are brought to the model's resolution (geovid.media.images.fit_to_resolution).
RESIZE_POLICIES = ("center-crop", "pad", "stretch")
#: How a job conditions the model (docs/method.md §1.4, §2.2): ``invert`` (prompt embeddings inverted from the input
#: frames) or ``prompt`` (the text prompt as given).
CONDITIONINGS = ("invert", "prompt")

_R = TypeVar("_R", bound="Resolvable")


class Resolvable:
    """A job config validated once: ``resolve()`` returns the resolved config (the same object when it is already
    resolved). Subclasses implement ``_resolve()`` (validate, fill in defaults, raise InputError)."""

    def _resolve(self: _R) -> _R:
        raise NotImplementedError

    @property
    def is_resolved(self) -> bool:
        return bool(getattr(self, "_resolved", False))

    def resolve(self: _R) -> _R:
        """Validate the options (one InputError naming the option) and return the resolved config."""
        if self.is_resolved:
            return self
        out = self._resolve()
        object.__setattr__(out, "_resolved", True)  # not a field: fields(), asdict() and == do not see it
        return out

    def replace(self: _R, **changes: Any) -> _R:
        """A copy with ``changes`` (not resolved: resolve it again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True, kw_only=True)
class RunOptions(Resolvable):
    """Model, device, seed and run-folder options of a job, and the options every job shares."""

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
    lam: float = 1000.0
    """λ of the score metric I + λ s sᵀ (docs/method.md §4; ``--lambda``), used with ``metric="score"`` only."""
    sphere: bool = True
    """Keep all points on the sphere of radius R (docs/method.md §1)."""
    resize: str = "center-crop"
    """How inputs of another size are fitted to the model's resolution: ``center-crop``, ``pad`` or ``stretch``
    (``--resize``; docs/media.md)."""


@dataclass(frozen=True, kw_only=True)
class SequenceOptions(RunOptions):
    """Options shared by the image-sequence jobs (interpolation and extrapolation), on top of :class:`RunOptions`."""

    decode_steps: int | None = None
    """DDIM steps when decoding a frame; ``None``: 10 (30 reproduces the 50-step grid below t at ν = 0.6 exactly)."""
    fps: float = 8.0
    """Frame rate of anim.gif and video.mp4."""


__all__ = ["CONDITIONINGS", "RESIZE_POLICIES", "Resolvable", "RunOptions", "SequenceOptions"]
