"""``geovid analyze``: does a clip trace a geodesic of the image model's density? (docs/method.md §7)

Thin: parse the options into :class:`analysis.run.AnalysisConfig`, call :func:`analysis.run.run_batch` with a
Rich progress display, print the per-path numbers, the three tests, the excess and the verdict.
"""

from __future__ import annotations

import json
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
    InvertStepsOpt,
    LambdaOpt,
    ListOpt,
    MaxCallsOpt,
    MetricOpt,
    ResizeOpt,
    RichProgress,
    RunArgs,
    run_options,
    set_threads,
    user_errors,
)

AnalyzeFramesOpt = Annotated[int | None, typer.Option("--frames", "-n", help="Frames spread uniformly over the clip "
    "(at least 3; default 16, or every frame at --stride).",
    show_default=False)]
AnalyzeDecodeOptimisedOpt = Annotated[bool, typer.Option("--decode-optimised/--no-decode-optimised",
    help="Decode the optimised path to images (optimised/, "
    "strip.png).")]
AnalyzeTrustOpt = Annotated[float, typer.Option("--trust", help="Trust region of the optimised path: no point moves "
    "more than this many median steps of its path (0: unbounded).")]
AnalyzeControlsOpt = Annotated[bool, typer.Option("--controls/--no-controls", help="Also analyse the clip with its "
    "interior frames shuffled and reversed (docs/method.md §7.7).")]


@run_options(engine=True)
def analyze(
    clips: Annotated[list[Path] | None, typer.Argument(help="Video files (mp4, avi, webm, mkv, mov, ...) or quoted "
                                                       "globs ('clips/**/*.mp4'); one run each.",
                                                       show_default=False)] = None,
    frames: AnalyzeFramesOpt = None,
    stride: Annotated[int | None, typer.Option("--stride", help="Take every K-th frame.")] = None,
    start: Annotated[float | None, typer.Option("--start", help="Start of the time range, seconds.")] = None,
    end: Annotated[float | None, typer.Option("--end", help="End of the time range, seconds.")] = None,
    noise_level: Annotated[float, typer.Option("--noise-level", help="Noise level ν in (0, 1] (docs/method.md §1).")] = 0.6,
    alpha: AlphaOpt = None,
    metric: MetricOpt = "density",
    lam: LambdaOpt = 1000.0,
    estimator: EstimatorOpt = None,
    draws: DrawsOpt = None,
    prompt: Annotated[str, typer.Option("--prompt", help="Text condition (default: unconditional); with prompt "
                                        "inversion, its starting point.")] = "",
    conditioning: ConditioningOpt = None,
    invert_steps: InvertStepsOpt = None,
    trust: AnalyzeTrustOpt = 0.25,
    controls: AnalyzeControlsOpt = True,
    decode_optimised: AnalyzeDecodeOptimisedOpt = True,
    max_calls: MaxCallsOpt = None,
    delta: Annotated[float, typer.Option("--delta", help="Perturbation size δ as a fraction of the median "
                                         "step.")] = 0.5,
    smooth_sigma: Annotated[float, typer.Option("--smooth-sigma", help="Smoothing width σ in frames.")] = 1.0,
    steps: Annotated[int, typer.Option("--steps", help="DDIM steps of the inversion schedule (t_ν lies on its "
                                       "grid).")] = 50,
    decode_steps: DecodeStepsOpt = None,
    resize: ResizeOpt = "center-crop",
    list_file: ListOpt = None,
    run: RunArgs = RunArgs(),
) -> None:
    """Measure how close a clip is to a geodesic of the image model's density (docs/method.md §7).

    Inverts the chosen frames to noise level ν (the video path), optimises it with fixed endpoints, perturbs
    and smooths it, compares all with the straight line, repeats it for the clip with shuffled and reversed
    frames (controls) and writes a run folder: summary.json (geodesic excess, tests (i)-(iii), controls,
    verdict), per_frame.csv/.parquet, plots/, frames/, optimised/. Prints the run folder(s) last. Many clips:
    arguments, globs or --list FILE; --engine ray spreads them over Ray workers (docs/batch.md).

    Example: geovid analyze clip.mp4 --frames 16 --out runs
    """
    options = {**dict(locals()), **run.job_options()}
    with user_errors():
        from geovid.batch import expand_inputs

        clip_list = expand_inputs(clips or [], list_file)
        check_engine_options(run.engine, run.workers, run.ray_address, run.gpus_per_worker)
        if run.engine == "local":
            set_threads(run.threads)
        from analysis.run import run_batch

        cfg = _config(options, clip_list)
        if run.engine == "ray":
            from analysis.run import batch_names

            cfg = cfg.resolve()
            items = [{"clip": c, "name": n} for c, n in zip(cfg.clips, batch_names(cfg))]
            run_cli_batch("analysis", items, config_options(cfg, "clips", "name"), run.engine, run.workers,
                          run.ray_address, run.gpus_per_worker, run.threads, run.quiet, run.as_json)
            return
        with RichProgress(run.quiet) as prog:
            runs = run_batch(cfg, progress=prog)
        _show_runs(runs, run.quiet, run.as_json)


