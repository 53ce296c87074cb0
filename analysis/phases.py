"""One analysis run as a phased job (docs/method.md §7, docs/analysis.md) on the runner of :mod:`geovid.runs.jobs`.

Each phase leaves its result in the run folder; on resume a phase recorded as done whose files are still there is
restored from them instead of being run again (its network calls are not repeated):

====================  =========================================================================================
``decode``            exactly the chosen frames, fitted to the model's resolution → ``frames/``, ``clip.json``
``load_model``        the backbone (every time; timed, not recorded as done)
``encode``            z₀ = E(frames); one prompt embedding shared by all frames (prompt-embedding inversion,
                      docs/method.md §1.4); DDIM inversion to t_ν with it → ``points.safetensors``
``paths``             γ_v on the sphere, γ_δ, γ_s, γ_l and the controls' frame orders → ``paths.safetensors``
``alpha``             α by the rule of docs/method.md §3.7 from the clip's straight line → ``alpha.json``,
                      ``line_scores.safetensors`` (not run with ``--alpha``)
``solve``             γ_o of the clip (and of each control) in normal mode within the trust region
                      → ``optimised.safetensors``, ``solve.json``
``measure``           docs/method.md §7.3 for every path with the same estimator, α and draws
                      → ``per_frame.csv/.parquet``, ``measures.json``, ``controls.json``
``decode_optimised``  γ_o back to images → ``optimised/``, ``strip.png`` (not with ``decode_optimised=False``)
``report``            tests (i)–(iii), excess, controls, verdict, plots, ``summary.json`` (:mod:`analysis.report`)
====================  =========================================================================================
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from analysis import compare, controls, paths
from geovid.geometry.paths import Sphere
from geovid.progress import ProgressFn
from geovid.runs.jobs import Job, Phase
from geovid.runs.state import read_tensors, write_tensors
from geovid.runs.store import Run, read_frames

if TYPE_CHECKING:
    from analysis.config import AnalysisConfig
    from geovid.geometry.metrics import Metric

#: Learning rate of the analysis's prompt-embedding inversion (100 steps; the reference uses 5·10⁻³ for 500).
INVERSION_LR = 1e-2
#: The plots every analysis run has (docs/run-directory.md).
PLOTS = ("plots/residual.png", "plots/log_density.png", "plots/projection.png")


class AnalysisJob(Job):
    """The phases of docs/method.md §7 on one clip; the runner drives them (see the module docstring)."""

    def __init__(self, run: Run, config: AnalysisConfig, clip: Path, prog: ProgressFn) -> None:
        super().__init__(run, prog)
        self.cfg, self.clip = config, clip

    # ------------------------------------------------------------------ the job

    def phases(self) -> Iterator[Phase]:
        cfg = self.cfg
        self.progress("setup", 1, 1, {"run": self.run.name})
        yield Phase("decode", self._decode, self._restore_decode, files=("clip.json", "frames"))
        yield Phase("load_model", self._load_model, record=False)
        yield Phase("encode", self._encode, self._restore_encode, files=("points.safetensors",))
        yield Phase("paths", self._paths, self._restore_paths, files=("paths.safetensors",))
        self._make_scores()
        if cfg.alpha is None:
            yield Phase("alpha", self._alpha, self._restore_alpha, files=("alpha.json", "line_scores.safetensors"))
        else:
            self.alpha, self.s_line = float(cfg.alpha), None
            self.alpha_info = {"rule": "given (--alpha)", "alpha": float(cfg.alpha)}
        from geovid.geometry.metrics import make_metric

        self.metric: Metric = make_metric(cfg.metric, alpha=self.alpha, lam=cfg.lam)
        yield Phase("solve", self._solve, self._restore_solve, files=("optimised.safetensors", "solve.json"))
        yield Phase("measure", self._measure, self._restore_measure,
                    files=("per_frame.parquet", "measures.json", "controls.json"))
        if cfg.decode_optimised:
            yield Phase("decode_optimised", self._decode_optimised, self._restore_decoded,
                        files=("optimised", "strip.png"))
        from analysis.report import write_report

        yield Phase("report", lambda: write_report(self))

    def outputs(self) -> list[str]:
        required = ["frames/", *PLOTS, "measures.json", "points.safetensors", "optimised.safetensors"]
        if self.cfg.decode_optimised:
            required += ["optimised/", "strip.png"]
        return required

    def _save(self, relpath: str, tensors: dict[str, torch.Tensor], meta: dict[str, str] | None = None) -> None:
        write_tensors(self.run.path / relpath, tensors, meta)

    def _load(self, relpath: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        return read_tensors(self.run.path / relpath)

    def _read_json(self, relpath: str) -> Any:
        return json.loads((self.run.path / relpath).read_text(encoding="utf-8"))

    # ------------------------------------------------------------------ decode, load_model

    def _decode(self) -> None:
        """Exactly the chosen frames, fitted to the model's resolution (docs/media.md policy)."""
        from geovid.backbones.loader import model_info
        from geovid.media.decode import probe, select_frames
        from geovid.media.decode import read_frames as read_clip
        from geovid.media.images import fit_to_resolution

        cfg = self.cfg
        info = probe(self.clip)
        indices = select_frames(info, frames=cfg.frames, stride=cfg.stride, start=cfg.start, end=cfg.end,
                                min_frames=3)
        raw, times = read_clip(info, indices, progress=self.progress)
        res = int(model_info(cfg.model)["resolution"])  # configs only: no weights loaded yet
        self.frames = fit_to_resolution(raw, res, policy=cfg.resize)  # type: ignore[arg-type]
        self.run.write_frames("frames", self.frames)
        self.meta = {"indices": indices, "time_s": times, "video": info.to_dict(), "resolution": res,
                     "fit": cfg.resize}
        self.run.write_json("clip.json", self.meta)
        self._set_times()

    def _restore_decode(self) -> None:
        self.frames = read_frames(self.run.path / "frames")
        self.meta = self._read_json("clip.json")
        self._set_times()

    def _set_times(self) -> None:
        self.n = int(self.frames.shape[0])
        self.times = torch.tensor(self.meta["time_s"], dtype=torch.float64)

    def _load_model(self) -> None:
        from geovid.backbones.loader import load_backbone, model_name

        self.progress("model", 0, 1, {"model": model_name(self.cfg.model)})
        self.backbone = load_backbone(self.cfg.model, device=self.cfg.device, dtype=self.cfg.dtype)
        self.progress("model", 1, 1, {"model": self.bb.name})

    # ------------------------------------------------------------------ encode

    def _encode(self) -> None:
        """Points at t_ν, the shared condition and t (docs/method.md §1, §1.4)."""
        import os

        from geovid.media.images import to_tensor

        cfg, bb, n = self.cfg, self.bb, self.n
        z0 = bb.encode(to_tensor(self.frames).to(torch.float32))
        info: dict[str, Any] = {"prompt": cfg.prompt, "conditioning": "prompt"}
        if cfg.conditioning == "invert" and hasattr(bb, "invert_prompt_embedding"):
            steps = int(cfg.invert_steps)
            cached = os.environ.get("GEOVID_NO_CACHE") != "1"  # the same switch as the inversion cache
            cond = self.counted(lambda: bb.invert_prompt_embedding(
                z0, cfg.prompt, steps=steps, lr=INVERSION_LR, seed=cfg.seed, use_cache=cached,
                progress=lambda i, k: self.progress("condition", i, k, {"frames": n})))
            info.update(conditioning="invert", invert_steps=steps, invert_lr=INVERSION_LR)
        else:
            cond = bb.embed_prompt(cfg.prompt)
        t = int(bb.noise_level_to_timestep(cfg.noise_level, cfg.steps))
        xt = self.counted(lambda: bb.invert(z0, t, cond, guidance=cfg.guidance, num_inference_steps=cfg.steps,
                                             progress=lambda i, k: self.progress("encode", i, k, {"frames": n})))
        self.points = xt.reshape(n, -1).to(torch.float64).cpu()
        self._save("points.safetensors", {"points": self.points, "z0": z0, "cond": cond.float()},
                   {"t": str(t), "info": json.dumps(info)})
        self.cond, self.t, self.cond_info = cond.float(), t, info

    def _restore_encode(self) -> None:
        data, meta = self._load("points.safetensors")
        self.points, self.cond, self.t = data["points"], data["cond"], int(meta["t"])
        self.cond_info = json.loads(meta.get("info", "{}"))

    # ------------------------------------------------------------------ paths

    def _paths(self) -> None:
        """γ_v, the sphere, the comparison paths and the controls' frame orders (docs/method.md §7.2, §7.7)."""
        cfg = self.cfg
        self.x, self.sphere = paths.video_path(self.points, sphere_on=cfg.sphere)
        comp = paths.comparison_paths(self.x, self.sphere, delta=cfg.delta, smooth_sigma=cfg.smooth_sigma,
                                      seed=cfg.seed)
        orders = controls.control_orders(self.x.shape[0], cfg.seed)
        self._save("paths.safetensors", {"video": self.x, **comp, "time_s": self.times},
                   {"radius": repr(self.sphere.radius) if self.sphere.on else "none",
                    "median_step": repr(paths.median_step(self.x)), "control_orders": json.dumps(orders)})
        self.progress("paths", 1, 1, {"radius": self.sphere.radius or 0.0})
        self._set_paths(comp)

    def _restore_paths(self) -> None:
        data, meta = self._load("paths.safetensors")
        radius = meta.get("radius", "none")
        self.sphere = Sphere(None if radius == "none" else float(radius))
        self.x = data["video"]
        self._set_paths(data)

    def _set_paths(self, data: dict[str, torch.Tensor]) -> None:
        self.comp = {k: data[k] for k in ("perturbed", "smoothed", "line")}
        self.ctrl = controls.control_paths(self.x, self.cfg.seed) if self.cfg.controls else {}

    def _make_scores(self) -> None:
        """Scores (docs/method.md §2): the measures average ``draws`` contrast draws per point, the solver steps
        on one."""
        from geovid.tasks.latents import make_score

        cfg, cond = self.cfg, self.cond.to(self.bb.dtype)
        self.score = make_score(self.bb, cfg.estimator, self.t, cfg.prompt, cfg.seed, cond=cond, draws=cfg.draws)
        self.step_score = make_score(self.bb, cfg.estimator, self.t, cfg.prompt, cfg.seed, cond=cond, draws=1)

    # ------------------------------------------------------------------ alpha

    def _alpha(self) -> None:
        """α by the rule of docs/method.md §3.7 on the clip's straight line. The line is scored in one call of all
        its points — the call the measure phase would make, so the same draws — and the measures reuse those
        scores (kept in ``line_scores.safetensors``) instead of scoring the line again."""
        from geovid.geometry.alpha import calibrate_alpha

        line = self.comp["line"]
        with torch.no_grad():
            s_line = self.counted(lambda: self.score(line))
        cal = calibrate_alpha(self.score, line[0], line[-1], self.sphere, line=line, s_interior=s_line[1:-1])
        info = {**cal.to_dict(), "network_calls": int(line.shape[0]) * int(getattr(self.score, "calls_per_point", 1))}
        self._save("line_scores.safetensors", {"scores": s_line})
        self.run.write_json("alpha.json", info)
        self.progress("alpha", 1, 1, {"alpha": cal.alpha})
        self.alpha, self.alpha_info, self.s_line = cal.alpha, info, s_line

    def _restore_alpha(self) -> None:
        self.alpha_info = self._read_json("alpha.json")
        self.alpha = float(self.alpha_info["alpha"])
        self.s_line = self._load("line_scores.safetensors")[0]["scores"]

    # ------------------------------------------------------------------ solve

    def _solve(self) -> None:
        """γ_o of the clip (``video``) and of each control, each with the same budget and trust rule: no point
        moves further than ``trust`` × the median step of the path it starts from (docs/method.md §5, §7.5)."""
        cfg = self.cfg
        starts = {"video": self.x, **self.ctrl}
        budget = int(cfg.max_calls) if cfg.max_calls is not None else int(cfg.calls_per_frame) * self.n
        out: dict[str, torch.Tensor] = {}
        infos: dict[str, Any] = {}
        for k, (name, x) in enumerate(starts.items()):
            out[name], infos[name] = self._solve_one(k, name, x, budget, len(starts))
        total = budget * len(starts)  # the solves may stop before their budgets: the bar ends full
        self.progress("solve", total, total, {"calls": sum(int(i["network_calls"]) for i in infos.values())})
        self.solve_info = {**infos["video"], "controls": {k: v for k, v in infos.items() if k != "video"}}
        self._save("optimised.safetensors", {"path": out["video"], **{k: v for k, v in out.items() if k != "video"}})
        self.run.write_json("solve.json", self.solve_info)
        self.optimised = out

    def _solve_one(self, k: int, name: str, x: torch.Tensor, budget: int, count: int
                   ) -> tuple[torch.Tensor, dict[str, Any]]:
        trust = self.cfg.trust or None
        radius = float(trust) * paths.median_step(x) if trust else None
        total = budget * count

        def solve_prog(phase: str, done: int, tot: int | None, info: dict[str, Any]) -> None:
            self.progress("solve", min(k * budget + int(info.get("calls", done)), total), total, {**info, "path": name})

        res = self.counted(lambda: paths.optimised_path(
            x, self.step_score, self.metric, self.sphere, max_calls=budget, max_iters=self.cfg.max_iters,
            seed=self.cfg.seed, trust=radius, progress=solve_prog))
        moved = (res.path - x).norm(dim=-1)
        return res.path, {"solver": res.solver, "mode": "normal", "iterations": res.iterations,
                          "converged": bool(res.converged), "network_calls": res.network_calls, "budget": budget,
                          "trust_radius": radius, "max_displacement": float(moved.max()),
                          "at_trust_bound": int((moved >= 0.99 * radius).sum()) if radius else 0,
                          "seconds": round(res.seconds, 4), "history": res.history}

    def _restore_solve(self) -> None:
        data, _ = self._load("optimised.safetensors")
        self.optimised = {k: data["path" if k == "video" else k] for k in ("video", *self.ctrl)}
        self.solve_info = self._read_json("solve.json")

    # ------------------------------------------------------------------ measure

    @property
    def all_paths(self) -> dict[str, torch.Tensor]:
        """The clip's paths: γ_v, γ_o, γ_δ, γ_s, γ_l."""
        return {"video": self.x, "optimised": self.optimised["video"], **self.comp}

    def _measure(self) -> None:
        """docs/method.md §7.3 for the clip's paths and each control's (same score, α and draws: each path in one
        call of the same length, so frame position i sees the same draws on every path)."""
        all_paths = self.all_paths
        known = None if self.s_line is None else {"line": self.s_line}
        measures = self.counted(lambda: compare.measure_paths(
            {k: all_paths[k] for k in paths.PATH_NAMES}, self.score, self.metric, self.sphere, self.times,
            progress=self.progress, known=known))
        self.stats = compare.path_statistics(measures)
        self.ctrl_stats: dict[str, Any] = {}
        rows = dict(measures)
        for name, cp in self._control_path_sets().items():
            m = self.counted(lambda cp=cp: compare.measure_paths(cp, self.score, self.metric, self.sphere,
                                                                  self.times, progress=self.progress))
            self.ctrl_stats[name] = {**compare.path_statistics(m), "line": self.stats["line"]}
            rows[name] = m["video"]
        self.table = compare.per_frame_table(rows, self.times)
        self.run.write_table("per_frame", self.table)
        self.run.write_json("measures.json", self.stats)
        self.run.write_json("controls.json", self.ctrl_stats)

    def _restore_measure(self) -> None:
        import pandas as pd

        self.table = pd.read_parquet(self.run.path / "per_frame.parquet")
        self.stats = self._read_json("measures.json")
        self.ctrl_stats = self._read_json("controls.json")

    def _control_path_sets(self) -> dict[str, dict[str, torch.Tensor]]:
        """Each control's video, optimised, perturbed and smoothed paths (its line is the clip's)."""
        cfg, out = self.cfg, {}
        for name, x in self.ctrl.items():
            comp = paths.comparison_paths(x, self.sphere, delta=cfg.delta, smooth_sigma=cfg.smooth_sigma,
                                          seed=cfg.seed)
            out[name] = {"video": x, "optimised": self.optimised[name], "perturbed": comp["perturbed"],
                         "smoothed": comp["smoothed"]}
        return out

    # ------------------------------------------------------------------ decode γ_o

    def _decode_optimised(self) -> None:
        """γ_o back to images with the shared condition (docs/method.md §7.5) → ``optimised/``, ``strip.png``."""
        from geovid.media.images import from_tensor
        from geovid.media.writers import make_grid
        from geovid.tasks.latents import decode_points

        cfg, bb, n, xo = self.cfg, self.bb, self.n, self.optimised["video"]

        def dec_prog(i: int, k: int) -> None:
            self.progress("decode_optimised", i, k, {"frames": n})

        c = self.cond.to(bb.dtype) if hasattr(bb, "dtype") else self.cond
        if cfg.decode_steps is None:
            lat = xo.reshape(n, *bb.latent_shape).to(torch.float32)
            imgs = self.counted(lambda: from_tensor(bb.decode(bb.denoise(
                lat, self.t, c, guidance=cfg.guidance, num_inference_steps=cfg.steps, progress=dec_prog)).cpu()))
        else:
            imgs = self.counted(lambda: decode_points(bb, xo, self.t, c, steps=cfg.decode_steps, progress=dec_prog))
        self.run.write_frames("optimised", imgs)
        self.decoded = np.asarray(imgs)
        scale = max(1, 128 // int(self.frames.shape[1]))
        self.run.write_image("strip.png", make_grid([list(self.frames), list(imgs)],
                                                    labels=["video", "optimised"], scale=scale))

    def _restore_decoded(self) -> None:
        self.decoded = read_frames(self.run.path / "optimised")


__all__ = ["INVERSION_LR", "PLOTS", "AnalysisJob"]
