"""The runs table: every run in RUNS_DIR with its key numbers; sort, filter, mark, open, compare."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from geovid.runs.catalog import RunRecord, sort_records
from tui.format import (
    KIND_SHORT,
    STATUS_STYLE,
    created_text,
    inputs_text,
    matches,
    num,
    result_text,
    status_text,
)
from tui.messages import CancelJob, JobsChanged, RescanRuns, RunsChanged

if TYPE_CHECKING:
    from tui.app import GeovidApp

SORT_KEYS = ("created", "name", "kind", "status", "result")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def column_widths(total: int) -> dict[str, int]:
    """Column widths (each includes one trailing space as the gap) that fit ``total`` cells."""
    if total >= 110:
        widths = {"name": 26, "kind": 14, "inputs": 20, "status": 12, "created": 17}
    else:
        widths = {"name": 21, "kind": 9, "inputs": 9, "status": 12, "created": 12}
    # 1 = the one-cell vertical scrollbar.
    widths["result"] = max(12, total - sum(widths.values()) - 1)
    return widths


class RunsScreen(Screen[None]):
    """The table of runs with a detail pane for the highlighted one."""

    app: GeovidApp

    DEFAULT_CSS = """
    RunsScreen #filter { height: 1; border: none; padding: 0 1; margin: 0; }
    RunsScreen #runs { height: 1fr; scrollbar-size-vertical: 1; }
    RunsScreen #detail { height: 7; border-top: solid $primary; padding: 0 1; }
    RunsScreen #jobbar { height: 1; display: none; background: $warning-muted; padding: 0 1; }
    RunsScreen #jobbar.-visible { display: block; }
    """

    BINDINGS = [
        Binding("enter", "open", "open", show=False),
        Binding("j", "cursor(1)", "down", show=False),
        Binding("k", "cursor(-1)", "up", show=False),
        Binding("slash", "filter", "filter", key_display="/"),
        Binding("s", "sort", "sort"),
        Binding("space", "mark", "mark"),
        Binding("c", "compare", "compare"),
        Binding("n", "new_job", "new job"),
        Binding("w", "watch_job", "job", show=False),
        Binding("x", "cancel_job", "cancel job", show=False),
        Binding("r", "refresh", "refresh", show=False),
        Binding("q", "quit", "quit"),
        Binding("escape", "clear_filter", "clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort_key = "created"
        self.query_text = ""
        self.marked: list[Path] = []
        self.shown: list[RunRecord] = []
        self._widths: dict[str, int] = {}
        self._quit_armed = False
        self._ready = False

    def compose(self) -> ComposeResult:
        """Title, filter box, table, detail pane, job bar, footer."""
        yield Static("", id="title", classes="title-bar")
        yield Input(placeholder="/ to filter runs (words must all match; Esc clears)", id="filter", compact=True)
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True, cell_padding=0)
        yield Static("", id="detail")
        yield Static("", id="jobbar")
        yield Footer()

    def on_mount(self) -> None:
        """Fill the table and focus it."""
        self._ready = True
        self.query_one("#runs", DataTable).focus()
        self._build_columns(self.size.width or self.app.size.width)
        self.refresh_runs()
        self.refresh_jobs()

    def on_resize(self, event: events.Resize) -> None:
        """Re-fit the columns to the new width."""
        self._build_columns(event.size.width)
        self.refresh_runs()

    def _build_columns(self, width: int) -> None:
        widths = column_widths(width)
        if widths == self._widths:
            return
        self._widths = widths
        table = self.query_one("#runs", DataTable)
        table.clear(columns=True)
        for key in ("name", "kind", "inputs", "status", "created", "result"):
            table.add_column(key, width=widths[key], key=key)

    # ------------------------------------------------------------------ table

    @property
    def table(self) -> DataTable[object]:
        """The runs table widget."""
        return self.query_one("#runs", DataTable)

    def current(self) -> RunRecord | None:
        """The highlighted run."""
        table = self.table
        if not self.shown or table.cursor_row < 0 or table.cursor_row >= len(self.shown):
            return None
        return self.shown[table.cursor_row]

    def on_runs_changed(self, message: RunsChanged) -> None:
        """The app re-read the catalog."""
        self.refresh_runs()

    def on_jobs_changed(self, message: JobsChanged) -> None:
        """A job started, reported progress or ended."""
        self.refresh_jobs()

    def refresh_runs(self) -> None:
        """Rebuild the rows from the app's catalog, keeping the highlighted run."""
        if not self._ready or not self._widths:
            return
        table = self.table
        keep = self.current()
        records = sort_records(self.app.records, self.sort_key)
        self.shown = [r for r in records if matches(r, self.query_text)] if self.query_text else records
        self.marked = [p for p in self.marked if any(r.path == p for r in self.app.records)]
        w = self._widths
        table.clear()
        for record in self.shown:
            mark = "● " if record.path in self.marked else ""
            style = STATUS_STYLE.get(record.status, "")
            kind = record.kind if w["kind"] >= 14 else KIND_SHORT.get(record.kind, record.kind)
            table.add_row(
                Text(_cut(mark + record.name, w["name"] - 1), style="bold" if mark else ""),
                kind,
                _cut(inputs_text(record), w["inputs"] - 1),
                Text(status_text(record), style=style),
                created_text(record, short=w["created"] < 17),
                Text(_cut(result_text(record, narrow=w["result"] < 24), w["result"] - 1),
                     style="red" if record.status in ("failed", "damaged") else ""),
                key=str(record.path),
            )
        if keep is not None:
            for i, record in enumerate(self.shown):
                if record.path == keep.path:
                    table.move_cursor(row=i, animate=False)
                    break
        self._update_title()
        self._update_detail()

    def _update_title(self) -> None:
        total = len(self.app.records)
        parts = [f"geovid · {self.app.runs_dir}", f"{len(self.shown)}/{total} runs" if self.query_text
                 else f"{total} runs", f"sort: {self.sort_key}"]
        if self.marked:
            parts.append(f"{len(self.marked)} marked")
        self.query_one("#title", Static).update(" · ".join(parts))

    def _update_detail(self) -> None:
        record = self.current()
        detail = self.query_one("#detail", Static)
        if record is None:
            if not self.app.records:
                detail.update(f"No runs in {self.app.runs_dir} yet.\nPress n to start an analysis, "
                              "interpolation or extrapolation, or run `geovid analyze CLIP` in a shell.")
            else:
                detail.update("No run matches the filter. Esc clears it.")
            return
        detail.update(detail_text(record))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Show the highlighted run in the detail pane."""
        self._update_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter (or a click on the highlighted row) opens the run."""
        self.action_open()

    # ------------------------------------------------------------------ actions

    def action_cursor(self, delta: int) -> None:
        """j/k move like the arrows."""
        table = self.table
        if self.shown:
            table.move_cursor(row=max(0, min(len(self.shown) - 1, table.cursor_row + delta)))

    def action_open(self) -> None:
        """Open the highlighted run."""
        record = self.current()
        if record is not None:
            from tui.screens.run import RunScreen

            self.app.push_screen(RunScreen(record.path))

    def action_filter(self) -> None:
        """Focus the filter box."""
        self.query_one("#filter", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Filter as you type."""
        if event.input.id == "filter":
            self.query_text = event.value.strip()
            self.refresh_runs()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the filter box goes back to the table, keeping the filter."""
        self.table.focus()

    def action_clear_filter(self) -> None:
        """Esc: clear the filter and go back to the table."""
        box = self.query_one("#filter", Input)
        if box.value:
            box.value = ""
        self.table.focus()

    def action_sort(self) -> None:
        """Cycle the sort order: created (newest first), name, kind, status, result."""
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        self.refresh_runs()

    def action_mark(self) -> None:
        """Mark/unmark the highlighted run for comparison (at most two stay marked)."""
        record = self.current()
        if record is None:
            return
        if record.path in self.marked:
            self.marked.remove(record.path)
        else:
            self.marked.append(record.path)
            self.marked = self.marked[-2:]
        self.refresh_runs()

    def action_compare(self) -> None:
        """Compare the two marked runs (or the marked one with the highlighted one)."""
        pair = list(self.marked)
        current = self.current()
        if len(pair) == 1 and current is not None and current.path != pair[0]:
            pair.append(current.path)
        if len(pair) != 2:
            self.notify("Mark two runs with space (or one, then highlight another), then press c.")
            return
        from tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(pair[0], pair[1]))

    def action_new_job(self) -> None:
        """Open the new-job form."""
        from tui.screens.jobs import NewJobScreen

        self.app.push_screen(NewJobScreen())

    def action_watch_job(self) -> None:
        """Show the newest job's progress."""
        if not self.app.jobs:
            self.notify("No jobs started in this session. Press n for a new one.")
            return
        from tui.screens.jobs import JobScreen

        self.app.push_screen(JobScreen(self.app.jobs[-1].id))

    def action_cancel_job(self) -> None:
        """Cancel the newest running job."""
        active = self.app.active_jobs()
        if not active:
            self.notify("No job is running.")
            return
        self.post_message(CancelJob(active[0].id))
        self.notify(f"Cancelling {active[0].title}…")

    def action_refresh(self) -> None:
        """Re-read the runs folder now."""
        self.post_message(RescanRuns())  # the app re-reads the folder and says how many runs it found

    def action_quit(self) -> None:
        """Quit; with a job running, ask for a second q first."""
        if self.app.active_jobs() and not self._quit_armed:
            self._quit_armed = True
            self.notify("A job is running: press q again to cancel it and quit.", severity="warning")
            return
        self.app.action_quit()

    def refresh_jobs(self) -> None:
        """Update the job bar (the newest job, and how many are running)."""
        if not self._ready:
            return
        bar = self.query_one("#jobbar", Static)
        jobs = self.app.jobs
        if not jobs:
            bar.set_class(False, "-visible")
            return
        job = jobs[-1]
        active = len(self.app.active_jobs())
        more = f" (+{active - 1} running)" if active > 1 else ""
        keys = "w watch · x cancel" if job.active else "w details"
        bar.update(f"job {job.id}: {job.title} · {job.line()}{more} · {keys}")
        bar.set_class(True, "-visible")
        self._quit_armed = self._quit_armed and bool(self.app.active_jobs())


