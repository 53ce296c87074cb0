"""``geovid toy``: the paper's Figure 1 on a 2-D Gaussian mixture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from geovid.cli.common import QuietOpt, RichProgress, user_errors


def _parse_point(text: str | None, name: str) -> tuple[float, float] | None:
    from geovid.errors import InputError

    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError(f"{name} must look like X,Y (e.g. 3,0), got {text!r}") from None


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.6g}"


def toy(
    density: Annotated[Path | None, typer.Option(
        "--density", help='JSON mixture: {"weights": [...], "means": [[x, y], ...], "covs": [[[a, b], [c, d]], ...]}. '
        "Default: seven Gaussians on a half ring.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="Start point X,Y (default 3,0).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="End point X,Y (default -3,0).")] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Density-metric exponent α in w = p^-α (docs/method.md §3).")] = 1.0,
    metric: Annotated[str, typer.Option("--metric", help="density (p^-α, paper 1) or score (I + λssᵀ, paper 2).")] = "density",
    lam: Annotated[float, typer.Option("--lambda", help="λ of the score metric.")] = 10.0,
    solver: Annotated[str, typer.Option("--solver", help="geovid (default, batched multilevel) or reference "
                                        "(the published 1→3→7→15 schedule).")] = "geovid",
    points: Annotated[int, typer.Option("--points", help="Points on the geodesic, endpoints included.")] = 65,
    init: Annotated[str, typer.Option("--init", help="Initial path: grid (global: shortest path on a grid with a "
                                      "32-neighbourhood, then refined) or straight (local descent from the "
                                      "segment). docs/method.md §5.")] = "grid",
    starts: Annotated[int, typer.Option("--starts", help="Extra starts: K bent copies of the segment solved "
                                        "together with the main one, the shortest kept (docs/method.md §5).")] = 0,
    out: Annotated[Path, typer.Option("--out", help="PNG with the two panels.")] = Path("toy.png"),
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result (points, lengths, calls) here.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Geodesic of a 2-D Gaussian-mixture density versus the straight segment (paper Figure 1).

    The density p is the mixture itself (noise level 0); lengths ∫ p^-α ‖dγ‖ use the exact density.

    Example: geovid toy --alpha 1 --out toy.png --json toy.json
    """
    with user_errors():
        from geovid.backbones.analytic import GaussianMixture
        from geovid.toy import ToyConfig, plot_toy, run_toy

        cfg = ToyConfig(alpha=alpha, metric=metric, lam=lam, solver=solver, points=points, init=init,
                        starts=starts)
        if density is not None:
            cfg.density = GaussianMixture.from_json(density)
        if (p := _parse_point(start, "--start")) is not None:
            cfg.start = p
        if (p := _parse_point(end, "--end")) is not None:
            cfg.end = p
        with RichProgress(quiet) as prog:
            result = run_toy(cfg, progress=prog)
        plot_toy(result, out)
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(result, indent=1))
        if not quiet:
            length, straight = result["length"], result["straight_length"]
            ratio = f"{length / straight:.3g}" if length is not None and straight else "n/a"
            typer.echo(f"geodesic length {_num(length)}  straight {_num(straight)}  "
                       f"(ratio {ratio})  {result['network_calls']} score calls, "
                       f"{result['iterations']} iterations, initial path: {result['init']}")
            if result.get("note"):
                typer.echo(f"critical start: {result['note']}")
            typer.echo(f"plot: {out}" + (f"   json: {json_out}" if json_out else ""))
