"""Geodesic extrapolation (docs/method.md §6): ``geovid extrapolate A B`` / ``CLIP.mp4`` / ``--from-run RUN``.

A geodesic is shot from the last given point with the tangent of the given motion and integrated with RK4
(:func:`geovid.geometry.ivp.solve_ivp`: after every step the point goes back onto the sphere, the velocity onto
its tangent and to the initial speed).

Sources of the start point x₀ and the initial velocity v₀:

* two images A, B: x₀ = B; v₀ along the end tangent at B of the slerp A→B (the difference B − A projected onto
  the sphere's tangent at B) or, with ``tangent="geodesic"``, of a short BVP geodesic A→B (docs/method.md §5);
* a clip: its last ``context`` frames; x₀ = the last one, v₀ from the end tangent through them;
* an interpolation run: its ``path.safetensors``; x₀ = its last point, v₀ its end tangent.

Pace: the speed ‖v₀‖ is the reference distance d — ‖B − A‖, the mean distance between the clip's last frames,
or the distance between the run's last two frames — so ``step_size = 1`` continues at the same pace (one step
≈ d, one decoded frame per step with ``decode_every = 1``).
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

TANGENTS = ("slerp", "geodesic")
#: Network-call budget of the short BVP that gives the geodesic tangent between two images.
TANGENT_BVP_CALLS = 60
_VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".ogv", ".gif")


@dataclass(frozen=True)
class ExtrapolationConfig(SequenceOptions):
    """Options of an extrapolation run; names follow the CLI options (``--step-size`` → ``step_size``)."""

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

    def validate(self) -> dict[str, Any]:
        """Check the options and the inputs (no run folder is made); returns the resolved options stored in the
        manifest. Raises InputError."""
        return _resolved(self, _classify(self))


@dataclass
class _Source:
    kind: str  # "images" | "clip" | "run"
    paths: list[Path]
    run_meta: dict[str, Any] = field(default_factory=dict)
    run_manifest: dict[str, Any] = field(default_factory=dict)


def _classify(cfg: ExtrapolationConfig) -> _Source:
    """Which kind of start the inputs describe (checked before any run folder exists)."""
    import json

    from geovid.tasks.common import check_input_file

    inputs = [Path(p).expanduser() for p in (cfg.inputs or [])]
    run_dir = Path(cfg.from_run).expanduser() if cfg.from_run is not None else None
    if run_dir is not None and inputs:
        raise InputError("give either inputs (A B, or a clip) or --from-run RUN, not both")
    if run_dir is None and len(inputs) == 1 and inputs[0].is_dir():
        run_dir = inputs[0]
    if run_dir is not None:
        if not run_dir.is_dir():
            raise InputError(f"--from-run {run_dir}: no such run folder")
        try:
            manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputError(f"{run_dir} is not a geovid run (no readable manifest.json)") from None
        if not isinstance(manifest, dict) or manifest.get("kind") != "interpolation":
            kind = manifest.get("kind") if isinstance(manifest, dict) else None
            raise InputError(f"--from-run needs an interpolation run; {run_dir.name} is "
                             f"{'an ' + str(kind) if kind else 'not a geovid'} run")
        if not (run_dir / "path.safetensors").is_file():
            raise InputError(f"interpolation run {run_dir.name} has no path.safetensors (status "
                             f"{manifest.get('status')}); finish it with --resume first")
        from geovid.tasks.report import load_path

        try:
            _, _, meta = load_path(run_dir / "path.safetensors")
        except Exception as exc:
            raise InputError(f"{run_dir.name}/path.safetensors is unreadable ({type(exc).__name__})") from None
        return _Source("run", [run_dir.resolve()], run_meta=meta, run_manifest=manifest)
    if len(inputs) == 2:
        for p, what in zip(inputs, ("image A", "image B")):
            check_input_file(p, what)
        return _Source("images", inputs)
    if len(inputs) == 1:
        check_input_file(inputs[0], "input")
        if inputs[0].suffix.lower() in _VIDEO_SUFFIXES:
            return _Source("clip", inputs)
        raise InputError(f"{inputs[0].name}: one image gives no direction to continue in; give two images A B "
                         "(continue A→B beyond B), a clip, or --from-run RUN")
    if not inputs:
        raise InputError("nothing to extrapolate: give two images A B, a clip, or --from-run RUN")
    raise InputError(f"extrapolate takes two images A B or one clip, got {len(inputs)} inputs")


def _resolved(cfg: ExtrapolationConfig, src: _Source) -> dict[str, Any]:
    """Validate the options (inheriting model, ν, prompt and score settings from a source run)."""
    from geovid.backbones.loader import model_name
    from geovid.geometry.estimators import ESTIMATORS
    from geovid.tasks.common import DEFAULT_INVERT_STEPS
    from geovid.tasks.interpolate import (
        DEFAULT_DRAWS,
        DEFAULT_ESTIMATOR,
        RESIZE_POLICIES,
        resolve_conditioning,
    )

    run_cfg = src.run_manifest.get("config", {}) if src.kind == "run" else {}
    if not isinstance(cfg.steps, int) or cfg.steps < 1:
        raise InputError(f"--steps must be at least 1, got {cfg.steps}")
    if cfg.steps > 10000:
        raise InputError(f"--steps must be at most 10000, got {cfg.steps}")
    if not (math.isfinite(cfg.step_size) and cfg.step_size > 0):
        raise InputError(f"--step-size must be positive, got {cfg.step_size}")
    if cfg.decode_every < 1:
        raise InputError(f"--decode-every must be at least 1, got {cfg.decode_every}")
    if not 1 <= cfg.substeps <= 1000:
        raise InputError(f"--substeps must be between 1 and 1000, got {cfg.substeps}")
    if cfg.context < 2:
        raise InputError(f"--context must be at least 2 frames (a direction needs two), got {cfg.context}")
    if cfg.tangent not in TANGENTS:
        raise InputError(f"unknown tangent {cfg.tangent!r}; choose from {', '.join(TANGENTS)}")
    nu = cfg.noise_level if cfg.noise_level is not None else float(src.run_meta.get("noise_level", 0.6))
    if not (isinstance(nu, int | float) and 0.0 < nu <= 1.0):
        raise InputError(f"--noise-level must be in (0, 1], got {nu}")
    if src.kind == "run" and "noise_level" in src.run_meta and abs(nu - float(src.run_meta["noise_level"])) > 1e-12:
        raise InputError(f"run {src.paths[0].name} lives at noise level {src.run_meta['noise_level']}; "
                         f"--noise-level {nu} cannot continue it")
    model = cfg.model
    if src.kind == "run":
        run_model = str(src.run_manifest.get("model") or "")
        if model is None:
            model = run_model or None
        elif run_model and model_name(model) != run_model:
            raise InputError(f"run {src.paths[0].name} was made with {run_model}; --model {model} cannot continue it")
    estimator = cfg.estimator or str(run_cfg.get("estimator") or DEFAULT_ESTIMATOR)
    if estimator not in ESTIMATORS or estimator == "exact":
        raise InputError(f"unknown estimator {estimator!r}; choose from eps, contrast")
    metric = cfg.metric or str(run_cfg.get("metric") or "density")
    if metric not in ("density", "score"):
        raise InputError(f"unknown metric {metric!r}; choose from density, score")
    alpha: float | None
    if cfg.alpha is not None:
        alpha = float(cfg.alpha)
    elif run_cfg.get("alpha") is not None and estimator == run_cfg.get("estimator"):
        alpha = float(run_cfg["alpha"])
    else:
        alpha = None  # the rule of docs/method.md §3.7, for the ray of the shot
    if alpha is not None and not (math.isfinite(alpha) and alpha > 0):
        raise InputError(f"--alpha must be positive, got {cfg.alpha}")
    draws = cfg.draws if cfg.draws is not None else (run_cfg.get("draws") or DEFAULT_DRAWS)
    if not isinstance(draws, int) or isinstance(draws, bool) or not 1 <= draws <= 64:
        raise InputError(f"--draws must be a whole number from 1 to 64, got {cfg.draws}")
    if cfg.draws not in (None, 1) and estimator != "contrast":
        raise InputError("--draws needs the contrast estimator (eps is deterministic)")
    prompt = cfg.prompt if cfg.prompt is not None else str(src.run_meta.get("prompt") or "")
    if src.kind == "run" and cfg.conditioning is None:
        conditioning = str(run_cfg.get("conditioning") or "prompt")
    else:
        conditioning = resolve_conditioning(cfg.conditioning, cfg.prompt)
    if src.kind == "run" and conditioning == "invert" and run_cfg.get("conditioning") != "invert":
        raise InputError(f"run {src.paths[0].name} has no inverted conditions; use --conditioning prompt")
    invert_steps = cfg.invert_steps if cfg.invert_steps is not None else int(
        run_cfg.get("invert_steps") or DEFAULT_INVERT_STEPS)
    if not isinstance(invert_steps, int) or isinstance(invert_steps, bool) or not 0 <= invert_steps <= 10000:
        raise InputError(f"--invert-steps must be a whole number from 0 to 10000, got {cfg.invert_steps}")
    decode_steps = 10 if cfg.decode_steps is None else int(cfg.decode_steps)
    if decode_steps < 1:
        raise InputError(f"--decode-steps must be at least 1, got {cfg.decode_steps}")
    if cfg.resize not in RESIZE_POLICIES:
        raise InputError(f"unknown resize policy {cfg.resize!r}; choose from {', '.join(RESIZE_POLICIES)}")
    if not cfg.fps > 0:
        raise InputError(f"--fps must be positive, got {cfg.fps}")
    return {
        "source": src.kind, "steps": cfg.steps, "step_size": float(cfg.step_size), "decode_every": cfg.decode_every,
        "substeps": int(cfg.substeps),
        "context": cfg.context if src.kind == "clip" else None,
        "tangent": cfg.tangent if src.kind == "images" else None, "prompt": prompt, "noise_level": float(nu),
        "alpha": alpha, "metric": metric, "lam": float(cfg.lam) if metric == "score" else None,
        "estimator": estimator, "draws": draws if estimator == "contrast" else None, "conditioning": conditioning,
        "invert_steps": invert_steps if conditioning == "invert" and src.kind != "run" else None,
        "decode_steps": decode_steps, "sphere": bool(cfg.sphere), "resize": cfg.resize,
        "fps": float(cfg.fps), "model": model, "device": cfg.device, "dtype": cfg.dtype, "seed": int(cfg.seed),
    }


def run_extrapolation(config: ExtrapolationConfig, progress: ProgressFn | None = None,
                      cancel: threading.Event | None = None) -> Path:
    """Continue a motion beyond its end along a geodesic and write a run folder (docs/method.md §6).

    Args:
        config: the options (see :class:`ExtrapolationConfig`).
        progress: ``progress(phase, done, total, info)``.
        cancel: set it to stop the job; the run is then marked ``interrupted`` and can be resumed.

    Returns:
        The run folder, complete.

    Raises:
        InputError: bad options or inputs (missing files, one image, a run that is not an interpolation, ...).
        ModelError: the model cannot be loaded.
        SolverError: the shot diverged.
        geovid.progress.Cancelled: ``cancel`` was set (run ``interrupted``).
    """
    from geovid.backbones.loader import model_name
    from geovid.tasks.common import open_run, with_cancel

    src = _classify(config)
    resolved = _resolved(config, src)
    prog = with_cancel(progress, cancel)
    run, finished = open_run("extrapolation", resolved, config.out, config.name, config.resume, list(src.paths),
                             model_name(resolved["model"]), config.seed)
    if finished:
        return run.path
    with run.guard():
        _Shot(resolved, src, run, prog, config).execute()
    return run.path


class _Shot:
    """One extrapolation run, phase by phase."""

    def __init__(self, res: dict[str, Any], src: _Source, run: Any, progress: ProgressFn,
                 cfg: ExtrapolationConfig) -> None:
        self.res, self.src, self.run, self.progress, self.cfg = res, src, run, progress, cfg

    def execute(self) -> None:
        from geovid.tasks.common import CallCounter

        with self.run.phase("load"):
            self.progress("load", 0, 1, {"model": self.res["model"] or "bundled"})
            self.setup()
            self.progress("load", 1, 1, {})
        self.calls = CallCounter(self.run, self.bb)
        self.encode()
        self.calls.update()
        self.shoot()
        self.calls.update()
        self.decode()
        self.calls.update()
        self.write()

    def setup(self) -> None:
        from geovid.tasks.common import fit_image, load_model

        torch.manual_seed(self.res["seed"])
        # Inputs first: a file that is not an image (or a broken clip) fails before the model is loaded.
        given = self._given_images()
        self.bb = load_model(self.res["model"], self.res["device"], self.res["dtype"])
        res = self.bb.resolution
        self.given = (np.stack([fit_image(g, res, self.res["resize"]) for g in given]) if given
                      else np.zeros((0, res or 64, res or 64, 3), np.uint8))
        self.t = self.bb.noise_level_to_timestep(self.res["noise_level"])
        if self.src.kind == "run" and "timestep" in self.src.run_meta and int(self.src.run_meta["timestep"]) != self.t:
            raise InputError(f"run {self.src.paths[0].name} is at timestep {self.src.run_meta['timestep']} but this "
                             f"model puts ν = {self.res['noise_level']} at {self.t}")
        self.cond = self.bb.embed_prompt(self.res["prompt"])
        self.cond_first = self.cond_last = self.cond
        # The score is made once the given points are known (encode): its condition c(x) depends on them; the
        # metric once v₀ is known (shoot): α's rule depends on the ray.

    def _given_images(self) -> np.ndarray | list[np.ndarray]:
        """The frames the shot continues (shown in strip.png), as read: input images, the clip's last frames, or
        the run's last frames (already at the model resolution)."""
        if self.src.kind == "images":
            from geovid.media.images import load_image

            return [load_image(p) for p in self.src.paths]
        if self.src.kind == "clip":
            from geovid.media.decode import probe, read_frames

            info = probe(self.src.paths[0])
            if info.frame_count < 2:
                raise InputError(f"{info.name} has {info.frame_count} frame(s); need at least 2 to continue it")
            k = min(self.res["context"], info.frame_count)
            idx = list(range(info.frame_count - k, info.frame_count))
            # The video decoder reports phase "decode"; shown here as reading the clip.
            frames, _ = read_frames(info, idx, progress=lambda _p, d, tot, i: self.progress("read clip", d, tot, i))
            return list(np.asarray(frames))
        from PIL import Image

        files = sorted((self.src.paths[0] / "frames").glob("*.png"))[-4:]
        return [np.asarray(Image.open(f).convert("RGB")) for f in files]

    def encode(self) -> None:
        from geovid.geometry.paths import Sphere
        from geovid.tasks.common import phase_done, save_state, step_progress
        from geovid.tasks.latents import images_to_points
        from geovid.tasks.report import load_path

        state = phase_done(self.run, "encode")
        if state is not None:
            pts = state[0]["points"]
            radius = state[1].get("radius")
            if "cond_first" in state[0]:
                self.cond_first = state[0]["cond_first"].to(self.bb.device, self.bb.dtype)
                self.cond_last = state[0]["cond_last"].to(self.bb.device, self.bb.dtype)
        else:
            with self.run.phase("encode"):
                self.progress("encode", 0, None, {"source": self.src.kind})
                radius = None
                if self.src.kind == "run":
                    pts, _, meta = load_path(self.src.paths[0] / "path.safetensors")
                    if pts.shape[1] != math.prod(self.bb.latent_shape):
                        raise InputError(f"run {self.src.paths[0].name} has points of size {pts.shape[1]}, this "
                                         f"model's latents have {math.prod(self.bb.latent_shape)}")
                    radius = meta.get("radius")
                    if self.res["conditioning"] == "invert":
                        from safetensors.torch import load_file

                        try:
                            conds = load_file(str(self.src.paths[0] / "conditions.safetensors"))
                        except Exception as exc:
                            raise InputError(f"run {self.src.paths[0].name} has no readable conditions.safetensors "
                                             f"({type(exc).__name__}); use --conditioning prompt") from None
                        self.cond_first = conds["cond_a"].to(self.bb.device, self.bb.dtype)
                        self.cond_last = conds["cond_b"].to(self.bb.device, self.bb.dtype)
                elif self.res["conditioning"] == "invert" and hasattr(self.bb, "invert_prompt_embedding"):
                    pts = self._encode_inverted()
                else:
                    pts = images_to_points(self.bb, self.given, self.res["noise_level"], self.res["prompt"],
                                           progress=step_progress(self.progress, "encode")).points
                save_state(self.run, "encode", {"points": pts, "cond_first": self.cond_first.float().clone(),
                                                "cond_last": self.cond_last.float().clone()},
                           {"radius": radius, "t": self.t})
        if not self.res["sphere"]:
            self.sphere = Sphere(None)
        elif radius is not None:
            self.sphere = Sphere(float(radius))
        else:
            self.sphere = Sphere.for_points(pts if self.src.kind == "clip" else pts[[0, -1]])
        self.context = self.sphere.project_points(pts)
        from geovid.tasks.common import ConditionField, field_estimator

        # c(x) blended between the first and the last given point; beyond the last (the whole shot) it is the
        # last one's embedding (docs/interpolation.md, "Conditioning").
        self.field = ConditionField(self.cond_first, self.cond_last, self.context[0], self.context[-1])
        self.score = field_estimator(self.res["estimator"], self.bb, self.t, self.field, seed=self.res["seed"],
                                     draws=int(self.res.get("draws") or 1))
        # A provisional metric, used only by the tangent BVP of --tangent geodesic (α by the rule on the chord A→B);
        # the shot's own α is set in shoot().
        self._set_alpha(self.res["alpha"], None, chord_rule=self.res["tangent"] == "geodesic")

    def _set_alpha(self, alpha: float | None, rule: dict[str, Any] | None, chord_rule: bool = False) -> None:
        from geovid.geometry.metrics import make_metric
        from geovid.tasks.interpolate import sequence_alpha

        if alpha is None and chord_rule and self.context.shape[0] >= 2 and float((self.context[-1] - self.context[0]).norm()) > 0:
            from geovid.geometry.alpha import calibrate_alpha

            torch.manual_seed(self.res["seed"])
            cal = calibrate_alpha(self.score, self.context[0], self.context[-1], self.sphere)
            alpha, rule = cal.alpha, cal.to_dict()
        self.alpha = float(alpha) if alpha is not None else sequence_alpha(self.res["estimator"])
        self.alpha_rule = rule
        self.metric = make_metric(self.res["metric"], alpha=self.alpha, lam=self.res["lam"] or 1000.0)

    def _encode_inverted(self) -> torch.Tensor:
        """VAE-encode the given frames, invert one prompt embedding per frame (jointly, cached; docs/method.md §1.4, §2.2) and
        DDIM-invert each frame to t_ν with its own embedding."""
        from geovid.media.images import to_tensor
        from geovid.tasks.common import invert_endpoint_embeddings, invert_with_conditions, step_progress

        with torch.no_grad():
            z0 = self.bb.encode(to_tensor(self.given).to(torch.float32))
        steps = int(self.res["invert_steps"])
        self.progress("invert prompt", 0, steps, {})
        conds = invert_endpoint_embeddings(self.bb, z0, self.res["prompt"], steps=steps, seed=self.res["seed"],
                                           progress=step_progress(self.progress, "invert prompt"))
        self.progress("invert prompt", steps, steps, {})  # also when the embeddings came from the cache
        self.cond_first, self.cond_last = conds[:1], conds[-1:]
        return invert_with_conditions(self.bb, z0, conds, self.res["noise_level"],
                                      progress=step_progress(self.progress, "encode"))

    def _initial_velocity(self) -> tuple[torch.Tensor, float, dict[str, Any]]:
        """v₀ (on the tangent at x₀) and the reference distance d (= ‖v₀‖)."""
        from geovid.geometry.bvp import solve_bvp
        from geovid.geometry.ivp import initial_velocity
        from geovid.geometry.paths import initial_path

        ctx = self.context
        info: dict[str, Any] = {}
        if self.src.kind == "images":
            d = float((ctx[1] - ctx[0]).norm())
            if d == 0:
                raise InputError("A and B are the same point; there is no motion to continue")
            if self.res["tangent"] == "geodesic":
                x0 = initial_path(ctx[0], ctx[1], 9, self.sphere)
                bvp = solve_bvp(x0, self.score, self.metric, self.sphere, seed=self.res["seed"],
                                max_calls=TANGENT_BVP_CALLS, mode="free", progress=self.progress)
                info = {"tangent_bvp_calls": bvp.network_calls, "tangent_bvp_iterations": bvp.iterations}
                return initial_velocity(bvp.path, self.sphere, speed=d), d, info
            return initial_velocity(ctx, self.sphere, speed=d), d, info
        if self.src.kind == "clip":
            steps = (ctx[1:] - ctx[:-1]).norm(dim=-1)
            d = float(steps.mean())
            if d == 0:
                raise InputError("the clip's last frames are identical; there is no motion to continue")
            return initial_velocity(ctx, self.sphere, speed=d), d, info
        d = float((ctx[-1] - ctx[-2]).norm())
        return initial_velocity(ctx, self.sphere, speed=d), d, info

    def shoot(self) -> None:
        from geovid.geometry.ivp import solve_ivp
        from geovid.tasks.common import phase_done, save_state

        state = phase_done(self.run, "shoot")
        if state is not None:
            tens, self.shot_info = state
            self.path, self.velocities, self.times, self.scores = (tens["path"], tens["velocities"], tens["times"],
                                                                    tens["scores"])
            self._set_alpha(self.shot_info.get("alpha"), self.shot_info.get("alpha_rule"))
            return
        with self.run.phase("shoot"):
            self.progress("shoot", 0, self.res["steps"], {})
            v0, d, info = self._initial_velocity()
            if self.res["alpha"] is None:
                # α by the rule of docs/method.md §3.7 for a ray: the straight continuation of v₀ over the distance
                # the shot covers (steps × step size × d).
                from geovid.geometry.alpha import calibrate_alpha_ray

                torch.manual_seed(self.res["seed"])
                cal = calibrate_alpha_ray(self.score, self.context[-1], v0,
                                          self.res["steps"] * self.res["step_size"] * d, self.sphere)
                self._set_alpha(cal.alpha, cal.to_dict())
            torch.manual_seed(self.res["seed"])
            k = self.res["substeps"]
            res = solve_ivp(self.context[-1], v0, self.score, self.metric, self.sphere, steps=self.res["steps"] * k,
                            step_size=self.res["step_size"] / k,
                            progress=lambda ph, d, tot, i: self.progress(ph, d // k, (tot or 0) // k, i))
            # Keep the points at whole steps; the sub-steps only make RK4 accurate.
            self.path, self.velocities, self.times, self.scores = (res.path[::k], res.velocities[::k],
                                                                    res.times[::k], res.scores[::k])
            self.shot_info = {"reference_distance": d, "network_calls": res.network_calls,
                              "seconds": round(res.seconds, 3), "alpha": self.alpha, "alpha_rule": self.alpha_rule,
                              **info}
            save_state(self.run, "shoot", {"path": res.path, "velocities": res.velocities, "times": res.times,
                                           "scores": res.scores}, self.shot_info)

    def decode(self) -> None:
        from geovid.tasks.common import phase_done, save_state, step_progress
        from geovid.tasks.latents import decode_points

        n = self.path.shape[0]
        idx = list(range(0, n, self.res["decode_every"]))
        if idx[-1] != n - 1:
            idx.append(n - 1)
        self.decoded_steps = idx
        state = phase_done(self.run, "decode")
        if state is not None:
            self.frames = state[0]["frames"].numpy()
            return
        with self.run.phase("decode"):
            self.frames = decode_points(self.bb, self.path[idx], self.t, self.field(self.path[idx]),
                                        steps=self.res["decode_steps"],
                                        progress=step_progress(self.progress, "decode", frames=len(idx)))
            save_state(self.run, "decode", {"frames": self.frames})

    def write(self) -> None:
        import pandas as pd

        from geovid.geometry.measures import log_density_profile
        from geovid.method import reference as method_reference
        from geovid.tasks.report import plot_series, save_path, write_sequence_outputs

        run = self.run
        with run.phase("write"):
            self.progress("write", 0, 3, {})
            ell = log_density_profile(self.path, self.scores)
            speed = self.velocities.norm(dim=-1)
            chord = torch.zeros(self.path.shape[0], dtype=self.path.dtype)
            chord[1:] = (self.path[1:] - self.path[:-1]).norm(dim=-1) / self.res["step_size"]
            chord[0] = chord[1] if self.path.shape[0] > 1 else 0
            given_label = {"images": "A, B", "clip": "clip end", "run": "run end"}[self.src.kind]
            strip_rows = {given_label: self.given, "shot": self.frames} if len(self.given) else None
            required = write_sequence_outputs(run, self.frames, fps=self.res["fps"], strip_rows=strip_rows)
            self.progress("write", 1, 3, {})
            decoded = set(self.decoded_steps)
            rows = [{"path": "shot", "frame": i, "t": float(self.times[i]), "log_density": float(ell[i]),
                     "speed": float(chord[i]), "decoded": i in decoded} for i in range(self.path.shape[0])]
            run.write_table("per_frame", pd.DataFrame(rows))
            required.append(save_path(run, self.path, self.times, self.bb.latent_shape, {
                "kind": "extrapolation", "timestep": self.t, "noise_level": self.res["noise_level"],
                "model": run.manifest.get("model"), "prompt": self.res["prompt"], "radius": self.sphere.radius,
                "latent_shape": list(self.bb.latent_shape)}))
            required.append(plot_series(run, "plots/log_density.png",
                                        {"shot": (self.times.numpy(), ell.numpy())},
                                        title=f"log-density along the shot, relative to its start "
                                              f"(ν = {self.res['noise_level']}, {self.res['estimator']} score)",
                                        xlabel="t  [steps × step size]", ylabel="log p − log p(x₀)  [nats]"))
            self.progress("write", 2, 3, {})
            d = self.shot_info["reference_distance"]
            summary = {
                "steps": self.res["steps"], "step_size": self.res["step_size"],
                "initial_speed": float(speed[0]), "final_speed": float(speed[-1]),
                "log_density": ell.tolist(), "frames_decoded": len(self.decoded_steps),
                "decoded_steps": self.decoded_steps, "source": self.src.kind,
                "reference_distance": d, "tangent": self.res["tangent"],
                "distance_travelled": float((self.path[1:] - self.path[:-1]).norm(dim=-1).sum()),
                "displacement": float((self.path[-1] - self.path[0]).norm()),
                "noise_level": self.res["noise_level"], "timestep": self.t, "alpha": self.alpha,
                "alpha_rule": self.alpha_rule, "draws": self.res.get("draws"),
                "conditioning": self.res["conditioning"], "invert_steps": self.res.get("invert_steps"),
                "estimator": self.res["estimator"], "metric": self.res["metric"],
                "decode_steps": self.res["decode_steps"], "radius": self.sphere.radius,
                "shot": self.shot_info,
                "method": method_reference("§6"),
            }
            run.write_json("summary.json", summary)
            self.progress("write", 3, 3, {})
        self.calls.update()
        run.complete(required=required)


__all__ = ["TANGENTS", "ExtrapolationConfig", "run_extrapolation"]
