"""One run: summary and verdict, terminal plots (plus the PNG plots), and the frame browser."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from analysis.verdict import excess_text, percent_text
from geovid.runs.catalog import RunRecord, list_baselines, list_frames, list_plots, load_per_frame, load_run
from tui.format import STATUS_STYLE, created_text, num
from tui.images import make_image, set_image
from tui.messages import OpenFile, RunsChanged
from tui.plots import PlotPanel
from tui.widgets import FrameBrowser, FrameSequence

if TYPE_CHECKING:
    import pandas as pd

    from tui.app import GeovidApp

#: Per-frame table path name shown for each frame folder, by kind.
TABLE_PATH = {"frames": {"analysis": "video", "interpolation": "geodesic", "extrapolation": "shot"},
              "optimised": {"analysis": "optimised"}}


def frame_sequences(record: RunRecord, which: str = "all") -> list[FrameSequence]:
    """The frame columns of a run: video beside optimised (analysis), geodesic beside each baseline
    (interpolation), the shot (extrapolation). ``which="result"`` keeps only the result column."""
    run = record.path
    if record.kind == "analysis":
        seqs = [FrameSequence("video", list_frames(run, "frames")),
                FrameSequence("optimised", list_frames(run, "optimised"))]
        return seqs[1:] if which == "result" else seqs
    if record.kind == "interpolation":
        seqs = [FrameSequence("geodesic", list_frames(run, "frames"))]
        if which != "result":
            seqs += [FrameSequence(b, list_frames(run / "baselines" / b, "frames")) for b in list_baselines(run)]
        return seqs
    label = "shot" if record.kind == "extrapolation" else "frames"
    return [FrameSequence(label, list_frames(run, "frames"))]


def frame_info(table: pd.DataFrame | None, index: int, paths: list[str] | None = None) -> str:
    """Per-frame numbers (residual, log-density) at frame ``index`` of ``paths`` (default: all), one line."""
    if table is None:
        return ""
    try:
        rows = table[table["frame"] == index]
    except (KeyError, TypeError):
        return ""
    parts = []
    for _, row in rows.iterrows():
        if paths is not None and str(row["path"]) not in paths:
            continue
        bits = [f"{col[:3] if col != 'log_density' else 'log p'} {num(row[col])}"
                for col in ("residual", "log_density") if col in row and row[col] == row[col]]
        if bits:
            parts.append(f"{row['path']}: " + " ".join(bits))
    return " · ".join(parts)


def summary_renderable(record: RunRecord) -> RenderableType:
    """Everything in manifest and summary worth reading, as Rich tables and text."""
    parts: list[RenderableType] = []
    head = Text()
    head.append(record.name, style="bold")
    head.append(f"  {record.kind} · ")
    head.append(record.status, style=STATUS_STYLE.get(record.status, ""))
    head.append(f" · created {created_text(record)}")
    parts.append(head)
    m = record.manifest or {}
    parts.append(Text(f"path: {record.path}", style="dim"))
    parts.append(Text("inputs: " + (", ".join(record.inputs) or "–"), style="dim"))
    if record.error:
        parts.append(Text(f"error: {record.error}", style="red"))
    if (record.path / "traceback.txt").is_file():
        parts.append(Text(f"traceback: {record.path / 'traceback.txt'}", style="dim"))
    for problem in record.problems:
        parts.append(Text(f"⚠ {problem}", style="yellow"))
    if record.status == "running":
        parts.append(Text(f"in progress; phases done: {', '.join(m.get('phases_done') or []) or 'none'}",
                          style="cyan"))
    s = record.summary or {}
    if record.kind == "analysis" and s:
        parts += _analysis_parts(s)
    elif record.kind == "interpolation" and s:
        parts += _interpolation_parts(s)
    elif record.kind == "extrapolation" and s:
        t = Table(title="extrapolation (docs/method.md §6)", title_justify="left", show_header=False, box=None)
        for key in ("steps", "step_size", "initial_speed", "final_speed", "frames_decoded"):
            t.add_row(key.replace("_", " "), num(s.get(key)))
        parts.append(t)
    if m:
        parts.append(_manifest_table(m))
    return Group(*parts)


def _analysis_parts(s: dict[str, Any]) -> list[RenderableType]:
    parts: list[RenderableType] = []
    verdict = s.get("verdict")
    excess, log_excess = s.get("geodesic_excess"), s.get("log_geodesic_excess")
    paths = s.get("paths") if isinstance(s.get("paths"), dict) else {}
    rv = (paths.get("video") or {}).get("mean_residual")
    rl = (paths.get("line") or {}).get("mean_residual")
    rel = (s.get("readable") or {}).get("residual_relative_to_line") or (
        rv / rl if isinstance(rv, int | float) and isinstance(rl, int | float) and rl else None)
    line = f"\nthe clip's path is {percent_text(log_excess, excess)} its optimised version (geodesic excess " \
           f"{excess_text(excess, log_excess)})"
    if rel is not None:
        line += f"; mean ‖r‖ {num(rel)}× the straight line's"
    parts.append(Text(line, style="bold"))
    if isinstance(verdict, str):
        parts.append(Text(verdict))
    ctrl = s.get("controls")
    if isinstance(ctrl, dict) and ctrl:
        t = Table(title="controls (docs/method.md §7.7)", title_justify="left", box=None, pad_edge=False)
        for col in ("", "control", "vs its optimised path", "mean ‖r(video)‖", "reading"):
            t.add_column(col)
        for name in ("shuffled", "reversed"):
            c = ctrl.get(name)
            if not isinstance(c, dict):
                continue
            ok = c.get("larger_excess") if name == "shuffled" else c.get("invariant")
            reading = (("further from a geodesic than the clip" if ok else "NOT further than the clip")
                       if name == "shuffled" else
                       f"{'same' if ok else 'differs'}: excess {num(100 * (c.get('excess_relative_difference') or 0))} %, "
                       f"‖r‖ {num(100 * (c.get('residual_relative_difference') or 0))} %")
            t.add_row(Text("✓", style="green") if ok else Text("✗", style="red"), name,
                      percent_text(c.get("log_geodesic_excess")).removesuffix(" than").removesuffix(" as"),
                      num(c.get("mean_residual_video")), reading)
        parts.append(t)
        if ctrl.get("informative") is False:
            parts.append(Text("the shuffled clip passes the same tests: the verdict is uninformative",
                              style="yellow"))
    tests = s.get("tests")
    if isinstance(tests, dict) and tests:
        t = Table(title="tests (docs/method.md §7.4)", title_justify="left", box=None, pad_edge=False)
        t.add_column("")
        t.add_column("")
        t.add_column("test")
        t.add_column("value", justify="right")
        for key, test in tests.items():
            if not isinstance(test, dict):
                continue
            passed = test.get("passed")
            mark = Text("✓", style="green") if passed is True else Text("✗", style="red")
            value = (f"{num(test.get('value'))} vs {num(test.get('threshold'))}" if "value" in test else
                     " ".join(f"{k.split('_')[0]} {num(v)}" for k, v in test.items() if k.endswith("ratio")))
            t.add_row(mark, str(key), str(test.get("description", "")), value)
        parts.append(t)
    paths = s.get("paths")
    if isinstance(paths, dict) and paths:
        t = Table(title="paths", title_justify="left", box=None, pad_edge=False)
        cols = ("mean_residual", "median_residual", "relative_length", "energy")
        t.add_column("path")
        for col in cols:
            t.add_column(col.replace("_", " ").replace("residual", "‖r‖"), justify="right")
        for name, stats in paths.items():
            if isinstance(stats, dict) and stats:
                t.add_row(name, *(num(stats.get(c)) for c in cols))
        parts.append(t)
    return parts


def _interpolation_parts(s: dict[str, Any]) -> list[RenderableType]:
    parts: list[RenderableType] = []
    methods = s.get("methods")
    if isinstance(methods, dict):
        t = Table(title=f"methods (docs/method.md §8; perceptual distance: {s.get('perceptual_distance', '?')})",
                  title_justify="left", box=None, pad_edge=False)
        for col in ("method", "PPL", "PDV", "rel. length", "log rel. length"):
            t.add_column(col, justify="left" if col == "method" else "right")
        for name, stats in methods.items():
            if isinstance(stats, dict):
                t.add_row(name, *(num(stats.get(k)) for k in ("ppl", "pdv", "relative_length",
                                                               "log_relative_length")))
        parts.append(t)
    rec = s.get("endpoint_reconstruction")
    if isinstance(rec, dict):
        parts.append(Text(f"endpoint reconstruction PSNR: A {num(rec.get('a_psnr'))} dB · "
                          f"B {num(rec.get('b_psnr'))} dB"))
    return parts


def _manifest_table(m: dict[str, Any]) -> Table:
    t = Table(title="\nrun", title_justify="left", show_header=False, box=None, pad_edge=False)
    config = m.get("config")
    if isinstance(config, dict):
        t.add_row("config", ", ".join(f"{k}={num(v)}" for k, v in config.items()))
    for key in ("model", "seed", "network_calls", "updated"):
        if key in m:
            t.add_row(key.replace("_", " "), num(m.get(key)))
    timings = m.get("timings")
    if isinstance(timings, dict) and timings:
        t.add_row("timings", ", ".join(f"{k} {num(v)} s" for k, v in timings.items()))
    command = m.get("command")
    if isinstance(command, list):
        t.add_row("command", " ".join(map(str, command)))
    return t


class RunScreen(Screen[None]):
    """Tabs: Summary, Plots, Frames. Reloads itself while the run is being written."""

    app: GeovidApp

    DEFAULT_CSS = """
    RunScreen TabbedContent { height: 1fr; }
    RunScreen TabPane { padding: 0; }
    RunScreen #summary-body { padding: 0 1; }
    RunScreen #pngs { height: auto; padding: 0 1; color: $text-muted; }
    RunScreen #plots-body, RunScreen #frames-body { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape,q", "back", "back"),
        Binding("1", "tab('summary')", "summary", show=False),
        Binding("2", "tab('plots')", "plots", show=False),
        Binding("3", "tab('frames')", "frames", show=False),
        Binding("o", "pngs", "PNG plots"),
        Binding("m", "next_plot", "next plot", show=False),
        Binding("r", "reload", "reload", show=False),
    ]

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.record = load_run(path)
        self.table: pd.DataFrame | None = None

    def compose(self) -> ComposeResult:
        """Title bar and the three tabs (plots and frames are built when first shown)."""
        yield Static("", id="title", classes="title-bar")
        with TabbedContent(initial="summary"):
            with TabPane("Summary", id="summary"), VerticalScroll(id="summary-scroll"):
                yield Static("", id="summary-body")
            with TabPane("Plots", id="plots"):
                yield Vertical(id="plots-body")
            with TabPane("Frames", id="frames"):
                yield Vertical(id="frames-body")
        yield Footer()

    def _frame_info(self, index: int) -> str:
        labels = [s.label for s in frame_sequences(self.record)]
        return frame_info(self.table, index, labels)

    def on_mount(self) -> None:
        """Fill the summary; the per-frame table is read in a worker (pandas import, CSV parse)."""
        self._fill()
        self.query_one("#summary-scroll").focus()
        self.load_table()

    @work(thread=True, exclusive=True, group="table")
    def load_table(self) -> None:
        """Read per_frame.csv/.parquet off the UI thread, then draw the plots and frame numbers."""
        table = load_per_frame(self.path)
        self.app.call_from_thread(self._table_loaded, table)

    def _table_loaded(self, table: pd.DataFrame | None) -> None:
        self.table = table
        self._fill()
        for browser in self.query(FrameBrowser):
            browser.refresh_info()

    def _fill(self) -> None:
        r = self.record
        self.query_one("#title", Static).update(f"{r.name} · {r.kind} · {r.status}"
                                                 + (f" · {len(r.problems)} problem(s)" if r.problems else ""))
        self.query_one("#summary-body", Static).update(summary_renderable(r))
        if self.query(PlotPanel):
            self.query_one(PlotPanel).set_data(self.table, r.summary)
            pngs = list_plots(r.path)
            self.query_one("#pngs", Static).update(
                ("PNG plots: " + "  ".join(str(p.relative_to(r.path)) for p in pngs) + "   (o: view / open)")
                if pngs else "no PNG plots in this run")

    async def _build(self, tab: str) -> None:
        """Mount a tab's widgets the first time it is shown (opening a run stays quick)."""
        if tab == "plots" and not self.query(PlotPanel):
            await self.query_one("#plots-body").mount_all([PlotPanel(id="plot-panel"), Static("", id="pngs")])
            self._fill()
        elif tab == "frames" and not self.query(FrameBrowser):
            await self.query_one("#frames-body").mount(
                FrameBrowser(frame_sequences(self.record), self.app.renderer, info=self._frame_info,
                             id="browser"))

    def on_runs_changed(self, message: RunsChanged) -> None:
        """The app re-read the catalog: reload if this run changed."""
        self.refresh_runs()

    def refresh_runs(self) -> None:
        """Reload the run if the catalog's record of it changed."""
        fresh = self.app.record_for(self.path)
        if fresh is None or (fresh.manifest == self.record.manifest and fresh.summary == self.record.summary
                             and fresh.problems == self.record.problems):
            return
        self.action_reload()

    def action_reload(self) -> None:
        """Re-read the run (keeps the frame position)."""
        self.record = load_run(self.path)
        self._fill()
        for browser in self.query(FrameBrowser):
            browser.set_sequences(frame_sequences(self.record))
        self.load_table()

    def action_back(self) -> None:
        """Back to the runs table."""
        self.dismiss()

    async def action_tab(self, tab: str) -> None:
        """Switch tab (1, 2, 3)."""
        await self._build(tab)
        self.query_one(TabbedContent).active = tab
        self._focus_tab(tab)

    async def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """Build the tab if needed; put the keyboard there (frames: the browser gets ←/→)."""
        tab = event.pane.id or ""
        await self._build(tab)
        self._focus_tab(tab)

    def _focus_tab(self, tab: str) -> None:
        # After the refresh: a pane that was hidden a moment ago cannot take focus yet.
        if tab == "frames":
            self.call_after_refresh(self.query_one("#browser", FrameBrowser).focus)
        elif tab == "summary":
            self.call_after_refresh(self.query_one("#summary-scroll").focus)

    def action_next_plot(self) -> None:
        """Plots tab: show the next plot when only one fits."""
        for panel in self.query(PlotPanel):
            panel.cycle()

    def action_pngs(self) -> None:
        """List the PNG plots: preview in the terminal, Enter opens one in the system viewer."""
        pngs = list_plots(self.path)
        if not pngs:
            self.notify("This run has no PNG plots.")
            return
        self.app.push_screen(PngScreen(pngs))


