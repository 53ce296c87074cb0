"""Batches of runs on this machine or on a Ray cluster (docs/batch.md): many clips (``geovid analyze``,
docs/method.md §7) or many image pairs (``geovid interpolate --pairs``, docs/method.md §5).

The driver, :func:`run_batch_job`, takes a :class:`BatchJob` (the kind, one dict per item, the options shared by
every item) and an engine:

* ``local`` — the items one after another in this process (one model load);
* ``ray`` — a Ray Data pipeline (``map_batches`` over the public callable classes of :mod:`geovid.distributed`,
  one actor per worker, each loading the model once) on a local Ray cluster sized by ``workers`` or on an
  existing one (``ray_address``).

Either way each item makes one run folder exactly as the single-item command writes it (same names, same files,
same numbers for the same seed), and the driver keeps ``OUT/batch-<time>/batch_summary.csv`` and ``.parquet``
(one row per item: ``pending``, ``running``, then the run's status) written atomically after every change. A
failing item becomes a ``failed`` run and an error row and never stops the others. With ``resume`` complete runs
are skipped (their rows are filled from disk) and unfinished ones are continued. Ctrl-C cancels what has not
started, and the running items stop at their next progress report and are marked ``interrupted``.

Workers and the driver talk through a hidden folder on ``--out`` (``.geovid-batch-*``, :class:`BatchControl`):
a token the driver writes and every Ray node must read back (the start-up check that ``--out`` is shared and
writable), ``started/<item>`` markers (the progress display's "running"), and the ``cancel`` flag. It is removed
at the end. Nothing here imports Ray, torch, Rich or Textual at module level.

The package: :mod:`~geovid.batch.inputs` (clip lists, globs, pairs CSVs), :mod:`~geovid.batch.kinds` (what each
batch kind runs and its summary row), :mod:`~geovid.batch.control` (the control folder and the summary file),
:mod:`~geovid.batch.ray_engine` and :mod:`~geovid.batch.driver` (:func:`run_batch_job`).
"""

from __future__ import annotations

from geovid.batch.control import BatchControl, BatchSummary, CancelFlag, probe_out
from geovid.batch.driver import ENGINES, BatchJob, BatchResult, _plan_resume, run_batch_job
from geovid.batch.inputs import expand_inputs, read_list, read_pairs
from geovid.batch.kinds import (
    CANCELLED,
    COLUMN_TYPES,
    KINDS,
    MAX_ATTEMPTS,
    PAIR_COLUMNS,
    PENDING,
    RUNNING,
    WORKER_COLUMNS,
    KindSpec,
    _text,
    kind_spec,
    network_calls,
    pair_row,
)
from geovid.batch.ray_engine import GRACE_S, INSTALL_RAY, check_out_shared, ray_session, require_ray

__all__ = ["CANCELLED", "COLUMN_TYPES", "ENGINES", "GRACE_S", "INSTALL_RAY", "KINDS", "MAX_ATTEMPTS",
           "PAIR_COLUMNS", "PENDING", "RUNNING", "WORKER_COLUMNS", "BatchControl", "BatchJob", "BatchResult",
           "BatchSummary", "CancelFlag", "KindSpec", "_plan_resume", "_text", "check_out_shared", "expand_inputs",
           "kind_spec", "network_calls", "pair_row", "probe_out", "ray_session", "read_list", "read_pairs",
           "require_ray", "run_batch_job"]
