"""The options of an interpolation run: :class:`InterpolationConfig`, validated once by ``resolve()`` (defaults
filled in), and the resolved options stored in the manifest (``manifest_config()``, what ``--resume`` compares).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geovid.errors import InputError
from geovid.runs.options import SequenceOptions
from geovid.tasks.sequence import (
    DEFAULT_DECODE_STEPS,
    DEFAULT_DRAWS,
    DEFAULT_ESTIMATOR,
    check_alpha,
    check_draws,
    check_estimator,
    check_invert_steps,
    check_lambda,
    check_metric,
    check_noise_level,
    check_output_options,
    resolve_conditioning,
)

#: Baseline paths between the endpoints, decoded with the same settings (docs/method.md §8).
BASELINES = ("lerp", "slerp")
#: Default network-call budget of the BVP solve (``geovid`` solver). See docs/interpolation.md (timings).
DEFAULT_MAX_CALLS = 150
#: Default extra starts of the solve (bent copies of the slerp, docs/method.md §5); chosen by the rule and the
#: measurement in docs/benchmarks.md ("Multi-start BVP"). The budget ``max_calls`` applies to each start.
DEFAULT_STARTS = 0
#: DDIM steps of the first decoding pass's interior frames when the re-timing is on: those frames only give the
#: perceptual distances the re-timing inverts (every interior frame is decoded again at its new position with
#: ``decode_steps``), so they are decoded coarser to save time (docs/interpolation.md, "Timings").
PREVIEW_DECODE_STEPS = 4

#: Most frames of an interpolation (the TUI's job form takes its bound from here).
MAX_FRAMES = 1025


def parse_baselines(value: Any) -> list[str]:
    """``"lerp,slerp"``, a list, or ``""``/``"none"`` → validated list of baseline names (order kept)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        name = str(item).strip().lower()
        if name in ("", "none"):
            continue
        if name not in BASELINES:
            raise InputError(f"unknown baseline {item!r}; choose from {', '.join(BASELINES)} (or none)")
        if name not in out:
            out.append(name)
    return out


