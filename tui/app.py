"""The geovid terminal UI: application object and the :func:`make_app` factory.

The app is a client of the library: it reads runs with :mod:`geovid.runs.catalog`, starts
jobs through an :class:`~tui.engine.Engine` in Textual thread workers, and never touches
models itself. ``geovid tui`` and the tests both build it with :func:`make_app`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from geovid.errors import GeovidError
from geovid.progress import Cancelled
from geovid.runs.catalog import RunRecord, runs_signature, scan_runs
from geovid.runs.jobs import with_cancel
from tui.engine import Engine, EngineUnavailable, LibraryEngine
from tui.images import prepare_renderer
from tui.jobs import Job, PhaseProgress
from tui.messages import CancelJob, JobProgress, JobsChanged, OpenFile, RescanRuns, RunsChanged, StartJob

Opener = Callable[[Path], str | None]


def system_opener(path: Path) -> str | None:
    """Open ``path`` in the desktop's viewer when there is one; else say why not (returns a message)."""
    if sys.platform == "darwin" and shutil.which("open"):
        cmd = ["open", str(path)]
    elif (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and shutil.which("xdg-open"):
        cmd = ["xdg-open", str(path)]
    else:
        return f"no picture viewer here (SSH or no display); the file is {path}"
    try:
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        return f"could not open {path}: {exc}"
    return None


def _warm_imports() -> None:
    """Import pandas and torch (the job form's choices come from the library's registries) in the background so
    that opening the first run or the job form does not stall the UI."""
    import pandas  # noqa: F401

    import geovid.geometry.estimators
    import geovid.geometry.metrics  # noqa: F401


class GeovidApp(App[None]):
    """Browse runs, look inside them, compare two, and start new jobs."""

    TITLE = "geovid"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    .title-bar { height: 1; background: $primary-background; color: $text; padding: 0 1; text-style: bold; }
    .muted { color: $text-muted; }
    """
    BINDINGS = [
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    def __init__(self, runs_dir: Path, engine: Engine, image_renderer: str, poll_interval: float,
                 opener: Opener) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.engine = engine
        self.renderer = image_renderer
        self.poll_interval = poll_interval
        self.opener = opener
        self.records: list[RunRecord] = []
        self.jobs: list[Job] = []
        self._signature: tuple[Any, ...] | None = None
        self.sub_title = str(runs_dir)

    # ------------------------------------------------------------------ runs

    def get_default_screen(self) -> Screen[Any]:
        """The runs table is the bottom screen."""
        from tui.screens.runs import RunsScreen

        self.rescan(notify=False)
        return RunsScreen()

    def on_mount(self) -> None:
        """Poll the runs folder for new or changed runs (stat calls only)."""
        if self.poll_interval > 0:
            self.set_interval(self.poll_interval, self.poll)
        self.run_worker(_warm_imports, name="warm-up", group="warm-up", thread=True, exit_on_error=False)

    def poll(self) -> None:
        """Re-read the catalog when anything in the runs folder changed."""
        if runs_signature(self.runs_dir) != self._signature:
            self.rescan()

    def rescan(self, notify: bool = True) -> None:
        """Re-read all runs (cheap: two small JSON files per run) and tell the screens."""
        # Signature first: a change during the scan is then caught by the next poll.
        self._signature = runs_signature(self.runs_dir)
        self.records = scan_runs(self.runs_dir)
        if notify:
            for screen in self.screen_stack:
                screen.post_message(RunsChanged())

    def record_for(self, path: Path) -> RunRecord | None:
        """The catalog's record of a run folder, if known."""
        for record in self.records:
            if record.path == path:
                return record
        return None

    def open_file(self, path: Path) -> None:
        """Open a PNG with the system viewer, or show its path where there is none."""
        message = self.opener(path.resolve())
        self.notify(message or f"opened {path.name}", timeout=6)

    def action_help(self) -> None:
        """Show the keys."""
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # ------------------------------------------------------------------ jobs

    def start_job(self, kind: str, options: dict[str, Any]) -> Job:
        """Launch a job in a thread worker; progress arrives as :class:`JobProgress` messages."""
        job = Job(id=len(self.jobs) + 1, kind=kind, options=options)
        self.jobs.append(job)

        def body() -> Path:
            def post(phase: str, done: int, total: int | None, info: dict[str, Any]) -> None:
                self.post_message(JobProgress(job.id, phase, done, total, dict(info)))

            return self.engine.start(kind, options, self.runs_dir, with_cancel(post, job.cancel), job.cancel)

        self.run_worker(body, name=f"job-{job.id}", group="jobs", thread=True, exit_on_error=False)
        self._jobs_changed()
        return job

    def job(self, job_id: int) -> Job | None:
        """A job by id."""
        return next((j for j in self.jobs if j.id == job_id), None)

    def active_jobs(self) -> list[Job]:
        """Jobs still running, newest first."""
        return [j for j in reversed(self.jobs) if j.active]

    def cancel_job(self, job: Job) -> None:
        """Ask a job to stop; the engine stops at its next progress report."""
        if job.active:
            job.cancel.set()
            job.state = "cancelling"
            self._jobs_changed()

    def on_job_progress(self, message: JobProgress) -> None:
        """Record a progress report from a worker thread."""
        job = self.job(message.job_id)
        if job is None:
            return
        if message.phase == "setup" and "note" in message.info:
            job.notes.append(str(message.info["note"]))
        job.phases[message.phase] = PhaseProgress(message.done, message.total, message.info)
        job.phase = message.phase
        if job.state == "starting":
            job.state = "running"
        self._jobs_changed()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Turn the end of a job's worker into the job's final state."""
        worker = event.worker
        if worker.group != "jobs" or not worker.name.startswith("job-"):
            return
        job = self.job(int(worker.name.removeprefix("job-")))
        if job is None:
            return
        if event.state == WorkerState.SUCCESS:
            job.state = "complete"
            job.run_path = Path(worker.result) if worker.result is not None else None
            self.notify(f"{job.title}: complete", timeout=5)
        elif event.state == WorkerState.ERROR:
            error = worker.error
            if isinstance(error, Cancelled):
                job.state, job.error = "cancelled", "cancelled; the run is marked interrupted"
            elif isinstance(error, EngineUnavailable):
                job.state, job.error = "unavailable", str(error)
            elif isinstance(error, GeovidError):
                job.state, job.error = "failed", str(error)
            else:
                job.state, job.error = "failed", f"{type(error).__name__}: {error}"
            self.notify(f"{job.title}: {job.error}", severity="warning" if job.state == "cancelled" else "error",
                        timeout=8)
        elif event.state == WorkerState.CANCELLED:
            job.state, job.error = "cancelled", "cancelled"
        else:
            return
        self.rescan()
        self._jobs_changed()

    def _jobs_changed(self) -> None:
        for screen in self.screen_stack:
            screen.post_message(JobsChanged())

    # ------------------------------------------------------------------ requests from the screens

    def on_start_job(self, message: StartJob) -> None:
        """Launch the job a screen asked for and show its progress in place of that screen."""
        from tui.screens.jobs import JobScreen

        job = self.start_job(message.kind, message.options)
        self.switch_screen(JobScreen(job.id))

    def on_cancel_job(self, message: CancelJob) -> None:
        """Stop the job a screen asked to stop."""
        job = self.job(message.job_id)
        if job is not None:
            self.cancel_job(job)

    def on_open_file(self, message: OpenFile) -> None:
        """Open the file a screen asked for."""
        self.open_file(message.path)

    def on_rescan_runs(self, message: RescanRuns) -> None:
        """Re-read the runs folder now, and say how many runs it holds."""
        self.rescan()
        self.notify(f"{len(self.records)} runs", timeout=2)

    def action_quit(self) -> None:  # type: ignore[override]
        """Quit; running jobs are asked to stop first (their runs become interrupted)."""
        for job in self.active_jobs():
            job.cancel.set()
        self.exit()


def make_app(runs_dir: str | os.PathLike[str] = "runs", engine: Engine | None = None,
             image_renderer: str = "auto", poll_interval: float = 1.0,
             opener: Opener | None = None) -> GeovidApp:
    """Build the TUI.

    Args:
        runs_dir: Folder of runs to browse (need not exist yet).
        engine: What runs new jobs; default :class:`~tui.engine.LibraryEngine` (the real library).
        image_renderer: ``auto`` (best the terminal supports, falls back to half blocks),
            ``halfblock`` (deterministic; tests), ``sixel``, ``tgp`` or ``none``.
        poll_interval: Seconds between checks of the runs folder for changes (0: never).
        opener: Opens a PNG outside the terminal; default: the desktop viewer when there is one.

    Returns:
        The app; call ``.run()``, or ``.run_test()`` in tests.
    """
    renderer = prepare_renderer(image_renderer)
    return GeovidApp(Path(runs_dir), engine or LibraryEngine(), renderer, poll_interval,
                     opener or system_opener)
