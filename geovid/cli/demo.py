"""``geovid demo``: the README's main job on the bundled defaults."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from geovid.cli.common import QuietOpt, RichProgress, user_errors


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's outputs and runs.")] = Path("demo"),
    quiet: QuietOpt = False,
) -> None:
    """Run the main jobs on the bundled defaults: the 2-D toy geodesic (paper Figure 1), then — with the
    bundled tiny Stable Diffusion — a world clip analysed for geodesicity and a two-scene interpolation.

    Afterwards browse everything with: geovid tui DEMO/runs
    """
    with user_errors():
        from geovid.toy import ToyConfig, plot_toy, run_toy

        out.mkdir(parents=True, exist_ok=True)
        typer.echo("1/3  toy: geodesic of a 2-D mixture vs the straight segment")
        with RichProgress(quiet) as prog:
            res = run_toy(ToyConfig(), progress=prog)
        plot_toy(res, out / "toy.png")
        typer.echo(f"     length {res['length']:.4g} vs straight {res['straight_length']:.4g}  ->  {out / 'toy.png'}")
        runs = out / "runs"
        if _available("analysis.run"):
            from analysis.run import AnalysisConfig, run_analysis
            from geovid.world.clips import write_clip

            clip = write_clip(out / "world-linear.mp4", motion="linear", frames=16, fps=8, seed=3)
            typer.echo(f"2/3  analyze: is the world clip {clip.name} a geodesic of the model's density?")
            with RichProgress(quiet) as prog:
                run = run_analysis(AnalysisConfig(clips=[clip], frames=16, out=runs),
                                   progress=prog)
            typer.echo(f"     run: {run}")
        if _available("geovid.tasks.interpolate"):
            from geovid.tasks.interpolate import InterpolationConfig, run_interpolation
            from geovid.world.clips import moved_pair
            from geovid.world.render import render

            scene, moved, _ = moved_pair(11)  # same objects, one moved within the view
            from PIL import Image

            a, b = out / "scene-a.png", out / "scene-b.png"
            Image.fromarray(render(scene)).save(a)
            Image.fromarray(render(moved)).save(b)
            typer.echo("3/3  interpolate: a geodesic between two world scenes")
            with RichProgress(quiet) as prog:
                run = run_interpolation(InterpolationConfig(image_a=a, image_b=b, out=runs),
                                        progress=prog)
            typer.echo(f"     run: {run}")
        typer.echo(f"done. Browse the runs with: geovid tui {runs}")
