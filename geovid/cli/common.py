"""Shared CLI pieces: option aliases, one-line error handling, Rich progress adapter."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

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
