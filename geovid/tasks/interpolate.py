"""Geodesic interpolation between two images (docs/method.md §5, §8): ``geovid interpolate A B``.

Phases (each reported through ``progress`` and recorded in the manifest; the expensive ones save their result in
``state/`` so ``--resume`` skips them):

1. ``load`` — the model; the two images, any format, fitted to the model resolution (docs/interpolation.md).
2. ``encode`` — E, the endpoints' prompt-embedding inversion (conditioning ``invert``, cached) and DDIM inversion to
   t_ν, each endpoint with its own condition (docs/method.md §1; prompt conditioning: cached by
   :mod:`geovid.tasks.latents`).
3. ``solve`` — α by the rule of docs/method.md §3.7 on the slerp (unless given), then the BVP (docs/method.md §5) from
   the slerp between the endpoints on the sphere, with a budget of network
   calls (``max_calls``).
4. ``decode`` — the geodesic and the baselines (lerp, slerp between the same endpoints), DDIM denoising with the
   same settings, in one batch.
5. ``uniform`` — perceptually uniform re-timing (docs/method.md §8), for every method alike: cumulative perceptual
   distance inverted piecewise-linearly, new points interpolated between path neighbours (slerp; lerp for the
   lerp baseline), re-decoded.
6. ``measure`` — scores at the final points: residual, log-density profile and relative length (docs/method.md §3);
   PPL and PDV (docs/method.md §8).
7. ``write`` — frames, baselines, strip, compare, GIF, MP4, ``path.safetensors``, tables, plot, summary.

Conditioning (docs/interpolation.md, "Conditioning"): by default (``invert``, docs/method.md §1.4, §2.2) one prompt embedding per
endpoint is inverted from its image, c_A and c_B, and every point x is scored and decoded with
c(x) = (1 − τ) c_A + τ c_B, τ its position along the chord A→B (:class:`geovid.tasks.common.ConditionField`), so
each endpoint reconstructs with its own condition. ``prompt``: the text prompt conditions everything; with
``prompt_b``, B is inverted with it and c(x) blends the two prompt embeddings the same way. The score is the
``contrast`` estimator with the model's negative prompt by default (docs/method.md §2.2).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geovid.errors import InputError
from geovid.progress import ProgressFn
from geovid.runs.options import SequenceOptions

#: Baseline paths between the endpoints, decoded with the same settings (docs/method.md §8).
BASELINES = ("lerp", "slerp")
#: Resize policies for inputs whose size differs from the model's (geovid.media.images.fit_to_resolution).
RESIZE_POLICIES = ("center-crop", "pad", "stretch")
#: Default network-call budget of the BVP solve (``geovid`` solver). See docs/interpolation.md (timings).
DEFAULT_MAX_CALLS = 150
#: Default extra starts of the solve (bent copies of the slerp, docs/method.md §5); chosen by the rule and the
#: measurement in docs/benchmarks.md ("Multi-start BVP"). The budget ``max_calls`` applies to each start.
DEFAULT_STARTS = 0
#: Default DDIM steps when decoding frames from t_ν (30 = the full 50-step grid below t = 581).
DEFAULT_DECODE_STEPS = 10
#: DDIM steps of the first decoding pass's interior frames when the re-timing is on: those frames only give the
#: perceptual distances the re-timing inverts (every interior frame is decoded again at its new position with
#: ``decode_steps``), so they are decoded coarser to save time (docs/interpolation.md, "Timings").
PREVIEW_DECODE_STEPS = 4
#: α of the density metric for image sequences before issue #13, per estimator: kept as the fallback of
#: ``sequence_alpha`` (e.g. a constant path, where the rule has no chord). The default α is now the rule of
#: docs/method.md §3.7 (:mod:`geovid.geometry.alpha`), computed per run on the straight path; ``--alpha`` overrides.
SEQUENCE_ALPHA = {"eps": 0.002, "contrast": 0.002}
#: Default score estimator of interpolation and extrapolation (docs/interpolation.md, "Defaults and why").
DEFAULT_ESTIMATOR = "contrast"
#: Default (τ, ε₀) draws per point of the contrast estimator (docs/method.md §2.2).
DEFAULT_DRAWS = 1
#: Conditioning modes: ``invert`` (per-endpoint prompt-embedding inversion, blended along the path) or
#: ``prompt`` (the text prompt(s) as given). ``None`` (auto): ``invert`` unless a prompt is given.
CONDITIONINGS = ("invert", "prompt")


def sequence_alpha(estimator: str) -> float:
    """Fallback α of interpolation and extrapolation for an estimator (see ``SEQUENCE_ALPHA``)."""
    return SEQUENCE_ALPHA.get(estimator, 0.002)


def resolve_conditioning(conditioning: str | None, prompt: str | None, prompt_b: str | None = None) -> str:
    """``invert`` or ``prompt``: the given mode, else ``prompt`` when the user gave a prompt, else ``invert``."""
    if conditioning is None:
        return "prompt" if (prompt or prompt_b) else "invert"
    if conditioning not in CONDITIONINGS:
        raise InputError(f"unknown conditioning {conditioning!r}; choose from {', '.join(CONDITIONINGS)}")
    return conditioning


@dataclass(frozen=True)
class InterpolationConfig(SequenceOptions):
    """Options of an interpolation run; names follow the CLI options (``--noise-level`` → ``noise_level``)."""

    image_a: Path
    """First image (A): PNG, JPEG, WebP, BMP or TIFF; RGB, RGBA, grayscale, 16-bit."""
    image_b: Path
    """Second image (B)."""
    frames: int = 17
    """Frames of the sequence, endpoints included (at least 3)."""
    prompt: str = ""
    """Text condition of the inversion and of the score (empty: unconditional)."""
    prompt_b: str | None = None
    """Condition of B's inversion; the score then uses the mean embedding and frames blend the two (see above)."""
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

    def validate(self) -> dict[str, Any]:
        """Check the options and that both images exist (no run folder is made); returns the resolved options
        stored in the manifest. Raises InputError."""
        from geovid.tasks.common import check_input_file

        resolved = _resolved(self)
        check_input_file(self.image_a, "image A")
        check_input_file(self.image_b, "image B")
        return resolved

    def resolved(self) -> dict[str, Any]:
        """Check the options only (not the input files) and return the resolved options stored in the manifest
        (what ``--resume`` compares). Raises InputError."""
        return _resolved(self)


