"""The help screen: every key, grouped by screen, and where the numbers are defined (docs/method.md)."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Runs table", [
        ("↑/↓ j/k", "move"), ("Enter / click", "open the run"), ("/", "filter (Enter keeps, Esc clears)"),
        ("s", "cycle sort: created, name, kind, status, result"), ("space", "mark a run (two for compare)"),
        ("c", "compare the marked runs"), ("n", "new analysis / interpolation / extrapolation"),
        ("w", "watch the newest job"), ("x", "cancel the newest running job"), ("r", "refresh now"),
        ("q", "quit"),
    ]),
    ("Run", [
        ("1 2 3", "summary, plots, frames tabs"), ("←/→ h/l", "previous / next frame"),
        ("Home/End", "first / last frame"), ("p", "play / pause the frames"), ("v", "strip view of all frames"),
        ("o", "PNG plots: preview, Enter opens in the system viewer"), ("r", "reload"), ("Esc/q", "back"),
    ]),
    ("Compare", [("←/→", "step both runs' frames"), ("f", "result or input frames"), ("p v", "play, strip"),
                 ("Esc/q", "back")]),
    ("New job", [("Tab", "next field"), ("ctrl+o", "pick an input file"), ("Enter / ctrl+s", "start"),
                 ("Esc", "back")]),
    ("Job", [("x", "cancel (the run is marked interrupted)"), ("Enter", "open the finished run"),
             ("Esc", "back; the job keeps running")]),
    ("Everywhere", [("?", "this help"), ("ctrl+c", "quit (running jobs are cancelled)")]),
    ("The numbers", [("docs/method.md", "defines every number shown: §7 analysis (§7.4 tests, excess), "
                                        "§8 interpolation (PPL, PDV), §6 extrapolation, §3 ‖r‖ and lengths")]),
]


def help_table() -> Table:
    """The key table."""
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("action")
    for section, keys in KEYS:
        table.add_row(f"[bold]{section}[/]", "")
        for key, action in keys:
            table.add_row(f"  {key}", action)
    return table


class HelpScreen(ModalScreen[None]):
    """A scrollable list of keys; Esc, q or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 76; max-width: 95%; height: 90%; border: round $primary;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "close")]

    def compose(self) -> ComposeResult:
        """The key table in a scroll view."""
        with VerticalScroll():
            yield Static(help_table())

    def on_mount(self) -> None:
        """Arrows scroll."""
        self.query_one(VerticalScroll).focus()

    def action_close(self) -> None:
        """Close help."""
        self.dismiss()
