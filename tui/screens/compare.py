"""Two runs side by side: their numbers in one table and their frames stepped together."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from geovid.runs.catalog import RunRecord, load_run
from tui.format import compare_rows
from tui.screens.run import frame_sequences
from tui.widgets import FrameBrowser, FrameSequence

if TYPE_CHECKING:
    from tui.app import GeovidApp


def compare_sequences(a: RunRecord, b: RunRecord, which: str) -> list[FrameSequence]:
    """One column per run: the result frames (``which="result"``) or the input frames (``"input"``)."""
    out = []
    for tag, record in (("A", a), ("B", b)):
        seqs = frame_sequences(record, "all")
        seq = seqs[-1] if which == "result" and record.kind == "analysis" else seqs[0]
        out.append(FrameSequence(f"{tag} {seq.label}", seq.frames))
    return out


def compare_table(a: RunRecord, b: RunRecord) -> Table:
    """The numbers of both runs, row by row (config values only where they differ)."""
    table = Table(box=None, pad_edge=False, expand=True)
    table.add_column("", style="dim", no_wrap=True)
    table.add_column(f"A {a.name}", overflow="ellipsis", no_wrap=True)
    table.add_column(f"B {b.name}", overflow="ellipsis", no_wrap=True)
    for label, va, vb in compare_rows(a, b):
        style = "" if va == vb else "bold"
        table.add_row(label, va, vb, style=style)
    return table


class CompareScreen(Screen[None]):
    """Numbers of runs A and B, then their frames side by side (one index for both)."""

    app: GeovidApp

    DEFAULT_CSS = """
    CompareScreen #numbers { height: 45%; padding: 0 1; }
    CompareScreen FrameBrowser { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape,q", "back", "back"),
        Binding("f", "flip", "result/input frames"),
        Binding("tab", "focus_next", "focus", show=False),
    ]

    def __init__(self, a: Path, b: Path) -> None:
        super().__init__()
        self.a, self.b = load_run(a), load_run(b)
        self.which = "result"

    def compose(self) -> ComposeResult:
        """Title, numbers table, frames."""
        yield Static(f"compare · A {self.a.name} · B {self.b.name}", classes="title-bar")
        with VerticalScroll(id="numbers"):
            yield Static(compare_table(self.a, self.b), id="numbers-table")
        yield FrameBrowser(compare_sequences(self.a, self.b, self.which), self.app.renderer, id="browser")
        yield Footer()

    def on_mount(self) -> None:
        """Arrows step both runs' frames."""
        self.query_one("#browser").focus()

    async def action_flip(self) -> None:
        """Switch between the result frames (optimised/geodesic/shot) and the input frames."""
        self.which = "input" if self.which == "result" else "result"
        old = self.query_one("#browser", FrameBrowser)
        index = old.index
        await old.remove()
        new = FrameBrowser(compare_sequences(self.a, self.b, self.which), self.app.renderer, id="browser")
        await self.mount(new, before=self.query_one(Footer))
        new.index = min(index, max(new.count - 1, 0))
        new.focus()

    def action_back(self) -> None:
        """Back to the runs table."""
        self.dismiss()