def detail_text(record: RunRecord) -> Text:
    """The detail pane for one run: identity, inputs, problems or error, and the key result."""
    text = Text()
    text.append(record.name, style="bold")
    text.append(f"  {record.kind} · ")
    text.append(record.status, style=STATUS_STYLE.get(record.status, ""))
    text.append(f" · {created_text(record)}\n")
    text.append("inputs: " + (", ".join(record.inputs) or "–") + "\n", style="dim")
    if record.error:
        text.append(f"error: {record.error}\n", style="red")
    for problem in record.problems:
        text.append(f"⚠ {problem}\n", style="yellow")
    n = record.numbers
    if record.kind == "analysis" and n:
        text.append(result_text(record) + f" · residual video {num(n.get('residual_video'))}"
                    f" / optimised {num(n.get('residual_optimised'))}\n")
        if record.verdict:
            text.append(record.verdict)
    elif record.kind == "interpolation" and n:
        for method in ("", "_lerp", "_slerp"):
            if f"ppl{method}" in n:
                label = method.strip("_") or "geodesic"
                text.append(f"{label:9s} PPL {num(n.get('ppl' + method))}  PDV {num(n.get('pdv' + method))}"
                            f"  rel. length {num(n.get('relative_length' + method))}\n")
    elif record.kind == "extrapolation" and n:
        text.append(f"{num(n.get('steps'))} steps of {num(n.get('step_size'))} · speed "
                    f"{num(n.get('initial_speed'))} → {num(n.get('final_speed'))} · "
                    f"{num(n.get('frames_decoded'))} frames decoded\n")
    elif record.status == "running":
        text.append("in progress: " + result_text(record) + "\n")
    return text
