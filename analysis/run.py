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
import datetime as _dt
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

from geovid.errors import GeovidError, InputError
from geovid.method import reference as method_reference
from geovid.progress import Cancelled, ProgressFn
from geovid.runs.options import RunOptions
from geovid.runs.store import MANIFEST, Run, to_jsonable

METRICS = ("density", "score")
ESTIMATORS = ("eps", "contrast")
#: Default solver budget: network calls per frame (``max_calls = CALLS_PER_FRAME × frames``).
CALLS_PER_FRAME = 40
PHASES = ("decode", "encode", "paths", "solve", "measure", "decode_optimised", "report")
PLOTS = ("plots/residual.png", "plots/log_density.png", "plots/projection.png")


@dataclass
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
    """α of the density metric p^(−α) (docs/method.md §3); ``None``: ``default_alpha(estimator)`` (1 for eps)."""
    metric: str = "density"
    """``density`` (docs/method.md §3) or ``score`` (docs/method.md §4)."""
    lam: float = 1000.0
    """λ of the score metric I + λ s sᵀ (used with ``metric="score"`` only)."""
    estimator: str = "eps"
    """Score estimator (docs/method.md §2): ``eps`` (deterministic, 1 call per point) or ``contrast``."""
    prompt: str = ""
    """Text condition for inversion, scores and decoding (empty: unconditional, as in the reference)."""
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
    fit: str = "center-crop"
    """How frames are brought to the model resolution: ``center-crop``, ``pad`` or ``stretch``."""
    sphere: bool = True
    """Sphere constraint (docs/method.md §1): all points at the mean norm of the video's points."""
    command: list[str] | None = None
    """Command line recorded in the manifest (default: ``sys.argv``)."""

    def __post_init__(self) -> None:
        if isinstance(self.clips, str | os.PathLike):
            self.clips = [Path(self.clips)]
        self.clips = [Path(c).expanduser() for c in self.clips]
        self.out = Path(self.out).expanduser()

    def resolved_alpha(self) -> float:
        """α in force: the given one, or the estimator's default (docs/method.md §3)."""
        from geovid.tasks.latents import default_alpha

        return float(self.alpha) if self.alpha is not None else float(default_alpha(self.estimator))

    def run_config(self) -> dict[str, Any]:
        """The resolved options stored in a run's manifest (and compared on resume)."""
        from geovid.backbones.loader import model_name

        keep = ("frames", "stride", "start", "end", "noise_level", "metric", "lam", "estimator", "prompt", "dtype",
                "seed", "decode_optimised", "max_calls", "calls_per_frame", "max_iters", "delta", "smooth_sigma",
                "steps", "decode_steps", "guidance", "fit", "sphere")
        cfg: dict[str, Any] = {k: getattr(self, k) for k in keep}
        cfg["alpha"] = self.resolved_alpha()
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
            raise InputError(f"--lam must be a positive number, got {self.lam}")
        if not (math.isfinite(float(self.delta)) and float(self.delta) > 0):
            raise InputError(f"--delta must be a positive number, got {self.delta}")
        if not (math.isfinite(float(self.smooth_sigma)) and float(self.smooth_sigma) > 0):
            raise InputError(f"--smooth-sigma must be a positive number of frames, got {self.smooth_sigma}")
        if self.max_calls is not None and int(self.max_calls) < 1:
            raise InputError(f"--max-calls must be at least 1, got {self.max_calls}")
        if int(self.calls_per_frame) < 1:
            raise InputError(f"calls_per_frame must be at least 1, got {self.calls_per_frame}")
        if int(self.steps) < 1:
            raise InputError(f"--steps must be at least 1, got {self.steps}")
        if self.decode_steps is not None and int(self.decode_steps) < 1:
            raise InputError(f"--decode-steps must be at least 1, got {self.decode_steps}")
        if self.fit not in ("center-crop", "pad", "stretch"):
            raise InputError(f"--fit must be center-crop, pad or stretch, got {self.fit!r}")
        if self.start is not None and not (math.isfinite(float(self.start)) and float(self.start) >= 0):
            raise InputError(f"--start must be a time >= 0 s (got {self.start})")


# --------------------------------------------------------------------------- small helpers


def _progress_fn(progress: ProgressFn | None, cancel: threading.Event | None) -> ProgressFn:
    """The callback every phase reports to; raises Cancelled once ``cancel`` is set (cooperative stop)."""

    def prog(phase: str, done: int, total: int | None, info: dict[str, Any]) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("analysis cancelled")
        if progress is not None:
            progress(phase, done, total, info)

    return prog


