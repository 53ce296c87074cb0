"""The options of ``geovid analyze`` (docs/method.md §7): :class:`AnalysisConfig`, validated once.

CLI option ``--foo-bar`` is field ``foo_bar``; model, device, seed, run-folder and the shared options (``lam``,
``sphere``, ``resize``) come from :class:`geovid.runs.options.RunOptions`. Choice lists come from the registries
(score estimators, metrics, resize policies).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geovid.errors import InputError
from geovid.runs.files import to_jsonable
from geovid.runs.options import CONDITIONINGS, RESIZE_POLICIES, RunOptions

#: Default solver budget: network calls per frame (``max_calls = CALLS_PER_FRAME × frames``); the solver takes
#: single-draw contrast steps (2 calls per interior point), so 100 per frame is ~55 iterations (docs/analysis.md).
CALLS_PER_FRAME = 100


@dataclass(frozen=True)
class AnalysisConfig(RunOptions):
    """Options of a video analysis (docs/method.md §7); CLI option ``--foo-bar`` is field ``foo_bar``.

    Model, device, seed and run-folder options come from :class:`RunOptions`; with several clips the runs are
    named ``<name>-<clip stem>``."""

    clips: list[Path] = field(default_factory=list)
    """Video files to analyse (mp4, avi, webm, mkv, mov, ...); one run each."""
    frames: int | None = 16
    """Number of frames, spread uniformly over the clip (or the first N at ``stride``); at least 3.
    ``None``: every eligible frame (every ``stride``-th one when a stride is given)."""
    stride: int | None = None
    """Take every K-th frame."""
    start: float | None = None
    """Start of the time range in seconds (default: the clip's start)."""
    end: float | None = None
    """End of the time range in seconds (default: the clip's end)."""
    noise_level: float = 0.6
    """Noise level ν ∈ (0, 1] of the geodesic space (docs/method.md §1); 0.6 gives t = 581 with 50 DDIM steps."""
    alpha: float | None = None
    """α of the density metric p^(−α) (docs/method.md §3); ``None``: the rule of docs/method.md §3.7
    (α = 2/(chord × median ‖N P s‖ on the straight line), computed for each clip from its endpoints)."""
    metric: str = "density"
    """``density`` (docs/method.md §3) or ``score`` (docs/method.md §4)."""
    estimator: str = "contrast"
    """Score estimator (docs/method.md §2): ``contrast`` (default, the reference's, with the model's negative
    prompt) or ``eps`` (the model's own score, deterministic)."""
    draws: int = 4
    """``contrast``: score draws averaged per point in the measures (common random numbers across paths); the
    solver's steps use one draw each."""
    prompt: str = ""
    """Text condition for inversion, scores and decoding (empty: unconditional); the starting point of the
    prompt-embedding inversion when that is on."""
    conditioning: str = "invert"
    """``invert``: one prompt embedding shared by all frames, optimised from ``prompt`` (docs/method.md §1.4, as the
    reference does), for the inversion, the scores and the decoding; ``prompt``: the prompt's embedding as given
    (the same choice and flag as ``geovid interpolate --conditioning``)."""
    invert_steps: int = 100
    """Steps of the prompt-embedding inversion (the reference: 500)."""
    trust: float | None = 0.25
    """Trust region of γ_o: no point moves further than ``trust`` × the median step of the path being optimised
    (half-way to a typical neighbour: it stays the counterpart of its frame; docs/method.md §7.5); ``None`` or
    0: unbounded."""
    controls: bool = True
    """Also analyse the clip with its interior frames shuffled (negative control) and reversed (invariance
    check), docs/method.md §7.7."""
    decode_optimised: bool = True
    """Decode γ_o back to images (``optimised/`` and ``strip.png``); costs one DDIM denoising per frame."""
    max_calls: int | None = None
    """Network-call budget of the solver; ``None``: ``calls_per_frame × frames``."""
    calls_per_frame: int = CALLS_PER_FRAME
    """Solver budget per frame when ``max_calls`` is ``None``."""
    max_iters: int = 400
    """Most solver iterations."""
    delta: float = 0.5
    """δ of γ_δ: perturbation size as a fraction of the median step (docs/method.md §7.2, geovid choice)."""
    smooth_sigma: float = 1.0
    """σ of γ_s: Gaussian smoothing width in frames (docs/method.md §7.2, geovid choice)."""
    steps: int = 50
    """DDIM inference steps of the inversion/denoising schedule (t_ν is taken on this grid)."""
    decode_steps: int | None = None
    """DDIM steps when decoding γ_o (fewer is faster, coarser; no guidance); ``None``: the inversion's grid
    below t_ν, with ``guidance``."""
    guidance: float = 1.0
    """Classifier-free guidance scale of inversion and decoding (reference: 1)."""
    command: list[str] | None = None
    """Command line recorded in the manifest (default: ``sys.argv``)."""

    def __post_init__(self) -> None:
        clips = [self.clips] if isinstance(self.clips, str | os.PathLike) else self.clips
        object.__setattr__(self, "clips", [Path(c).expanduser() for c in clips])
        object.__setattr__(self, "out", Path(self.out).expanduser())

    def manifest_config(self) -> dict[str, Any]:
        """The resolved options stored in a run's manifest (and compared on resume)."""
        from geovid.backbones.loader import model_name

        keep = ("frames", "stride", "start", "end", "noise_level", "metric", "lam", "estimator", "prompt", "dtype",
                "seed", "decode_optimised", "max_calls", "calls_per_frame", "max_iters", "delta", "smooth_sigma",
                "steps", "decode_steps", "guidance", "fit", "sphere", "draws", "conditioning", "invert_steps",
                "trust", "controls")
        # ``fit`` is the manifest's name for ``resize`` (the option was --fit before every command took --resize).
        cfg: dict[str, Any] = {k: getattr(self, "resize" if k == "fit" else k) for k in keep}
        cfg["alpha"] = "rule" if self.alpha is None else float(self.alpha)
        cfg["model"] = model_name(self.model)
        cfg["device"] = self.device or "auto"
        cfg["solver"] = "geovid"
        cfg["solver_mode"] = "normal"
        return to_jsonable(cfg)

    def _resolve(self) -> AnalysisConfig:
        """Validate the options (one InputError, naming the option); the config needs no defaults filled in."""
        from geovid.geometry.estimators import MODEL_ESTIMATORS
        from geovid.geometry.metrics import METRICS

        if not self.clips:
            raise InputError("no clip given: pass one or more video files")
        if self.frames is not None and (isinstance(self.frames, bool) or int(self.frames) < 3):
            raise InputError(f"--frames must be at least 3 (got {self.frames}): the analysis needs interior "
                             "frames between the two fixed endpoints")
        if self.stride is not None and int(self.stride) < 1:
            raise InputError(f"--stride must be at least 1 (got {self.stride})")
        if not (isinstance(self.noise_level, int | float) and 0.0 < float(self.noise_level) <= 1.0):
            raise InputError(f"--noise-level must be in (0, 1], got {self.noise_level}")
        if self.alpha is not None and not (math.isfinite(float(self.alpha)) and float(self.alpha) > 0):
            raise InputError(f"--alpha must be a positive number, got {self.alpha}")
        if self.metric not in METRICS:
            raise InputError(f"--metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.estimator not in MODEL_ESTIMATORS:
            raise InputError(f"--estimator must be one of {', '.join(MODEL_ESTIMATORS)}, got {self.estimator!r}")
        if not (math.isfinite(float(self.lam)) and float(self.lam) > 0):
            raise InputError(f"--lambda must be a positive number, got {self.lam}")
        if not (math.isfinite(float(self.delta)) and float(self.delta) > 0):
            raise InputError(f"--delta must be a positive number, got {self.delta}")
        if not (math.isfinite(float(self.smooth_sigma)) and float(self.smooth_sigma) > 0):
            raise InputError(f"--smooth-sigma must be a positive number of frames, got {self.smooth_sigma}")
        if isinstance(self.draws, bool) or int(self.draws) < 1:
            raise InputError(f"--draws must be at least 1, got {self.draws}")
        if self.conditioning not in CONDITIONINGS:
            raise InputError(f"--conditioning must be {' or '.join(CONDITIONINGS)}, got {self.conditioning!r}")
        if isinstance(self.invert_steps, bool) or int(self.invert_steps) < 1:
            raise InputError(f"--invert-steps must be at least 1, got {self.invert_steps}")
        if self.trust is not None and not (math.isfinite(float(self.trust)) and float(self.trust) >= 0):
            raise InputError(f"--trust must be a fraction of the frame step >= 0 (0: off), got {self.trust}")
        if self.max_calls is not None and int(self.max_calls) < 1:
            raise InputError(f"--max-calls must be at least 1, got {self.max_calls}")
        if int(self.calls_per_frame) < 1:
            raise InputError(f"calls_per_frame must be at least 1, got {self.calls_per_frame}")
        if int(self.steps) < 1:
            raise InputError(f"--steps must be at least 1, got {self.steps}")
        if self.decode_steps is not None and int(self.decode_steps) < 1:
            raise InputError(f"--decode-steps must be at least 1, got {self.decode_steps}")
        if self.resize not in RESIZE_POLICIES:
            raise InputError(f"--resize must be center-crop, pad or stretch, got {self.resize!r}")
        if self.start is not None and not (math.isfinite(float(self.start)) and float(self.start) >= 0):
            raise InputError(f"--start must be a time >= 0 s (got {self.start})")
        return self


def config_from_dict(values: dict[str, Any]) -> AnalysisConfig:
    """An AnalysisConfig from a plain dict (unknown keys refused with a one-line error)."""
    names = {f.name for f in dataclasses.fields(AnalysisConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"unknown analysis option(s): {', '.join(unknown)}")
    return AnalysisConfig(**values)


__all__ = ["CALLS_PER_FRAME", "CONDITIONINGS", "AnalysisConfig", "config_from_dict"]
