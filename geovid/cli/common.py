"""Shared CLI pieces: every option alias used by more than one command, one-line error handling, Rich progress adapter."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from geovid.runs.options import RunOptions

ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="Bundled model (default), a local Stable-Diffusion folder, or a hub id (e.g. "
    "stabilityai/stable-diffusion-2-1-base, must be in the local cache).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda or mps (default: cuda if present).")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="fp32, fp16 or bf16.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; same seed and inputs give identical numbers.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Runs directory; each run gets its own sub-folder.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Run name (default: from the inputs and the time).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]


ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="torch CPU threads (default: the idle cores, "
                                                "at least 1: on a busy machine one thread is several times "
                                                "faster than two fighting for a core).", show_default=False)]

#: ``--device`` of the run-making commands: unset means "cuda if present" (the job resolves it).
OptionalDeviceOpt = Annotated[str | None, typer.Option("--device", help="cpu, cuda or mps (default: cuda if present).",
                                               show_default=False)]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Finish an interrupted run with the same inputs and "
                                         "options (the one named by --name, else the newest).")]
AlphaOpt = Annotated[float | None, typer.Option("--alpha", help="α of the density metric p^-α (default: the rule "
                                                "of docs/method.md §3.7, 2/(chord × median |N P s| on the straight "
                                                "path), per run).", show_default=False)]
MetricOpt = Annotated[str, typer.Option("--metric", help="density (p^-α, docs/method.md §3) or score (I + λssᵀ, §4).")]
LambdaOpt = Annotated[float, typer.Option("--lambda", help="λ of the score metric.")]
DecodeStepsOpt = Annotated[int | None, typer.Option("--decode-steps", help="DDIM steps per decoded frame (default: "
                                                    "interpolate and extrapolate 10 (30 = the full 50-step grid "
                                                    "below t at ν = 0.6); analyze the inversion's own grid).",
                                                    show_default=False)]
MaxCallsOpt = Annotated[int | None, typer.Option("--max-calls", help="Network-call budget of each solve (default: "
                                                 "analyze 100 × frames; interpolate 150 for the geovid solver, the "
                                                 "full schedule for reference).", show_default=False)]
# The score options of analyze, interpolate and extrapolate: one flag and one help per concept; unset (None) means
# the command's default (said in the help), or for extrapolate --from-run the run's.
EstimatorOpt = Annotated[str | None, typer.Option("--estimator", help="Score estimator (docs/method.md §2): contrast "
                                                  "(default; against the model's negative prompt) or eps (the "
                                                  "model's own score, deterministic).", show_default=False)]
DrawsOpt = Annotated[int | None, typer.Option("--draws", help="contrast: (τ, ε₀) draws averaged per scored point "
                                              "(docs/method.md §2.2; default: analyze 4 in the measures, 1 "
                                              "elsewhere).", show_default=False)]
ConditioningOpt = Annotated[str | None, typer.Option("--conditioning", help="invert: prompt embeddings inverted from "
                                                     "the input frames (docs/method.md §1.4); prompt: the text "
                                                     "prompt as given. Default invert (interpolate and extrapolate: "
                                                     "prompt when --prompt is given; --from-run: the run's).",
                                                     show_default=False)]
InvertStepsOpt = Annotated[int | None, typer.Option("--invert-steps", help="Steps of the prompt-embedding "
                                                    "inversion (default: analyze 100, interpolate and extrapolate "
                                                    "20).", show_default=False)]
ResizeOpt = Annotated[str, typer.Option("--resize", help="Inputs of another size: center-crop, pad or stretch.")]
FpsOpt = Annotated[float, typer.Option("--fps", help="Frame rate of anim.gif and video.mp4.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print summary.json instead of the table.")]

# Batch options of ``geovid analyze`` and ``geovid interpolate --pairs`` (docs/batch.md, geovid.cli.batch).
EngineOpt = Annotated[str, typer.Option(
    "--engine", help="local: one process, the items one after another; ray: a Ray cluster, one model load per "
    "worker (pip install 'geovid\\[ray]'; docs/batch.md).")]
WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", help="Ray engine: workers (actors), each loading the model once; sizes the local Ray cluster "
    "(default: one per CPU core, or per --gpus-per-worker GPUs).", show_default=False)]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", help="Ray engine: join this running cluster (auto, HOST:PORT or ray://HOST:10001) instead of "
    "starting a local one; --out must then be on a filesystem every node shares.", show_default=False)]
GpusOpt = Annotated[float, typer.Option(
    "--gpus-per-worker", help="Ray engine: GPUs per worker (fractions share a GPU).")]
ListOpt = Annotated[Path | None, typer.Option(
    "--list", help="A text file with one clip path per line (relative to the file's folder; # comments).",
    show_default=False)]
PairsOpt = Annotated[Path | None, typer.Option(
    "--pairs", help="A CSV with columns a,b[,prompt] (header optional; paths relative to the CSV's folder): one "
    "interpolation run per pair, and OUT/batch-<time>/batch_summary.csv.", show_default=False)]


def busy_cores() -> float:
    """Cores other processes are using now.

    Linux: the fewest runnable processes (``procs_running`` in /proc/stat, which counts this one) over five
    samples 20 ms apart, minus this process. Not the 1-minute load average: that still reads ~1 for a minute
    after a job ends, which made back-to-back runs on an idle two-core machine pick one thread. Elsewhere: the
    1-minute load average.
    """
    import os
    import time

    samples = []
    try:
        for k in range(5):
            if k:
                time.sleep(0.02)
            with open("/proc/stat", encoding="ascii") as f:
                for line in f:
                    if line.startswith("procs_running"):
                        samples.append(int(line.split()[1]))
                        break
    except (OSError, ValueError):
        samples = []
    if samples:
        return float(max(0, min(samples) - 1))
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without a load average
        return 0.0


def set_threads(threads: int | None) -> None:
    """torch CPU threads: as given, or as many as there are idle cores (:func:`busy_cores`), at least 1."""
    import os

    from geovid.errors import InputError

    if threads is not None and threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")
    import torch

    if threads is None:
        cores = os.cpu_count() or 1
        threads = max(1, min(torch.get_num_threads(), round(cores - busy_cores())))
    torch.set_num_threads(threads)


def run_and_show(job: Any, config: Any, args: RunArgs, show: Any) -> None:
    """Run one job (``job(config, progress=...)`` returns its run folder) with a progress display, then print its
    summary.json (``--json``) or ``show(run, summary)``, and last the run folder.

    The config is resolved first (:meth:`geovid.runs.options.Resolvable.resolve`), so that option errors come
    before the progress display starts; the job receives the resolved config.
    """
    import json

    from geovid.runs.catalog import read_summary

    config = config.resolve()
    set_threads(args.threads)
    with RichProgress(args.quiet) as prog:
        run = job(config, progress=prog)
    summary = read_summary(run) or {}
    if args.as_json:
        typer.echo(json.dumps(summary, indent=2))
    elif not args.quiet and summary:
        show(run, summary)
    typer.echo(str(run))


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error to stderr and return an Exit to raise."""
    message = " ".join(str(message).split())
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected errors into one-line messages (exit 2); Ctrl-C into exit 130."""
    from geovid.errors import GeovidError

    try:
        yield
    except GeovidError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


class RichProgress:
    """Adapter from the core's ``progress(phase, done, total, info)`` to a Rich progress display."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        if not self.quiet:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                console=Console(stderr=True), transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def __call__(self, phase: str, done: int, total: int | None, info: dict[str, Any]) -> None:
        if self._progress is None:
            return
        text = "  ".join(f"{k}={_fmt(v)}" for k, v in info.items())
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(phase, total=total, info=text)
        self._progress.update(self._tasks[phase], completed=done, total=total, info=text)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# --------------------------------------------------------------------------- the options every run-making command takes


