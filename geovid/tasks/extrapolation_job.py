"""One extrapolation run as phases of the runner (:mod:`geovid.runs.jobs`): ``load``, ``encode``, ``shoot``,
``decode``, ``write`` (docs/method.md §6; what each does is in :mod:`geovid.tasks.extrapolate`). The expensive
phases return their result as their state, which the runner saves and on ``--resume`` hands back to
``_restore_<phase>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from geovid.errors import InputError
from geovid.progress import ProgressFn
from geovid.runs.jobs import Job, Phase
from geovid.runs.state import State
from geovid.runs.store import Run
from geovid.tasks.extrapolation_config import TANGENT_BVP_CALLS, ExtrapolationConfig
from geovid.tasks.sequence import invert_frames, sequence_alpha

if TYPE_CHECKING:
    from geovid.backbones.base import Backbone
    from geovid.geometry.metrics import Metric



class ExtrapolationJob(Job):
    """One extrapolation run, phase by phase."""

    def __init__(self, cfg: ExtrapolationConfig, run: Run, progress: ProgressFn) -> None:
        super().__init__(run, progress)
        self.cfg = cfg
        self.src = cfg.source
        self.tangent = cfg.shot_tangent

    def phases(self) -> Iterator[Phase]:
        """The phases in order; the score is made once the given points are known (after ``encode``, also when
        it is restored on resume), and the decoded steps once the shot is."""
        yield Phase("load", self.load)
        yield Phase("encode", self.encode, self._restore_encode, state=True)
        self._make_score()
        yield Phase("shoot", self.shoot, self._restore_shoot, state=True)
        self._plan_decode()
        yield Phase("decode", self.decode, self._restore_decode, state=True)
        yield Phase("write", self.write)

    # ------------------------------------------------------------------ load, encode

    def load(self) -> None:
        """The given frames (inputs first: a file that is not an image, or a broken clip, fails before the model
        is loaded), the model, t_ν and the prompt's embedding."""
        from geovid.tasks.common import fit_image, load_model
        from geovid.tasks.extrapolation_source import read_given

        cfg, src = self.cfg, self.src
        self.progress("load", 0, 1, {"model": cfg.model or "bundled"})
        torch.manual_seed(cfg.seed)
        given = read_given(src, cfg.context, self.progress)
        bb: Backbone = load_model(cfg.model, cfg.device, cfg.dtype)
        self.backbone = bb
        res = bb.resolution
        self.given = (np.stack([fit_image(g, res, cfg.resize) for g in given]) if given
                      else np.zeros((0, res or 64, res or 64, 3), np.uint8))
        self.t = bb.noise_level_to_timestep(cfg.noise_level)
        if src.kind == "run" and "timestep" in src.run_meta and int(src.run_meta["timestep"]) != self.t:
            raise InputError(f"run {src.paths[0].name} is at timestep {src.run_meta['timestep']} but this "
                             f"model puts ν = {cfg.noise_level} at {self.t}")
        self.cond = bb.embed_prompt(cfg.prompt)
        self.cond_first = self.cond_last = self.cond
        # The score is made once the given points are known (encode): its condition c(x) depends on them; the
        # metric once v₀ is known (shoot): α's rule depends on the ray.
        self.progress("load", 1, 1, {})

    def encode(self) -> State:
        """The given points at t_ν: the run's path, or the frames inverted (each with its own prompt embedding
        with ``invert`` conditioning)."""
        from geovid.tasks.common import step_progress
        from geovid.tasks.extrapolation_source import run_end
        from geovid.tasks.latents import images_to_points

        cfg, bb = self.cfg, self.bb
        self.progress("encode", 0, None, {"source": self.src.kind})
        radius = None
        if self.src.kind == "run":
            pts, radius, conds = run_end(self.src, bb, inverted=cfg.conditioning == "invert")
            if conds is not None:
                self.cond_first, self.cond_last = conds
        elif cfg.conditioning == "invert" and hasattr(bb, "invert_prompt_embedding"):
            pts, conds = invert_frames(bb, self.given, cfg.prompt, cfg.invert_steps, cfg.seed,
                                       cfg.noise_level, self.progress)
            self.cond_first, self.cond_last = conds[:1], conds[-1:]
        else:
            pts = images_to_points(bb, self.given, cfg.noise_level, cfg.prompt,
                                   progress=step_progress(self.progress, "encode")).points
        self.points, self.radius = pts, radius
        return ({"points": pts, "cond_first": self.cond_first.float().clone(),
                 "cond_last": self.cond_last.float().clone()}, {"radius": radius, "t": self.t})

    def _restore_encode(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.points, self.radius = tensors["points"], meta.get("radius")
        if "cond_first" in tensors:
            self.cond_first = tensors["cond_first"].to(self.bb.device, self.bb.dtype)
            self.cond_last = tensors["cond_last"].to(self.bb.device, self.bb.dtype)

    def _make_score(self) -> None:
        """The sphere, the given points on it, the condition field c(x) and the score (the metric is made in
        ``shoot``: α's rule depends on the ray)."""
        from geovid.geometry.paths import Sphere
        from geovid.tasks.common import ConditionField, field_estimator

        cfg, pts = self.cfg, self.points
        if not cfg.sphere:
            self.sphere = Sphere(None)
        elif self.radius is not None:
            self.sphere = Sphere(float(self.radius))
        else:
            self.sphere = Sphere.for_points(pts if self.src.kind == "clip" else pts[[0, -1]])
        self.context = self.sphere.project_points(pts)
        # c(x) blended between the first and the last given point; beyond the last (the whole shot) it is the
        # last one's embedding (docs/interpolation.md, "Conditioning").
        self.field = ConditionField(self.cond_first, self.cond_last, self.context[0], self.context[-1])
        self.score = field_estimator(cfg.estimator, self.bb, self.t, self.field, seed=cfg.seed,
                                     draws=int(cfg.draws or 1))

    def _set_alpha(self, alpha: float | None, rule: dict[str, Any] | None, chord_rule: bool = False) -> None:
        from geovid.geometry.metrics import make_metric

        ctx = self.context
        if alpha is None and chord_rule and ctx.shape[0] >= 2 and float((ctx[-1] - ctx[0]).norm()) > 0:
            from geovid.geometry.alpha import calibrate_alpha

            torch.manual_seed(self.cfg.seed)
            cal = calibrate_alpha(self.score, ctx[0], ctx[-1], self.sphere)
            alpha, rule = cal.alpha, cal.to_dict()
        self.alpha = float(alpha) if alpha is not None else sequence_alpha(self.cfg.estimator)
        self.alpha_rule = rule
        self.metric: Metric = make_metric(self.cfg.metric, alpha=self.alpha, lam=self.cfg.lam)

    # ------------------------------------------------------------------ shoot, decode, write

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
            if self.tangent == "geodesic":
                # The tangent BVP's metric: α as given, else by the rule on the chord A→B (the shot's own α is
                # set after, for its ray).
                self._set_alpha(self.cfg.alpha, None, chord_rule=True)
                x0 = initial_path(ctx[0], ctx[1], 9, self.sphere)
                bvp = solve_bvp(x0, self.score, self.metric, self.sphere, seed=self.cfg.seed,
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

    def shoot(self) -> State:
        """v₀, α by the rule for the ray (unless given), then RK4 with ``substeps`` sub-steps per step."""
        from geovid.geometry.ivp import solve_ivp

        cfg = self.cfg
        self.progress("shoot", 0, cfg.steps, {})
        v0, d, info = self._initial_velocity()
        if cfg.alpha is None:
            # α by the rule of docs/method.md §3.7 for a ray: the straight continuation of v₀ over the distance
            # the shot covers (steps × step size × d).
            from geovid.geometry.alpha import calibrate_alpha_ray

            torch.manual_seed(cfg.seed)
            cal = calibrate_alpha_ray(self.score, self.context[-1], v0, cfg.steps * cfg.step_size * d, self.sphere)
            self._set_alpha(cal.alpha, cal.to_dict())
        else:
            self._set_alpha(float(cfg.alpha), None)
        torch.manual_seed(cfg.seed)
        k = cfg.substeps
        res = solve_ivp(self.context[-1], v0, self.score, self.metric, self.sphere, steps=cfg.steps * k,
                        step_size=cfg.step_size / k,
                        progress=lambda ph, d, tot, i: self.progress(ph, d // k, (tot or 0) // k, i))
        # Keep the points at whole steps; the sub-steps only make RK4 accurate.
        self.path, self.velocities, self.times, self.scores = (res.path[::k], res.velocities[::k],
                                                                res.times[::k], res.scores[::k])
        self.shot_info = {"reference_distance": d, "network_calls": res.network_calls,
                          "seconds": round(res.seconds, 3), "alpha": self.alpha, "alpha_rule": self.alpha_rule,
                          **info}
        # The state keeps every sub-step; a resumed run takes the whole steps from it (_restore_shoot).
        return ({"path": res.path, "velocities": res.velocities, "times": res.times, "scores": res.scores},
                self.shot_info)

    def _restore_shoot(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.shot_info = meta
        k = self.cfg.substeps  # the state has every sub-step; the shot is its points at whole steps, as in shoot()
        self.path, self.velocities, self.times, self.scores = (tensors["path"][::k], tensors["velocities"][::k],
                                                                tensors["times"][::k], tensors["scores"][::k])
        self._set_alpha(meta.get("alpha"), meta.get("alpha_rule"))

    def _plan_decode(self) -> None:
        """The decoded steps: every ``decode_every``-th, and the last."""
        n = self.path.shape[0]
        idx = list(range(0, n, self.cfg.decode_every))
        if idx[-1] != n - 1:
            idx.append(n - 1)
        self.decoded_steps = idx

    def decode(self) -> State:
        from geovid.tasks.common import step_progress
        from geovid.tasks.latents import decode_points

        idx = self.decoded_steps
        self.frames = decode_points(self.bb, self.path[idx], self.t, self.field(self.path[idx]),
                                    steps=self.cfg.decode_steps,
                                    progress=step_progress(self.progress, "decode", frames=len(idx)))
        return {"frames": self.frames}, {}

    def _restore_decode(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.frames = tensors["frames"].numpy()

    def write(self) -> None:
        """frames, strip (the given frames above the shot), GIF, MP4, ``path.safetensors``, the per-frame table
        (t, log-density, speed, decoded), the log-density plot and ``summary.json``."""
        import pandas as pd

        from geovid.geometry.measures import log_density_profile
        from geovid.tasks.report import plot_series, save_path, write_sequence_outputs

        run, cfg = self.run, self.cfg
        self.progress("write", 0, 3, {})
        ell = log_density_profile(self.path, self.scores)
        chord = torch.zeros(self.path.shape[0], dtype=self.path.dtype)
        chord[1:] = (self.path[1:] - self.path[:-1]).norm(dim=-1) / cfg.step_size
        chord[0] = chord[1] if self.path.shape[0] > 1 else 0
        given_label = {"images": "A, B", "clip": "clip end", "run": "run end"}[self.src.kind]
        strip_rows = {given_label: self.given, "shot": self.frames} if len(self.given) else None
        required = write_sequence_outputs(run, self.frames, fps=cfg.fps, strip_rows=strip_rows)
        self.progress("write", 1, 3, {})
        decoded = set(self.decoded_steps)
        rows = [{"path": "shot", "frame": i, "t": float(self.times[i]), "log_density": float(ell[i]),
                 "speed": float(chord[i]), "decoded": i in decoded} for i in range(self.path.shape[0])]
        run.write_table("per_frame", pd.DataFrame(rows))
        required.append(save_path(run, self.path, self.times, self.bb.latent_shape, {
            "kind": "extrapolation", "timestep": self.t, "noise_level": cfg.noise_level,
            "model": run.manifest.get("model"), "prompt": cfg.prompt, "radius": self.sphere.radius,
            "latent_shape": list(self.bb.latent_shape)}))
        required.append(plot_series(run, "plots/log_density.png",
                                    {"shot": (self.times.numpy(), ell.numpy())},
                                    title=f"log-density along the shot, relative to its start "
                                          f"(ν = {cfg.noise_level}, {cfg.estimator} score)",
                                    xlabel="t  [steps × step size]", ylabel="log p − log p(x₀)  [nats]"))
        self.progress("write", 2, 3, {})
        run.write_json("summary.json", self._summary(ell))
        self.progress("write", 3, 3, {})
        self.required = required

    def _summary(self, ell: torch.Tensor) -> dict[str, Any]:
        """summary.json (docs/run-directory.md)."""
        from geovid.method import reference as method_reference

        cfg = self.cfg
        speed = self.velocities.norm(dim=-1)
        return {
            "steps": cfg.steps, "step_size": cfg.step_size,
            "initial_speed": float(speed[0]), "final_speed": float(speed[-1]),
            "log_density": ell.tolist(), "frames_decoded": len(self.decoded_steps),
            "decoded_steps": self.decoded_steps, "source": self.src.kind,
            "reference_distance": self.shot_info["reference_distance"], "tangent": self.tangent,
            "distance_travelled": float((self.path[1:] - self.path[:-1]).norm(dim=-1).sum()),
            "displacement": float((self.path[-1] - self.path[0]).norm()),
            "noise_level": cfg.noise_level, "timestep": self.t, "alpha": self.alpha,
            "alpha_rule": self.alpha_rule, "draws": cfg.draws,
            "conditioning": cfg.conditioning, "invert_steps": cfg.invert_steps,
            "estimator": cfg.estimator, "metric": cfg.metric,
            "decode_steps": cfg.decode_steps, "radius": self.sphere.radius,
            "shot": self.shot_info,
            "method": method_reference("§6"),
        }


__all__ = ["ExtrapolationJob"]