@dataclass(frozen=True)
class InterpolationConfig(SequenceOptions):
    """Options of an interpolation run; names follow the CLI options (``--noise-level`` → ``noise_level``).

    ``resolve()`` checks them (one InputError naming the option) and fills in the defaults: a resolved config has
    the estimator, draws (``None`` with ``eps``), conditioning, invert steps (``None`` with prompt conditioning),
    the parsed baselines, the perceptual distance's name, the call budget, the starts and the decoding steps.
    """

    image_a: Path
    """First image (A): PNG, JPEG, WebP, BMP or TIFF; RGB, RGBA, grayscale, 16-bit."""
    image_b: Path
    """Second image (B)."""
    frames: int = 17
    """Frames of the sequence, endpoints included (at least 3)."""
    prompt: str = ""
    """Text condition of the inversion and of the score (empty: unconditional)."""
    prompt_b: str | None = None
    """Condition of B's inversion; the score then uses the mean embedding and frames blend the two (see
    :mod:`geovid.tasks.interpolate`)."""
    noise_level: float = 0.6
    """Noise level ν in (0, 1] of the geodesic space (docs/method.md §1)."""
    alpha: float | None = None
    """Density-metric exponent α (docs/method.md §3); ``None``: the rule of docs/method.md §3.7, α = 2/(d·S) on
    the straight path (:mod:`geovid.geometry.alpha`), computed per run and stored in summary.json."""
    metric: str = "density"
    """``density`` (p^-α, docs/method.md §3) or ``score`` (I + λ s sᵀ, docs/method.md §4)."""
    solver: str = "geovid"
    """BVP solver: ``geovid`` (default) or ``reference`` (the published schedule, docs/method.md §5)."""
    estimator: str | None = DEFAULT_ESTIMATOR
    """Score estimator (docs/method.md §2): ``contrast`` (default, the reference's, with the model's negative
    prompt) or ``eps`` (deterministic, one call per point)."""
    draws: int | None = None
    """(τ, ε₀) draws per point of the contrast estimator (docs/method.md §2.2); ``None``: ``DEFAULT_DRAWS``."""
    conditioning: str | None = None
    """``invert``: prompt embeddings inverted from A and B, blended along the path for the score and the
    decoding; ``prompt``: the text prompt(s); ``None``: ``invert`` unless a prompt is given."""
    invert_steps: int | None = None
    """Optimisation steps of the endpoint prompt-embedding inversion; ``None``: ``common.DEFAULT_INVERT_STEPS``."""
    uniform: bool = True
    """Perceptually uniform re-timing of every method's frames (docs/method.md §8)."""
    baselines: list[str] = field(default_factory=lambda: list(BASELINES))
    """Baselines decoded alongside the geodesic: ``lerp`` and/or ``slerp`` (at least one)."""
    perceptual: str = "auto"
    """Perceptual distance: ``auto`` (LPIPS when its weights are local, else SSIM), ``lpips`` or ``ssim``."""
    max_calls: int | None = None
    """Network-call budget of the solve; ``None``: 150 for the geovid solver, the full schedule for reference."""
    starts: int | None = None
    """Extra starts K of the geovid solve (docs/method.md §5), each with the budget ``max_calls``; the shortest
    path by the metric is kept. ``None``: ``DEFAULT_STARTS`` (0 for the reference solver)."""

    @property
    def preview_steps(self) -> int | None:
        """DDIM steps of the first decoding pass's interior frames (``PREVIEW_DECODE_STEPS``, at most
        ``decode_steps``) when the re-timing is on, else ``None``."""
        decode = DEFAULT_DECODE_STEPS if self.decode_steps is None else int(self.decode_steps)
        return min(PREVIEW_DECODE_STEPS, decode) if self.uniform else None

    def check_inputs(self) -> None:
        """Both images exist (checked before any run folder is made). Raises InputError."""
        from geovid.tasks.common import check_input_file

        check_input_file(self.image_a, "image A")
        check_input_file(self.image_b, "image B")

    def _resolve(self) -> InterpolationConfig:
        """Check the options (not the input files: :meth:`check_inputs`) and fill in the defaults."""
        from geovid.tasks.common import DEFAULT_INVERT_STEPS

        if not isinstance(self.frames, int) or self.frames < 3:
            raise InputError(f"--frames must be at least 3 (got {self.frames}): a path needs one point between A "
                             "and B")
        if self.frames > MAX_FRAMES:
            raise InputError(f"--frames must be at most {MAX_FRAMES} (got {self.frames})")
        nu = check_noise_level(self.noise_level)
        estimator = self.estimator or DEFAULT_ESTIMATOR  # None (e.g. from the TUI): the default
        check_estimator(estimator, self.estimator)
        check_metric(self.metric)
        self._check_solver()
        alpha = None if self.alpha is None else float(self.alpha)
        check_alpha(alpha, self.alpha)
        draws = DEFAULT_DRAWS if self.draws is None else self.draws
        check_draws(draws, self.draws, estimator)
        conditioning = resolve_conditioning(self.conditioning, self.prompt, self.prompt_b)
        invert_steps = DEFAULT_INVERT_STEPS if self.invert_steps is None else self.invert_steps
        check_invert_steps(invert_steps, self.invert_steps)
        if conditioning == "invert" and self.prompt_b is not None:
            raise InputError("--prompt-b needs --conditioning prompt (inverted embeddings replace the prompts)")
        check_lambda(self.lam)
        baselines, perceptual = self._check_comparison()
        if self.max_calls is not None and self.max_calls < 1:
            raise InputError(f"--max-calls must be at least 1, got {self.max_calls}")
        decode_steps = check_output_options(self.decode_steps, self.resize, self.fps)
        max_calls, starts = self._budget()
        return dataclasses.replace(
            self, noise_level=nu, alpha=alpha, lam=float(self.lam), estimator=estimator,
            draws=draws if estimator == "contrast" else None, conditioning=conditioning,
            invert_steps=invert_steps if conditioning == "invert" else None, uniform=bool(self.uniform),
            baselines=baselines, perceptual=perceptual, max_calls=max_calls, starts=starts,
            decode_steps=decode_steps, sphere=bool(self.sphere), fps=float(self.fps), seed=int(self.seed))

    def _check_solver(self) -> None:
        from geovid.geometry.bvp import SOLVERS

        if self.solver not in SOLVERS:
            raise InputError(f"unknown solver {self.solver!r}; choose from {', '.join(SOLVERS)}")
        if self.solver == "reference" and self.metric != "density":
            raise InputError("the reference solver implements the density metric only (docs/method.md §5)")

    def _check_comparison(self) -> tuple[list[str], str]:
        """The baselines (at least one) and the perceptual distance's name."""
        from geovid.tasks.perceptual import DISTANCES

        baselines = parse_baselines(self.baselines)
        if not baselines:
            # The run contract (docs/run-directory.md) has baselines/ in every interpolation run: the comparison is
            # the point of the measurement.
            raise InputError(f"--baselines needs at least one of {', '.join(BASELINES)}")
        name = (self.perceptual or "auto").lower()
        if name not in ("auto", *DISTANCES):
            raise InputError(f"unknown perceptual distance {self.perceptual!r}; choose from auto, "
                             f"{', '.join(DISTANCES)}")
        return baselines, name

    def _budget(self) -> tuple[int | None, int]:
        """The solve's call budget and extra starts (defaults by solver)."""
        reference = self.solver == "reference"
        max_calls = self.max_calls if self.max_calls is not None or reference else DEFAULT_MAX_CALLS
        starts = (0 if reference else DEFAULT_STARTS) if self.starts is None else self.starts
        if not isinstance(starts, int) or isinstance(starts, bool) or not 0 <= starts <= 64:
            raise InputError(f"--starts must be a whole number from 0 to 64, got {self.starts}")
        if starts and reference:
            raise InputError("--starts needs the geovid solver (the reference schedule has one start)")
        return max_calls, starts

    def manifest_config(self) -> dict[str, Any]:
        """The resolved options as the manifest stores them (``config``; what ``--resume`` compares)."""
        c = self.resolve()
        return {
            "frames": c.frames, "prompt": c.prompt, "prompt_b": c.prompt_b, "noise_level": c.noise_level,
            "alpha": c.alpha, "metric": c.metric, "lam": c.lam if c.metric == "score" else None,
            "solver": c.solver, "estimator": c.estimator, "draws": c.draws, "conditioning": c.conditioning,
            "invert_steps": c.invert_steps, "uniform": c.uniform, "baselines": list(c.baselines),
            "preview_steps": c.preview_steps, "perceptual": c.perceptual, "max_calls": c.max_calls,
            "starts": c.starts, "decode_steps": c.decode_steps, "sphere": c.sphere, "resize": c.resize,
            "fps": c.fps, "device": c.device, "dtype": c.dtype, "seed": c.seed,
        }


__all__ = ["BASELINES", "DEFAULT_MAX_CALLS", "DEFAULT_STARTS", "PREVIEW_DECODE_STEPS", "InterpolationConfig",
           "parse_baselines"]
