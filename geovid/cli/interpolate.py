"""``geovid interpolate`` and ``geovid extrapolate``: image sequences along density geodesics (docs/method.md §5, §6, §8).

Thin: parse the options into :class:`geovid.tasks.interpolate.InterpolationConfig` /
:class:`geovid.tasks.extrapolate.ExtrapolationConfig`, run with a Rich progress display, print the key numbers
and, last, the run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from geovid.cli.batch import check_engine_options, config_options, run_cli_batch
from geovid.cli.common import (
    AlphaOpt,
    ConditioningOpt,
    DecodeStepsOpt,
    DrawsOpt,
    EstimatorOpt,
    FpsOpt,
    InvertStepsOpt,
    LambdaOpt,
    MaxCallsOpt,
    MetricOpt,
    PairsOpt,
    ResizeOpt,
    RunArgs,
    run_and_show,
    run_options,
    set_threads,
    user_errors,
)


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, int | float) and not isinstance(v, bool) else "n/a"


InterpolatePromptBOpt = Annotated[str | None, typer.Option("--prompt-b", help="Condition of B's inversion; frames then "
    "blend the two prompt embeddings (docs/interpolation.md).",
    show_default=False)]
InterpolateBaselinesOpt = Annotated[str, typer.Option("--baselines", help="Comma-separated baselines decoded with the "
    "same settings: lerp, slerp (at least one).")]
InterpolatePerceptualOpt = Annotated[str, typer.Option("--perceptual", help="Perceptual distance: auto (LPIPS when its "
    "weights are local, else SSIM), lpips or ssim.")]
InterpolateStartsOpt = Annotated[int | None, typer.Option("--starts", help="Extra starts of the solve: K bent copies of the "
    "slerp solved in one batch, the shortest kept; --max-calls applies "
    "to each (default 0, docs/benchmarks.md).",
    show_default=False)]



@run_options(engine=True)
def interpolate(
    image_a: Annotated[Path | None, typer.Argument(help="First image (PNG, JPEG, WebP, ...).",
                                                   show_default=False)] = None,
    image_b: Annotated[Path | None, typer.Argument(help="Second image.", show_default=False)] = None,
    frames: Annotated[int, typer.Option("--frames", "-n", help="Frames, endpoints included (at least 3).")] = 17,
    prompt: Annotated[str, typer.Option("--prompt", help="Text condition of the inversion and the score.")] = "",
    prompt_b: InterpolatePromptBOpt = None,
    noise_level: Annotated[float, typer.Option("--noise-level", help="Noise level ν in (0, 1] (docs/method.md §1).")] = 0.6,
    alpha: AlphaOpt = None,
    metric: MetricOpt = "density",
    lam: LambdaOpt = 1000.0,
    solver: Annotated[str, typer.Option("--solver", help="geovid (default) or reference (the published "
                                        "schedule, docs/method.md §5).")] = "geovid",
    estimator: EstimatorOpt = None,
    draws: DrawsOpt = None,
    conditioning: ConditioningOpt = None,
    invert_steps: InvertStepsOpt = None,
    uniform: Annotated[bool, typer.Option("--uniform/--no-uniform", help="Perceptually uniform re-timing of every "
                                          "method (docs/method.md §8).")] = True,
    baselines: InterpolateBaselinesOpt = "lerp,slerp",
    perceptual: InterpolatePerceptualOpt = "auto",
    max_calls: MaxCallsOpt = None,
    starts: InterpolateStartsOpt = None,
    decode_steps: DecodeStepsOpt = None,
    resize: ResizeOpt = "center-crop",
    fps: FpsOpt = 8.0,
    pairs: PairsOpt = None,
    run: RunArgs = RunArgs(),
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
        from geovid.tasks.interpolate import InterpolationConfig, parse_baselines, run_interpolation

        check_engine_options(run.engine, run.workers, run.ray_address, run.gpus_per_worker)
        _check_inputs(image_a, image_b, pairs, run.engine)
        cfg = InterpolationConfig(
            image_a=image_a or Path(), image_b=image_b or Path(), frames=frames, prompt=prompt, prompt_b=prompt_b,
            noise_level=noise_level, alpha=alpha, metric=metric, lam=lam, solver=solver, estimator=estimator,
            draws=draws, conditioning=conditioning, invert_steps=invert_steps,
            uniform=uniform, baselines=parse_baselines(baselines), perceptual=perceptual, max_calls=max_calls,
            starts=starts, decode_steps=decode_steps, resize=resize, fps=fps, **run.job_options())
        if pairs is None:
            cfg = cfg.resolve()
            cfg.check_inputs()  # missing images, before the progress display starts
            run_and_show(run_interpolation, cfg, run, _print_interpolation)
            return
        from geovid.batch import read_pairs

        cfg.resolve()  # option errors before anything starts
        if run.engine == "local":
            set_threads(run.threads)
        items = [{**p, "name": f"{run.name}-{k + 1}" if run.name else None} for k, p in enumerate(read_pairs(pairs))]
        run_cli_batch("interpolation", items, config_options(cfg, "image_a", "image_b", "name"), run.engine,
                      run.workers, run.ray_address, run.gpus_per_worker, run.threads, run.quiet, run.as_json)


def _check_inputs(image_a: Path | None, image_b: Path | None, pairs: Path | None, engine: str) -> None:
    """Two images, or a pairs file (the only input of a Ray batch)."""
    from geovid.errors import InputError

    if pairs is None and (image_a is None or image_b is None):
        raise InputError("give two images A B, or --pairs FILE")
    if pairs is not None and image_a is not None:
        raise InputError("give either two images A B or --pairs FILE, not both")
    if pairs is None and engine != "local":
        raise InputError("--engine ray runs batches: give --pairs FILE")


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


@run_options()
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
    estimator: EstimatorOpt = None,
    draws: DrawsOpt = None,
    conditioning: ConditioningOpt = None,
    invert_steps: InvertStepsOpt = None,
    decode_steps: DecodeStepsOpt = None,
    resize: ResizeOpt = "center-crop",
    fps: FpsOpt = 8.0,
    run: RunArgs = RunArgs(),
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
            invert_steps=invert_steps, decode_steps=decode_steps, resize=resize, fps=fps, **run.job_options())
        run_and_show(run_extrapolation, cfg, run, _print_extrapolation)


def _print_extrapolation(run: Path, s: dict[str, Any]) -> None:
    typer.echo(f"{run.name}: {s.get('steps')} steps of {_num(s.get('step_size'))} × d "
               f"(d = {_num(s.get('reference_distance'))}, from {s.get('source')}); "
               f"{s.get('frames_decoded')} frames decoded; log-density change "
               f"{_num((s.get('log_density') or [0])[-1])} nats")
