"""Reusable widgets: the frame browser (side-by-side sequences, stepping, playback, strip view)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Label, Static

from tui.images import compose_strip, make_image, set_image


@dataclass
class FrameSequence:
    """One column of the browser: a label and its numbered frames."""

    label: str
    frames: list[Path] = field(default_factory=list)


class FrameBrowser(Widget, can_focus=True):
    """Shows frame *i* of several sequences side by side; step, play, or see them as a strip.

    Args:
        sequences: The columns (e.g. video and optimised frames, or geodesic and baselines).
        renderer: Image renderer name (see :mod:`tui.images`).
        info: Optional ``index → text`` for the line under the pictures (per-frame numbers).
        fps: Playback rate.
    """

    DEFAULT_CSS = """
    FrameBrowser { height: 1fr; }
    FrameBrowser:focus { background: $boost; }
    FrameBrowser #panes { height: 1fr; }
    FrameBrowser .pane { width: 1fr; height: 1fr; padding: 0 1; }
    FrameBrowser .pane-title { width: 1fr; text-align: center; text-style: bold; color: $text-accent; }
    FrameBrowser .pane-image { width: 1fr; height: 1fr; }
    FrameBrowser .protocol-image { width: auto; height: auto; }
    FrameBrowser #strip { height: 1fr; display: none; }
    FrameBrowser.-strip #strip { display: block; }
    FrameBrowser.-strip #panes { display: none; }
    FrameBrowser #frame-status { height: 1; color: $text-muted; }
    FrameBrowser #frame-info { height: auto; max-height: 3; }
    """

    BINDINGS = [
        Binding("left,h", "step(-1)", "prev", show=True),
        Binding("right,l", "step(1)", "next", show=True),
        Binding("home", "jump(0)", "first", show=False),
        Binding("end", "jump(-1)", "last", show=False),
        Binding("p", "play", "play/pause"),
        Binding("v", "strip", "strip view"),
    ]

    index: reactive[int] = reactive(0, init=False)
    playing: reactive[bool] = reactive(False, init=False)
    strip_mode: reactive[bool] = reactive(False, init=False)

    class Stepped(Message):
        """The shown frame changed."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, sequences: list[FrameSequence], renderer: str = "halfblock",
                 info: Callable[[int], str] | None = None, fps: float = 6.0, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.sequences = sequences
        self.renderer = renderer
        self.info = info
        self.fps = fps
        self._timer: Timer | None = None
        self._ready = False

    @property
    def count(self) -> int:
        """Number of frame positions (the longest sequence)."""
        return max((len(s.frames) for s in self.sequences), default=0)

    def compose(self) -> ComposeResult:
        """Panes (title + picture per sequence), the strip picture, status and info lines."""
        with Horizontal(id="panes"):
            for k, seq in enumerate(self.sequences):
                with Vertical(classes="pane"):
                    yield Label(seq.label, id=f"title-{k}", classes="pane-title")
                    yield make_image(self.renderer, None, id=f"image-{k}", classes="pane-image")
        yield make_image(self.renderer, None, id="strip")
        yield Static("", id="frame-status")
        yield Static("", id="frame-info")

    def on_mount(self) -> None:
        """Show the first frame; prepare the (paused) playback timer."""
        self._timer = self.set_interval(1 / self.fps, self._advance, pause=True)
        self._ready = True
        self._show()

    def set_sequences(self, sequences: list[FrameSequence]) -> None:
        """Swap in new frame lists of the same columns (a running run grew), keeping the index."""
        if [s.label for s in sequences] != [s.label for s in self.sequences]:
            return
        self.sequences = sequences
        self._show()

    def refresh_info(self) -> None:
        """Redraw the per-frame numbers line (e.g. once the table has been read)."""
        if self._ready:
            self.query_one("#frame-info", Static).update(self.info(self.index) if self.info and self.count else "")

    def _advance(self) -> None:
        if self.count:
            self.index = (self.index + 1) % self.count

    def action_step(self, delta: int) -> None:
        """Previous/next frame (stops at the ends)."""
        if self.count:
            self.index = max(0, min(self.count - 1, self.index + delta))

    def action_jump(self, where: int) -> None:
        """First (0) or last (-1) frame."""
        if self.count:
            self.index = where % self.count

    def action_play(self) -> None:
        """Start or stop playing the frames as an animation (loops)."""
        self.playing = not self.playing and self.count > 1

    def action_strip(self) -> None:
        """Toggle between side-by-side frames and the strip of all frames."""
        self.strip_mode = not self.strip_mode

    def watch_index(self) -> None:
        self._show()
        self.post_message(self.Stepped(self.index))

    def watch_playing(self, playing: bool) -> None:
        if self._timer is not None:
            if playing:
                self._timer.resume()
            else:
                self._timer.pause()
        self._update_status()

    def watch_strip_mode(self, strip: bool) -> None:
        self.set_class(strip, "-strip")
        self._show()

    def _show(self) -> None:
        if not self._ready:
            return
        i = self.index
        if self.strip_mode:
            made = compose_strip([s.frames for s in self.sequences], current=i)
            set_image(self.query_one("#strip", Widget), made[0] if made else None)
        else:
            for k, seq in enumerate(self.sequences):
                frame = seq.frames[i] if i < len(seq.frames) else None
                where = f"{i + 1}/{len(seq.frames)}" if frame else ("no frames" if not seq.frames else "—")
                self.query_one(f"#title-{k}", Label).update(f"{seq.label}  {where}")
                set_image(self.query_one(f"#image-{k}", Widget), frame)
        self._update_status()
        self.query_one("#frame-info", Static).update(self.info(i) if self.info and self.count else "")

    def _update_status(self) -> None:
        if not self._ready:
            return
        if not self.count:
            text = "no frames in this run"
        else:
            state = "▶ playing" if self.playing else "paused"
            view = "strip" if self.strip_mode else "side by side"
            text = f"frame {self.index + 1}/{self.count} · {state} · {view}   ←/→ step  p play  v strip"
        self.query_one("#frame-status", Static).update(text)
