"""The one runner of phased jobs: analysis, interpolation and extrapolation are each a list of :class:`Phase`.

A job declares its phases once — name, the work, how its result is restored on resume (from its saved state
``state/<name>.safetensors`` or from its own output files) — and :func:`run_job` does the rest for every kind:

* opening the run folder, or with ``resume`` finding and continuing the matching one (:func:`open_run`);
* cancel (a set event raises :class:`geovid.progress.Cancelled` from the progress callback, :func:`with_cancel`);
* per phase: skip it when it is done and its result can be restored, else time it, record it in the manifest's
  ``timings`` and ``phases_done``, save its state and bring the run's ``network_calls`` up to date
  (:class:`CallCounter`);
* the final status: ``complete`` after checking the required outputs, ``interrupted`` on Ctrl-C or cancel,
  ``failed`` with a one-line error otherwise (:meth:`geovid.runs.store.Run.guard`).

The pattern is a pipeline's numbered steps (diffusers) with one driving loop (torchdiffeq's integrate loop over a
solver's step function): the loop lives here, the steps in the jobs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from geovid.errors import InputError
from geovid.progress import Cancelled, ProgressFn, null_progress
from geovid.runs.contract import MANIFEST
from geovid.runs.files import read_json_object, to_jsonable
from geovid.runs.state import State, load_state, save_state
from geovid.runs.store import Run

if TYPE_CHECKING:
    from geovid.backbones.base import Backbone
    from geovid.runs.options import RunOptions


@dataclass(frozen=True)
class Phase:
    """One step of a job.

    Attributes:
        name: the name recorded in the manifest (``phases_done``, ``timings``) and shown in progress.
        work: does the phase. With ``state``, it returns ``(tensors, meta)``, saved as ``state/<name>.safetensors``.
        restore: on resume, when the phase is recorded as done: with ``state``, called with the saved
            ``(tensors, meta)``; without, called with no argument and returns whether the result could be restored
            (``False``: the phase is done again). ``None``: the phase runs every time (e.g. loading the model).
        state: ``work`` returns the state to save (see above).
        files: outputs (relative to the run) that must still exist for the phase to count as done.
        record: record the phase in ``phases_done`` (``False``: only its time, under ``timings[name]``).
    """

    name: str
    work: Callable[[], Any]
    restore: Callable[..., Any] | None = None
    state: bool = False
    files: tuple[str, ...] = ()
    record: bool = True


class PhasedJob(Protocol):
    """What :func:`run_job` drives: the phases (a generator may build later phases from earlier results), the
    outputs :meth:`Run.complete` checks, and the backbone once it is loaded; the runner then sets ``calls``, the
    run's call counter (phases may bring it up to date during long work with ``calls.counted``)."""

    backbone: Backbone | None
    calls: CallCounter | None

    def phases(self) -> Iterable[Phase]: ...

    def outputs(self) -> list[str]: ...


