"""Ray Data building blocks: callable classes that run geovid jobs on rows of a dataset (docs/batch.md).

:class:`AnalyzeClips` analyses one clip per row (column ``clip``; docs/method.md §7) and :class:`InterpolatePairs`
interpolates one image pair per row (columns ``a``, ``b``, optional ``prompt``; docs/method.md §5). Both are
meant for ``ray.data.Dataset.map_batches``: Ray makes one instance per actor, the constructor loads the model
once, and every call runs the rows of a batch one after another, each into its own run folder under ``out`` —
the same folder, files and numbers as ``geovid analyze`` / ``geovid interpolate`` with the same options and seed.
A call returns one row per input row: ``item``, the batch-summary columns (run path, status, headline figures,
error), ``seconds``, ``network_calls`` and ``worker``, as a ``pyarrow.Table`` with a fixed schema. An item that
fails gives a ``failed`` row (and a failed run when its folder was made); it never raises.

::

    import ray
    from geovid.distributed import AnalyzeClips

    ds = ray.data.from_items([{"clip": p} for p in clip_paths])
    rows = ds.map_batches(AnalyzeClips, fn_constructor_kwargs={"out": "/shared/runs", "frames": 16},
                          batch_size=1, compute=ray.data.ActorPoolStrategy(size=4), num_gpus=1)
    rows.write_parquet("/shared/runs/my-batch")

``out`` must be a folder every worker can write (a shared filesystem). Nothing here imports Ray: the classes are
plain Python and also run in-process (the ``local`` engine of :mod:`geovid.batch` calls :meth:`process`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geovid.batch.control import BatchControl, CancelFlag
from geovid.batch.kinds import CANCELLED, MAX_ATTEMPTS, _text, kind_spec, network_calls
from geovid.progress import Cancelled
from geovid.runs.contract import MANIFEST
from geovid.runs.store import one_line


class ItemInterrupted(KeyboardInterrupt):
    """Ctrl-C while an item ran in-process; ``row`` is its result row (status ``interrupted``)."""

    def __init__(self, row: dict[str, Any]) -> None:
        super().__init__("interrupted")
        self.row = row


def _plain(value: Any) -> Any:
    """numpy scalars (``np.str_`` included) → Python values (Ray's numpy batches)."""
    import numpy as np

    return value.item() if isinstance(value, np.generic) else value


def _batch_rows(batch: Any) -> list[dict[str, Any]]:
    """Rows of a Ray Data batch in any of its formats (dict of numpy arrays, pandas, pyarrow) or a list of dicts."""
    if isinstance(batch, list):
        return [dict(r) for r in batch]
    if hasattr(batch, "to_pylist"):  # pyarrow.Table
        return list(batch.to_pylist())
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):  # pandas.DataFrame
        return [{k: _plain(v) for k, v in r.items()} for r in batch.to_dict("records")]
    cols = list(batch)
    n = len(batch[cols[0]]) if cols else 0
    return [{c: _plain(batch[c][i]) for c in cols} for i in range(n)]


def _flag(value: Any, default: bool) -> bool:
    value = _plain(value)
    return bool(value) if isinstance(value, bool | int) else default


