"""Run folder names: the user's ``--name`` checked, the default ``<input stem>-<time>`` made collision-free."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from geovid.errors import InputError

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@=-]*$")


def check_name(name: str) -> None:
    """Refuse a run name that is not one plain folder name (InputError)."""
    if not _NAME_OK.match(name) or name in (".", ".."):
        raise InputError(f"invalid run name {name!r}: use letters, digits and . _ - + @ = (no slashes or spaces)")


def default_stem(inputs: list[Any], kind: str) -> str:
    """The first input's file stem, shell- and URL-friendly (the kind when there is none)."""
    stem = Path(os.fspath(inputs[0])).stem if inputs and isinstance(inputs[0], str | os.PathLike) else kind
    # Keep names shell- and URL-friendly whatever the input file was called.
    stem = re.sub(r"[^A-Za-z0-9._+@=-]+", "-", stem).strip("-.") or kind
    return stem[:60]


def make_default_dir(runs_dir: Path, base: str) -> Path:
    """Create ``runs_dir/base``, else ``base-2``, ``base-3``, ... (``mkdir`` is atomic: two processes cannot both
    get the same name)."""
    for k in range(1, 10_000):
        path = runs_dir / (base if k == 1 else f"{base}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise InputError(f"cannot find a free run name for {base} in {runs_dir}")