def _save_tensors(run: Run, relpath: str, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> Path:
    """safetensors file inside the run, written atomically."""
    from safetensors.torch import save_file

    target = run.path / relpath
    tmp = target.with_name(target.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, target)
    return target


def _load_tensors(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    from safetensors import safe_open

    out = {}
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
        for k in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
            out[k] = fh.get_tensor(k)
    return out, meta


def _done(run: Run, phase: str, *files: str) -> bool:
    """A phase counts as done on resume only if it was recorded and its outputs are still there."""
    return run.is_done(phase) and all((run.path / f).exists() for f in files)


def _read_png_frames(folder: Path) -> np.ndarray:
    from PIL import Image

    files = sorted(folder.glob("[0-9][0-9][0-9][0-9].png"))
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


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
    prog = _progress_fn(progress, cancel)
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


def _execute(run: Run, config: AnalysisConfig, clip: Path, prog: ProgressFn) -> None:
    """The phases of docs/method.md §7 on one clip, each skipped when its outputs are on disk (resume)."""
    import torch

    from analysis import compare, paths, plots, verdict
    from geovid.backbones.loader import load_backbone
    from geovid.geometry.metrics import make_metric
    from geovid.geometry.paths import Sphere
    from geovid.tasks.latents import images_to_points, make_score, points_to_images

    config.validate()
    prog("setup", 1, 1, {"run": run.name})

    # ---- decode: exactly the chosen frames, fitted to the model's resolution (docs/media.md policy)
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
            frames = fit_to_resolution(raw, res, policy=config.fit)  # type: ignore[arg-type]
            run.write_frames("frames", frames)
            meta = {"indices": indices, "time_s": times, "video": info.to_dict(), "resolution": res,
                    "fit": config.fit}
            run.write_json("clip.json", meta)
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

    # ---- encode: z₀ = E(I), DDIM inversion to t_ν (docs/method.md §1); cached by content hash as well
    if _done(run, "encode", "points.safetensors"):
        data, m = _load_tensors(run.path / "points.safetensors")
        points, t = data["points"], int(m["t"])
    else:
        with run.phase("encode"):
            enc = counted(lambda: images_to_points(
                bb, frames, config.noise_level, prompt=config.prompt, guidance=config.guidance, steps=config.steps,
                policy=config.fit, progress=lambda i, k: prog("encode", i, k, {"frames": n})))
            points, t = enc.points, int(enc.t)
            _save_tensors(run, "points.safetensors", {"points": points, "z0": enc.z0}, {"t": str(t)})

    # ---- paths: γ_v on the sphere and the comparison paths (docs/method.md §7.2)
    if _done(run, "paths", "paths.safetensors"):
        data, m = _load_tensors(run.path / "paths.safetensors")
        radius = m.get("radius", "none")
        sphere = Sphere(None if radius == "none" else float(radius))
        x = data["video"]
        comp = {k: data[k] for k in ("perturbed", "smoothed", "line")}
    else:
        with run.phase("paths"):
            x, sphere = paths.video_path(points, sphere_on=config.sphere)
            comp = paths.comparison_paths(x, sphere, delta=config.delta, smooth_sigma=config.smooth_sigma,
                                          seed=config.seed)
            _save_tensors(run, "paths.safetensors", {"video": x, **comp, "time_s": times_t},
                          {"radius": repr(sphere.radius) if sphere.on else "none",
                           "median_step": repr(paths.median_step(x))})
            prog("paths", 1, 1, {"radius": sphere.radius or 0.0})

    score = make_score(bb, config.estimator, t, config.prompt, config.seed)
    metric = make_metric(config.metric, alpha=config.resolved_alpha(), lam=config.lam)
    budget = int(config.max_calls) if config.max_calls is not None else int(config.calls_per_frame) * n

    # ---- solve: γ_o, the budgeted BVP from γ_v in normal mode (docs/method.md §5, §7.2)
    if _done(run, "solve", "optimised.safetensors", "solve.json"):
        xo = _load_tensors(run.path / "optimised.safetensors")[0]["path"]
        solve_info = json.loads((run.path / "solve.json").read_text(encoding="utf-8"))
    else:
        with run.phase("solve"):
            def solve_prog(phase: str, done: int, total: int | None, info: dict[str, Any]) -> None:
                prog("solve", min(int(info.get("calls", done)), budget), budget, info)

            res = counted(lambda: paths.optimised_path(x, score, metric, sphere, max_calls=budget,
                                                       max_iters=config.max_iters, seed=config.seed,
                                                       progress=solve_prog))
            xo = res.path
            solve_info = {"solver": res.solver, "mode": "normal", "iterations": res.iterations,
                          "converged": bool(res.converged), "network_calls": res.network_calls, "budget": budget,
                          "seconds": round(res.seconds, 4), "history": res.history}
            _save_tensors(run, "optimised.safetensors", {"path": xo, "time_s": times_t})
            run.write_json("solve.json", solve_info)

    # ---- measure: the same estimator, α and draws for every path (docs/method.md §7.3)
    all_paths = {"video": x, "optimised": xo, **comp}
    if _done(run, "measure", "per_frame.csv", "per_frame.parquet", "measures.json"):
        stats = json.loads((run.path / "measures.json").read_text(encoding="utf-8"))
        import pandas as pd

        table = pd.read_parquet(run.path / "per_frame.parquet")
    else:
        with run.phase("measure"):
            measures = counted(lambda: compare.measure_paths(
                {k: all_paths[k] for k in paths.PATH_NAMES}, score, metric, sphere, times_t, progress=prog))
            table = compare.per_frame_table(measures, times_t)
            stats = compare.path_statistics(measures)
            run.write_table("per_frame", table)
            run.write_json("measures.json", stats)

    # ---- decode_optimised: what the model makes of the clip (docs/method.md §7.5)
    if config.decode_optimised and not _done(run, "decode_optimised", "optimised", "strip.png"):
        with run.phase("decode_optimised"):
            from geovid.media.writers import make_grid

            def dec_prog(i: int, k: int) -> None:
                prog("decode_optimised", i, k, {"frames": n})

            if config.decode_steps is None:
                imgs = counted(lambda: points_to_images(bb, xo, t, prompt=config.prompt, guidance=config.guidance,
                                                        steps=config.steps, progress=dec_prog))
            else:
                from geovid.tasks.latents import decode_points

                cond = bb.embed_prompt(config.prompt)
                imgs = counted(lambda: decode_points(bb, xo, t, cond, steps=config.decode_steps, progress=dec_prog))
            run.write_frames("optimised", imgs)
            scale = max(1, 128 // int(frames.shape[1]))
            run.write_image("strip.png", make_grid([list(frames), list(imgs)], labels=["video", "optimised"],
                                                   scale=scale))

    # ---- report: tests (i)–(iii), excess, verdict, plots (docs/method.md §7.4)
    with run.phase("report"):
        title = f"{clip.name}: ν = {config.noise_level:g}, α = {config.resolved_alpha():g}, {config.estimator}"
        plots.plot_residuals(table, run.path / "plots" / "residual.png",
                             title=f"geodesic gradient per frame — {title}")
        plots.plot_log_density(table, run.path / "plots" / "log_density.png",
                               title=f"relative log-density — {title}")
        plots.plot_projection(all_paths, run.path / "plots" / "projection.png",
                              title=f"paths in latent space (PCA) — {clip.name}")
        recon = None
        if config.decode_optimised and (run.path / "optimised").is_dir():
            dec = _read_png_frames(run.path / "optimised")
            recon = {"first_psnr": _psnr(frames[0], dec[0]), "last_psnr": _psnr(frames[-1], dec[-1]),
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
            "alpha": config.resolved_alpha(),
            "estimator": config.estimator,
            "seed": config.seed,
            "sphere_radius": sphere.radius,
            "paths": stats,
            **verdict.summarise(stats, config.metric),
            "solver": {k: solve_info.get(k) for k in ("solver", "mode", "iterations", "converged", "network_calls",
                                                      "budget")},
            "endpoint_reconstruction": recon,
            "method": method_reference("§7"),
        }
        run.write_json("summary.json", summary)
        prog("report", 1, 1, {"excess": summary["geodesic_excess"] or math.nan})
    required = ["frames/", *PLOTS, "measures.json", "points.safetensors", "optimised.safetensors"]
    if config.decode_optimised:
        required += ["optimised/", "strip.png"]
    run.complete(required=required)


def _model_id(config: AnalysisConfig) -> str:
    """The model id a run records (``bundled:geovid-tiny-sd``, a hub id, or a folder)."""
    from geovid.backbones.loader import model_name

    return model_name(config.model)


# --------------------------------------------------------------------------- several clips


BATCH_COLUMNS = ("name", "run", "clip", "status", "mean_residual_video", "mean_residual_optimised",
                 "mean_residual_perturbed", "mean_residual_smoothed", "mean_residual_line", "test_i", "test_ii",
                 "test_iii", "tests_passed", "geodesic_excess", "error")


def batch_row(run_path: Path | None, clip: Path, error: str | None = None) -> dict[str, Any]:
    """One row of batch_summary.csv from a run folder's manifest and summary."""
    row: dict[str, Any] = dict.fromkeys(BATCH_COLUMNS)
    row.update({"clip": str(os.path.abspath(clip)), "error": error})
    if run_path is None:
        row["status"] = "failed"
        return row
    row["run"], row["name"] = str(run_path), run_path.name
    try:
        row["status"] = json.loads((run_path / MANIFEST).read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError):
        row["status"] = "damaged"
    try:
        s = json.loads((run_path / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return row
    for p in ("video", "optimised", "perturbed", "smoothed", "line"):
        row[f"mean_residual_{p}"] = (s.get("paths", {}).get(p) or {}).get("mean_residual")
    tests = s.get("tests", {})
    for k in ("i", "ii", "iii"):
        row[f"test_{k}"] = (tests.get(k) or {}).get("passed")
    row["tests_passed"] = sum(1 for k in ("i", "ii", "iii") if row[f"test_{k}"] is True)
    row["geodesic_excess"] = s.get("geodesic_excess")
    return row


def batch_names(config: AnalysisConfig) -> list[str | None]:
    """The run name of each clip: ``None`` (default names) without ``--name``, else ``<name>-<clip stem>``
    (``<name>-<k>-<stem>`` when stems repeat); the one name itself for a single clip."""
    if config.name is None:
        return [None] * len(config.clips)
    if len(config.clips) == 1:
        return [config.name]
    stems = [c.stem for c in config.clips]
    dup = len(set(stems)) < len(stems)
    import re

    def clean(s: str) -> str:
        return re.sub(r"[^A-Za-z0-9._+@=-]+", "-", s).strip("-.") or "clip"

    return [f"{config.name}-{i + 1}-{clean(s)}" if dup else f"{config.name}-{clean(s)}" for i, s in enumerate(stems)]


def run_batch(config: AnalysisConfig, progress: ProgressFn | None = None,
              cancel: threading.Event | None = None) -> list[Path]:
    """Analyse every clip of ``config.clips`` (one run each); with several clips also write
    ``OUT/batch-<time>/batch_summary.csv`` (one row per clip, docs/run-directory.md).

    A clip that fails does not stop the others; after the last one a GeovidError lists the failures.
    Ctrl-C or ``cancel`` stops the batch at once (the current run is marked interrupted).

    Returns:
        The run folders, in the order of the clips (failed runs included).
    """
    if not config.clips:
        raise InputError("no clip given: pass one or more video files")
    config.validate()  # bad options: one error, before any run folder is made
    names = batch_names(config)
    runs: list[Path] = []
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    single = len(config.clips) == 1
    for k, (clip, name) in enumerate(zip(config.clips, names)):
        created: list[Path] = []
        if progress is not None and not single:
            progress("batch", k, len(config.clips), {"clip": clip.name})
        try:
            path = _analyse_clip(config, clip, name, progress, cancel, created)
        except (KeyboardInterrupt, Cancelled):
            raise
        except GeovidError as err:
            if single:
                raise
            errors.append(f"{clip.name}: {err}")
            path = created[0] if created else None
            rows.append(batch_row(path, clip, " ".join(str(err).split())))
            if path is not None:
                runs.append(path)
            continue
        runs.append(path)
        rows.append(batch_row(path, clip))
    if not single:
        if progress is not None:
            progress("batch", len(config.clips), len(config.clips), {})
        write_batch_summary(config.out, rows)
    if errors:
        raise GeovidError(f"{len(errors)} of {len(config.clips)} clips failed: " + "; ".join(errors))
    return runs


def write_batch_summary(out: Path, rows: list[dict[str, Any]]) -> Path:
    """``OUT/batch-<time>/batch_summary.csv`` (created only now, so a half-made batch folder never exists)."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    base = f"batch-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    for k in range(1, 1000):
        folder = out / (base if k == 1 else f"{base}-{k}")
        try:
            folder.mkdir()
            break
        except FileExistsError:
            continue
    target = folder / "batch_summary.csv"
    tmp = target.with_name(target.name + ".tmp")
    pd.DataFrame(rows, columns=list(BATCH_COLUMNS)).to_csv(tmp, index=False)
    os.replace(tmp, target)
    return target


def config_from_dict(values: dict[str, Any]) -> AnalysisConfig:
    """An AnalysisConfig from a plain dict (unknown keys refused with a one-line error)."""
    names = {f.name for f in dataclasses.fields(AnalysisConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"unknown analysis option(s): {', '.join(unknown)}")
    return AnalysisConfig(**values)
