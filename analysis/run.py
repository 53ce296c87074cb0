"""``geovid analyze`` as a library call: does a clip trace a geodesic of the image model's density? (docs/method.md §7)

Entry points (the CLI and the TUI call these):

* :class:`AnalysisConfig` — every option, named like the CLI options with underscores;
* :func:`run_analysis` — analyse one clip into a run folder ``OUT/NAME/`` (docs/run-directory.md) and return it;
* :func:`run_batch` — one run per clip plus ``OUT/batch-<time>/batch_summary.csv``.

A run goes through the phases ``decode`` (read exactly the chosen frames, fit them to the model's resolution,
write ``frames/``), ``encode`` (encode + DDIM inversion to ν, ``points.safetensors``), ``paths`` (γ_v on the
sphere, γ_δ, γ_s, γ_l, ``paths.safetensors``), ``solve`` (γ_o by the budgeted BVP solver in normal mode,
``optimised.safetensors`` + ``solve.json``), ``measure`` (docs/method.md §7.3 for all five paths with the same estimator,
α and draws, ``per_frame.csv/.parquet`` + ``measures.json``), ``decode_optimised`` (γ_o back to images,
``optimised/`` + ``strip.png``; skipped with ``decode_optimised=False``) and ``report`` (tests (i)–(iii), excess,
verdict, ``summary.json``, ``plots/``). Every phase leaves its result on disk, so a resumed run
(``resume=True``) skips the phases already done and repeats none of their network calls.

Ctrl-C (KeyboardInterrupt) or a set ``cancel`` event (raised as :class:`geovid.progress.Cancelled` from the
progress callback) leaves the run ``interrupted``; any error leaves it ``failed`` with a one-line message.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geovid.errors import InputError
from geovid.method import reference as method_reference
from geovid.progress import ProgressFn
from geovid.runs.options import RESIZE_POLICIES, RunOptions
from geovid.runs.store import Run, to_jsonable

METRICS = ("density", "score")
ESTIMATORS = ("eps", "contrast")
#: Default solver budget: network calls per frame (``max_calls = CALLS_PER_FRAME × frames``); the solver takes
#: single-draw contrast steps (2 calls per interior point), so 100 per frame is ~55 iterations (docs/analysis.md).
CALLS_PER_FRAME = 100
PHASES = ("decode", "encode", "paths", "solve", "measure", "decode_optimised", "report")
PLOTS = ("plots/residual.png", "plots/log_density.png", "plots/projection.png")


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

    def run_config(self) -> dict[str, Any]:
        """The resolved options stored in a run's manifest (and compared on resume)."""
        from geovid.backbones.loader import model_name

        keep = ("frames", "stride", "start", "end", "noise_level", "metric", "lam", "estimator", "prompt", "dtype",
                "seed", "decode_optimised", "max_calls", "calls_per_frame", "max_iters", "delta", "smooth_sigma",
                "steps", "decode_steps", "guidance", "sphere", "draws", "conditioning", "invert_steps",
                "trust", "controls")
        cfg: dict[str, Any] = {k: getattr(self, k) for k in keep}
        cfg["fit"] = self.resize  # the manifest's name for it (runs made before --fit became --resize)
        cfg["alpha"] = "rule" if self.alpha is None else float(self.alpha)
        cfg["model"] = model_name(self.model)
        cfg["device"] = self.device or "auto"
        cfg["solver"] = "geovid"
        cfg["solver_mode"] = "normal"
        return to_jsonable(cfg)

    def validate(self) -> None:
        """Raise InputError (one line, naming the option) for invalid values."""
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
        if self.estimator not in ESTIMATORS:
            raise InputError(f"--estimator must be one of {', '.join(ESTIMATORS)}, got {self.estimator!r}")
        if not (math.isfinite(float(self.lam)) and float(self.lam) > 0):
            raise InputError(f"--lambda must be a positive number, got {self.lam}")
        if not (math.isfinite(float(self.delta)) and float(self.delta) > 0):
            raise InputError(f"--delta must be a positive number, got {self.delta}")
        if not (math.isfinite(float(self.smooth_sigma)) and float(self.smooth_sigma) > 0):
            raise InputError(f"--smooth-sigma must be a positive number of frames, got {self.smooth_sigma}")
        if isinstance(self.draws, bool) or int(self.draws) < 1:
            raise InputError(f"--draws must be at least 1, got {self.draws}")
        if self.conditioning not in ("invert", "prompt"):
            raise InputError(f"--conditioning must be invert or prompt, got {self.conditioning!r}")
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