class _RunItems:
    """What both callables share: construction (options, model load, threads) and the per-item bookkeeping."""

    kind = ""

    def __init__(self, *, threads: int | None = None, batch_control: str | None = None,
                 command: list[str] | None = None, preload: bool = True, **options: Any) -> None:
        self._spec = kind_spec(self.kind)
        if threads is not None:
            import torch

            torch.set_num_threads(int(threads))
        # The manifests' "command": the batch command line, else this constructor call (a Ray worker's own
        # sys.argv says nothing about the job).
        self._command = list(command) if command else [
            f"geovid.distributed.{type(self).__name__}", *(f"{k}={v}" for k, v in sorted(options.items()))]
        if self.kind == "analysis":
            options["command"] = self._command
        self._template = self._spec.template(options)
        self._control = BatchControl(batch_control) if batch_control else None
        self._cancel = CancelFlag(self._control) if self._control is not None else None
        self._worker = f"{socket.gethostname()}:{os.getpid()}"
        if preload:
            self._preload()

    def _preload(self) -> None:
        """Load the backbone now, once per actor (later loads hit the loader's per-process cache). A model that
        does not load is reported by each item's run, like the single-item command does."""
        from geovid.backbones.loader import load_backbone

        t = self._template
        with contextlib.suppress(Exception):  # reported per item
            load_backbone(t.model, device=t.device, dtype=t.dtype)

    def __call__(self, batch: Any) -> Any:
        """``map_batches`` entry point: one result row per input row (a ``pyarrow.Table``)."""
        import pyarrow as pa

        rows = [self.process(item) for item in _batch_rows(batch)]
        schema = pa.schema([(c, getattr(pa, "bool_" if t == "bool" else t)()) for c, t in self._spec.row_types()])
        return pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in rows], schema=schema)

    def process(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """Run one item into its run folder and return its row; never raises (but :class:`ItemInterrupted`)."""
        t0 = time.perf_counter()
        raw = _plain(item.get("item"))
        index = int(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) and raw == raw else None
        if self._cancel is not None and self._cancel.is_set():
            return self._result(item, index, None, None, CANCELLED, t0)
        retry = False
        if self._control is not None and index is not None:
            before = self._control.start_attempt(index)
            if before >= MAX_ATTEMPTS:
                return self._give_up(item, index, before, t0)
            retry = before > 0
        created: list[Path] = []
        error = status = None
        interrupt = False
        try:
            self._run({**item, "resume": True} if retry else item, created)
        except Cancelled:
            status = "interrupted"
        except KeyboardInterrupt:
            status, interrupt = "interrupted", True
        except Exception as err:  # the run (if made) is already marked failed, with traceback.txt when unexpected
            error = one_line(err)
        result = self._result(item, index, created[0] if created else None, error, status, t0)
        if interrupt:
            raise ItemInterrupted(result) from None
        return result

    def _give_up(self, item: Mapping[str, Any], index: int, starts: int, t0: float) -> dict[str, Any]:
        """The worker died on this item every time: a failed row, and its unfinished run marked failed."""
        from geovid.runs.jobs import find_previous
        from geovid.runs.store import Run

        message = (f"the worker died {starts} times while running this item (out of memory? a lost node?); "
                   "rerun it alone to see why")
        out, name = Path(self._template.out), _text(item.get("name"))
        try:
            config = self._spec.run_config(self._template, item)
            run = out / name if name else find_previous(out, self.kind, self._spec.inputs(item), config)
        except Exception:
            run = None
        if run is not None and (run / MANIFEST).is_file():
            with contextlib.suppress(Exception):
                Run.resume(run).fail(message)
        else:
            run = None
        return self._result(item, index, run, message, None, t0)

    def _result(self, item: Mapping[str, Any], index: int | None, run: Path | None, error: str | None,
                status: str | None, t0: float) -> dict[str, Any]:
        row = self._spec.row(item, run, error)
        if status == CANCELLED or (status == "interrupted" and run is None):
            row["status"] = CANCELLED
        row.update({"item": index, "seconds": round(time.perf_counter() - t0, 3), "network_calls": network_calls(run),
                    "worker": self._worker})
        return row

    def _run(self, item: Mapping[str, Any], created: list[Path]) -> None:
        raise NotImplementedError


class AnalyzeClips(_RunItems):
    """Analyse the clip of each row (column ``clip``; optional ``name``, ``resume``) — docs/method.md §7.

    Constructor keywords: the fields of ``analysis.run.AnalysisConfig`` shared by every clip (``out``, ``frames``,
    ``noise_level``, ``model``, ``device``, ``seed``, ``resume``, ...), plus ``threads`` (torch threads of this
    worker), ``command`` (recorded in the manifests) and ``batch_control`` (used by ``geovid analyze --engine
    ray``). Rows have the columns of ``analysis.run.BATCH_COLUMNS`` plus ``item``, ``seconds``,
    ``network_calls`` and ``worker``.
    """

    kind = "analysis"

    def _run(self, item: Mapping[str, Any], created: list[Path]) -> None:
        from analysis.run import run_analysis

        cfg = dataclasses.replace(self._template, clips=[Path(str(item["clip"]))], name=_text(item.get("name")),
                                  resume=_flag(item.get("resume"), self._template.resume))
        run_analysis(cfg, cancel=self._cancel, created=created)  # type: ignore[arg-type]


class InterpolatePairs(_RunItems):
    """Interpolate the image pair of each row (columns ``a``, ``b``; optional ``prompt``, ``name``, ``resume``) —
    docs/method.md §5.

    Constructor keywords: the fields of ``geovid.tasks.interpolate.InterpolationConfig`` shared by every pair
    (``out``, ``frames``, ``prompt`` — the default of rows without one —, ``model``, ``seed``, ``resume``, ...),
    plus ``threads``, ``command`` and ``batch_control`` as for :class:`AnalyzeClips`. Rows have the columns of
    ``geovid.batch.PAIR_COLUMNS`` plus ``item``, ``seconds``, ``network_calls`` and ``worker``.
    """

    kind = "interpolation"

    def _run(self, item: Mapping[str, Any], created: list[Path]) -> None:
        from geovid.tasks.interpolate import run_interpolation

        prompt = _text(item.get("prompt"))
        cfg = dataclasses.replace(self._template, image_a=Path(str(item["a"])), image_b=Path(str(item["b"])),
                                  prompt=prompt if prompt is not None else self._template.prompt,
                                  name=_text(item.get("name")),
                                  resume=_flag(item.get("resume"), self._template.resume))
        run_interpolation(cfg, cancel=self._cancel, created=created, command=self._command)  # type: ignore[arg-type]


__all__ = ["AnalyzeClips", "InterpolatePairs", "ItemInterrupted"]
