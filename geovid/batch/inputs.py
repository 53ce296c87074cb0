"""Batch inputs (docs/batch.md): clip arguments and globs, ``--list FILE`` and ``--pairs FILE``."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geovid.errors import InputError


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def expand_inputs(args: Sequence[str | os.PathLike[str]], list_file: str | os.PathLike[str] | None = None
                  ) -> list[Path]:
    """Input files from command-line arguments and a list file, in order.

    An argument that names no file but contains ``*``, ``?`` or ``[`` is a glob (``**`` recurses), expanded in
    sorted order; one that matches nothing is an error. ``list_file`` adds one path per line (:func:`read_list`).
    Files are not checked here: a missing one fails its own item.
    """
    paths: list[Path] = []
    for arg in args:
        text = os.path.expanduser(os.fspath(arg))
        if _has_magic(text) and not os.path.exists(text):
            import glob

            matches = [m for m in sorted(glob.glob(text, recursive=True)) if os.path.isfile(m)]
            if not matches:
                raise InputError(f"no file matches {os.fspath(arg)}")
            paths += [Path(m) for m in matches]
        else:
            paths.append(Path(text))
    if list_file is not None:
        paths += read_list(list_file)
    return paths


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{what} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{what} {path}: cannot read it ({getattr(err, 'strerror', None) or err})") from None


def _relative_to(base: Path, text: str) -> Path:
    p = Path(os.path.expanduser(text))
    return p if p.is_absolute() else base / p


def read_list(path: str | os.PathLike[str]) -> list[Path]:
    """``--list FILE``: one path per line; blank lines and lines starting with ``#`` are skipped; relative paths
    are relative to the list file's folder."""
    p = Path(path).expanduser()
    out = [_relative_to(p.parent, line.strip()) for line in _read_text(p, "--list").splitlines()
           if line.strip() and not line.strip().startswith("#")]
    if not out:
        raise InputError(f"--list {p} names no file")
    return out


def read_pairs(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """``--pairs FILE``: a CSV with columns ``a,b[,prompt]`` (a header row with these names is optional).

    Relative image paths are relative to the CSV's folder; an empty prompt means the command's ``--prompt``.
    Prompts that contain commas must be quoted (standard CSV). Returns ``[{"a": Path, "b": Path, "prompt":
    str | None}, ...]``.
    """
    p = Path(path).expanduser()
    rows = [(n + 1, r) for n, r in enumerate(csv.reader(io.StringIO(_read_text(p, "--pairs"))))
            if any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    cols = ["a", "b", "prompt"]
    if rows:
        first = [c.strip().lower() for c in rows[0][1]]
        if "a" in first and "b" in first:
            unknown = [c for c in first if c not in ("a", "b", "prompt", "")]
            if unknown:
                raise InputError(f"--pairs {p}: unknown column(s) {', '.join(unknown)}; expected a,b[,prompt]")
            cols, rows = first, rows[1:]
    if not rows:
        raise InputError(f"--pairs {p} has no pair (one line per pair: a,b[,prompt])")
    pairs = []
    for line, r in rows:
        if len(r) > len(cols) and any(c.strip() for c in r[len(cols):]):
            raise InputError(f"--pairs {p} line {line}: {len(r)} columns, expected a,b[,prompt] "
                             "(quote a prompt that contains commas)")
        rec = {c: v.strip() for c, v in zip(cols, r)}
        if not rec.get("a") or not rec.get("b"):
            raise InputError(f"--pairs {p} line {line}: needs two image paths (a,b[,prompt])")
        pairs.append({"a": _relative_to(p.parent, rec["a"]), "b": _relative_to(p.parent, rec["b"]),
                      "prompt": rec.get("prompt") or None})
    return pairs