@dataclass(frozen=True, kw_only=True)
class RunArgs(RunOptions):
    """The options every run-making command takes (``analyze``, ``interpolate``, ``extrapolate``), declared once:
    :func:`run_options` adds them to a command and passes them as ``run``. The job's own (model … resume) are
    :class:`geovid.runs.options.RunOptions` fields; these add how the command runs and prints."""

    threads: int | None = None
    as_json: bool = False
    quiet: bool = False
    engine: str = "local"
    workers: int | None = None
    ray_address: str | None = None
    gpus_per_worker: float = 0.0

    def job_options(self) -> dict[str, Any]:
        """The fields of :class:`geovid.runs.options.RunOptions` among these (model … resume)."""
        return {k: getattr(self, k) for k in ("model", "device", "dtype", "seed", "out", "name", "resume")}


_RUN_PARAMS: tuple[tuple[str, Any], ...] = (
    ("model", ModelOpt), ("device", OptionalDeviceOpt), ("dtype", DtypeOpt), ("seed", SeedOpt), ("out", OutOpt),
    ("name", NameOpt), ("resume", ResumeOpt), ("threads", ThreadsOpt), ("as_json", JsonOpt), ("quiet", QuietOpt))
_ENGINE_PARAMS: tuple[tuple[str, Any], ...] = (
    ("engine", EngineOpt), ("workers", WorkersOpt), ("ray_address", RayAddressOpt), ("gpus_per_worker", GpusOpt))


def _option_group(cls: type, argname: str, added: list[tuple[str, Any]]
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: append the options ``added`` ((name, Annotated alias) pairs, defaults from ``cls()``) to a
    command's options; the command receives them as one ``cls`` argument named ``argname``. Typer reads the
    command's ``__signature__``."""
    defaults = cls()

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != argname]
        extra = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation,
                                   default=getattr(defaults, name)) for name, annotation in added]

        @functools.wraps(fn)
        def command(**kw: Any) -> Any:
            group = cls(**{name: kw.pop(name) for name, _ in added if name in kw})
            return fn(**{argname: group}, **kw)

        command.__signature__ = sig.replace(parameters=[*own, *extra])  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in (*own, *extra)}
        return command

    return decorate


def run_options(engine: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: append the shared run options (``--model`` … ``--quiet``; with ``engine`` also ``--engine``,
    ``--workers``, ``--ray-address``, ``--gpus-per-worker``) to a command's options; the command receives them as
    one :class:`RunArgs` argument ``run``."""
    return _option_group(RunArgs, "run", [*_RUN_PARAMS, *(_ENGINE_PARAMS if engine else ())])


@dataclass(frozen=True)
class ModelArgs:
    """The options of the commands that load the model and draw from it (``sample``, ``model evaluate``)."""

    seed: int = 0
    model: str | None = None
    device: str = "auto"
    dtype: str = "fp32"
    quiet: bool = False

    def load(self) -> Any:
        """The backbone these options name (``auto``: cuda if present)."""
        from geovid.backbones.loader import load_backbone

        return load_backbone(self.model, device=None if self.device == "auto" else self.device, dtype=self.dtype)


def model_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: append ``--seed``, ``--model``, ``--device``, ``--dtype``, ``--quiet`` to a command; it receives them
    as one :class:`ModelArgs` argument ``opts``."""
    return _option_group(ModelArgs, "opts", [("seed", SeedOpt), ("model", ModelOpt), ("device", DeviceOpt),
                                             ("dtype", DtypeOpt), ("quiet", QuietOpt)])(fn)