def _resolved(cfg: InterpolationConfig) -> dict[str, Any]:
    """Validate the options and return the resolved configuration stored in the manifest."""
    from geovid.geometry.bvp import SOLVERS
    from geovid.geometry.estimators import ESTIMATORS
    from geovid.tasks.perceptual import DISTANCES

    if not isinstance(cfg.frames, int) or cfg.frames < 3:
        raise InputError(f"--frames must be at least 3 (got {cfg.frames}): a path needs one point between A and B")
    if cfg.frames > 1025:
        raise InputError(f"--frames must be at most 1025 (got {cfg.frames})")
    if not (isinstance(cfg.noise_level, int | float) and 0.0 < cfg.noise_level <= 1.0):
        raise InputError(f"--noise-level must be in (0, 1], got {cfg.noise_level}")
    estimator = cfg.estimator or DEFAULT_ESTIMATOR  # None (e.g. from the TUI): the default
    if estimator not in ESTIMATORS or estimator == "exact":
        raise InputError(f"unknown estimator {cfg.estimator!r}; choose from eps, contrast")
    if cfg.metric not in ("density", "score"):
        raise InputError(f"unknown metric {cfg.metric!r}; choose from density, score")
    if cfg.solver not in SOLVERS:
        raise InputError(f"unknown solver {cfg.solver!r}; choose from {', '.join(SOLVERS)}")
    if cfg.solver == "reference" and cfg.metric != "density":
        raise InputError("the reference solver implements the density metric only (docs/method.md §5)")
    from geovid.tasks.common import DEFAULT_INVERT_STEPS

    alpha = None if cfg.alpha is None else float(cfg.alpha)
    if alpha is not None and not (math.isfinite(alpha) and alpha > 0):
        raise InputError(f"--alpha must be positive, got {cfg.alpha}")
    draws = DEFAULT_DRAWS if cfg.draws is None else cfg.draws
    if not isinstance(draws, int) or isinstance(draws, bool) or not 1 <= draws <= 64:
        raise InputError(f"--draws must be a whole number from 1 to 64, got {cfg.draws}")
    if cfg.draws not in (None, 1) and estimator != "contrast":
        raise InputError("--draws needs the contrast estimator (eps is deterministic)")
    conditioning = resolve_conditioning(cfg.conditioning, cfg.prompt, cfg.prompt_b)
    invert_steps = DEFAULT_INVERT_STEPS if cfg.invert_steps is None else cfg.invert_steps
    if not isinstance(invert_steps, int) or isinstance(invert_steps, bool) or not 0 <= invert_steps <= 10000:
        raise InputError(f"--invert-steps must be a whole number from 0 to 10000, got {cfg.invert_steps}")
    if conditioning == "invert" and cfg.prompt_b is not None:
        raise InputError("--prompt-b needs --conditioning prompt (inverted embeddings replace the prompts)")
    if not (math.isfinite(cfg.lam) and cfg.lam > 0):
        raise InputError(f"--lambda must be positive, got {cfg.lam}")
    baselines = parse_baselines(cfg.baselines)
    if not baselines:
        # The run contract (docs/run-directory.md) has baselines/ in every interpolation run: the comparison is
        # the point of the measurement.
        raise InputError(f"--baselines needs at least one of {', '.join(BASELINES)}")
    pname = (cfg.perceptual or "auto").lower()
    if pname not in ("auto", *DISTANCES):
        raise InputError(f"unknown perceptual distance {cfg.perceptual!r}; choose from auto, {', '.join(DISTANCES)}")
    if cfg.max_calls is not None and cfg.max_calls < 1:
        raise InputError(f"--max-calls must be at least 1, got {cfg.max_calls}")
    decode_steps = DEFAULT_DECODE_STEPS if cfg.decode_steps is None else int(cfg.decode_steps)
    if decode_steps < 1:
        raise InputError(f"--decode-steps must be at least 1, got {cfg.decode_steps}")
    if cfg.resize not in RESIZE_POLICIES:
        raise InputError(f"unknown resize policy {cfg.resize!r}; choose from {', '.join(RESIZE_POLICIES)}")
    if not cfg.fps > 0:
        raise InputError(f"--fps must be positive, got {cfg.fps}")
    max_calls = cfg.max_calls if cfg.max_calls is not None or cfg.solver == "reference" else DEFAULT_MAX_CALLS
    starts = (0 if cfg.solver == "reference" else DEFAULT_STARTS) if cfg.starts is None else cfg.starts
    if not isinstance(starts, int) or isinstance(starts, bool) or not 0 <= starts <= 64:
        raise InputError(f"--starts must be a whole number from 0 to 64, got {cfg.starts}")
    if starts and cfg.solver == "reference":
        raise InputError("--starts needs the geovid solver (the reference schedule has one start)")
    return {
        "frames": cfg.frames, "prompt": cfg.prompt, "prompt_b": cfg.prompt_b, "noise_level": float(cfg.noise_level),
        "alpha": alpha, "metric": cfg.metric, "lam": float(cfg.lam) if cfg.metric == "score" else None,
        "solver": cfg.solver, "estimator": estimator,
        "draws": draws if estimator == "contrast" else None, "conditioning": conditioning,
        "invert_steps": invert_steps if conditioning == "invert" else None, "uniform": bool(cfg.uniform), "baselines": baselines,
        "preview_steps": min(PREVIEW_DECODE_STEPS, decode_steps) if cfg.uniform else None,
        "perceptual": pname, "max_calls": max_calls, "starts": starts, "decode_steps": decode_steps,
        "sphere": bool(cfg.sphere), "resize": cfg.resize, "fps": float(cfg.fps), "device": cfg.device, "dtype": cfg.dtype,
        "seed": int(cfg.seed),
    }


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