# --------------------------------------------------------------------------- small helpers


def _done(run: Run, phase: str, *files: str) -> bool:
    """A phase counts as done on resume only if it was recorded and its outputs are still there."""
    return run.is_done(phase) and all((run.path / f).exists() for f in files)


def _read_png_frames(folder: Path) -> np.ndarray:
    from PIL import Image

    files = sorted(folder.glob("[0-9][0-9][0-9][0-9].png"))
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def _open_run(config: AnalysisConfig, clip: Path, name: str | None, cfg: dict[str, Any]) -> tuple[Run, bool]:
    """Create the run, or (``resume``) continue the matching one. Returns (run, already_complete)."""
    from geovid.backbones.loader import model_name
    from geovid.tasks.common import open_run

    return open_run("analysis", cfg, config.out, name, config.resume, [clip], model_name(config.model),
                    config.seed, command=config.command)


# --------------------------------------------------------------------------- one clip


def run_analysis(config: AnalysisConfig, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None, created: list[Path] | None = None) -> Path:
    """Analyse ``config.clips[0]`` (docs/method.md §7) into a new (or resumed) run folder and return it.

    With several clips this runs :func:`run_batch` and returns the first clip's run folder.

    Args:
        config: the options.
        progress: ``progress(phase, done, total, info)`` (geovid.progress convention).
        cancel: set it to stop the run cooperatively; the run is then marked ``interrupted`` and
            :class:`geovid.progress.Cancelled` is raised.
        created: when given, the run folder is appended to it as soon as it exists (so that a caller knows
            the folder of a run that then fails; used by the batch engines, geovid.batch).

    Returns:
        The run folder (status ``complete``).

    Raises:
        GeovidError: bad options, unreadable clip, clip too short, model errors (run marked ``failed``).
        Cancelled, KeyboardInterrupt: the run is marked ``interrupted`` and can be resumed.
    """
    if len(config.clips) > 1:
        return run_batch(config, progress=progress, cancel=cancel)[0]
    if not config.clips:
        raise InputError("no clip given: pass one or more video files")
    config.validate()  # bad options: one error, before any run folder is made
    return _analyse_clip(config, config.clips[0], config.name, progress, cancel, created)


def _analyse_clip(config: AnalysisConfig, clip: Path, name: str | None, progress: ProgressFn | None,
                  cancel: threading.Event | None, created: list[Path] | None = None) -> Path:
    from geovid.tasks.common import with_cancel

    prog = with_cancel(progress, cancel)
    cfg = config.run_config()
    run, complete = _open_run(config, clip, name, cfg)
    if created is not None:
        created.append(run.path)
    if complete:
        prog("report", 1, 1, {"run": run.name, "note": "already complete"})
        return run.path
    with run.guard():
        _execute(run, config, clip, prog)
    return run.path


