"""Pilot tests of the TUI: navigation, filter, sort, opening runs, frames, compare, jobs, damaged runs."""

from __future__ import annotations

import asyncio
import functools
import io
import shutil
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import DataTable, Input, Label, Static

import tui.engine as engine_mod
from geovid.runs.catalog import load_run
from tests import fixtures_runs as fx
from tui.app import GeovidApp, make_app
from tui.engine import FakeEngine, LibraryEngine
from tui.plots import SeriesPlot
from tui.screens.compare import CompareScreen
from tui.screens.help import HelpScreen
from tui.screens.jobs import JobScreen, NewJobScreen, parse_form
from tui.screens.run import PngScreen, RunScreen, frame_sequences, summary_renderable
from tui.screens.runs import RunsScreen
from tui.widgets import FrameBrowser

SIZE = (100, 30)


def synchronous(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async Pilot test in a fresh event loop (no pytest async plugin needed)."""

    @functools.wraps(test)
    def run(*args: object, **kwargs: object) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template")
    fx.write_all(root / "runs")
    return root / "runs"


@pytest.fixture
def runs_dir(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "runs"
    shutil.copytree(template, target)
    return target


def _app(runs_dir: Path, **kwargs: object) -> GeovidApp:
    kwargs.setdefault("image_renderer", "halfblock")
    kwargs.setdefault("poll_interval", 0)
    return make_app(runs_dir, **kwargs)  # type: ignore[arg-type]


def _names(app: GeovidApp) -> list[str]:
    screen = app.screen
    assert isinstance(screen, RunsScreen)
    return [r.name for r in screen.shown]


def _text(widget: Static) -> str:
    """A Static's content as plain text (Rich renderables rendered without colour)."""
    console = Console(width=200, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    return console.file.getvalue()  # type: ignore[attr-defined]


async def _until(pilot, condition: Callable[[], bool], timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """Let the app run until ``condition()`` holds (fails the test after ``timeout`` seconds)."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            await pilot.pause()
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not reached in time")


async def _open(pilot, name: str) -> RunScreen:  # type: ignore[no-untyped-def]
    """Highlight ``name`` in the table (by moving the cursor) and press Enter."""
    screen = pilot.app.screen
    assert isinstance(screen, RunsScreen)
    table = screen.query_one(DataTable)
    table.move_cursor(row=[r.name for r in screen.shown].index(name))
    await pilot.press("enter")
    await pilot.pause()
    await _until(pilot, lambda: not any(w.group == "table" and not w.is_finished for w in pilot.app.workers))
    assert isinstance(pilot.app.screen, RunScreen)
    return pilot.app.screen


@synchronous
async def test_table_lists_runs_and_keys_move(runs_dir: Path) -> None:
    app = _app(runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        names = _names(app)
        assert len(names) == 10 and names[0] == "no-frames"  # newest first
        table = app.screen.query_one(DataTable)
        assert table.row_count == 10
        await pilot.press("j", "j", "down")
        assert table.cursor_row == 3
        assert "clip-ctrl-c" in _text(app.screen.query_one("#detail", Static))
        await pilot.press("k", "up")
        assert table.cursor_row == 1
        detail = _text(app.screen.query_one("#detail", Static))
        assert "no-summary" in detail and "summary.json missing" in detail
        assert "sort: created" in _text(app.screen.query_one("#title", Static))


@synchronous
async def test_filter_and_sort(runs_dir: Path) -> None:
    app = _app(runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"interp")
        assert set(_names(app)) == {"no-frames", "bad-interp", "cat-to-dog", "no-manifest"} - {"no-manifest"}
        await pilot.press("space", "f", "a", "i", "l")  # words must all match: "interp fail"
        assert _names(app) == ["bad-interp"]
        assert "1/10 runs" in _text(app.screen.query_one("#title", Static))
        await pilot.press("enter")
        assert isinstance(app.focused, DataTable)
        await pilot.press("escape")
        assert len(_names(app)) == 10
        await pilot.press("s")
        assert _names(app) == sorted(_names(app))
        await pilot.press("s", "s")  # kind, then status
        statuses = [r.status for r in app.screen.shown]  # type: ignore[attr-defined]
        assert statuses == sorted(statuses)


@synchronous
async def test_open_analysis_summary_plots_and_frames(runs_dir: Path) -> None:
    app = _app(runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, "clip-walk")
        summary = _text(screen.query_one("#summary-body", Static))
        assert "geodesic excess" in summary and "1.07" in summary and "The clip is close" in summary
        await pilot.press("2")
        residual = screen.query_one("#plot-residual", SeriesPlot)
        assert list(residual.series) == list(fx.ANALYSIS_PATHS)
        assert len(residual.series["video"][0]) == 8
        assert "plots/residual.png" in _text(screen.query_one("#pngs", Static))

        await pilot.press("3")
        await pilot.pause()
        browser = screen.query_one(FrameBrowser)
        assert app.focused is browser
        assert [s.label for s in browser.sequences] == ["video", "optimised"]
        await pilot.press("right", "right", "l")
        assert browser.index == 3
        assert _text(browser.query_one("#title-1", Label)).strip() == "optimised  4/8"
        assert "video: res 0.313" in _text(browser.query_one("#frame-info", Static))
        await pilot.press("left", "end")
        assert browser.index == 7
        await pilot.press("right")  # stops at the end
        assert browser.index == 7
        await pilot.press("home", "p")
        assert browser.playing
        await pilot.pause(0.6)
        assert browser.index > 0
        await pilot.press("p")
        assert not browser.playing
        await pilot.press("v")
        assert browser.has_class("-strip")
        assert "strip" in _text(browser.query_one("#frame-status", Static))
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


@synchronous
async def test_interpolation_geodesic_beside_each_baseline(runs_dir: Path) -> None:
    app = _app(runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, "cat-to-dog")
        assert "ssim-latent" in _text(screen.query_one("#summary-body", Static))
        await pilot.press("3", "right")
        browser = screen.query_one(FrameBrowser)
        assert [(s.label, len(s.frames)) for s in browser.sequences] == [("geodesic", 9), ("lerp", 9), ("slerp", 9)]
        info = _text(browser.query_one("#frame-info", Static))
        assert info.startswith("geodesic: res") and "slerp: res" in info


@synchronous
async def test_compare_two_marked_runs(runs_dir: Path) -> None:
    app = _app(runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        assert isinstance(app.screen, RunsScreen)  # nothing marked: a hint, no screen
        table = app.screen.query_one(DataTable)
        names = _names(app)
        table.move_cursor(row=names.index("cat-to-dog"))
        await pilot.press("space")
        table.move_cursor(row=names.index("no-frames"))
        await pilot.press("space")
        assert "2 marked" in _text(app.screen.query_one("#title", Static))
        await pilot.press("c")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert (screen.a.name, screen.b.name) == ("cat-to-dog", "no-frames")
        numbers = _text(screen.query_one("#numbers-table", Static))
        assert "0.42" in numbers and "frames" in numbers  # config row that differs (9 vs 4 frames)
        browser = screen.query_one(FrameBrowser)
        assert [s.label for s in browser.sequences] == ["A geodesic", "B geodesic"]
        await pilot.press("right")
        assert browser.index == 1
        assert _text(browser.query_one("#title-1", Label)).strip() == "B geodesic  no frames"
        await pilot.press("f")
        await pilot.pause()
        assert screen.query_one(FrameBrowser).index == 1
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def _fill_form(pilot, inputs: str, name: str) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("n")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, NewJobScreen)
    screen.query_one("#inputs", Input).value = inputs
    screen.query_one("#name", Input).value = name
    screen.query_one("#frames", Input).value = "3"


@synchronous
async def test_new_job_runs_and_appears_in_table(runs_dir: Path) -> None:
    engine = FakeEngine(frames=3, iterations=2)
    app = _app(runs_dir, engine=engine)
    clip = runs_dir / "clip-walk" / "strip.png"
    async with app.run_test(size=SIZE) as pilot:
        await _fill_form(pilot, str(clip), "from-form")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, JobScreen)
        job = app.jobs[0]
        await _until(pilot, lambda: not job.active)
        assert job.state == "complete" and job.run_path == runs_dir / "from-form"
        assert set(job.phases) == {"decode", "encode", "solve", "write"}
        body = _text(app.screen.query_one("#job-body", Static))
        assert "state: complete" in body and "solve" in body
        kind, options = engine.calls[0]
        assert kind == "analysis"
        assert options["inputs"] == [str(clip.resolve())] and options["frames"] == 3
        assert options["noise_level"] == 0.6 and options["alpha"] is None
        assert options["estimator"] is None and options["metric"] is None  # library defaults
        await pilot.press("escape")
        assert "from-form" in _names(app)
        assert "complete" in _text(app.screen.query_one("#jobbar", Static))
        await pilot.press("w")
        assert isinstance(app.screen, JobScreen)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RunScreen) and app.screen.record.status == "complete"


@synchronous
async def test_cancel_job_marks_run_interrupted(runs_dir: Path) -> None:
    engine = FakeEngine(hold_at="solve", hold_timeout=20)
    app = _app(runs_dir, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await _fill_form(pilot, str(runs_dir / "clip-walk" / "strip.png"), "to-cancel")
        await pilot.press("ctrl+s")
        job = app.jobs[0]
        # Until the engine waits at "solve" (it holds there until cancelled).
        await _until(pilot, lambda: "encode" in job.phases and job.phases["encode"].done == 3)
        assert job.active
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        assert "x cancel" in _text(app.screen.query_one("#jobbar", Static))
        app.rescan()  # polling is off in tests; the running run is already on disk
        assert next(r for r in app.records if r.name == "to-cancel").status == "running"
        await pilot.press("x")
        await _until(pilot, lambda: not job.active)
        assert job.state == "cancelled"
        assert load_run(runs_dir / "to-cancel").status == "interrupted"
        rows = {r.name: r.status for r in app.records}
        assert rows["to-cancel"] == "interrupted"


@synchronous
async def test_form_validation_and_unavailable_library(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(engine_mod.LIBRARY_TARGETS, "analysis", ("geovid_absent.run", "run_analysis", "AnalysisConfig"))
    app = _app(runs_dir, engine=LibraryEngine())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        screen = app.screen
        assert "geovid_absent.run not found" in _text(screen.query_one("#availability", Static))
        await pilot.press("ctrl+s")
        assert "cannot start" in _text(screen.query_one("#form-error", Static))
        assert app.jobs == []
    with pytest.raises(ValueError, match="inputs: interpolation needs two images"):
        parse_form("interpolation", {"inputs": str(runs_dir)}, cwd=runs_dir)
    with pytest.raises(ValueError, match="does not exist"):
        parse_form("analysis", {"inputs": "nope.mp4"}, cwd=runs_dir)
    with pytest.raises(ValueError, match="noise level: must be between"):
        parse_form("analysis", {"inputs": "clip-walk", "frames": "8", "noise_level": "3", "seed": "0"},
                   cwd=runs_dir)
    options = parse_form("extrapolation", {"inputs": "'clip-walk/strip.png' cat-to-dog", "steps": "7",
                                           "noise_level": "", "alpha": "", "seed": "2", "name": "",
                                           "estimator": "contrast", "metric": "default",
                                           "more": "max_calls=12 decode-steps=2 sphere=false tangent=geodesic"},
                         cwd=runs_dir)
    assert options == {"inputs": [str(runs_dir / "clip-walk" / "strip.png"), str(runs_dir / "cat-to-dog")],
                       "steps": 7, "noise_level": None, "alpha": None, "seed": 2, "metric": None,
                       "estimator": "contrast", "name": None, "model": None, "max_calls": 12, "decode_steps": 2,
                       "sphere": False, "tangent": "geodesic"}
    with pytest.raises(ValueError, match="more options: 'oops' is not key=value"):
        parse_form("extrapolation", {"inputs": "cat-to-dog", "steps": "3", "seed": "0", "more": "oops"},
                   cwd=runs_dir)


@synchronous
async def test_form_shows_validation_errors(runs_dir: Path) -> None:
    app = _app(runs_dir, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("ctrl+s")
        assert "inputs: analysis needs one or more video clips (got 0)" in _text(
            app.screen.query_one("#form-error", Static))
        assert app.jobs == []
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


@pytest.mark.parametrize("case", ["running", "interrupted", "failed", "missing_manifest", "bad_json",
                                  "missing_summary", "missing_frames"])
def test_damaged_run_summary_and_frames(template: Path, case: str) -> None:
    """Every damaged or partial case renders its summary and frame columns (no app needed)."""
    path = {"running": "clip-running", "interrupted": "clip-ctrl-c", "failed": "bad-interp",
            "missing_manifest": "no-manifest", "bad_json": "bad-json", "missing_summary": "no-summary",
            "missing_frames": "no-frames"}[case]
    record = load_run(template / path)
    console = Console(width=300, file=io.StringIO(), color_system=None)
    console.print(summary_renderable(record))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert record.status in text
    for problem in record.problems:
        assert problem in text
    if record.error:
        assert record.error in text
    seqs = frame_sequences(record)
    assert seqs and all(isinstance(s.frames, list) for s in seqs)


@synchronous
async def test_damaged_runs_open_without_crashing(runs_dir: Path) -> None:
    app = _app(runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        for name in ("bad-json", "no-frames", "clip-running"):
            screen = await _open(pilot, name)
            await pilot.press("2", "3", "right", "v", "o")
            await pilot.pause()
            if isinstance(app.screen, PngScreen):  # this run has PNG plots
                await pilot.press("escape")
            record = load_run(runs_dir / name)
            title = _text(screen.query_one("#title", Static))
            assert record.status in title and (not record.problems or "problem" in title)
            assert screen.query_one(FrameBrowser).count == len(frame_sequences(record)[0].frames)
            await pilot.press("escape")
            assert isinstance(app.screen, RunsScreen)


@synchronous
async def test_runs_appear_and_change_while_open(runs_dir: Path) -> None:
    app = _app(runs_dir, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        fx.write_extrapolation(runs_dir, "late-arrival", minute=59, n=3)
        await pilot.pause(0.4)
        assert _names(app)[0] == "late-arrival"
        running = runs_dir / "clip-running" / "manifest.json"
        text = running.read_text().replace('"status": "running"', '"status": "failed"')
        running.write_text(text.replace('"error": null', '"error": "out of memory"'))
        await pilot.pause(0.4)
        record = next(r for r in app.records if r.name == "clip-running")
        assert record.status == "failed" and record.error == "out of memory"


@synchronous
async def test_help_and_png_opener(runs_dir: Path) -> None:
    opened: list[Path] = []

    def opener(path: Path) -> str | None:
        opened.append(path)
        return None

    app = _app(runs_dir, opener=opener)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        await _open(pilot, "clip-walk")
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, PngScreen)
        await pilot.press("down", "enter")
        assert opened == [(runs_dir / "clip-walk" / "plots" / "projection.png").resolve()]


@synchronous
async def test_quit_with_running_job_needs_two_presses(runs_dir: Path) -> None:
    engine = FakeEngine(frames=2, hold_at="encode", hold_timeout=20)
    app = _app(runs_dir, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        job = app.start_job("extrapolation", {"inputs": ["/x/s.png"], "name": "held"})
        await pilot.pause(0.2)
        await pilot.press("q")
        assert app.is_running and not job.cancel.is_set()
        await pilot.press("q")
        assert job.cancel.is_set()
    assert load_run(runs_dir / "held").status == "interrupted"


@synchronous
async def test_empty_or_missing_runs_dir(tmp_path: Path) -> None:
    app = _app(tmp_path / "nothing-here")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "No runs in" in _text(app.screen.query_one("#detail", Static))
        await pilot.press("enter", "c", "x", "w", "s")
        assert isinstance(app.screen, RunsScreen)


def test_thread_safety_of_cancel_event() -> None:
    """The job's cancel flag is a threading.Event shared with the engine thread."""
    from tui.jobs import Job

    job = Job(id=1, kind="analysis", options={})
    assert isinstance(job.cancel, threading.Event) and job.active


def test_cells_and_pictures(template: Path) -> None:
    """Table texts and the half-block renderer, without an app."""
    from PIL import Image

    from tui.format import matches, result_text
    from tui.images import compose_strip, fit, halfblock_lines

    analysis, interp = load_run(template / "clip-walk"), load_run(template / "cat-to-dog")
    assert result_text(analysis) == "excess 1.07 · tests 2/3"
    assert result_text(analysis, narrow=True) == "excess 1.07 2/3"
    assert result_text(interp, narrow=True) == "PPL 0.42/0.013"
    assert result_text(load_run(template / "bad-interp")).startswith("error: solver diverged")
    assert matches(analysis, "WALK complete") and not matches(analysis, "walk failed")

    assert fit(64, 32, 10, 10) == (10, 5) and fit(0, 5, 10, 10) == (0, 0)
    img = Image.new("RGB", (4, 4), (255, 0, 0))
    img.putpixel((0, 1), (0, 0, 255))
    lines = halfblock_lines(img, cols=4, rows=2)
    assert len(lines) == 2 and all(len(line) == 4 for line in lines)
    first = lines[0][0]
    assert first.text == "▀" and first.style is not None
    assert first.style.color.triplet == (255, 0, 0) and first.style.bgcolor.triplet == (0, 0, 255)
    assert halfblock_lines(img, cols=4, rows=2) == lines  # deterministic

    frames = sorted((template / "clip-walk" / "frames").glob("*.png"))
    strip, shown = compose_strip([frames, frames[:3]], current=5, max_cols=4)
    assert 5 in shown and shown[0] == 0 and shown[-1] == len(frames) - 1 and len(shown) == 4
    assert strip.height > strip.width / 4  # two rows of thumbnails
    assert compose_strip([[]]) is None


@pytest.mark.slow
def test_library_engine_runs_a_real_interpolation(tmp_path: Path, tiny_sd_model: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end through the form: the real run_interpolation on the tiny random model, then open it."""
    from PIL import Image

    monkeypatch.setenv("GEOVID_CACHE_DIR", str(tmp_path / "cache"))
    for name, shade in (("a.png", 60), ("b.png", 190)):
        Image.new("RGB", (64, 64), (shade, 120, 255 - shade)).save(tmp_path / name)
    app = _app(tmp_path / "runs", engine=LibraryEngine())

    async def drive() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")
            await pilot.pause()
            screen = app.screen
            screen.query_one("#kind").value = "interpolation"  # type: ignore[attr-defined]
            await pilot.pause()
            screen.query_one("#inputs", Input).value = f"{tmp_path / 'a.png'} {tmp_path / 'b.png'}"
            screen.query_one("#frames", Input).value = "3"
            screen.query_one("#model", Input).value = tiny_sd_model
            screen.query_one("#more", Input).value = "max_calls=4 decode_steps=1 baselines=slerp device=cpu"
            await pilot.press("ctrl+s")
            job = app.jobs[0]
            await _until(pilot, lambda: not job.active, timeout=300)
            assert job.state == "complete", job.error
            assert {"solve", "write"} <= set(job.phases)
            await pilot.press("enter")
            await pilot.pause()
            run = app.screen
            assert isinstance(run, RunScreen) and run.record.kind == "interpolation"
            assert run.record.problems == [] and "ppl" in run.record.numbers
            await pilot.press("3")
            await pilot.pause()
            assert [s.label for s in run.query_one(FrameBrowser).sequences] == ["geodesic", "slerp"]

    asyncio.run(drive())


def test_form_frames_minimum_is_the_librarys(runs_dir: Path) -> None:
    """Analyses and interpolations need at least 3 frames (a point between the ends), as the library says."""
    for kind, inputs in (("analysis", "clip-walk"), ("interpolation", "clip-walk cat-to-dog")):
        with pytest.raises(ValueError, match="frames: must be between 3 and"):
            parse_form(kind, {"inputs": inputs, "frames": "2", "seed": "0"}, cwd=runs_dir)
        assert parse_form(kind, {"inputs": inputs, "frames": "3", "seed": "0"}, cwd=runs_dir)["frames"] == 3
