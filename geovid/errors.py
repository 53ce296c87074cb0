"""Exceptions the front ends turn into one-line messages (never tracebacks)."""

from __future__ import annotations


class GeovidError(Exception):
    """An error with a message meant for the user; the CLI prints it on one line and exits 2."""


class InputError(GeovidError):
    """Bad input: unreadable file, invalid option value, clip too short, ..."""


class ModelError(GeovidError):
    """A model could not be found or loaded (hub id not available offline, broken folder, ...)."""


class SolverError(GeovidError):
    """A solver diverged or produced non-finite values and could not recover."""
