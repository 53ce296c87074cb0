"""The ``geovid`` command line (Typer). Thin: parse, build a config, call one library function.

Each command group lives in its own module and registers itself on ``app``. Heavy
imports (torch, diffusers, decord, ...) happen inside the commands so that
``geovid --help`` and ``geovid --version`` answer in well under a second.
"""

from __future__ import annotations

import typer

from geovid import __version__

app = typer.Typer(
    name="geovid",
    help=(
        "Probability-density geodesics in the latent space of image diffusion models.\n\n"
        "Measure how close a video is to a geodesic of an image model's density (analyze), make "
        "training-free image sequences (interpolate, extrapolate), and browse runs in a terminal UI (tui)."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"geovid {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """geovid command line."""


# Command modules register themselves on `app` when imported.
from geovid.cli import analyze as _analyze  # noqa: E402,F401
from geovid.cli import demo as _demo  # noqa: E402,F401
from geovid.cli import interpolate as _interpolate  # noqa: E402,F401
from geovid.cli import model as _model  # noqa: E402,F401
from geovid.cli import toy as _toy  # noqa: E402,F401
from geovid.cli import tui_cmd as _tui_cmd  # noqa: E402,F401
from geovid.cli import world as _world  # noqa: E402,F401


def main() -> None:
    """Console-script entry point."""
    app()
