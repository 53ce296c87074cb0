"""Batches from the command line (``geovid analyze``, ``geovid interpolate --pairs``, docs/batch.md): the engine
option checks, and the code that runs a batch through :func:`geovid.batch.run_batch_job` with one Rich progress bar over the items."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import typer

from geovid.cli.common import RichProgress, fail


def check_engine_options(engine: str, workers: int | None, ray_address: str | None, gpus_per_worker: float) -> None:
    """Ray-only options without ``--engine ray`` are refused (one line)."""
    from geovid.batch import ENGINES
    from geovid.errors import InputError

    if engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "ray":
        given = [opt for opt, v in (("--workers", workers is not None), ("--ray-address", ray_address is not None),
                                    ("--gpus-per-worker", bool(gpus_per_worker))) if v]
        if given:
            raise InputError(f"{', '.join(given)} need --engine ray")


def config_options(config: Any, *per_item: str) -> dict[str, Any]:
    """A job config's fields minus the per-item ones: the options every item of a batch shares."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in per_item}


def run_cli_batch(kind: str, items: list[dict[str, Any]], options: dict[str, Any], engine: str,
                  workers: int | None, ray_address: str | None, gpus_per_worker: float, threads: int | None,
                  quiet: bool, as_json: bool) -> None:
    """Run the batch with a progress bar, print a table (or each run's summary.json), the batch summary and the
    run folders (last); exit 2 naming the failed items, 130 after Ctrl-C."""
    from geovid.batch import BatchJob, kind_spec, require_ray, run_batch_job
    from geovid.runs.catalog import read_summary

    if engine == "ray":
        require_ray()  # before the progress display: the one-line error alone
    command = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "geovid", *sys.argv[1:]]
    job = BatchJob(kind=kind, items=items, options=options, command=command)
    with RichProgress(quiet) as prog:
        result = run_batch_job(job, engine=engine, workers=workers, ray_address=ray_address,
                               gpus_per_worker=gpus_per_worker, threads=threads, progress=prog)
    if as_json:
        for run in result.runs:
            summary = read_summary(run)
            if summary is not None:
                typer.echo(json.dumps(summary, indent=2))
    elif not quiet:
        _print_rows(kind, result.rows, kind_spec(kind).label, items)
        typer.echo(f"batch summary: {result.summary}" + (f" ({result.skipped} complete runs skipped)"
                                                         if result.skipped else ""))
    for run in result.runs:
        typer.echo(str(run))
    if result.interrupted:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130)
    if result.failed:
        raise fail(f"{len(result.failed)} of {len(result.rows)} items failed: " + "; ".join(result.failed))


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, int | float) and not isinstance(v, bool) and v == v else ""


def _excess(v: Any) -> str:
    """As the single-clip command prints it: 1.37, or 10^149 when large (analysis.verdict.excess_text)."""
    from analysis.verdict import excess_text

    return excess_text(v) if isinstance(v, int | float) and not isinstance(v, bool) else ""


def _print_rows(kind: str, rows: list[dict[str, Any]], label: Any, items: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title_justify="left", title=f"{len(rows)} {'clips' if kind == 'analysis' else 'pairs'}")
    cols = (["input", "status", "run", "excess", "tests"] if kind == "analysis"
            else ["input", "status", "run", "PPL", "PDV", "log L̃"])
    for c in cols:
        t.add_column(c, justify="left" if c in ("input", "status", "run") else "right")
    for item, r in zip(items, rows):
        status = str(r.get("status"))
        style = {"complete": "green", "failed": "red"}.get(status, "yellow")
        head = [label(item), f"[{style}]{status}[/]", str(r.get("name") or "")]
        if kind == "analysis":
            tests = r.get("tests_passed")
            t.add_row(*head, _excess(r.get("geodesic_excess")), f"{tests}/3" if isinstance(tests, int) else "")
        else:
            t.add_row(*head, _num(r.get("ppl")), _num(r.get("pdv")), _num(r.get("log_relative_length")))
    Console(highlight=False).print(t)
