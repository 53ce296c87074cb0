"""The options of an extrapolation run: :class:`ExtrapolationConfig`, validated once by ``resolve()`` (the inputs
classified, defaults filled in or inherited from a source run), and the resolved options stored in the manifest
(``manifest_config()``, what ``--resume`` compares).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geovid.errors import InputError
from geovid.runs.options import SequenceOptions
from geovid.tasks import sequence
from geovid.tasks.extrapolation_source import Source, classify

#: The initial tangent from two images: the end tangent of the slerp A→B or of a short geodesic (BVP).
TANGENTS = ("slerp", "geodesic")
#: Network-call budget of the short BVP that gives the geodesic tangent between two images.
TANGENT_BVP_CALLS = 60

#: Most RK4 steps of a shot (the TUI's job form takes its bound from here).
MAX_STEPS = 10000


@dataclass(frozen=True)
class ExtrapolationConfig(SequenceOptions):
    """Options of an extrapolation run; names follow the CLI options (``--step-size`` → ``step_size``).

    ``resolve()`` classifies the inputs (:attr:`source`), checks the options (one InputError naming the option)
    and fills in the defaults, inheriting the model, ν, the prompt and the score settings from a source run.
    """

    inputs: list[Path] = field(default_factory=list)
    """Two images A B (continue A→B beyond B), one clip (continue from its last frames), or one interpolation
    run folder (same as ``from_run``)."""
    from_run: Path | None = None
    """An interpolation run to continue from its end tangent (instead of ``inputs``)."""
    steps: int = 16
    """RK4 steps of the shot."""
    step_size: float = 1.0
    """Step size in units of the reference distance d (1: one step ≈ the distance between the last two inputs)."""
    decode_every: int = 1
    """Decode every K-th point of the shot (the first and the last are always decoded)."""
    substeps: int = 4
    """RK4 sub-steps per step (accuracy: the curvature α‖N s‖ turns the velocity fast at large step sizes)."""
    context: int = 2
    """Clip frames (from the end) whose latents give the initial tangent."""
    tangent: str = "slerp"
    """With two images: the end tangent of the ``slerp`` A→B (default) or of a short ``geodesic`` (BVP)."""
    prompt: str | None = None
    """Text condition of the inversion, the score and the decoding (default: empty, or the run's)."""
    noise_level: float | None = None
    """Noise level ν in (0, 1] (default 0.6, or the run's; a run's points exist only at its own level)."""
    alpha: float | None = None
    """Density-metric exponent α (docs/method.md §3); ``None``: the run's α when it was given explicitly, else
    the rule of docs/method.md §3.7 for a ray (:func:`geovid.geometry.alpha.calibrate_alpha_ray`: the chord is the
    straight continuation of v₀ over the distance the shot covers)."""
    metric: str | None = None
    """``density`` (default) or ``score``."""
    estimator: str | None = None
    """Score estimator ``contrast`` (default, or the run's) or ``eps`` (docs/method.md §2)."""
    draws: int | None = None
    """(τ, ε₀) draws per point of the contrast estimator (default 1, or the run's)."""
    conditioning: str | None = None
    """``invert`` (prompt embeddings inverted from the given frames; beyond the last one c = its embedding),
    ``prompt`` (the text prompt) or ``None``: the run's, else ``invert`` unless a prompt is given."""
    invert_steps: int | None = None
    """Steps of the prompt-embedding inversion (default: the run's, else ``common.DEFAULT_INVERT_STEPS``)."""

    @property
    def source(self) -> Source:
        """Where the shot starts (the inputs classified; :mod:`geovid.tasks.extrapolation_source`)."""
        src = getattr(self, "_source", None)
        return src if src is not None else self.resolve()._source  # type: ignore[attr-defined]

    @property
    def shot_tangent(self) -> str | None:
        """The tangent option as it applies: with two images only."""
        return self.tangent if self.source.kind == "images" else None

    def _resolve(self) -> ExtrapolationConfig:
        """Classify the inputs, check the options (inheriting model, ν, prompt and score settings from a source
        run) and fill in the defaults."""
        src = classify(self.inputs, self.from_run)
        self._check_shot()
        nu = self.noise_level if self.noise_level is not None else float(src.run_meta.get("noise_level", 0.6))
        sequence.check_noise_level(nu)
        if src.kind == "run" and "noise_level" in src.run_meta and abs(nu - float(src.run_meta["noise_level"])) > 1e-12:
            raise InputError(f"run {src.paths[0].name} lives at noise level {src.run_meta['noise_level']}; "
                             f"--noise-level {nu} cannot continue it")
        model = self._model(src)
        score = self._score_options(src)
        conditioning, invert_steps = self._conditioning(src)
        decode_steps = sequence.check_output_options(self.decode_steps, self.resize, self.fps)
        out = dataclasses.replace(
            self, step_size=float(self.step_size), substeps=int(self.substeps), noise_level=float(nu), model=model,
            prompt=self.prompt if self.prompt is not None else str(src.run_meta.get("prompt") or ""),
            conditioning=conditioning, invert_steps=invert_steps, decode_steps=decode_steps,
            sphere=bool(self.sphere), fps=float(self.fps), seed=int(self.seed), **score)
        object.__setattr__(out, "_source", src)  # not a field: the inputs classified, for the job
        return out

    def _check_shot(self) -> None:
        """The options of the shot itself."""
        if not isinstance(self.steps, int) or self.steps < 1:
            raise InputError(f"--steps must be at least 1, got {self.steps}")
        if self.steps > MAX_STEPS:
            raise InputError(f"--steps must be at most {MAX_STEPS}, got {self.steps}")
        if not (math.isfinite(self.step_size) and self.step_size > 0):
            raise InputError(f"--step-size must be positive, got {self.step_size}")
        if self.decode_every < 1:
            raise InputError(f"--decode-every must be at least 1, got {self.decode_every}")
        if not 1 <= self.substeps <= 1000:
            raise InputError(f"--substeps must be between 1 and 1000, got {self.substeps}")
        if self.context < 2:
            raise InputError(f"--context must be at least 2 frames (a direction needs two), got {self.context}")
        if self.tangent not in TANGENTS:
            raise InputError(f"unknown tangent {self.tangent!r}; choose from {', '.join(TANGENTS)}")

    def _model(self, src: Source) -> str | None:
        """The model: as given, else a source run's (which must be the given one)."""
        from geovid.backbones.loader import model_name

        if src.kind != "run":
            return self.model
        run_model = str(src.run_manifest.get("model") or "")
        if self.model is None:
            return run_model or None
        if run_model and model_name(self.model) != run_model:
            raise InputError(f"run {src.paths[0].name} was made with {run_model}; --model {self.model} cannot "
                             "continue it")
        return self.model

    def _score_options(self, src: Source) -> dict[str, Any]:
        """Estimator, metric, α, λ and draws: as given, else a source run's, else the defaults."""
        run_cfg = src.run_config
        estimator = self.estimator or str(run_cfg.get("estimator") or sequence.DEFAULT_ESTIMATOR)
        sequence.check_estimator(estimator, estimator)
        metric = self.metric or str(run_cfg.get("metric") or "density")
        sequence.check_metric(metric)
        sequence.check_lambda(self.lam)
        alpha: float | None
        if self.alpha is not None:
            alpha = float(self.alpha)
        elif run_cfg.get("alpha") is not None and estimator == run_cfg.get("estimator"):
            alpha = float(run_cfg["alpha"])
        else:
            alpha = None  # the rule of docs/method.md §3.7, for the ray of the shot
        sequence.check_alpha(alpha, self.alpha)
        draws = self.draws if self.draws is not None else (run_cfg.get("draws") or sequence.DEFAULT_DRAWS)
        sequence.check_draws(draws, self.draws, estimator)
        return {"estimator": estimator, "metric": metric, "alpha": alpha,
                "lam": float(self.lam) if metric == "score" else self.lam,
                "draws": draws if estimator == "contrast" else None}

    def _conditioning(self, src: Source) -> tuple[str, int | None]:
        """The conditioning (a source run's by default) and the inversion steps (``None`` when nothing is
        inverted: prompt conditioning, or a run's conditions reused)."""
        from geovid.tasks.common import DEFAULT_INVERT_STEPS

        run_cfg = src.run_config
        if src.kind == "run" and self.conditioning is None:
            conditioning = str(run_cfg.get("conditioning") or "prompt")
        else:
            conditioning = sequence.resolve_conditioning(self.conditioning, self.prompt)
        if src.kind == "run" and conditioning == "invert" and run_cfg.get("conditioning") != "invert":
            raise InputError(f"run {src.paths[0].name} has no inverted conditions; use --conditioning prompt")
        invert_steps = self.invert_steps if self.invert_steps is not None else int(
            run_cfg.get("invert_steps") or DEFAULT_INVERT_STEPS)
        sequence.check_invert_steps(invert_steps, self.invert_steps)
        return conditioning, invert_steps if conditioning == "invert" and src.kind != "run" else None

    def manifest_config(self) -> dict[str, Any]:
        """The resolved options as the manifest stores them (``config``; what ``--resume`` compares)."""
        c = self.resolve()
        kind = c.source.kind
        return {
            "source": kind, "steps": c.steps, "step_size": c.step_size, "decode_every": c.decode_every,
            "substeps": c.substeps,
            "context": c.context if kind == "clip" else None,
            "tangent": c.shot_tangent, "prompt": c.prompt, "noise_level": c.noise_level,
            "alpha": c.alpha, "metric": c.metric, "lam": c.lam if c.metric == "score" else None,
            "estimator": c.estimator, "draws": c.draws, "conditioning": c.conditioning,
            "invert_steps": c.invert_steps,
            "decode_steps": c.decode_steps, "sphere": c.sphere, "resize": c.resize,
            "fps": c.fps, "model": c.model, "device": c.device, "dtype": c.dtype, "seed": c.seed,
        }


__all__ = ["TANGENTS", "TANGENT_BVP_CALLS", "ExtrapolationConfig"]
