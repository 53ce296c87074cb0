"""``geovid interpolate`` and ``geovid extrapolate``: image sequences along density geodesics (docs/method.md §5, §6, §8).

Thin: parse the options into :class:`geovid.tasks.interpolate.InterpolationConfig` /
:class:`geovid.tasks.extrapolate.ExtrapolationConfig`, run with a Rich progress display, print the key numbers
and, last, the run folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from geovid.cli import app
from geovid.cli.batch import (
    EngineOpt,
    GpusOpt,
    PairsOpt,
    RayAddressOpt,
    WorkersOpt,
    check_engine_options,
    config_options,
    run_cli_batch,
)
from geovid.cli.common import (
    DtypeOpt,
    ModelOpt,
    NameOpt,
    QuietOpt,
    RichProgress,
    SeedOpt,
    ThreadsOpt,
    set_threads,
    user_errors,
)

DeviceOpt = Annotated[str | None, typer.Option("--device", help="cpu, cuda or mps (default: cuda if present).",
                                               show_default=False)]
OutOpt = Annotated[Path, typer.Option("--out", help="Runs directory; each run gets its own sub-folder.")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Finish an interrupted run with the same inputs and "
                                         "options (the one named by --name, else the newest).")]
AlphaOpt = Annotated[float | None, typer.Option("--alpha", help="α of the density metric p^-α (default: the rule "
                                                "of docs/method.md §3.7, 2/(chord × median |N P s| on the straight "
                                                "path), per run).", show_default=False)]
MetricOpt = Annotated[str, typer.Option("--metric", help="density (p^-α, docs/method.md §3) or score (I + λssᵀ, §4).")]
LambdaOpt = Annotated[float, typer.Option("--lambda", help="λ of the score metric.")]
DecodeStepsOpt = Annotated[int | None, typer.Option("--decode-steps", help="DDIM steps per decoded frame (default "
                                                    "10; 30 = the full 50-step grid below t at ν = 0.6).",
                                                    show_default=False)]
ResizeOpt = Annotated[str, typer.Option("--resize", help="Inputs of another size: center-crop, pad or stretch.")]
FpsOpt = Annotated[float, typer.Option("--fps", help="Frame rate of anim.gif and video.mp4.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print summary.json instead of the table.")]
def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, int | float) and not isinstance(v, bool) else "n/a"


def _summary(run: Path) -> dict[str, Any]:
    try:
        return json.loads((run / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@app.command()
def interpolate(
    image_a: Annotated[Path | None, typer.Argument(help="First image (PNG, JPEG, WebP, ...).",
                                                   show_default=False)] = None,
    image_b: Annotated[Path | None, typer.Argument(help="Second image.", show_default=False)] = None,
    frames: Annotated[int, typer.Option("--frames", "-n", help="Frames, endpoints included (at least 3).")] = 17,
    prompt: Annotated[str, typer.Option("--prompt", help="Text condition of the inversion and the score.")] = "",
    prompt_b: Annotated[str | None, typer.Option("--prompt-b", help="Condition of B's inversion; frames then "
                                                 "blend the two prompt embeddings (docs/interpolation.md).",
                                                 show_default=False)] = None,
    noise_level: Annotated[float, typer.Option("--noise-level", help="Noise level ν in (0, 1] (docs/method.md §1).")] = 0.6,
    alpha: AlphaOpt = None,
    metric: MetricOpt = "density",
    lam: LambdaOpt = 1000.0,
    solver: Annotated[str, typer.Option("--solver", help="geovid (default) or reference (the published "
                                        "schedule, docs/method.md §5).")] = "geovid",
    estimator: Annotated[str | None, typer.Option("--estimator", help="Score estimator: contrast (default, with the "
                                                  "model's negative prompt) or eps (docs/method.md §2).",
                                                  show_default=False)] = None,
    draws: Annotated[int | None, typer.Option("--draws", help="(τ, ε₀) draws per point of the contrast estimator "
                                              "(default 2).", show_default=False)] = None,
    conditioning: Annotated[str | None, typer.Option("--conditioning", help="invert (default without --prompt: "
                                                     "prompt embeddings inverted from A and B, blended along the "
                                                     "path) or prompt (the text prompt).",
                                                     show_default=False)] = None,
    invert_steps: Annotated[int | None, typer.Option("--invert-steps", help="Steps of the endpoint prompt-embedding "
                                                     "inversion (default 60).", show_default=False)] = None,
    uniform: Annotated[bool, typer.Option("--uniform/--no-uniform", help="Perceptually uniform re-timing of every "
                                          "method (docs/method.md §8).")] = True,
    baselines: Annotated[str, typer.Option("--baselines", help="Comma-separated baselines decoded with the "
                                           "same settings: lerp, slerp (at least one).")] = "lerp,slerp",
    perceptual: Annotated[str, typer.Option("--perceptual", help="Perceptual distance: auto (LPIPS when its "
                                            "weights are local, else SSIM), lpips or ssim.")] = "auto",
    max_calls: Annotated[int | None, typer.Option("--max-calls", help="Network-call budget of the solve "
                                                  "(default 150 for the geovid solver).",
                                                  show_default=False)] = None,
    starts: Annotated[int | None, typer.Option("--starts", help="Extra starts of the solve: K bent copies of the "
                                               "slerp solved in one batch, the shortest kept; --max-calls applies "
                                               "to each (default 0, docs/benchmarks.md).",
                                               show_default=False)] = None,
    decode_steps: DecodeStepsOpt = None,
    resize: ResizeOpt = "center-crop",
    fps: FpsOpt = 8.0,
    model: ModelOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = "fp32",
    seed: SeedOpt = 0,
    out: OutOpt = Path("runs"),
    name: NameOpt = None,
    resume: ResumeOpt = False,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    pairs: PairsOpt = None,
    engine: EngineOpt = "local",
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    gpus_per_worker: GpusOpt = 0.0,
) -> None:
    """Interpolate between two images along a geodesic of the model's density (docs/method.md §5, §8).

    Inverts A and B to noise level ν, solves the geodesic between them, decodes it next to the lerp and slerp
    baselines, re-times every sequence to perceptually even steps and writes a run folder (frames/, strip.png,
    compare.png, anim.gif, video.mp4, path.safetensors, summary.json with PPL/PDV/relative length/density
    profiles, per_frame.csv). Prints the run folder last.

    Many pairs: --pairs pairs.csv (columns a,b[,prompt]), one run each, with --engine local or ray
    (docs/batch.md).

    Example: geovid interpolate a.png b.png --frames 17 --out runs
    """
    with user_errors():
        from geovid.errors import InputError
        from geovid.tasks.interpolate import (
            DEFAULT_ESTIMATOR,
            InterpolationConfig,
            parse_baselines,
            run_interpolation,
        )

        check_engine_options(engine, workers, ray_address, gpus_per_worker)
        if pairs is None and (image_a is None or image_b is None):
            raise InputError("give two images A B, or --pairs FILE")
        if pairs is not None and image_a is not None:
            raise InputError("give either two images A B or --pairs FILE, not both")
        if pairs is None and engine != "local":
            raise InputError("--engine ray runs batches: give --pairs FILE")

        cfg = InterpolationConfig(
            image_a=image_a or Path(), image_b=image_b or Path(), frames=frames, prompt=prompt, prompt_b=prompt_b,
            noise_level=noise_level, alpha=alpha, metric=metric, lam=lam, solver=solver,
            estimator=estimator or DEFAULT_ESTIMATOR, draws=draws, conditioning=conditioning, invert_steps=invert_steps,
            uniform=uniform, baselines=parse_baselines(baselines), perceptual=perceptual, max_calls=max_calls,
            starts=starts, decode_steps=decode_steps, resize=resize, fps=fps, model=model, device=device, dtype=dtype, seed=seed,
            out=out, name=name, resume=resume)
        if pairs is not None:
            from geovid.batch import read_pairs

            cfg.resolved()  # option errors before anything starts
            if engine == "local":
                set_threads(threads)
            items = [{**p, "name": f"{name}-{k + 1}" if name else None} for k, p in enumerate(read_pairs(pairs))]
            run_cli_batch("interpolation", items, config_options(cfg, "image_a", "image_b", "name"), engine, workers,
                          ray_address, gpus_per_worker, threads, quiet, as_json)
            return
        cfg.validate()  # option errors before the progress display starts
        set_threads(threads)
        with RichProgress(quiet) as prog:
            run = run_interpolation(cfg, progress=prog)
        s = _summary(run)
        if as_json:
            typer.echo(json.dumps(s, indent=2))
        elif not quiet and s:
            _print_interpolation(run, s)
        typer.echo(str(run))


def _print_interpolation(run: Path, s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    t = Table(title=f"{run.name}  ({s.get('frames')} frames, ν={s.get('noise_level')}, α={_num(s.get('alpha'))}, "
                    f"{s.get('estimator')}; perceptual distance {s.get('perceptual_distance')})",
              title_justify="left")
    for col in ("method", "PPL", "PDV", "log L̃", "mean ‖r‖"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for name, m in (s.get("methods") or {}).items():
        t.add_row(name, _num(m.get("ppl")), _num(m.get("pdv")), _num(m.get("log_relative_length")),
                  _num(m.get("mean_residual")))
    console.print(t)
    rec = s.get("endpoint_reconstruction") or {}
    sol = s.get("solver") or {}
    console.print(f"endpoint reconstruction PSNR: A {_num(rec.get('a_psnr'))} dB, B {_num(rec.get('b_psnr'))} dB; "
                  f"solver {sol.get('solver')}: {sol.get('iterations')} iterations, {sol.get('network_calls')} "
                  "network calls")


@app.command()
def extrapolate(
    inputs: Annotated[list[Path] | None, typer.Argument(help="Two images A B (continue A→B beyond B) or one clip "
                                                        "(continue from its last frames).",
                                                        show_default=False)] = None,
    from_run: Annotated[Path | None, typer.Option("--from-run", help="Continue an interpolation run from its "
                                                  "end tangent.", show_default=False)] = None,
    steps: Annotated[int, typer.Option("--steps", help="RK4 steps of the shot.")] = 16,
    step_size: Annotated[float, typer.Option("--step-size", help="Step size in units of the distance between the "
                                             "last two inputs (1 = continue at the same pace).")] = 1.0,
    decode_every: Annotated[int, typer.Option("--decode-every", help="Decode every K-th point (first and last "
                                              "always).")] = 1,
    substeps: Annotated[int, typer.Option("--substeps", help="RK4 sub-steps per step (accuracy).")] = 4,
    context: Annotated[int, typer.Option("--context", help="Clip frames from the end that give the initial "
                                         "tangent.")] = 2,
    tangent: Annotated[str, typer.Option("--tangent", help="For A B: end tangent of the slerp or of a short "
                                         "geodesic A→B.")] = "slerp",
    prompt: Annotated[str | None, typer.Option("--prompt", help="Text condition (default: empty, or the run's).",
                                               show_default=False)] = None,
    noise_level: Annotated[float | None, typer.Option("--noise-level", help="Noise level ν in (0, 1] (default "
                                                      "0.6, or the run's).", show_default=False)] = None,
    alpha: AlphaOpt = None,
    metric: Annotated[str | None, typer.Option("--metric", help="density (default) or score.",
                                               show_default=False)] = None,
    lam: LambdaOpt = 1000.0,
    estimator: Annotated[str | None, typer.Option("--estimator", help="contrast (default, or the run's) or eps.",
                                                  show_default=False)] = None,
    draws: Annotated[int | None, typer.Option("--draws", help="(τ, ε₀) draws per point of the contrast estimator "
                                              "(default 2, or the run's).", show_default=False)] = None,
    conditioning: Annotated[str | None, typer.Option("--conditioning", help="invert (default without --prompt; "
                                                     "a run's inverted conditions are reused) or prompt.",
                                                     show_default=False)] = None,
    invert_steps: Annotated[int | None, typer.Option("--invert-steps", help="Steps of the prompt-embedding "
                                                     "inversion (default 60).", show_default=False)] = None,
    decode_steps: DecodeStepsOpt = None,
    resize: ResizeOpt = "center-crop",
    fps: FpsOpt = 8.0,
    model: ModelOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = "fp32",
    seed: SeedOpt = 0,
    out: OutOpt = Path("runs"),
    name: NameOpt = None,
    resume: ResumeOpt = False,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Continue a motion beyond its end along a geodesic (docs/method.md §6).

    From two images (A→B continued beyond B), a clip (from its last frames) or an interpolation run
    (--from-run, from its end tangent). Writes frames/, strip.png, anim.gif, video.mp4, path.safetensors,
    per_frame.csv (speed and log-density along the shot) and summary.json. Prints the run folder last.

    Example: geovid extrapolate a.png b.png --steps 8 --out runs
    """
    with user_errors():
        from geovid.tasks.extrapolate import ExtrapolationConfig, run_extrapolation

        cfg = ExtrapolationConfig(
            inputs=list(inputs or []), from_run=from_run, steps=steps, step_size=step_size,
            decode_every=decode_every, substeps=substeps, context=context, tangent=tangent, prompt=prompt, noise_level=noise_level,
            alpha=alpha, metric=metric, lam=lam, estimator=estimator, draws=draws, conditioning=conditioning,
            invert_steps=invert_steps, decode_steps=decode_steps, resize=resize,
            fps=fps, model=model, device=device, dtype=dtype, seed=seed, out=out, name=name, resume=resume)
        cfg.validate()  # option errors before the progress display starts
        set_threads(threads)
        with RichProgress(quiet) as prog:
            run = run_extrapolation(cfg, progress=prog)
        s = _summary(run)
        if as_json:
            typer.echo(json.dumps(s, indent=2))
        elif not quiet and s:
            typer.echo(f"{run.name}: {s.get('steps')} steps of {_num(s.get('step_size'))} × d "
                       f"(d = {_num(s.get('reference_distance'))}, from {s.get('source')}); "
                       f"{s.get('frames_decoded')} frames decoded; log-density change "
                       f"{_num((s.get('log_density') or [0])[-1])} nats")
        typer.echo(str(run))
