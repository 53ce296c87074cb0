"""The phases of one analysis run after the frames are decoded (docs/method.md §7, docs/analysis.md).

Each phase leaves its result in the run folder and is skipped on resume when that result is there:

====================  =========================================================================================
``encode``            z₀ = E(frames); one prompt embedding shared by all frames (prompt-embedding inversion,
                      docs/method.md §1.4); DDIM inversion to t_ν with it → ``points.safetensors``
``paths``             γ_v on the sphere, γ_δ, γ_s, γ_l and the controls' frame orders → ``paths.safetensors``
``alpha``             α by the rule of docs/method.md §3.7 from the clip's endpoints → ``alpha.json``
``solve``             γ_o of the clip (and of each control) in normal mode within the trust region
                      → ``optimised.safetensors``, ``solve.json``
``measure``           docs/method.md §7.3 for every path with the same estimator, α and draws
                      → ``per_frame.csv/.parquet``, ``measures.json``, ``controls.json``
``decode_optimised``  γ_o back to images → ``optimised/``, ``strip.png``
====================  =========================================================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from analysis import compare, controls, paths
from geovid.geometry.paths import Sphere
from geovid.progress import ProgressFn
from geovid.runs.store import Run

if TYPE_CHECKING:
    from analysis.run import AnalysisConfig

#: Learning rate of the analysis's prompt-embedding inversion (100 steps; the reference uses 5·10⁻³ for 500).
INVERSION_LR = 1e-2


@dataclass
class Context:
    """What every phase needs: the run, options, backbone, progress callback and call counter."""

    run: Run
    config: AnalysisConfig
    bb: Any
    prog: ProgressFn
    counted: Callable[[Callable[[], Any]], Any]

    def done(self, phase: str, *files: str) -> bool:
        return self.run.is_done(phase) and all((self.run.path / f).exists() for f in files)

    def save(self, relpath: str, tensors: dict[str, torch.Tensor], meta: dict[str, str] | None = None) -> None:
        from safetensors.torch import save

        from geovid.runs.store import atomic_write_bytes

        data = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        atomic_write_bytes(self.run.path / relpath, save(data, metadata=meta))

    def load(self, relpath: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        from safetensors import safe_open

        out = {}
        with safe_open(str(self.run.path / relpath), framework="pt") as fh:
            meta = fh.metadata() or {}
            for k in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
                out[k] = fh.get_tensor(k)
        return out, meta

    def read_json(self, relpath: str) -> Any:
        return json.loads((self.run.path / relpath).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- encode


def encode(ctx: Context, frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, int, dict[str, Any]]:
    """Points at t_ν, the shared condition and t (docs/method.md §1, §1.4). Returns (points, cond, t, info)."""
    if ctx.done("encode", "points.safetensors"):
        data, meta = ctx.load("points.safetensors")
        return data["points"], data["cond"], int(meta["t"]), json.loads(meta.get("info", "{}"))
    cfg, bb, n = ctx.config, ctx.bb, int(frames.shape[0])
    with ctx.run.phase("encode"):
        from geovid.media.images import to_tensor

        z0 = bb.encode(to_tensor(frames).to(torch.float32))
        info: dict[str, Any] = {"prompt": cfg.prompt, "conditioning": "prompt"}
        if cfg.conditioning == "invert" and hasattr(bb, "invert_prompt_embedding"):
            import os

            steps = int(cfg.invert_steps)
            cached = os.environ.get("GEOVID_NO_CACHE") != "1"  # the same switch as the inversion cache
            cond = ctx.counted(lambda: bb.invert_prompt_embedding(
                z0, cfg.prompt, steps=steps, lr=INVERSION_LR, seed=cfg.seed, use_cache=cached,
                progress=lambda i, k: ctx.prog("condition", i, k, {"frames": n})))
            info.update(conditioning="invert", invert_steps=steps, invert_lr=INVERSION_LR)
        else:
            cond = bb.embed_prompt(cfg.prompt)
        t = int(bb.noise_level_to_timestep(cfg.noise_level, cfg.steps))
        xt = ctx.counted(lambda: bb.invert(z0, t, cond, guidance=cfg.guidance, num_inference_steps=cfg.steps,
                                           progress=lambda i, k: ctx.prog("encode", i, k, {"frames": n})))
        points = xt.reshape(n, -1).to(torch.float64).cpu()
        ctx.save("points.safetensors", {"points": points, "z0": z0, "cond": cond.float()},
                 {"t": str(t), "info": json.dumps(info)})
    return points, cond.float(), t, info


# --------------------------------------------------------------------------- paths


def build_paths(ctx: Context, points: torch.Tensor, times: torch.Tensor
                ) -> tuple[torch.Tensor, Sphere, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """γ_v, the sphere, the comparison paths and the controls' video paths (docs/method.md §7.2, §7.7)."""
    cfg = ctx.config
    if ctx.done("paths", "paths.safetensors"):
        data, m = ctx.load("paths.safetensors")
        radius = m.get("radius", "none")
        sphere = Sphere(None if radius == "none" else float(radius))
        x = data["video"]
    else:
        with ctx.run.phase("paths"):
            x, sphere = paths.video_path(points, sphere_on=cfg.sphere)
            comp = paths.comparison_paths(x, sphere, delta=cfg.delta, smooth_sigma=cfg.smooth_sigma, seed=cfg.seed)
            orders = controls.control_orders(x.shape[0], cfg.seed)
            ctx.save("paths.safetensors", {"video": x, **comp, "time_s": times},
                     {"radius": repr(sphere.radius) if sphere.on else "none", "median_step": repr(paths.median_step(x)),
                      "control_orders": json.dumps(orders)})
            ctx.prog("paths", 1, 1, {"radius": sphere.radius or 0.0})
        data, _ = ctx.load("paths.safetensors")
    comp = {k: data[k] for k in ("perturbed", "smoothed", "line")}
    ctrl = controls.control_paths(x, cfg.seed) if cfg.controls else {}
    return x, sphere, comp, ctrl