def run_interpolation(config: InterpolationConfig, progress: ProgressFn | None = None,
                      cancel: threading.Event | None = None, created: list[Path] | None = None,
                      command: list[str] | None = None) -> Path:
    """Interpolate between two images along a density geodesic and write a run folder (docs/method.md §5, §8).

    Args:
        config: the options (see :class:`InterpolationConfig`).
        progress: ``progress(phase, done, total, info)`` (geovid.progress convention).
        cancel: set it to stop the job; the run is then marked ``interrupted`` and can be resumed.
        created: when given, the run folder is appended to it as soon as it exists (the batch engines,
            geovid.batch, name the folder of a run that then fails).
        command: the command line recorded in the manifest (default: ``sys.argv``; a batch worker passes the
            driver's).

    Returns:
        The run folder (``config.out/NAME``), complete.

    Raises:
        InputError: bad options, missing or unreadable images, a run that exists (without ``resume``).
        ModelError: the model cannot be loaded.
        SolverError: the solver diverged.
        geovid.progress.Cancelled: ``cancel`` was set (run ``interrupted``).
    """
    from geovid.backbones.loader import model_name
    from geovid.tasks.common import open_run, with_cancel

    resolved = config.validate()
    prog = with_cancel(progress, cancel)
    a_path, b_path = Path(config.image_a).expanduser(), Path(config.image_b).expanduser()
    run, finished = open_run("interpolation", resolved, config.out, config.name, config.resume, [a_path, b_path],
                             model_name(config.model), config.seed, command=command)
    if created is not None:
        created.append(run.path)
    if finished:
        return run.path
    with run.guard():
        _Job(config, resolved, run, prog, a_path, b_path).execute()
    return run.path


