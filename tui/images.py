"""Images in the terminal: a deterministic half-block renderer and graphics-protocol fallbacks.

``image_renderer`` (see :func:`tui.app.make_app`) picks one of:

- ``"auto"``: textual-image's best choice for the terminal (Sixel, Kitty graphics protocol,
  else colour half-cell blocks, else Unicode). It must be chosen before the app starts, as
  it queries the terminal; :func:`prepare_renderer` does that.
- ``"halfblock"``: :class:`HalfBlockImage` below, pure Rich segments ("▀" with foreground =
  upper pixel, background = lower pixel). Works in any colour terminal and over SSH, and is
  byte-for-byte deterministic, so the snapshot tests use it.
- ``"sixel"``, ``"tgp"``: force a textual-image graphics protocol.
- ``"none"``: no pictures, only the file name (for monochrome or screen-reader use).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

RENDERERS = ("auto", "halfblock", "sixel", "tgp", "none")

ImageSource = Path | PILImage.Image | None


@lru_cache(maxsize=64)  # full frames: 64 × (512² RGB) ≈ 50 MB at most
def _load_rgb(path: str, mtime_ns: int) -> PILImage.Image | None:
    """Decode a picture once per (path, mtime); ``None`` if unreadable (partial or damaged file)."""
    try:
        with PILImage.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError, PILImage.DecompressionBombError):
        return None


def load_image(source: ImageSource) -> PILImage.Image | None:
    """An RGB PIL image from a path or image; ``None`` when missing or unreadable."""
    if source is None:
        return None
    if isinstance(source, PILImage.Image):
        return source.convert("RGB")
    try:
        mtime = Path(source).stat().st_mtime_ns
    except OSError:
        return None
    return _load_rgb(str(source), mtime)


def fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """Largest (w, h) ≤ (box_w, box_h) with the aspect ratio of (width, height), each ≥ 1."""
    if width <= 0 or height <= 0 or box_w <= 0 or box_h <= 0:
        return 0, 0
    scale = min(box_w / width, box_h / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


@lru_cache(maxsize=65536)
def _cell(top: bytes, bottom: bytes) -> Segment:
    """One "▀" cell: upper pixel as foreground, lower pixel as background (cached per colour pair)."""
    return Segment("▀", Style.from_color(Color.from_rgb(*top), Color.from_rgb(*bottom)))


def halfblock_lines(img: PILImage.Image, cols: int, rows: int) -> list[list[Segment]]:
    """Render ``img`` into at most ``cols``×``rows`` cells of "▀" half blocks, centred, aspect kept.

    Terminal cells are about twice as tall as wide, so one cell shows two square pixels.
    """
    w, h = fit(img.width, img.height, cols, rows * 2)
    if w == 0:
        return []
    h += h % 2
    data = img.resize((w, h), PILImage.Resampling.BOX).tobytes()
    pad_left = (cols - w) // 2
    blank = Segment(" " * pad_left) if pad_left else None
    lines = []
    row = 3 * w
    for y in range(0, h, 2):
        line: list[Segment] = [blank] if blank else []
        top, bottom = data[y * row:(y + 1) * row], data[(y + 1) * row:(y + 2) * row]
        for x in range(0, row, 3):
            line.append(_cell(top[x:x + 3], bottom[x:x + 3]))
        lines.append(line)
    top_pad = (rows - len(lines)) // 2
    return [[] for _ in range(top_pad)] + lines


class _ImageProperty:
    """The ``image`` property of the picture widgets below: the source shown (path or PIL image; only its name
    for :class:`NoImage`). Assigning it stores the source and shows it (:meth:`_show`)."""

    _source: ImageSource

    @property
    def image(self) -> ImageSource:
        """The picture shown (path or PIL image); assign to change it."""
        return self._source

    @image.setter
    def image(self, source: ImageSource) -> None:
        self._source = source
        self._show(source)

    def _show(self, source: ImageSource) -> None:
        raise NotImplementedError


class HalfBlockImage(_ImageProperty, Widget):
    """A picture drawn with coloured half blocks; fills its box, keeps the aspect ratio."""

    DEFAULT_CSS = """
    HalfBlockImage { width: 1fr; height: 1fr; }
    """

    def __init__(self, source: ImageSource = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._source = source
        self._lines: list[list[Segment]] = []
        self._key: tuple[Any, ...] | None = None

    def _show(self, source: ImageSource) -> None:
        self._key = None
        self.refresh()

    def _render_lines(self) -> list[list[Segment]]:
        size = self.content_size
        key = (id(self._source), str(self._source), size.width, size.height)
        if key != self._key:
            img = load_image(self._source)
            self._lines = halfblock_lines(img, size.width, size.height) if img is not None else []
            self._key = key
        return self._lines

    def render_line(self, y: int) -> Strip:
        """One terminal row of the picture (blank outside it)."""
        lines = self._render_lines()
        width = self.content_size.width
        if y < len(lines) and lines[y]:
            return Strip(lines[y]).extend_cell_length(width).crop(0, width)
        return Strip.blank(width)


class NoImage(_ImageProperty, Static):
    """Stand-in when pictures are off: shows the file name."""

    DEFAULT_CSS = """
    NoImage { width: 1fr; height: 1fr; content-align: center middle; color: $text-muted; }
    """

    def __init__(self, source: ImageSource = None, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.image = source

    def _show(self, source: ImageSource) -> None:
        self.update(Path(source).name if isinstance(source, Path) else ("picture" if source else ""))


_PROTOCOL_CLASSES: dict[str, type[Widget]] = {}


def prepare_renderer(renderer: str) -> str:
    """Resolve ``renderer`` before the app starts; falls back to ``halfblock`` when unavailable.

    textual-image queries the terminal when imported, which is impossible once Textual owns
    the terminal, hence this step in :func:`tui.app.make_app`.
    """
    if renderer not in RENDERERS:
        raise ValueError(f"image renderer must be one of {', '.join(RENDERERS)}, not {renderer!r}")
    if renderer in ("halfblock", "none"):
        return renderer
    try:
        from textual_image import widget as ti
    except Exception:  # any failure to probe the terminal means: use the portable renderer
        return "halfblock"
    cls = {"auto": ti.Image, "sixel": ti.SixelImage, "tgp": ti.TGPImage}[renderer]
    _PROTOCOL_CLASSES[renderer] = cls
    return renderer


def make_image(renderer: str, source: ImageSource = None, **kwargs: Any) -> Widget:
    """A picture widget for ``renderer`` (after :func:`prepare_renderer`); has an ``image`` property."""
    if renderer == "none":
        return NoImage(source, **kwargs)
    cls = _PROTOCOL_CLASSES.get(renderer)
    if cls is None:
        return HalfBlockImage(source, **kwargs)
    widget = cls(load_image(source), **kwargs)
    widget.add_class("protocol-image")
    return widget


def set_image(widget: Widget, source: ImageSource) -> None:
    """Show ``source`` in a widget made by :func:`make_image` (missing/unreadable → blank)."""
    if isinstance(widget, HalfBlockImage | NoImage):
        widget.image = source
    else:
        widget.image = load_image(source)  # type: ignore[attr-defined]


def compose_strip(rows: list[list[Path]], current: int | None = None, max_cols: int = 12,
                  cell: int = 64) -> tuple[PILImage.Image, list[int]] | None:
    """Tile sequences into one picture: one row per sequence, frames left to right.

    At most ``max_cols`` frames (evenly subsampled, first and last kept) so thumbnails stay
    recognisable; the column of ``current`` is outlined. Returns the picture and the frame
    indices shown, or ``None`` when there is nothing to show.
    """
    n = max((len(r) for r in rows), default=0)
    if n == 0:
        return None
    cols = min(n, max_cols)
    if cols == n:
        shown = list(range(n))
    else:
        shown = sorted({round(k * (n - 1) / (cols - 1)) for k in range(cols)})
        if current is not None and current not in shown:
            # Keep the current frame visible: replace the nearest sampled index.
            nearest = min(range(len(shown)), key=lambda k: abs(shown[k] - current))
            shown[nearest] = current
            shown.sort()
    gap = max(1, cell // 16)
    strip = PILImage.new("RGB", (len(shown) * (cell + gap) + gap, len(rows) * (cell + gap) + gap), (24, 24, 24))
    for y, row in enumerate(rows):
        for x, idx in enumerate(shown):
            img = load_image(row[idx]) if idx < len(row) else None
            if img is None:
                continue
            strip.paste(img.resize((cell, cell), PILImage.Resampling.BOX), (gap + x * (cell + gap), gap + y * (cell + gap)))
    if current is not None and current in shown:
        from PIL import ImageDraw

        x = gap + shown.index(current) * (cell + gap)
        ImageDraw.Draw(strip).rectangle([x - gap, 0, x + cell + gap - 1, strip.height - 1],
                                        outline=(255, 200, 0), width=gap)
    return strip, shown