# --------------------------------------------------------------------------- alpha


def resolve_alpha(ctx: Context, line: torch.Tensor, sphere: Sphere, score: Any
                  ) -> tuple[float, dict[str, Any], torch.Tensor | None]:
    """α: ``--alpha``, or the rule of docs/method.md §3.7 on the clip's straight line. The line is scored in one
    call of all its points — the call the measure phase would make, so the same draws — and those scores are
    returned (and kept in ``line_scores.safetensors``) for the measures, which do not score the line again.
    Returns (α, its rule, the line's scores or None with ``--alpha``)."""
    cfg = ctx.config
    if cfg.alpha is not None:
        return float(cfg.alpha), {"rule": "given (--alpha)", "alpha": float(cfg.alpha)}, None
    if ctx.done("alpha", "alpha.json", "line_scores.safetensors"):
        info = ctx.read_json("alpha.json")
        return float(info["alpha"]), info, ctx.load("line_scores.safetensors")[0]["scores"]
    from geovid.geometry.alpha import calibrate_alpha

    with ctx.run.phase("alpha"):
        with torch.no_grad():
            s_line = ctx.counted(lambda: score(line))
        cal = calibrate_alpha(score, line[0], line[-1], sphere, line=line, s_interior=s_line[1:-1])
        info = {**cal.to_dict(), "network_calls": int(line.shape[0]) * int(getattr(score, "calls_per_point", 1))}
        ctx.save("line_scores.safetensors", {"scores": s_line})
        ctx.run.write_json("alpha.json", info)
        ctx.prog("alpha", 1, 1, {"alpha": cal.alpha})
    return cal.alpha, info, s_line


# --------------------------------------------------------------------------- solve


