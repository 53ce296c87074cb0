"""The ``geovid`` command line (Typer). Thin: parse, build a config, call one library function.

The command modules define plain functions (and the ``model`` and ``world`` sub-apps); this package registers
them on ``app``, in the order ``geovid --help`` lists them. Heavy imports (torch, diffusers, decord, ...) happen
inside the commands so that ``geovid --help`` and ``geovid --version`` answer in well under a second.
"""

from __future__ import annotations

import typer

from geovid import __version__
from geovid.cli import analyze, demo, interpolate, model, toy, tui_cmd, world

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


for _command in (analyze.analyze, demo.demo, interpolate.interpolate, interpolate.extrapolate, model.sample,
                 model.train, toy.toy, tui_cmd.tui):
    app.command()(_command)
app.add_typer(model.model_app, name="model")
app.add_typer(world.world_app, name="world")


def main() -> None:
    """Console-script entry point."""
    app()