def _config(options: dict[str, Any], clips: list[Path]) -> Any:
    """The AnalysisConfig of the command's options (same names; 16 frames unless a stride is given; trust 0 = off;
    unset score options take the analysis's defaults)."""
    import dataclasses

    from analysis.run import AnalysisConfig

    names = {f.name for f in dataclasses.fields(AnalysisConfig)}
    kw = {k: v for k, v in options.items() if k in names and k not in ("clips", "command")}
    for unset in ("estimator", "draws", "conditioning", "invert_steps"):  # None: the analysis's own default
        if kw.get(unset) is None:
            kw.pop(unset, None)
    if kw.get("frames") is None and options.get("stride") is None:
        kw["frames"] = 16
    kw["trust"] = kw.get("trust") or None
    return AnalysisConfig(clips=clips, **kw)


def _show_runs(runs: list[Path], quiet: bool, as_json: bool) -> None:
    """Each run's summary.json (``--json``) or its table, then the run folders."""
    from geovid.runs.catalog import read_summary

    for run in runs:
        summary = read_summary(run) or {}
        if as_json:
            typer.echo(json.dumps(summary, indent=2))
        elif not quiet and summary:
            _print_summary(run, summary)
    for run in runs:
        typer.echo(str(run))


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, int | float) and not isinstance(v, bool) else "n/a"


def _print_summary(run: Path, s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from analysis.verdict import excess_text, percent_text

    console = Console(highlight=False)
    log_ex = s.get("log_geodesic_excess")
    rel = (s.get("readable") or {}).get("residual_relative_to_line")
    longer = percent_text(log_ex, s.get("geodesic_excess"))
    console.print(f"[bold]{run.name}[/]: the clip's path is {longer} its optimised version "
                  f"(geodesic excess {excess_text(s.get('geodesic_excess'), log_ex)}); its mean ‖r‖ is "
                  f"{_num(rel)}× the straight line's.")
    t = Table(title=f"{s.get('frames')} frames, ν={s.get('noise_level')}, α={_num(s.get('alpha'))}, "
                    f"{s.get('estimator')}", title_justify="left")
    t.add_column("path")
    for col in ("mean ‖r‖", "× line", "median ‖r‖", "rel. length L̃", "energy"):
        t.add_column(col, justify="right")
    line_r = ((s.get("paths") or {}).get("line") or {}).get("mean_residual")
    for name, st in (s.get("paths") or {}).items():
        r = st.get("mean_residual")
        ratio = r / line_r if isinstance(r, int | float) and isinstance(line_r, int | float) and line_r else None
        t.add_row(name, _num(r), _num(ratio), _num(st.get("median_residual")), _num(st.get("relative_length")),
                  _num(st.get("energy")))
    console.print(t)
    for key, test in (s.get("tests") or {}).items():
        mark = "[green]pass[/]" if test.get("passed") else "[red]fail[/]"
        if "value" in test:
            nums = f"{_num(test.get('value'))} vs {_num(test.get('threshold'))}"
        else:
            nums = f"perturbed ×{_num(test.get('perturbed_ratio'))}, smoothed ×{_num(test.get('smoothed_ratio'))}"
        console.print(f"({key:>3}) {mark}  {test.get('rule', '')}: {nums}")
    ctrl = s.get("controls") or {}
    for name in ("shuffled", "reversed"):
        c = ctrl.get(name)
        if not c:
            continue
        extra = (("[green]further from a geodesic[/]" if c.get("larger_excess") else "[red]not further[/]")
                 if name == "shuffled" else
                 (("[green]invariant[/]" if c.get("invariant") else "[red]differs[/]")
                  + f" (excess {100 * (c.get('excess_relative_difference') or 0):.0f} %, ‖r‖ "
                    f"{100 * (c.get('residual_relative_difference') or 0):.0f} %)"))
        console.print(f"control {name:<8}: {percent_text(c.get('log_geodesic_excess'))} its optimised path, "
                      f"mean ‖r(video)‖ {_num(c.get('mean_residual_video'))}: {extra}")
    console.print(s.get("verdict", ""))