class Job:
    """What the phased jobs share (a base for :class:`PhasedJob` implementations): the run, the progress callback, the
    backbone once a phase has loaded it, the call counter the runner sets, and the outputs the last phase lists."""

    def __init__(self, run: Run, progress: ProgressFn) -> None:
        self.run = run
        self.progress = progress
        self.backbone: Backbone | None = None
        self.calls: CallCounter | None = None
        self.required: list[str] = []

    def phases(self) -> Iterable[Phase]:
        raise NotImplementedError

    def outputs(self) -> list[str]:
        """The outputs :meth:`Run.complete` checks (the last phase lists them in ``required``)."""
        return self.required

    @property
    def bb(self) -> Backbone:
        """The loaded backbone."""
        assert self.backbone is not None, "no phase has loaded the model yet"
        return self.backbone

    def counted(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` with the run's call count brought up to date afterwards (see :meth:`CallCounter.counted`)."""
        assert self.calls is not None, "the runner counts calls from the phase that loads the model on"
        return self.calls.counted(fn)


def with_cancel(progress: ProgressFn | None, cancel: threading.Event | None) -> ProgressFn:
    """A progress callback that raises :class:`Cancelled` once ``cancel`` is set, then forwards to ``progress``."""
    inner = progress or null_progress

    def cb(phase: str, done: int, total: int | None, info: dict[str, Any]) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        inner(phase, done, total, info)

    return cb


class CallCounter:
    """Keeps the run's ``network_calls`` equal to the calls made before a resume plus the backbone's calls since
    the counter was made."""

    def __init__(self, run: Run, backbone: Backbone) -> None:
        self.run = run
        self.backbone = backbone
        self.base = int(run.manifest.get("network_calls", 0))
        self.start = int(backbone.network_calls)

    @property
    def total(self) -> int:
        return self.base + int(self.backbone.network_calls) - self.start

    def update(self) -> None:
        self.run.set_network_calls(self.total)

    def counted(self, fn: Callable[[], Any]) -> Any:
        """``fn()``, with the count brought up to date afterwards (live in the manifest during long phases)."""
        try:
            return fn()
        finally:
            self.update()


# --------------------------------------------------------------------------- opening a run


def _abs_inputs(inputs: list[Any]) -> list[str]:
    return [os.path.abspath(os.fspath(p)) if isinstance(p, str | os.PathLike) else str(p) for p in inputs]


def find_previous(out: Path, kind: str, inputs: list[Any], config: Mapping[str, Any]) -> Path | None:
    """Newest run of ``kind`` in ``out`` made from these inputs with these options (``--resume`` without a name)."""
    if not out.is_dir():
        return None
    want_inputs, want_cfg = _abs_inputs(inputs), to_jsonable(dict(config))
    best: tuple[str, Path] | None = None
    for entry in os.scandir(out):
        m = read_json_object(Path(entry.path) / MANIFEST)
        if (m is None or m.get("kind") != kind or m.get("inputs") != want_inputs
                or to_jsonable(m.get("config") or {}) != want_cfg):
            continue
        key = str(m.get("created", ""))
        if best is None or key > best[0]:
            best = (key, Path(entry.path))
    return best[1] if best else None


def open_run(kind: str, config: Mapping[str, Any], out: str | os.PathLike[str], name: str | None, resume: bool,
             inputs: list[Any], model_id: str, seed: int, command: list[str] | None = None) -> tuple[Run, bool]:
    """Create a new run folder, or with ``resume`` continue one: ``out/name`` when a name is given, else the
    newest run of this kind made from the same inputs with the same options (a new run if there is none).

    Returns:
        (run, already_complete): a resumed run that had finished is returned as is, with ``True``.

    Raises:
        InputError: the run exists (without ``resume``), is of another kind, was made from other inputs or
            with other options.
    """
    out = Path(out).expanduser()
    if resume:
        path = out / name if name else find_previous(out, kind, inputs, config)
        stored = read_json_object(path / MANIFEST) if path is not None else None
        if path is not None and stored is not None:
            if stored.get("kind") != kind:
                raise InputError(f"run {path.name} is an {stored.get('kind')} run, not an {kind} run")
            old = [str(p) for p in (stored.get("inputs") or [])]
            if old != _abs_inputs(inputs):
                raise InputError(f"run {path.name} was made from {', '.join(old)}; resume it with the same inputs")
            if stored.get("status") == "complete":
                if to_jsonable(stored.get("config") or {}) != to_jsonable(dict(config)):
                    raise InputError(f"run {path.name} is complete but was made with different options; "
                                     "start a new run without --resume")
                return Run(path, stored), True
            return Run.resume(path, config=config), False
        if path is not None and path.exists():
            return Run.resume(path, config=config), False  # reports the damaged manifest
    run = Run.create(out, kind, name=name, inputs=inputs, config=config, model=model_id, seed=seed, command=command)
    return run, False


# --------------------------------------------------------------------------- running the phases


def _restored(run: Run, phase: Phase) -> bool:
    """On resume: whether ``phase`` is done and its result is back on the job."""
    if phase.restore is None or not run.is_done(phase.name):
        return False
    if not all((run.path / f).exists() for f in phase.files):
        return False
    if phase.state:
        saved: State | None = load_state(run, phase.name)
        if saved is None:
            return False
        phase.restore(*saved)
        return True
    return phase.restore() is not False


def execute(run: Run, job: PhasedJob) -> None:
    """Run ``job``'s phases in order on ``run`` (see the module docstring), then mark the run complete."""
    calls: CallCounter | None = None
    for phase in job.phases():
        if _restored(run, phase):
            continue
        t0 = time.perf_counter()
        if phase.record:
            with run.phase(phase.name):
                result = phase.work()
                if phase.state:
                    save_state(run, phase.name, *result)
        else:
            phase.work()
            run.manifest["timings"][phase.name] = round(time.perf_counter() - t0, 4)
        if calls is None and getattr(job, "backbone", None) is not None:
            calls = job.calls = CallCounter(run, job.backbone)  # counts from the model's first phase on
        elif calls is not None:
            calls.update()
    run.complete(required=job.outputs())


def run_job(kind: str, config: Mapping[str, Any], options: RunOptions, inputs: list[Any], model_id: str,
            make_job: Callable[[Run, ProgressFn], PhasedJob], progress: ProgressFn | None = None,
            cancel: threading.Event | None = None, created: list[Path] | None = None,
            command: list[str] | None = None, on_complete: Callable[[Run, ProgressFn], None] | None = None) -> Path:
    """Open (or resume) a run of ``kind`` and execute the job ``make_job(run, progress)`` builds in it.

    Args:
        kind: ``analysis``, ``interpolation`` or ``extrapolation``.
        config: the resolved options as stored in the manifest (what ``--resume`` compares).
        options: the job's options (:class:`geovid.runs.options.RunOptions`: ``out``, ``name``, ``resume``, ``seed``).
        inputs: the input files (recorded in the manifest; ``--resume`` compares them).
        model_id: the model's id recorded in the manifest.
        make_job: builds the job once the run folder exists.
        progress, cancel: the progress callback and the cancel event.
        created: when given, the run folder is appended as soon as it exists (the batch engines name the folder of
            a run that then fails).
        command: the command line recorded in the manifest (default ``sys.argv``).
        on_complete: called instead of the job when a resumed run is already complete.

    Returns:
        The run folder, complete.
    """
    prog = with_cancel(progress, cancel)
    run, finished = open_run(kind, config, options.out, options.name, options.resume, inputs, model_id,
                             options.seed, command=command)
    if created is not None:
        created.append(run.path)
    if finished:
        if on_complete is not None:
            on_complete(run, prog)
        return run.path
    with run.guard():
        execute(run, make_job(run, prog))
    return run.path


__all__ = ["CallCounter", "Job", "Phase", "PhasedJob", "execute", "find_previous", "open_run", "run_job", "with_cancel"]
