"""Jobs started from the TUI: their state (the messages about them are :mod:`tui.messages`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.messages import JobProgress

__all__ = ["ACTIVE_STATES", "Job", "JobProgress", "PhaseProgress"]

ACTIVE_STATES = ("starting", "running", "cancelling")


@dataclass
class PhaseProgress:
    """Latest progress report of one phase."""

    done: int
    total: int | None
    info: dict[str, Any]


@dataclass
class Job:
    """One analysis/interpolation/extrapolation launched from the form.

    ``state`` goes ``starting`` → ``running`` → ``complete`` | ``cancelled`` | ``failed`` |
    ``unavailable`` (``cancelling`` while a cancel request waits for the engine).
    """

    id: int
    kind: str
    options: dict[str, Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = "starting"
    phases: dict[str, PhaseProgress] = field(default_factory=dict)
    phase: str | None = None
    notes: list[str] = field(default_factory=list)
    run_path: Path | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        """True while the engine is (or may still be) working."""
        return self.state in ACTIVE_STATES

    @property
    def title(self) -> str:
        """``analysis of clip.mp4`` style label."""
        inputs = [Path(p).name for p in self.options.get("inputs") or []]
        return f"{self.kind} of {' + '.join(inputs) or '?'}"

    def line(self) -> str:
        """One-line state for the job bar."""
        if self.state in ("starting", "running", "cancelling") and self.phase:
            p = self.phases[self.phase]
            of = f"/{p.total}" if p.total else ""
            info = "  ".join(f"{k}={_fmt(v)}" for k, v in p.info.items())
            return f"{self.state}: {self.phase} {p.done}{of} {info}".rstrip()
        if self.state == "complete" and self.run_path is not None:
            return f"complete → {self.run_path.name}"
        if self.error and self.state != "cancelled":
            return f"{self.state}: {self.error}"
        return self.state


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