def _decode_frames(run: Run, config: AnalysisConfig, clip: Path, prog: ProgressFn) -> tuple[np.ndarray, dict[str, Any]]:
    """Phase ``decode``: exactly the chosen frames, fitted to the model's resolution (docs/media.md policy)."""
    if _done(run, "decode", "clip.json", "frames"):
        frames = _read_png_frames(run.path / "frames")
        meta = json.loads((run.path / "clip.json").read_text(encoding="utf-8"))
    else:
        with run.phase("decode"):
            from geovid.backbones.loader import model_info
            from geovid.media.decode import probe, read_frames, select_frames
            from geovid.media.images import fit_to_resolution

            info = probe(clip)
            indices = select_frames(info, frames=config.frames, stride=config.stride, start=config.start,
                                    end=config.end, min_frames=3)
            raw, times = read_frames(info, indices, progress=prog)
            res = int(model_info(config.model)["resolution"])  # configs only: no weights loaded yet
            frames = fit_to_resolution(raw, res, policy=config.resize)  # type: ignore[arg-type]
            run.write_frames("frames", frames)
            meta = {"indices": indices, "time_s": times, "video": info.to_dict(), "resolution": res,
                    "fit": config.resize}
            run.write_json("clip.json", meta)
    return frames, meta


def _execute(run: Run, config: AnalysisConfig, clip: Path, prog: ProgressFn) -> None:
    """The phases of docs/method.md §7 on one clip, each skipped when its outputs are on disk (resume)."""
    import torch

    from analysis import paths, phases
    from geovid.backbones.loader import load_backbone
    from geovid.geometry.metrics import make_metric
    from geovid.tasks.latents import make_score

    prog("setup", 1, 1, {"run": run.name})

    frames, meta = _decode_frames(run, config, clip, prog)
    n = int(frames.shape[0])
    times_t = torch.tensor(meta["time_s"], dtype=torch.float64)

    t0 = time.perf_counter()
    prog("model", 0, 1, {"model": _model_id(config)})
    bb = load_backbone(config.model, device=config.device, dtype=config.dtype)
    run.manifest["timings"]["load_model"] = round(time.perf_counter() - t0, 4)
    prog("model", 1, 1, {"model": bb.name})

    def counted(fn: Callable[[], Any]) -> Any:
        c0 = int(bb.network_calls)
        try:
            return fn()
        finally:
            run.add_network_calls(int(bb.network_calls) - c0)

    ctx = phases.Context(run=run, config=config, bb=bb, prog=prog, counted=counted)
    points, cond, t, cond_info = phases.encode(ctx, frames)
    x, sphere, comp, ctrl = phases.build_paths(ctx, points, times_t)

    # Scores (docs/method.md §2): the measures average `draws` contrast draws per point; the solver steps on one.
    score = make_score(bb, config.estimator, t, config.prompt, config.seed, cond=cond.to(bb.dtype),
                       draws=config.draws)
    step_score = make_score(bb, config.estimator, t, config.prompt, config.seed, cond=cond.to(bb.dtype), draws=1)
    alpha, alpha_info, s_line = phases.resolve_alpha(ctx, comp["line"], sphere, score)
    metric = make_metric(config.metric, alpha=alpha, lam=config.lam)
    budget = int(config.max_calls) if config.max_calls is not None else int(config.calls_per_frame) * n
    optimised, solve_info = phases.solve(ctx, {"video": x, **ctrl}, step_score, metric, sphere, budget,
                                         config.trust or None)
    xo = optimised["video"]
    all_paths = {"video": x, "optimised": xo, **comp}
    table, stats, ctrl_stats = phases.measure(ctx, {k: all_paths[k] for k in paths.PATH_NAMES},
                                              phases.control_path_sets(ctrl, optimised, sphere, config),
                                              score, metric, sphere, times_t,
                                              known=None if s_line is None else {"line": s_line})
    if config.decode_optimised:
        phases.decode_optimised(ctx, frames, xo, cond, t)

    _report(run, config, clip, frames, meta, t, alpha, alpha_info, cond_info, sphere, stats, ctrl_stats,
            solve_info, table, all_paths, list(ctrl), prog)
    required = ["frames/", *PLOTS, "measures.json", "points.safetensors", "optimised.safetensors"]
    if config.decode_optimised:
        required += ["optimised/", "strip.png"]
    run.complete(required=required)