class _Job:
    """One interpolation run, phase by phase (see the module docstring)."""

    def __init__(self, config: InterpolationConfig, resolved: dict[str, Any], run: Any, progress: ProgressFn,
                 a_path: Path, b_path: Path) -> None:
        self.cfg = config
        self.res = resolved
        self.run = run
        self.progress = progress
        self.paths = (a_path, b_path)
        self.n = int(resolved["frames"])
        self.methods = ["geodesic", *resolved["baselines"]]

    # ------------------------------------------------------------------ phases

    def execute(self) -> None:
        from geovid.tasks.common import CallCounter

        run, prog = self.run, self.progress
        with run.phase("load"):
            prog("load", 0, 2, {"model": self.cfg.model or "bundled"})
            self.setup()
            prog("load", 2, 2, {})
        self.calls = CallCounter(run, self.bb)
        self.encode()
        self.calls.update()
        self.solve()
        self.calls.update()
        self.decode()
        self.calls.update()
        if self.res["uniform"]:
            self.make_uniform()
            self.calls.update()
        self.measure()
        self.calls.update()
        self.write()

    def setup(self) -> None:
        from geovid.tasks.common import fit_image, load_model
        from geovid.tasks.perceptual import get_distance

        torch.manual_seed(self.res["seed"])
        # Images first: a file that is not an image fails in a second, before the model is loaded.
        from geovid.media.images import load_image

        raw = [load_image(p) for p in self.paths]
        self.bb = load_model(self.cfg.model, self.cfg.device, self.cfg.dtype)
        self.images = np.stack([fit_image(im, self.bb.resolution, self.res["resize"]) for im in raw])
        self.distance = get_distance(self.res["perceptual"])
        self.t = self.bb.noise_level_to_timestep(self.res["noise_level"])
        prompt = self.res["prompt"]
        prompt_b = self.res["prompt_b"]
        self.cond_a = self.bb.embed_prompt(prompt)
        self.cond_b = self.bb.embed_prompt(prompt_b) if prompt_b is not None else self.cond_a
        # The score and the metric are made once the endpoints are known (encode, solve): the condition c(x)
        # depends on their position and α's rule on their chord.

    def _make_score(self) -> None:
        from geovid.tasks.common import ConditionField, field_estimator

        # c(x): c_A, c_B blended by the position along the chord A→B (docs/interpolation.md, "Conditioning").
        self.field = ConditionField(self.cond_a, self.cond_b, self.a, self.b)
        self.score = field_estimator(self.res["estimator"], self.bb, self.t, self.field, seed=self.res["seed"],
                                     draws=int(self.res.get("draws") or 1))

    def encode(self) -> None:
        from geovid.geometry.paths import Sphere
        from geovid.tasks.common import phase_done, save_state, step_progress
        from geovid.tasks.latents import images_to_points

        state = phase_done(self.run, "encode")
        if state is None:
            with self.run.phase("encode"):
                self.progress("encode", 0, None, {"images": 2})
                cb = step_progress(self.progress, "encode")
                tensors: dict[str, Any] = {}
                if self.res["conditioning"] == "invert" and hasattr(self.bb, "invert_prompt_embedding"):
                    pts = self._encode_inverted(tensors)
                else:
                    prompt_b = self.res["prompt_b"] if self.res["prompt_b"] is not None else self.res["prompt"]
                    if prompt_b == self.res["prompt"]:
                        pts = images_to_points(self.bb, self.images, self.res["noise_level"], self.res["prompt"],
                                               progress=cb).points
                    else:
                        pa = images_to_points(self.bb, self.images[:1], self.res["noise_level"],
                                              self.res["prompt"], progress=cb).points
                        pb = images_to_points(self.bb, self.images[1:], self.res["noise_level"], prompt_b,
                                              progress=cb).points
                        pts = torch.cat([pa, pb])
                save_state(self.run, "encode", {"points": pts, "images": self.images, **tensors}, {"t": self.t})
        else:
            pts = state[0]["points"]
            if "cond_a" in state[0]:
                self.cond_a = state[0]["cond_a"].to(self.bb.device, self.bb.dtype)
                self.cond_b = state[0]["cond_b"].to(self.bb.device, self.bb.dtype)
        self.raw_endpoints = pts
        self.sphere = Sphere.for_points(pts, on=self.res["sphere"])
        # All methods share the endpoints on the sphere (docs/method.md §1), so they differ only in between.
        ends = self.sphere.project_points(pts)
        self.a, self.b = ends[0], ends[1]
        self._make_score()

    def _encode_inverted(self, tensors: dict[str, Any]) -> torch.Tensor:
        """VAE-encode A and B, invert one prompt embedding per endpoint (jointly, cached by content hash;
        docs/method.md §1.4, §2.2), then DDIM-invert each endpoint to t_ν with its own embedding."""
        from geovid.media.images import to_tensor
        from geovid.tasks.common import invert_endpoint_embeddings, invert_with_conditions, step_progress

        with torch.no_grad():
            z0 = self.bb.encode(to_tensor(self.images).to(torch.float32))
        steps = int(self.res["invert_steps"])
        self.progress("invert prompt", 0, steps, {})
        conds = invert_endpoint_embeddings(self.bb, z0, self.res["prompt"], steps=steps, seed=self.res["seed"],
                                           progress=step_progress(self.progress, "invert prompt"))
        self.progress("invert prompt", steps, steps, {})  # also when the embeddings came from the cache
        self.cond_a, self.cond_b = conds[:1], conds[1:2]
        tensors.update(cond_a=self.cond_a.float().clone(), cond_b=self.cond_b.float().clone())
        return invert_with_conditions(self.bb, z0, conds, self.res["noise_level"],
                                      progress=step_progress(self.progress, "encode"))

    def solve(self) -> None:
        from geovid.geometry.bvp import solve_bvp
        from geovid.geometry.paths import arclength_resample, initial_path
        from geovid.tasks.common import phase_done, save_state

        state = phase_done(self.run, "solve")
        if state is not None:
            self.geodesic = state[0]["path"]
            self.solver_info = state[1]
            self._set_alpha(self.solver_info.get("alpha"), self.solver_info.get("alpha_rule"))
            return
        with self.run.phase("solve"):
            self.progress("solve", 0, None, {"solver": self.res["solver"]})
            if float((self.b - self.a).norm()) == 0.0:
                # A and B are the same point (e.g. the same file twice): the geodesic is the constant path.
                self.geodesic = self.a[None].repeat(self.n, 1)
                self._set_alpha(self.res["alpha"] or sequence_alpha(self.res["estimator"]), None)
                self.solver_info = {"solver": "none", "iterations": 0, "network_calls": 0, "converged": True,
                                    "seconds": 0.0, "last_iteration_mean_residual": None,
                                    "max_calls": self.res["max_calls"], "note": "A and B are the same point",
                                    "alpha": self.alpha, "alpha_rule": None}
                save_state(self.run, "solve", {"path": self.geodesic}, self.solver_info)
                return
            x0 = initial_path(self.a, self.b, self.n, self.sphere)
            if self.res["alpha"] is None:
                # α by the rule of docs/method.md §3.7 on the slerp the solve starts from (its scores, drawn as
                # the measure phase draws them: same seed, same frame indices).
                from geovid.geometry.alpha import calibrate_alpha

                self.progress("solve", 0, None, {"alpha": "rule"})
                torch.manual_seed(self.res["seed"])
                s_line = self.score(x0[1:-1])
                cal = calibrate_alpha(self.score, self.a, self.b, self.sphere, line=x0, s_interior=s_line)
                self._set_alpha(cal.alpha, {**cal.to_dict(), "network_calls": int(s_line.shape[0])
                                            * int(getattr(self.score, "calls_per_point", 1))})
            else:
                self._set_alpha(float(self.res["alpha"]), None)
            opts: dict[str, Any] = {"progress": self.progress, "max_calls": self.res["max_calls"]}
            if self.res["solver"] == "geovid":
                opts["mode"] = "free"
                opts["starts"] = int(self.res.get("starts") or 0)
            result = solve_bvp(x0, self.score, self.metric, self.sphere, solver=self.res["solver"],
                               seed=self.res["seed"], **opts)
            path = result.path
            if path.shape[0] != self.n:  # the reference schedule always ends with 17 points
                path = arclength_resample(path, self.n, self.sphere)
            path[0], path[-1] = self.a, self.b
            last = result.history[-1] if result.history else {}
            self.solver_info = {
                "solver": result.solver, "iterations": result.iterations, "network_calls": result.network_calls,
                "converged": bool(result.converged), "seconds": round(result.seconds, 3),
                "last_iteration_mean_residual": last.get("mean_residual"), "max_calls": self.res["max_calls"],
                "starts": int(self.res.get("starts") or 0),
                "critical_start": bool(result.info.get("critical_start", False)),
                "chosen_start": result.info.get("chosen", 0), "chosen_kind": result.info.get("chosen_kind"),
                "start_report": result.info.get("starts", []),
                "alpha": self.alpha, "alpha_rule": self.alpha_rule,
            }
            if result.info.get("note"):
                self.solver_info["note"] = result.info["note"]
            self.geodesic = path
            if result.history:
                import pandas as pd

                self.run.write_table("solver_history", pd.DataFrame(result.history))
            save_state(self.run, "solve", {"path": path}, self.solver_info)

    def _set_alpha(self, alpha: float | None, rule: dict[str, Any] | None) -> None:
        from geovid.geometry.metrics import make_metric

        self.alpha = float(alpha) if alpha is not None else sequence_alpha(self.res["estimator"])
        self.alpha_rule = rule
        self.metric = make_metric(self.res["metric"], alpha=self.alpha, lam=self.res["lam"] or 1000.0)

    def _paths(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Points and times t of every method before re-timing."""
        from geovid.geometry.paths import lerp, slerp

        tt = torch.linspace(0, 1, self.n, dtype=self.a.dtype)
        out = {"geodesic": (self.geodesic, chord_times(self.geodesic))}
        for name in self.res["baselines"]:
            pts = lerp(self.a, self.b, tt) if name == "lerp" else self.sphere.project_points(slerp(self.a, self.b, tt))
            pts[0], pts[-1] = self.a, self.b
            out[name] = (pts, tt.clone())
        return out

    def _decode(self, points: torch.Tensor, times: torch.Tensor, phase: str, steps: int | None = None) -> np.ndarray:
        from geovid.tasks.common import step_progress
        from geovid.tasks.latents import decode_points

        cond = self.field(points)  # c(x), as the score sees it: each endpoint with its own embedding
        return decode_points(self.bb, points, self.t, cond, steps=steps or self.res["decode_steps"],
                             progress=step_progress(self.progress, phase, frames=int(points.shape[0])))

    def decode(self) -> None:
        from geovid.tasks.common import phase_done, save_state

        paths = self._paths()
        state = phase_done(self.run, "decode")
        if state is None:
            with self.run.phase("decode"):
                # Endpoints are shared: decode them once (with the geodesic), the baselines' interiors after.
                pts = [paths["geodesic"][0]] + [paths[m][0][1:-1] for m in self.methods[1:]]
                ts = [paths["geodesic"][1]] + [paths[m][1][1:-1] for m in self.methods[1:]]
                preview = self.res.get("preview_steps")
                if preview and preview < self.res["decode_steps"]:
                    # Re-timing on: interiors are previews (they only give distances and are decoded again),
                    # the endpoints are final frames.
                    allp, allt = torch.cat(pts), torch.cat(ts)
                    ends = [0, self.n - 1]
                    inner = [i for i in range(allp.shape[0]) if i not in ends]
                    imgs = np.empty((allp.shape[0], *self.images.shape[1:]), np.uint8)
                    imgs[ends] = self._decode(allp[ends], allt[ends], "decode")
                    imgs[inner] = self._decode(allp[inner], allt[inner], "decode", steps=int(preview))
                else:
                    imgs = self._decode(torch.cat(pts), torch.cat(ts), "decode")
                frames = {"geodesic": imgs[: self.n]}
                k = self.n
                for m in self.methods[1:]:
                    frames[m] = np.concatenate([imgs[:1], imgs[k: k + self.n - 2], imgs[self.n - 1: self.n]])
                    k += self.n - 2
                save_state(self.run, "decode", {f"frames_{m}": v for m, v in frames.items()})
        else:
            frames = {m: state[0][f"frames_{m}"].numpy() for m in self.methods}
        self.raw = {m: (paths[m][0], paths[m][1], frames[m]) for m in self.methods}
        self.final = dict(self.raw)
        self.positions = {m: np.arange(self.n, dtype=np.float64) for m in self.methods}

    def make_uniform(self) -> None:
        from geovid.tasks.common import phase_done, save_state
        from geovid.tasks.perceptual import consecutive_distances, uniform_positions

        positions = {}
        new: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for m in self.methods:
            pts, tt, frames = self.raw[m]
            positions[m] = uniform_positions(consecutive_distances(frames, self.distance))
            new[m] = retime(pts, tt, positions[m], spherical=(m != "lerp" and self.sphere.on))
        state = phase_done(self.run, "uniform")
        if state is None:
            with self.run.phase("uniform"):
                # A position on an existing frame reuses its image (always the endpoints); the others are decoded.
                out = {m: self.raw[m][2].copy() for m in self.methods}
                todo = []
                for m in self.methods:
                    for j, p in enumerate(positions[m]):
                        # Only the endpoints of the first pass are final frames (its interiors are previews).
                        if abs(p - round(p)) <= 1e-9 and round(p) in (0, self.n - 1):
                            out[m][j] = self.raw[m][2][round(float(p))]
                        else:
                            todo.append((m, j))
                if todo:
                    pts = torch.stack([new[m][0][j] for m, j in todo])
                    ts = torch.stack([new[m][1][j] for m, j in todo])
                    imgs = self._decode(pts, ts, "uniform")
                    for (m, j), img in zip(todo, imgs):
                        out[m][j] = img
                save_state(self.run, "uniform", {f"frames_{m}": v for m, v in out.items()})
        else:
            out = {m: state[0][f"frames_{m}"].numpy() for m in self.methods}
        self.final = {m: (new[m][0], new[m][1], out[m]) for m in self.methods}
        self.positions = positions

    def measure(self) -> None:
        from geovid.geometry.measures import path_measures
        from geovid.tasks.perceptual import consecutive_distances, ppl_pdv

        with self.run.phase("measure"):
            self.measures: dict[str, Any] = {}
            self.dists: dict[str, np.ndarray] = {}
            self.raw_dists: dict[str, np.ndarray] = {}
            score_fn = self.score if self.metric.needs_hvp else None
            frame_t = torch.linspace(0, 1, self.n, dtype=torch.float64)
            for i, m in enumerate(self.methods):
                pts = self.final[m][0]
                # Every path is scored alone so frame i sees the same random draws in every method (docs/method.md §7.3).
                torch.manual_seed(self.res["seed"])
                s = self.score(pts)
                self.measures[m] = path_measures(pts, s, self.metric, self.sphere, times=frame_t, score_fn=score_fn)
                self.dists[m] = consecutive_distances(self.final[m][2], self.distance)
                self.raw_dists[m] = (consecutive_distances(self.raw[m][2], self.distance) if self.res["uniform"]
                                     else self.dists[m])
                self.progress("measure", i + 1, len(self.methods), {"method": m})
            self.ppl = {m: ppl_pdv(self.dists[m]) for m in self.methods}

    def write(self) -> None:
        import pandas as pd

        from geovid.method import reference as method_reference
        from geovid.tasks.latents import psnr
        from geovid.tasks.report import plot_series, save_path, write_compare, write_sequence_outputs

        run = self.run
        with run.phase("write"):
            self.progress("write", 0, 4, {})
            required = write_sequence_outputs(run, self.final["geodesic"][2], fps=self.res["fps"])
            for m in self.methods[1:]:
                run.write_frames(f"baselines/{m}/frames", list(self.final[m][2]))
                required.append(f"baselines/{m}/frames/")
            required.append(write_compare(run, {m: self.final[m][2] for m in self.methods}))
            self.progress("write", 1, 4, {})
            pts, tt, frames = self.final["geodesic"]
            required.append(save_path(run, pts, tt, self.bb.latent_shape, {
                "kind": "interpolation", "timestep": self.t, "noise_level": self.res["noise_level"],
                "model": run.manifest.get("model"), "prompt": self.res["prompt"], "prompt_b": self.res["prompt_b"],
                "radius": self.sphere.radius, "estimator": self.res["estimator"], "alpha": self.alpha,
                "draws": self.res.get("draws"), "conditioning": self.res["conditioning"],
                "metric": self.res["metric"], "latent_shape": list(self.bb.latent_shape)}))
            rows = []
            for m in self.methods:
                meas = self.measures[m]
                for j in range(self.n):
                    rows.append({"path": m, "frame": j, "t": float(self.final[m][1][j]),
                                 "residual": float(meas.residual[j]), "log_density": float(meas.log_density[j]),
                                 "speed": float(meas.speed[j])})
            run.write_table("per_frame", pd.DataFrame(rows))
            required.append(plot_series(
                run, "plots/log_density.png",
                {m: (np.arange(self.n), self.measures[m].log_density.numpy()) for m in self.methods},
                title=f"log-density along the path, relative to A (ν = {self.res['noise_level']}, "
                      f"{self.res['estimator']} score)", xlabel="frame", ylabel="log p(γ) − log p(A)  [nats]"))
            self.progress("write", 3, 4, {})
            methods = {}
            for m in self.methods:
                meas = self.measures[m]
                ppl, pdv = self.ppl[m]
                rppl, rpdv = (float(self.raw_dists[m].sum()), float(self.raw_dists[m].var()))
                methods[m] = {
                    "ppl": ppl, "pdv": pdv, "relative_length": meas.relative_length,
                    "log_relative_length": meas.log_relative_length,
                    "log_density": meas.log_density.tolist(), "mean_residual": meas.mean_residual,
                    "median_residual": meas.median_residual, "distances": self.dists[m].tolist(),
                    "ppl_before_uniform": rppl, "pdv_before_uniform": rpdv,
                    "t": self.final[m][1].tolist(), "positions": self.positions[m].tolist(),
                }
            fitted = self.images
            summary = {
                "perceptual_distance": self.distance.name,
                "perceptual_distance_description": self.distance.description,
                "methods": methods,
                "endpoint_reconstruction": {
                    "a_psnr": psnr(frames[0], fitted[0]), "b_psnr": psnr(frames[-1], fitted[1]),
                    "a_distance": float(self.distance(frames[0], fitted[0])[0]),
                    "b_distance": float(self.distance(frames[-1], fitted[1])[0]),
                },
                "frames": self.n,
                "uniform": self.res["uniform"],
                "noise_level": self.res["noise_level"], "timestep": self.t, "alpha": self.alpha,
                "alpha_rule": self.alpha_rule, "draws": self.res.get("draws"),
                "conditioning": self.res["conditioning"], "invert_steps": self.res.get("invert_steps"),
                "estimator": self.res["estimator"], "metric": self.res["metric"],
                "decode_steps": self.res["decode_steps"],
                "solver": self.solver_info,
                "radius": self.sphere.radius,
                "endpoint_distance": float((self.b - self.a).norm()),
                "method": method_reference("§5, §8"),
            }
            run.write_json("summary.json", summary)
            # The endpoint conditions c_A, c_B, for `geovid extrapolate --from-run` (c(x) beyond B is c_B).
            from safetensors.torch import save_file

            save_file({"cond_a": self.cond_a.detach().float().cpu().clone(),
                       "cond_b": self.cond_b.detach().float().cpu().clone()}, str(run.path / "conditions.safetensors"))
            self.progress("write", 4, 4, {})
        self.calls.update()
        run.complete(required=required)


__all__ = ["BASELINES", "InterpolationConfig", "parse_baselines", "run_interpolation"]
