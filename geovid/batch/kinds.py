"""Batch kinds (docs/batch.md): what the driver and the workers know about analysis and interpolation batches,
and the ``batch_summary`` row of an item, read back from its run folder."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geovid.errors import InputError
from geovid.runs.catalog import read_manifest, summary_row

#: The batch kinds: run kinds that take a list of items.
KINDS = ("analysis", "interpolation")
#: Row states while a batch runs, besides the run statuses (complete, failed, interrupted).
PENDING, RUNNING, CANCELLED = "pending", "running", "cancelled"
#: Ray engine: starts of one item before it counts as failed. Ray restarts a worker that died (out of memory, a
#: lost node) and retries its item; the retry continues the item's run (phases done are kept), and an item whose
#: worker died this often becomes a failed run instead of taking down worker after worker.
MAX_ATTEMPTS = 3
#: ``batch_summary`` columns of an interpolation batch (one row per pair; numbers from the run's summary.json).
PAIR_COLUMNS = ("name", "run", "a", "b", "prompt", "status", "ppl", "pdv", "log_relative_length", "mean_residual",
                "ppl_lerp", "ppl_slerp", "a_psnr", "b_psnr", "error")
#: Extra columns of the rows the workers return (geovid.distributed), after the summary columns.
WORKER_COLUMNS = ("seconds", "network_calls", "worker")
#: Arrow types of the row columns (the rest are strings), so that every batch a worker returns has one schema.
COLUMN_TYPES: dict[str, str] = {
    "item": "int64", "seconds": "float64", "network_calls": "int64", "tests_passed": "int64",
    "test_i": "bool", "test_ii": "bool", "test_iii": "bool", "geodesic_excess": "float64",
    **{f"mean_residual_{p}": "float64" for p in ("video", "optimised", "perturbed", "smoothed", "line")},
    **dict.fromkeys(("ppl", "pdv", "log_relative_length", "mean_residual", "ppl_lerp", "ppl_slerp", "a_psnr",
                     "b_psnr"), "float64"),
}


def pair_row(run_path: Path | None, a: str | os.PathLike[str], b: str | os.PathLike[str], prompt: str | None,
             error: str | None = None) -> dict[str, Any]:
    """One row of an interpolation batch's summary (:data:`PAIR_COLUMNS`) from the run folder."""
    row, s = summary_row(PAIR_COLUMNS, run_path, a=os.path.abspath(a), b=os.path.abspath(b), prompt=prompt,
                         error=error)
    if s is None:
        return row
    methods = s.get("methods") if isinstance(s.get("methods"), dict) else {}
    geo = methods.get("geodesic") or {}
    for key in ("ppl", "pdv", "log_relative_length", "mean_residual"):
        row[key] = geo.get(key)
    for m in ("lerp", "slerp"):
        row[f"ppl_{m}"] = (methods.get(m) or {}).get("ppl")
    rec = s.get("endpoint_reconstruction") or {}
    row["a_psnr"], row["b_psnr"] = rec.get("a_psnr"), rec.get("b_psnr")
    return row


def network_calls(run_path: Path | None) -> int | None:
    """The run's ``network_calls`` from its manifest (``None`` without a readable one)."""
    m = read_manifest(run_path) if run_path is not None else None
    value = m.get("network_calls") if m is not None else None
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    """A non-empty string from a row cell (numpy strings, pandas NaN and None tolerated), else None."""
    return str(value) if isinstance(value, str) and value != "" else None


