"""Starting jobs: the new-job form and the live job view (the form's parsing is :mod:`tui.screens.job_form`, the
file picker :mod:`tui.screens.file_picker`)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from tui.engine import JOB_KINDS
from tui.jobs import Job
from tui.messages import CancelJob, JobsChanged, StartJob
from tui.screens.file_picker import FilePickerScreen
from tui.screens.job_form import DEFAULTS, IMAGE_EXT, INPUT_HINT, VIDEO_EXT, parse_form

if TYPE_CHECKING:
    from tui.app import GeovidApp

__all__ = ["FilePickerScreen", "JobScreen", "NewJobScreen", "job_renderable", "parse_form"]


class NewJobScreen(Screen[None]):
    """The form: kind, inputs (with a file picker), the main options; Start launches the job."""

    app: GeovidApp

    DEFAULT_CSS = """
    NewJobScreen #form { padding: 0 1; height: 1fr; }
    NewJobScreen .row { height: 1; }
    NewJobScreen .row Label { width: 14; }
    NewJobScreen .row Input { width: 1fr; }
    NewJobScreen .row Select { width: 24; }
    NewJobScreen #browse { margin-left: 1; min-width: 10; }
    NewJobScreen #form-error { color: $error; height: auto; }
    NewJobScreen #availability { color: $warning; height: auto; }
    NewJobScreen #buttons { height: 1; margin-top: 1; }
    NewJobScreen #buttons Button { margin-right: 2; }
    """
    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("ctrl+s", "start", "start"),
        Binding("ctrl+o", "browse", "pick file"),
    ]

    def __init__(self, kind: str = "analysis") -> None:
        super().__init__()
        self.kind = kind

    def compose(self) -> ComposeResult:
        """The form rows (the metric and estimator choices from the library's registries)."""
        from geovid.geometry.estimators import MODEL_ESTIMATORS
        from geovid.geometry.metrics import METRICS

        d = DEFAULTS[self.kind]
        yield Static(f"new job · runs go to {self.app.runs_dir}", classes="title-bar")
        with VerticalScroll(id="form"):
            with Horizontal(classes="row"):
                yield Label("kind")
                yield Select([(k, k) for k in JOB_KINDS], value=self.kind, allow_blank=False, id="kind",
                             compact=True)
            with Horizontal(classes="row"):
                yield Label("inputs")
                yield Input(placeholder=INPUT_HINT[self.kind], id="inputs", compact=True)
                yield Button("browse…", id="browse", compact=True)
            with Horizontal(classes="row", id="row-frames"):
                yield Label("frames")
                yield Input(d.get("frames", "16"), id="frames", type="integer", compact=True)
            with Horizontal(classes="row", id="row-steps"):
                yield Label("steps")
                yield Input(DEFAULTS["extrapolation"]["steps"], id="steps", type="integer", compact=True)
            with Horizontal(classes="row"):
                yield Label("noise level ν")
                yield Input(d["noise_level"], placeholder="default (0.6, or the run's own)", id="noise_level",
                            type="number", compact=True)
            with Horizontal(classes="row"):
                yield Label("alpha α")
                yield Input(d["alpha"], placeholder="by the rule of docs/method.md §3.7", id="alpha", type="number",
                            compact=True)
            with Horizontal(classes="row"):
                yield Label("metric")
                yield Select([("default", "default"), *((k, k) for k in METRICS)],
                             value=d["metric"], allow_blank=False, id="metric", compact=True)
            with Horizontal(classes="row"):
                yield Label("estimator")
                yield Select([("default", "default"), *((k, k) for k in MODEL_ESTIMATORS)],
                             value=d["estimator"], allow_blank=False, id="estimator", compact=True)
            with Horizontal(classes="row"):
                yield Label("name")
                yield Input(placeholder="automatic: <input>-<time>", id="name", compact=True)
            with Horizontal(classes="row"):
                yield Label("seed")
                yield Input(d["seed"], id="seed", type="integer", compact=True)
            with Horizontal(classes="row"):
                yield Label("model")
                yield Input(placeholder="bundled (default), a Stable-Diffusion folder, or a cached hub id",
                            id="model", compact=True)
            with Horizontal(classes="row"):
                yield Label("more")
                yield Input(placeholder="other options: key=value … (e.g. max_calls=50 decode_steps=4)",
                            id="more", compact=True)
            yield Static("", id="availability")
            yield Static("", id="form-error")
            with Horizontal(id="buttons"):
                yield Button("Start (ctrl+s)", id="start", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        """Show the rows that apply to the kind; focus the inputs box."""
        self._apply_kind()
        self.query_one("#inputs", Input).focus()

    def _apply_kind(self) -> None:
        extrap = self.kind == "extrapolation"
        self.query_one("#row-frames").display = not extrap
        self.query_one("#row-steps").display = extrap
        self.query_one("#inputs", Input).placeholder = INPUT_HINT[self.kind]
        reason = self.app.engine.unavailable_reason(self.kind)
        self.query_one("#availability", Static).update(f"⚠ {reason}" if reason else "")

    def on_select_changed(self, event: Select.Changed) -> None:
        """A new kind: its defaults and rows."""
        if event.select.id != "kind" or event.value == self.kind or not isinstance(event.value, str):
            return
        self.kind = event.value
        d = DEFAULTS[self.kind]
        if "frames" in d:
            self.query_one("#frames", Input).value = d["frames"]
        self.query_one("#noise_level", Input).value = d["noise_level"]
        self._apply_kind()

    def values(self) -> dict[str, str]:
        """The form's current text values."""
        out = {i.id: i.value for i in self.query(Input) if i.id}
        for sel in self.query(Select):
            if sel.id and isinstance(sel.value, str):
                out[sel.id] = sel.value
        return out

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Start, cancel, or browse."""
        if event.button.id == "start":
            self.action_start()
        elif event.button.id == "cancel":
            self.action_back()
        elif event.button.id == "browse":
            self.action_browse()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in any field starts the job."""
        self.action_start()

    def action_browse(self) -> None:
        """Pick an input file; it is appended to the inputs box."""
        ext = {"analysis": VIDEO_EXT, "interpolation": IMAGE_EXT}.get(self.kind, IMAGE_EXT | VIDEO_EXT)

        def chosen(path: Path | None) -> None:
            if path is None:
                return
            box = self.query_one("#inputs", Input)
            box.value = (box.value + " " + shlex.quote(str(path))).strip()
            box.focus()

        self.app.push_screen(FilePickerScreen(Path.cwd(), ext), chosen)

    def action_start(self) -> None:
        """Validate and launch; then show the job's progress."""
        reason = self.app.engine.unavailable_reason(self.kind)
        if reason:
            self.query_one("#form-error", Static).update(f"cannot start: {reason}")
            return
        try:
            options = parse_form(self.kind, self.values())
        except ValueError as exc:
            self.query_one("#form-error", Static).update(str(exc))
            return
        self.post_message(StartJob(self.kind, options))  # the app starts it and shows its JobScreen

    def action_back(self) -> None:
        """Close the form."""
        self.dismiss()


def job_renderable(job: Job) -> RenderableType:
    """A job's phases as progress bars with their live numbers (no clocks: deterministic)."""
    head = Text()
    head.append(f"job {job.id}: {job.title}\n", style="bold")
    style = {"complete": "green", "failed": "red", "unavailable": "red", "cancelled": "yellow",
             "cancelling": "yellow"}.get(job.state, "cyan")
    head.append(f"state: {job.state}", style=style)
    if job.run_path is not None:
        head.append(f" · run: {job.run_path}")
    if job.error:
        head.append(f"\n{job.error}", style=style)
    table = Table(box=None, pad_edge=False, show_header=False, expand=True)
    table.add_column("phase", width=10, no_wrap=True)
    table.add_column("bar", ratio=1)
    table.add_column("count", justify="right", width=9, no_wrap=True)
    table.add_column("info", ratio=1, overflow="ellipsis", no_wrap=True)
    for name, p in job.phases.items():
        if name == "setup":
            continue
        bar: RenderableType = (ProgressBar(total=float(p.total), completed=float(p.done), width=None)
                               if p.total else Text("…"))
        count = f"{p.done}/{p.total}" if p.total else str(p.done)
        info = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.info.items())
        table.add_row(name, bar, count, info)
    parts: list[RenderableType] = [head, Text(""), table]
    for note in job.notes:
        parts.append(Text(f"note: {note}", style="dim"))
    return Group(*parts)


class JobScreen(Screen[None]):
    """Live progress of one job; x cancels, Enter opens the finished run, Esc goes back (job continues)."""

    app: GeovidApp

    DEFAULT_CSS = """
    JobScreen #job-body { padding: 1 2; height: 1fr; }
    """
    BINDINGS = [
        Binding("escape,q", "back", "back (job continues)"),
        Binding("x", "cancel", "cancel job"),
        Binding("enter", "open", "open run"),
    ]

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        self._ready = False

    def compose(self) -> ComposeResult:
        """Title and the progress body."""
        yield Static("job", classes="title-bar")
        yield Static("", id="job-body")
        yield Footer()

    def on_mount(self) -> None:
        """First render."""
        self._ready = True
        self.refresh_jobs()

    @property
    def job(self) -> Job | None:
        """The job shown."""
        return self.app.job(self.job_id)

    def on_jobs_changed(self, message: JobsChanged) -> None:
        """The app's jobs changed (a progress report, a new state)."""
        self.refresh_jobs()

    def refresh_jobs(self) -> None:
        """Show the job's progress."""
        job = self.job
        if job is None or not self._ready:
            return
        self.query_one("#job-body", Static).update(job_renderable(job))
        hint = ("x cancel · Esc back (job keeps running)" if job.active
                else ("Enter open the run · Esc back" if job.run_path else "Esc back"))
        self.query_one(".title-bar", Static).update(f"job {job.id} · {job.kind} · {job.state} · {hint}")
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out cancel when the job is over and open until there is a run."""
        job = self.job
        if action == "cancel":
            return job is not None and job.active
        if action == "open":
            return job is not None and job.run_path is not None
        return True

    def action_cancel(self) -> None:
        """Ask the job to stop (its run becomes interrupted)."""
        job = self.job
        if job is not None and job.active:
            self.post_message(CancelJob(job.id))

    def action_open(self) -> None:
        """Open the finished run."""
        job = self.job
        if job is None or job.run_path is None:
            self.notify("The job has not produced a finished run yet.")
            return
        from tui.screens.run import RunScreen

        self.app.switch_screen(RunScreen(job.run_path))

    def action_back(self) -> None:
        """Back to the runs table."""
        self.dismiss()
