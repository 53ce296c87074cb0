"""Snapshot tests (pytest-textual-snapshot) of the main TUI screens at fixed terminal sizes.

Deterministic: fixture runs with fixed timestamps, a relative runs folder (``runs``), the
half-block image renderer, no polling, no clocks. Update with ``pytest --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from tests import fixtures_runs as fx
from tui.app import GeovidApp, make_app
from tui.engine import FakeEngine


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GeovidApp:
    fx.write_all(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    return make_app(Path("runs"), engine=FakeEngine(), image_renderer="halfblock", poll_interval=0)


def _open(name: str, *keys: str) -> Any:
    """run_before: highlight run ``name``, open it, press ``keys``, wait for workers."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        screen = pilot.app.screen
        names = [r.name for r in screen.shown]  # type: ignore[attr-defined]
        screen.query_one(DataTable).move_cursor(row=names.index(name))
        await pilot.press("enter")
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.press(*keys)
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


def test_runs_table_80x24(app: GeovidApp, snap_compare: Any) -> None:
    assert snap_compare(app, terminal_size=(80, 24), press=["j", "j"])


def test_runs_table_120x40(app: GeovidApp, snap_compare: Any) -> None:
    assert snap_compare(app, terminal_size=(120, 40))


def test_analysis_summary_80x24(app: GeovidApp, snap_compare: Any) -> None:
    assert snap_compare(app, terminal_size=(80, 24), run_before=_open("clip-walk"))


def test_analysis_plots_80x24(app: GeovidApp, snap_compare: Any) -> None:
    assert snap_compare(app, terminal_size=(80, 24), run_before=_open("clip-walk", "2"))


def test_interpolation_frames_120x40(app: GeovidApp, snap_compare: Any) -> None:
    assert snap_compare(app, terminal_size=(120, 40), run_before=_open("cat-to-dog", "3", "right", "right"))


def test_compare_80x24(app: GeovidApp, snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        screen = pilot.app.screen
        names = [r.name for r in screen.shown]  # type: ignore[attr-defined]
        table = screen.query_one(DataTable)
        for name in ("clip-walk", "no-summary"):
            table.move_cursor(row=names.index(name))
            await pilot.press("space")
        await pilot.press("c")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_new_job_form_80x24(app: GeovidApp, snap_compare: Any) -> None:
    assert snap_compare(app, terminal_size=(80, 24), press=["n", "ctrl+s"])


def test_help_80x24(app: GeovidApp, snap_compare: Any) -> None:
    assert snap_compare(app, terminal_size=(80, 24), press=["question_mark"])
