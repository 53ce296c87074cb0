"""Textual terminal UI for browsing geovid runs; a client of the library (``make_app``).

``make_app`` is imported lazily so that ``import tui`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["make_app"]


def __getattr__(name: str) -> Any:
    if name in ("make_app", "GeovidApp"):
        from tui import app

        return getattr(app, name)
    raise AttributeError(f"module 'tui' has no attribute {name!r}")