@dataclass(frozen=True)
class KindSpec:
    """What the driver and the workers need to know about one batch kind."""

    kind: str
    columns: tuple[str, ...]
    #: the option template (AnalysisConfig / InterpolationConfig without inputs) from the shared options;
    #: raises InputError for bad options.
    template: Callable[[Mapping[str, Any]], Any]
    #: the item's input files as the manifest stores them (absolute paths).
    inputs: Callable[[Mapping[str, Any]], list[str]]
    #: the resolved configuration its run stores (compared by ``--resume``).
    run_config: Callable[[Any, Mapping[str, Any]], dict[str, Any]]
    #: the summary row of an item from its run folder (``None``: no run folder) and error.
    row: Callable[[Mapping[str, Any], Path | None, str | None], dict[str, Any]]
    #: a short name of the item for messages.
    label: Callable[[Mapping[str, Any]], str]
    #: the geovid.distributed callable class that runs items of this kind.
    worker: Callable[[], type]

    def row_types(self) -> list[tuple[str, str]]:
        """Columns and Arrow types of the rows the workers return (``item``, summary columns, worker columns)."""
        return [(c, COLUMN_TYPES.get(c, "string")) for c in ("item", *self.columns, *WORKER_COLUMNS)]


def _known(config_class: type, options: Mapping[str, Any], inputs: tuple[str, ...], what: str) -> dict[str, Any]:
    """The options minus the per-item fields; unknown names refused in one line."""
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise InputError(f"unknown {what} option(s): {', '.join(unknown)}")
    return {k: v for k, v in options.items() if k not in (*inputs, "name")}


def _analysis_template(options: Mapping[str, Any]) -> Any:
    from analysis.run import AnalysisConfig

    cfg = AnalysisConfig(**_known(AnalysisConfig, options, ("clips",), "analysis"))
    dataclasses.replace(cfg, clips=[Path("clip")]).resolve()
    return cfg


def _interpolation_template(options: Mapping[str, Any]) -> Any:
    from geovid.tasks.interpolate import InterpolationConfig

    cfg = InterpolationConfig(image_a=Path(), image_b=Path(),
                              **_known(InterpolationConfig, options, ("image_a", "image_b"), "interpolation"))
    cfg.resolve()
    return cfg


def _interpolation_run_config(template: Any, item: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's ``config`` of the run of one pair (what finds it again on ``--resume``)."""
    cfg = dataclasses.replace(template, image_a=Path(item["a"]), image_b=Path(item["b"]),
                              prompt=_pair_prompt(template, item))
    return cfg.resolve().manifest_config()


def _analysis_row(item: Mapping[str, Any], run: Path | None, error: str | None) -> dict[str, Any]:
    from analysis.run import batch_row

    return batch_row(run, Path(item["clip"]), error)


def _pair_prompt(template: Any, item: Mapping[str, Any]) -> str:
    prompt = _text(item.get("prompt"))
    return prompt if prompt is not None else str(template.prompt)


def _worker(name: str) -> Callable[[], type]:
    def get() -> type:
        import geovid.distributed

        return getattr(geovid.distributed, name)

    return get


_SPECS = {
    "analysis": KindSpec(
        kind="analysis", columns=(), template=_analysis_template,
        inputs=lambda it: [os.path.abspath(it["clip"])],
        run_config=lambda tpl, it: tpl.manifest_config(),
        row=_analysis_row, label=lambda it: Path(it["clip"]).name, worker=_worker("AnalyzeClips")),
    "interpolation": KindSpec(
        kind="interpolation", columns=PAIR_COLUMNS, template=_interpolation_template,
        inputs=lambda it: [os.path.abspath(it["a"]), os.path.abspath(it["b"])],
        run_config=_interpolation_run_config,
        row=lambda it, run, err: pair_row(run, it["a"], it["b"], _text(it.get("prompt")), err),
        label=lambda it: f"{Path(it['a']).name},{Path(it['b']).name}", worker=_worker("InterpolatePairs")),
}


def kind_spec(kind: str) -> KindSpec:
    """The :class:`KindSpec` of ``analysis`` or ``interpolation``."""
    if kind not in _SPECS:
        raise InputError(f"unknown batch kind {kind!r}; expected one of {', '.join(KINDS)}")
    spec = _SPECS[kind]
    if not spec.columns:  # the analysis columns live with the analysis (analysis.run.BATCH_COLUMNS)
        from analysis.run import BATCH_COLUMNS

        spec = dataclasses.replace(spec, columns=tuple(BATCH_COLUMNS))
    return spec