def solve(ctx: Context, starts: dict[str, torch.Tensor], score: Any, metric: Any, sphere: Sphere, budget: int,
          trust: float | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """γ_o of every path in ``starts`` (the clip as ``video``, the controls by name), each with the same budget
    and the same trust rule: no point moves further than ``trust`` × the median step of the path it starts from
    (docs/method.md §5, §7.5). Returns ({name: γ_o}, solve info of the clip + per control)."""
    if ctx.done("solve", "optimised.safetensors", "solve.json"):
        data, _ = ctx.load("optimised.safetensors")
        return {k: data["path" if k == "video" else k] for k in starts}, ctx.read_json("solve.json")
    out: dict[str, torch.Tensor] = {}
    infos: dict[str, Any] = {}
    with ctx.run.phase("solve"):
        total = budget * len(starts)
        for k, (name, x) in enumerate(starts.items()):
            radius = float(trust) * paths.median_step(x) if trust else None

            def solve_prog(phase: str, done: int, tot: int | None, info: dict[str, Any], k: int = k,
                           name: str = name) -> None:
                ctx.prog("solve", min(k * budget + int(info.get("calls", done)), total), total,
                         {**info, "path": name})

            res = ctx.counted(lambda x=x, solve_prog=solve_prog, radius=radius: paths.optimised_path(
                x, score, metric, sphere, max_calls=budget, max_iters=ctx.config.max_iters, seed=ctx.config.seed,
                trust=radius, progress=solve_prog))
            out[name] = res.path
            moved = (res.path - x).norm(dim=-1)
            infos[name] = {"solver": res.solver, "mode": "normal", "iterations": res.iterations,
                           "converged": bool(res.converged), "network_calls": res.network_calls, "budget": budget,
                           "trust_radius": radius, "max_displacement": float(moved.max()),
                           "at_trust_bound": int((moved >= 0.99 * radius).sum()) if radius else 0,
                           "seconds": round(res.seconds, 4), "history": res.history}
        info = {**infos["video"], "controls": {k: v for k, v in infos.items() if k != "video"}}
        ctx.save("optimised.safetensors", {"path": out["video"], **{k: v for k, v in out.items() if k != "video"}})
        ctx.run.write_json("solve.json", info)
    return out, info


# --------------------------------------------------------------------------- measure


def measure(ctx: Context, all_paths: dict[str, torch.Tensor], ctrl_paths: dict[str, dict[str, torch.Tensor]],
            score: Any, metric: Any, sphere: Sphere, times: torch.Tensor,
            known: dict[str, torch.Tensor] | None = None) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """docs/method.md §7.3 for the clip's paths and for each control's (same score, α and draws: each path in
    one call of the same length, so frame position i sees the same draws on every path).

    Returns (per-frame table, clip statistics {path: stats}, control statistics {control: {path: stats}})."""
    import pandas as pd

    if ctx.done("measure", "per_frame.parquet", "measures.json", "controls.json"):
        return (pd.read_parquet(ctx.run.path / "per_frame.parquet"), ctx.read_json("measures.json"),
                ctx.read_json("controls.json"))
    with ctx.run.phase("measure"):
        measures = ctx.counted(lambda: compare.measure_paths(all_paths, score, metric, sphere, times,
                                                             progress=ctx.prog, known=known))
        stats = compare.path_statistics(measures)
        ctrl_stats: dict[str, Any] = {}
        rows = dict(measures)
        for name, cp in ctrl_paths.items():
            m = ctx.counted(lambda cp=cp: compare.measure_paths(cp, score, metric, sphere, times,
                                                                progress=ctx.prog))
            ctrl_stats[name] = {**compare.path_statistics(m), "line": stats["line"]}
            rows[name] = m["video"]
        table = compare.per_frame_table(rows, times)
        ctx.run.write_table("per_frame", table)
        ctx.run.write_json("measures.json", stats)
        ctx.run.write_json("controls.json", ctrl_stats)
    return table, stats, ctrl_stats


def control_path_sets(ctrl: dict[str, torch.Tensor], optimised: dict[str, torch.Tensor], sphere: Sphere,
                      config: AnalysisConfig) -> dict[str, dict[str, torch.Tensor]]:
    """Each control's video, optimised, perturbed and smoothed paths (its line is the clip's)."""
    out = {}
    for name, x in ctrl.items():
        comp = paths.comparison_paths(x, sphere, delta=config.delta, smooth_sigma=config.smooth_sigma,
                                      seed=config.seed)
        out[name] = {"video": x, "optimised": optimised[name], "perturbed": comp["perturbed"],
                     "smoothed": comp["smoothed"]}
    return out


# --------------------------------------------------------------------------- decode γ_o


def decode_optimised(ctx: Context, frames: np.ndarray, xo: torch.Tensor, cond: torch.Tensor, t: int) -> None:
    """γ_o back to images with the shared condition (docs/method.md §7.5) → ``optimised/``, ``strip.png``."""
    if ctx.done("decode_optimised", "optimised", "strip.png"):
        return
    cfg, bb, n = ctx.config, ctx.bb, int(frames.shape[0])
    with ctx.run.phase("decode_optimised"):
        from geovid.media.images import from_tensor
        from geovid.media.writers import make_grid
        from geovid.tasks.latents import decode_points

        def dec_prog(i: int, k: int) -> None:
            ctx.prog("decode_optimised", i, k, {"frames": n})

        c = cond.to(bb.dtype) if hasattr(bb, "dtype") else cond
        if cfg.decode_steps is None:
            lat = xo.reshape(n, *bb.latent_shape).to(torch.float32)
            imgs = ctx.counted(lambda: from_tensor(bb.decode(bb.denoise(
                lat, t, c, guidance=cfg.guidance, num_inference_steps=cfg.steps, progress=dec_prog)).cpu()))
        else:
            imgs = ctx.counted(lambda: decode_points(bb, xo, t, c, steps=cfg.decode_steps, progress=dec_prog))
        ctx.run.write_frames("optimised", imgs)
        scale = max(1, 128 // int(frames.shape[1]))
        ctx.run.write_image("strip.png", make_grid([list(frames), list(imgs)], labels=["video", "optimised"],
                                                   scale=scale))
