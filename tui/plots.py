"""Terminal plots of per-frame numbers (residual, log-density) drawn with plotext braille lines.

The numbers come from the run's ``per_frame`` table (long format: one row per path and
frame, docs/run-directory.md); for interpolations without a table the summary's
``log_density`` lists are used instead.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

if TYPE_CHECKING:
    import pandas as pd

Series = dict[str, tuple[list[float], list[float]]]

#: Path names in the order plots list them (others follow alphabetically).
PATH_ORDER = ("video", "optimised", "perturbed", "smoothed", "line", "geodesic", "lerp", "slerp", "shot")


def _order(name: str) -> tuple[int, str]:
    return (PATH_ORDER.index(name), "") if name in PATH_ORDER else (len(PATH_ORDER), name)


def series_from_table(table: pd.DataFrame | None, column: str) -> Series:
    """``path → (frames, values)`` for one numeric column, skipping non-finite values."""
    if table is None or column not in table.columns:
        return {}
    out: Series = {}
    for name in sorted({str(p) for p in table["path"].dropna().unique()}, key=_order):
        rows = table[table["path"].astype(str) == name].sort_values("frame")
        xs, ys = [], []
        for x, y in zip(rows["frame"].tolist(), rows[column].tolist()):
            try:
                xf, yf = float(x), float(y)
            except (TypeError, ValueError):
                continue
            if math.isfinite(xf) and math.isfinite(yf):
                xs.append(xf)
                ys.append(yf)
        if xs:
            out[name] = (xs, ys)
    return out


def series_from_summary(summary: dict[str, Any] | None) -> Series:
    """Log-density profiles stored in an interpolation/extrapolation summary."""
    out: Series = {}
    if not isinstance(summary, dict):
        return out
    lists: dict[str, Any] = {}
    methods = summary.get("methods")
    if isinstance(methods, dict):
        lists = {m: s.get("log_density") for m, s in methods.items() if isinstance(s, dict)}
    elif isinstance(summary.get("log_density"), list):
        lists = {"shot": summary["log_density"]}
    for name, values in lists.items():
        if isinstance(values, list):
            pts = [(float(i), float(v)) for i, v in enumerate(values)
                   if isinstance(v, int | float) and math.isfinite(v)]
            if pts:
                out[name] = ([p[0] for p in pts], [p[1] for p in pts])
    return out


class SeriesPlot(PlotextPlot):
    """A titled line plot of several series (one colour per path), or a note when empty."""

    DEFAULT_CSS = """
    SeriesPlot { height: 1fr; min-height: 8; }
    """

    def __init__(self, title: str, series: Series, ylabel: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.ylabel = ylabel
        self.series = series

    def set_series(self, series: Series) -> None:
        """Replace the data and redraw."""
        self.series = series
        self._draw()
        self.refresh()

    def on_mount(self) -> None:
        """Draw once the plot is mounted."""
        self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title if self.series else f"{self.title}: no data")
        plt.xlabel("frame")
        if self.ylabel:
            plt.ylabel(self.ylabel)
        frames: set[float] = set()
        for name, (xs, ys) in self.series.items():
            plt.plot(xs, ys, label=name, marker="braille")
            frames.update(xs)
        if frames:
            # Frames are integers: label a few of them, never fractional positions.
            lo, hi = int(min(frames)), int(max(frames))
            step = max(1, math.ceil((hi - lo) / 8))
            ticks = list(range(lo, hi + 1, step))
            plt.xticks(ticks, [str(t) for t in ticks])


#: (table column, plot title) in the order the panel offers them.
METRICS = (("residual", "residual ‖r‖ per frame"), ("log_density", "log-density (relative) per frame"),
           ("speed", "speed ‖γ̇‖ per frame"))


class PlotPanel(Vertical):
    """The run's per-frame plots: stacked when the panel is tall, else one at a time (``m`` cycles)."""

    DEFAULT_CSS = """
    PlotPanel { height: 1fr; }
    PlotPanel SeriesPlot { display: none; }
    PlotPanel SeriesPlot.-shown { display: block; }
    PlotPanel #plot-hint { height: 1; color: $text-muted; padding: 0 1; }
    """
    #: Below this many rows only one plot is shown at a time.
    STACK_HEIGHT = 30

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.available: list[str] = []
        self.selected = 0

    def compose(self) -> Any:
        """One plot per metric (hidden until it has data) and a hint line."""
        for column, title in METRICS:
            yield SeriesPlot(title, {}, id=f"plot-{column}")
        yield Static("", id="plot-hint")

    def set_data(self, table: pd.DataFrame | None, summary: dict[str, Any] | None) -> None:
        """Plot the run's per-frame table (log-density falls back to the summary's profiles)."""
        self.available = []
        for column, _ in METRICS:
            series = series_from_table(table, column)
            if not series and column == "log_density":
                series = series_from_summary(summary)
            self.query_one(f"#plot-{column}", SeriesPlot).set_series(series)
            if series:
                self.available.append(column)
        self.selected = min(self.selected, max(len(self.available) - 1, 0))
        self._layout()

    def cycle(self) -> None:
        """Show the next plot (single-plot layout)."""
        if self.available:
            self.selected = (self.selected + 1) % len(self.available)
            self._layout()

    def on_resize(self) -> None:
        """Switch between stacked and single layout."""
        self._layout()

    def _layout(self) -> None:
        stacked = self.size.height >= self.STACK_HEIGHT
        shown = self.available if stacked else self.available[self.selected:self.selected + 1]
        for column, _ in METRICS:
            self.query_one(f"#plot-{column}", SeriesPlot).set_class(column in shown, "-shown")
        hint = self.query_one("#plot-hint", Static)
        if not self.available:
            hint.update("no per-frame table in this run (per_frame.csv / .parquet missing or unreadable)")
        elif not stacked and len(self.available) > 1:
            names = " → ".join(c.replace("_", "-") for c in self.available)
            hint.update(f"plot {self.selected + 1}/{len(self.available)} · m: next ({names})")
        else:
            hint.update("")
