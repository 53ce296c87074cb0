"""One interpolation run as phases of the runner (:mod:`geovid.runs.jobs`); what each phase does is in
:mod:`geovid.tasks.interpolate`. Each phase leaves its result on the job; the expensive ones (encode, solve, decode,
uniform) return it as their state, which the runner saves and on ``--resume`` hands back to ``_restore_<phase>``.
The outputs (``write``) are :mod:`geovid.tasks.interpolation_outputs`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from geovid.progress import ProgressFn
from geovid.runs.jobs import Job, Phase
from geovid.runs.state import State
from geovid.runs.store import Run
from geovid.tasks.interpolation_config import InterpolationConfig
from geovid.tasks.retiming import chord_times, retime, reused_frame
from geovid.tasks.sequence import invert_frames, sequence_alpha

if TYPE_CHECKING:
    from geovid.backbones.base import Backbone
    from geovid.geometry import ScoreFn
    from geovid.geometry.metrics import Metric

#: A method's sequence: points, times t and frames.
Frames = tuple[torch.Tensor, torch.Tensor, np.ndarray]


class InterpolationJob(Job):
    """One interpolation run, phase by phase (see :mod:`geovid.tasks.interpolate`)."""

    def __init__(self, cfg: InterpolationConfig, run: Run, progress: ProgressFn, paths: tuple[Path, Path]) -> None:
        super().__init__(run, progress)
        self.cfg = cfg
        self.paths = paths
        self.n = int(cfg.frames)
        self.methods = ["geodesic", *cfg.baselines]

    def phases(self) -> Iterator[Phase]:
        """The phases in order. The steps between them (placing the endpoints, the baselines, the re-timed
        positions) run once the phase before is recorded, or restored on resume."""
        yield Phase("load", self.load)
        yield Phase("encode", self.encode, self._restore_encode, state=True)
        self._place_endpoints()
        yield Phase("solve", self.solve, self._restore_solve, state=True)
        self.before = self._paths()
        yield Phase("decode", self.decode, self._restore_decode, state=True)
        if self.cfg.uniform:
            self._plan_uniform()
            yield Phase("uniform", self.make_uniform, self._restore_uniform, state=True)
        yield Phase("measure", self.measure)
        yield Phase("write", self.write)

    # ------------------------------------------------------------------ load, encode

    def load(self) -> None:
        """The model, the two images fitted to its resolution, the perceptual distance, t_ν, the prompts."""
        from geovid.media.images import load_image
        from geovid.tasks.common import fit_image, load_model
        from geovid.tasks.perceptual import get_distance

        cfg = self.cfg
        self.progress("load", 0, 2, {"model": cfg.model or "bundled"})
        torch.manual_seed(cfg.seed)
        # Images first: a file that is not an image fails in a second, before the model is loaded.
        raw = [load_image(p) for p in self.paths]
        bb: Backbone = load_model(cfg.model, cfg.device, cfg.dtype)
        self.backbone = bb
        self.images = np.stack([fit_image(im, bb.resolution, cfg.resize) for im in raw])
        self.distance = get_distance(cfg.perceptual)
        self.t = bb.noise_level_to_timestep(cfg.noise_level)
        self.cond_a = bb.embed_prompt(cfg.prompt)
        self.cond_b = bb.embed_prompt(cfg.prompt_b) if cfg.prompt_b is not None else self.cond_a
        # The score and the metric are made once the endpoints are known (encode, solve): the condition c(x)
        # depends on their position and α's rule on their chord.
        self.progress("load", 2, 2, {})

    def encode(self) -> State:
        """The endpoints at t_ν: with ``invert`` conditioning each with its own inverted prompt embedding."""
        cfg, bb = self.cfg, self.bb
        self.progress("encode", 0, None, {"images": 2})
        tensors: dict[str, Any] = {}
        if cfg.conditioning == "invert" and hasattr(bb, "invert_prompt_embedding"):
            pts, conds = invert_frames(bb, self.images, cfg.prompt, cfg.invert_steps, cfg.seed, cfg.noise_level,
                                       self.progress)
            self.cond_a, self.cond_b = conds[:1], conds[1:2]
            tensors.update(cond_a=self.cond_a.float().clone(), cond_b=self.cond_b.float().clone())
        else:
            pts = self._encode_prompted()
        self.raw_endpoints = pts
        return {"points": pts, "images": self.images, **tensors}, {"t": self.t}

    def _encode_prompted(self) -> torch.Tensor:
        """The endpoints DDIM-inverted with the text prompt (B with ``prompt_b`` when it differs)."""
        from geovid.tasks.common import step_progress
        from geovid.tasks.latents import images_to_points

        cfg, cb = self.cfg, step_progress(self.progress, "encode")
        prompt_b = cfg.prompt_b if cfg.prompt_b is not None else cfg.prompt
        if prompt_b == cfg.prompt:
            return images_to_points(self.bb, self.images, cfg.noise_level, cfg.prompt, progress=cb).points
        pa = images_to_points(self.bb, self.images[:1], cfg.noise_level, cfg.prompt, progress=cb).points
        pb = images_to_points(self.bb, self.images[1:], cfg.noise_level, prompt_b, progress=cb).points
        return torch.cat([pa, pb])

    def _restore_encode(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.raw_endpoints = tensors["points"]
        if "cond_a" in tensors:
            self.cond_a = tensors["cond_a"].to(self.bb.device, self.bb.dtype)
            self.cond_b = tensors["cond_b"].to(self.bb.device, self.bb.dtype)

    def _place_endpoints(self) -> None:
        """The sphere, the endpoints A, B on it, the condition field c(x) and the score."""
        from geovid.geometry.paths import Sphere
        from geovid.tasks.common import ConditionField, field_estimator

        cfg = self.cfg
        self.sphere = Sphere.for_points(self.raw_endpoints, on=cfg.sphere)
        # All methods share the endpoints on the sphere (docs/method.md §1), so they differ only in between.
        ends = self.sphere.project_points(self.raw_endpoints)
        self.a, self.b = ends[0], ends[1]
        # c(x): c_A, c_B blended by the position along the chord A→B (docs/interpolation.md, "Conditioning").
        self.field = ConditionField(self.cond_a, self.cond_b, self.a, self.b)
        self.score = field_estimator(cfg.estimator, self.bb, self.t, self.field, seed=cfg.seed,
                                     draws=int(cfg.draws or 1))

    # ------------------------------------------------------------------ solve

    def solve(self) -> State:
        """α (the rule on the slerp, unless given), then the BVP from the slerp within the call budget."""
        from geovid.geometry.bvp import solve_bvp
        from geovid.geometry.paths import arclength_resample, initial_path

        cfg = self.cfg
        self.progress("solve", 0, None, {"solver": cfg.solver})
        if float((self.b - self.a).norm()) == 0.0:
            return self._constant_path()
        x0 = initial_path(self.a, self.b, self.n, self.sphere)
        self._choose_alpha(x0)
        opts: dict[str, Any] = {"progress": self.progress, "max_calls": cfg.max_calls}
        if cfg.solver == "geovid":
            opts["mode"] = "free"
            opts["starts"] = int(cfg.starts or 0)
        result = solve_bvp(x0, self.score, self.metric, self.sphere, solver=cfg.solver, seed=cfg.seed, **opts)
        path = result.path
        if path.shape[0] != self.n:  # the reference schedule always ends with 17 points
            path = arclength_resample(path, self.n, self.sphere)
        path[0], path[-1] = self.a, self.b
        last = result.history[-1] if result.history else {}
        self.solver_info = {
            "solver": result.solver, "iterations": result.iterations, "network_calls": result.network_calls,
            "converged": bool(result.converged), "seconds": round(result.seconds, 3),
            "last_iteration_mean_residual": last.get("mean_residual"), "max_calls": cfg.max_calls,
            "starts": int(cfg.starts or 0),
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
        return {"path": path}, self.solver_info

    def _constant_path(self) -> State:
        """A and B are the same point (e.g. the same file twice): the geodesic is the constant path."""
        cfg = self.cfg
        self.geodesic = self.a[None].repeat(self.n, 1)
        self._set_alpha(cfg.alpha or sequence_alpha(cfg.estimator), None)
        self.solver_info = {"solver": "none", "iterations": 0, "network_calls": 0, "converged": True,
                            "seconds": 0.0, "last_iteration_mean_residual": None,
                            "max_calls": cfg.max_calls, "note": "A and B are the same point",
                            "alpha": self.alpha, "alpha_rule": None}
        return {"path": self.geodesic}, self.solver_info

    def _choose_alpha(self, x0: torch.Tensor) -> None:
        """α as given, else by the rule of docs/method.md §3.7 on the slerp ``x0`` the solve starts from (its
        scores drawn as the measure phase draws them: same seed, same frame indices)."""
        if self.cfg.alpha is not None:
            self._set_alpha(float(self.cfg.alpha), None)
            return
        from geovid.geometry.alpha import calibrate_alpha

        self.progress("solve", 0, None, {"alpha": "rule"})
        torch.manual_seed(self.cfg.seed)
        s_line = self.score(x0[1:-1])
        cal = calibrate_alpha(self.score, self.a, self.b, self.sphere, line=x0, s_interior=s_line)
        self._set_alpha(cal.alpha, {**cal.to_dict(), "network_calls": int(s_line.shape[0])
                                    * int(getattr(self.score, "calls_per_point", 1))})

    def _restore_solve(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.geodesic = tensors["path"]
        self.solver_info = meta
        self._set_alpha(meta.get("alpha"), meta.get("alpha_rule"))

    def _set_alpha(self, alpha: float | None, rule: dict[str, Any] | None) -> None:
        from geovid.geometry.metrics import make_metric

        self.alpha = float(alpha) if alpha is not None else sequence_alpha(self.cfg.estimator)
        self.alpha_rule = rule
        self.metric: Metric = make_metric(self.cfg.metric, alpha=self.alpha, lam=self.cfg.lam)

    # ------------------------------------------------------------------ decode, uniform

    def _paths(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Points and times t of every method before re-timing."""
        from geovid.geometry.paths import lerp, slerp

        tt = torch.linspace(0, 1, self.n, dtype=self.a.dtype)
        out = {"geodesic": (self.geodesic, chord_times(self.geodesic))}
        for name in self.cfg.baselines:
            pts = lerp(self.a, self.b, tt) if name == "lerp" else self.sphere.project_points(slerp(self.a, self.b, tt))
            pts[0], pts[-1] = self.a, self.b
            out[name] = (pts, tt.clone())
        return out

    def _decode(self, points: torch.Tensor, times: torch.Tensor, phase: str, steps: int | None = None) -> np.ndarray:
        from geovid.tasks.common import step_progress
        from geovid.tasks.latents import decode_points

        cond = self.field(points)  # c(x), as the score sees it: each endpoint with its own embedding
        return decode_points(self.bb, points, self.t, cond, steps=steps or self.cfg.decode_steps,
                             progress=step_progress(self.progress, phase, frames=int(points.shape[0])))

    def decode(self) -> State:
        """Every method's frames in one batch; the endpoints are shared (decoded once, with the geodesic)."""
        paths, n = self.before, self.n
        pts = [paths["geodesic"][0]] + [paths[m][0][1:-1] for m in self.methods[1:]]
        ts = [paths["geodesic"][1]] + [paths[m][1][1:-1] for m in self.methods[1:]]
        preview = self.cfg.preview_steps
        if preview and preview < self.cfg.decode_steps:
            # Re-timing on: interiors are previews (they only give distances and are decoded again),
            # the endpoints are final frames.
            allp, allt = torch.cat(pts), torch.cat(ts)
            ends = [0, n - 1]
            inner = [i for i in range(allp.shape[0]) if i not in ends]
            imgs = np.empty((allp.shape[0], *self.images.shape[1:]), np.uint8)
            imgs[ends] = self._decode(allp[ends], allt[ends], "decode")
            imgs[inner] = self._decode(allp[inner], allt[inner], "decode", steps=int(preview))
        else:
            imgs = self._decode(torch.cat(pts), torch.cat(ts), "decode")
        frames = {"geodesic": imgs[:n]}
        k = n
        for m in self.methods[1:]:
            frames[m] = np.concatenate([imgs[:1], imgs[k: k + n - 2], imgs[n - 1: n]])
            k += n - 2
        self._set_decoded(frames)
        return {f"frames_{m}": v for m, v in frames.items()}, {}

    def _restore_decode(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self._set_decoded({m: tensors[f"frames_{m}"].numpy() for m in self.methods})

    def _set_decoded(self, frames: dict[str, np.ndarray]) -> None:
        self.raw: dict[str, Frames] = {m: (self.before[m][0], self.before[m][1], frames[m]) for m in self.methods}
        self.final = dict(self.raw)
        self.positions = {m: np.arange(self.n, dtype=np.float64) for m in self.methods}

    def _plan_uniform(self) -> None:
        """Every method's perceptually uniform positions and the points there (docs/method.md §8)."""
        from geovid.tasks.perceptual import consecutive_distances, uniform_positions

        self.uniform_at: dict[str, np.ndarray] = {}
        self.retimed: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.raw_dists: dict[str, np.ndarray] = {}  # the first pass's distances, reported as "before uniform"
        for m in self.methods:
            pts, tt, frames = self.raw[m]
            self.raw_dists[m] = consecutive_distances(frames, self.distance)
            self.uniform_at[m] = uniform_positions(self.raw_dists[m])
            self.retimed[m] = retime(pts, tt, self.uniform_at[m], spherical=(m != "lerp" and self.sphere.on))

    def make_uniform(self) -> State:
        """The re-timed frames: a position on a final frame reuses it (always the endpoints), the others are
        decoded, every method in one batch."""
        out = {m: self.raw[m][2].copy() for m in self.methods}
        todo = []
        for m in self.methods:
            for j, p in enumerate(self.uniform_at[m]):
                i = reused_frame(p, self.n)
                if i is not None:
                    out[m][j] = self.raw[m][2][i]
                else:
                    todo.append((m, j))
        if todo:
            pts = torch.stack([self.retimed[m][0][j] for m, j in todo])
            ts = torch.stack([self.retimed[m][1][j] for m, j in todo])
            imgs = self._decode(pts, ts, "uniform")
            for (m, j), img in zip(todo, imgs):
                out[m][j] = img
        self._set_uniform(out)
        return {f"frames_{m}": v for m, v in out.items()}, {}

    def _restore_uniform(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self._set_uniform({m: tensors[f"frames_{m}"].numpy() for m in self.methods})

    def _set_uniform(self, frames: dict[str, np.ndarray]) -> None:
        self.final = {m: (self.retimed[m][0], self.retimed[m][1], frames[m]) for m in self.methods}
        self.positions = self.uniform_at

    # ------------------------------------------------------------------ measure, write

    def measure(self) -> None:
        """Scores at the final points: residual, log-density, relative length; perceptual distances, PPL, PDV."""
        from geovid.geometry.measures import path_measures
        from geovid.tasks.perceptual import consecutive_distances, ppl_pdv

        self.measures: dict[str, Any] = {}
        self.dists: dict[str, np.ndarray] = {}
        score_fn: ScoreFn | None = self.score if self.metric.needs_hvp else None
        frame_t = torch.linspace(0, 1, self.n, dtype=torch.float64)
        for i, m in enumerate(self.methods):
            pts = self.final[m][0]
            # Every path is scored alone so frame i sees the same random draws in every method (docs/method.md §7.3).
            torch.manual_seed(self.cfg.seed)
            s = self.score(pts)
            self.measures[m] = path_measures(pts, s, self.metric, self.sphere, times=frame_t, score_fn=score_fn)
            self.dists[m] = consecutive_distances(self.final[m][2], self.distance)
            self.progress("measure", i + 1, len(self.methods), {"method": m})
        if not self.cfg.uniform:  # no re-timing: the frames before it are the final ones
            self.raw_dists = self.dists
        self.ppl = {m: ppl_pdv(self.dists[m]) for m in self.methods}

    def write(self) -> None:
        """The run's outputs (:func:`geovid.tasks.interpolation_outputs.write_outputs`)."""
        from geovid.tasks.interpolation_outputs import write_outputs

        self.required = write_outputs(self)


__all__ = ["InterpolationJob"]
