"""The typed messages between the app and its screens (and from job worker threads to the app).

Screens ask the app to act by posting :class:`StartJob`, :class:`CancelJob`, :class:`OpenFile` and
:class:`RescanRuns` (they bubble
from the screen to the app, which handles them); the app tells the screens in its stack that the catalog or the
jobs changed with :class:`RunsChanged` and :class:`JobsChanged` (posted to each screen, not bubbling). A job's
worker thread posts :class:`JobProgress` to the app for every progress report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message


@dataclass
class JobProgress(Message):
    """Posted from the worker thread for every progress report."""

    job_id: int
    phase: str
    done: int
    total: int | None
    info: dict[str, Any]


@dataclass
class StartJob(Message):
    """A screen asks the app to launch a job (the app then shows the job's progress)."""

    kind: str
    options: dict[str, Any]


@dataclass
class CancelJob(Message):
    """A screen asks the app to stop a job (its run becomes interrupted)."""

    job_id: int


@dataclass
class OpenFile(Message):
    """A screen asks the app to open a file (a PNG) outside the terminal."""

    path: Path


class RescanRuns(Message):
    """A screen asks the app to re-read the runs folder now."""


class RunsChanged(Message, bubble=False):
    """The app re-read the catalog (``app.records``): screens that show runs refresh."""


class JobsChanged(Message, bubble=False):
    """A job started, reported progress or ended: screens that show jobs refresh."""