def _report(run: Run, config: AnalysisConfig, clip: Path, frames: np.ndarray, meta: dict[str, Any], t: int,
            alpha: float, alpha_info: dict[str, Any], cond_info: dict[str, Any], sphere: Any,
            stats: dict[str, Any], ctrl_stats: dict[str, Any], solve_info: dict[str, Any], table: Any,
            all_paths: dict[str, Any], ctrl_names: list[str], prog: ProgressFn) -> None:
    """Phase ``report``: tests (i)–(iii), excess, controls, verdict, plots, summary.json (docs/method.md §7.4, §7.7)."""
    from analysis import plots, verdict

    n = int(frames.shape[0])
    with run.phase("report"):
        title = f"{clip.name}: ν = {config.noise_level:g}, α = {alpha:.3g}, {config.estimator}"
        plots.plot_residuals(table, run.path / "plots" / "residual.png",
                             title=f"geodesic gradient per frame — {title}")
        plots.plot_log_density(table[~table["path"].isin(ctrl_names)], run.path / "plots" / "log_density.png",
                               title=f"relative log-density — {title}")
        plots.plot_projection(all_paths, run.path / "plots" / "projection.png",
                              title=f"paths in latent space (PCA) — {clip.name}")
        recon = None
        if config.decode_optimised and (run.path / "optimised").is_dir():
            from geovid.tasks.latents import psnr

            dec = _read_png_frames(run.path / "optimised")
            recon = {"first_psnr": psnr(frames[0], dec[0]), "last_psnr": psnr(frames[-1], dec[-1]),
                     "note": "PSNR (dB) of the decoded endpoints of γ_o (= those of γ_v on the sphere) against "
                             "the input frames: the inversion/denoising round trip (docs/method.md §1)"}
        summary = {
            "clip": str(os.path.abspath(clip)),
            "frames": n,
            "frame_indices": meta["indices"],
            "time_s": meta["time_s"],
            "noise_level": config.noise_level,
            "timestep": t,
            "metric": config.metric,
            "alpha": alpha,
            "alpha_rule": alpha_info,
            "estimator": config.estimator,
            "draws": config.draws if config.estimator == "contrast" else 1,
            "condition": cond_info,
            "seed": config.seed,
            "sphere_radius": sphere.radius,
            "paths": stats,
            **verdict.summarise(stats, config.metric, ctrl_stats),
            "solver": {k: solve_info.get(k) for k in ("solver", "mode", "iterations", "converged", "network_calls",
                                                      "budget", "trust_radius", "max_displacement",
                                                      "at_trust_bound")},
            "endpoint_reconstruction": recon,
            "method": method_reference("§7"),
        }
        run.write_json("summary.json", summary)
        prog("report", 1, 1, {"excess": summary["geodesic_excess"] or math.nan})


def _model_id(config: AnalysisConfig) -> str:
    """The model id a run records (``bundled:geovid-tiny-sd``, a hub id, or a folder)."""
    from geovid.backbones.loader import model_name

    return model_name(config.model)


def config_from_dict(values: dict[str, Any]) -> AnalysisConfig:
    """An AnalysisConfig from a plain dict (unknown keys refused with a one-line error)."""
    names = {f.name for f in dataclasses.fields(AnalysisConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"unknown analysis option(s): {', '.join(unknown)}")
    return AnalysisConfig(**values)


# The several-clips entry points live in analysis.batch; re-exported here (the CLI, TUI and engines import them).
from analysis.batch import (  # noqa: E402
    BATCH_COLUMNS,
    batch_names,
    batch_row,
    run_batch,
    write_batch_summary,
)

__all__ = [
    "BATCH_COLUMNS",
    "AnalysisConfig",
    "batch_names",
    "batch_row",
    "config_from_dict",
    "run_analysis",
    "run_batch",
    "write_batch_summary",
]