class PngScreen(Screen[None]):
    """The run's PNG plots: a list, a preview of the highlighted one; Enter opens it outside."""

    app: GeovidApp

    DEFAULT_CSS = """
    PngScreen > Vertical { border: round $primary; }
    PngScreen OptionList { height: auto; max-height: 6; }
    PngScreen #png-preview { height: 1fr; }
    PngScreen .protocol-image { width: auto; height: auto; }
    """
    BINDINGS = [Binding("escape,q,o", "close", "close")]

    def __init__(self, pngs: list[Path]) -> None:
        super().__init__()
        self.pngs = pngs

    def compose(self) -> ComposeResult:
        """List and preview."""
        with Vertical():
            yield OptionList(*(Option(str(p), id=str(k)) for k, p in enumerate(self.pngs)), id="png-list")
            yield make_image(self.app.renderer, self.pngs[0], id="png-preview")
            yield Static("Enter: open in the system viewer (or show the path) · Esc: close", classes="muted")

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        """Preview the highlighted PNG."""
        set_image(self.query_one("#png-preview"), self.pngs[event.option_index])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Open the chosen PNG outside the terminal."""
        self.post_message(OpenFile(self.pngs[event.option_index]))

    def action_close(self) -> None:
        """Close the list."""
        self.dismiss()
