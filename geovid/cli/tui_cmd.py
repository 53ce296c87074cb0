"""``geovid tui``: open the terminal UI on a runs folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geovid.cli.common import user_errors

_RENDERERS = ("auto", "halfblock", "sixel", "tgp", "none")


def tui(
    runs_dir: Annotated[Path, typer.Argument(help="Runs folder to browse (need not exist yet).")] = Path("runs"),
    images: Annotated[str, typer.Option(
        "--images", help="Picture renderer: auto (Sixel or Kitty graphics where the terminal has them, "
        "else colour half blocks), halfblock, sixel, tgp, or none.")] = "auto",
    poll: Annotated[float, typer.Option(
        "--poll", help="Seconds between checks for new or changed runs (0: only on r).")] = 1.0,
    engine: Annotated[str, typer.Option(
        "--engine", help="What new jobs run: library (the real analysis/interpolation/extrapolation) "
        "or fake (writes small synthetic runs; to try the UI without a model).")] = "library",
) -> None:
    """Browse runs in a terminal UI: tables, verdicts, plots, frames, compare, start and cancel jobs.

    Keys: arrows/j/k move, Enter open, / filter, s sort, space mark, c compare, n new job, ? help, q quit.
    """
    with user_errors():
        from geovid.errors import InputError

        if runs_dir.exists() and not runs_dir.is_dir():
            raise InputError(f"{runs_dir} is not a folder")
        if images not in _RENDERERS:
            raise InputError(f"--images must be one of {', '.join(_RENDERERS)}, not {images!r}")
        if engine not in ("library", "fake"):
            raise InputError(f"--engine must be library or fake, not {engine!r}")
        if poll < 0:
            raise InputError("--poll must be >= 0")
        from tui.app import make_app
        from tui.engine import FakeEngine, LibraryEngine

        job_engine = FakeEngine(delay=0.2, frames=8, iterations=20) if engine == "fake" else LibraryEngine()
        make_app(runs_dir, engine=job_engine, image_renderer=images, poll_interval=poll).run()
