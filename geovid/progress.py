"""Progress reporting for long work.

The core never imports Rich or Textual. Long-running functions take a ``progress``
callable; the CLI plugs a Rich progress bar into it and the TUI a worker that posts
messages. Signature: ``progress(phase, done, total, info)`` where ``total`` may be
``None`` when unknown and ``info`` carries live numbers (e.g. mean residual).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ProgressFn = Callable[[str, int, "int | None", dict[str, Any]], None]


def null_progress(phase: str, done: int, total: int | None, info: dict[str, Any]) -> None:
    """A progress callback that ignores everything."""


class Cancelled(Exception):
    """Raised from inside a progress callback to stop long work cooperatively."""
