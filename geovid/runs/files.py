"""File primitives of the run folders: JSON conversion, the one atomic writer and the one tolerant JSON reader.

Every file of a run (and the batch summaries next to runs) is written through :func:`atomic_output` or
:func:`atomic_write_bytes`: the data goes to a temporary file beside the target, which then replaces the target
with ``os.replace``, so that a reader never sees half a file. Every JSON object of a run (``manifest.json``,
``summary.json``) is read through :func:`read_json_object`, which never raises on damaged input.

Nothing here imports numpy, torch, pandas or PIL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` to plain JSON types.

    numpy scalars/arrays and tensors become numbers/lists, Paths strings, tuples and sets
    lists, dataclasses dicts, datetimes ISO strings; non-finite floats (NaN, ±inf) become
    ``None`` because JSON has no spelling for them and strict readers reject Python's.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    np = sys.modules.get("numpy")  # not imported: obj is no numpy value (and the CLI's start stays fast)
    if np is not None:
        if isinstance(obj, np.floating) and obj.dtype.itemsize < 8:
            # float32(0.6).item() is 0.6000000238418579; its shortest repr "0.6" is what the user typed.
            return to_jsonable(float(str(obj)))
        if isinstance(obj, np.generic):
            return to_jsonable(obj.item())
        if isinstance(obj, np.ndarray):
            return to_jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
        return [to_jsonable(v) for v in items]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, _dt.datetime | _dt.date):
        return obj.isoformat()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "detach") and hasattr(obj, "tolist"):  # torch.Tensor, without importing torch
        return to_jsonable(obj.detach().cpu().tolist())
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    raise TypeError(f"cannot store a {type(obj).__name__} in JSON")


def dumps_json(obj: Any) -> str:
    """``obj`` as the contract's JSON text: :func:`to_jsonable`, 2-space indent, UTF-8 kept, a final newline."""
    return json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _temporary(target: Path, keep_suffix: bool) -> Path:
    # A writer that picks the format from the suffix (images by PIL, videos by ffmpeg) needs it kept.
    if keep_suffix:
        return target.with_name(f".{target.stem}.tmp{target.suffix}")
    return target.with_name(target.name + ".tmp")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], keep_suffix: bool = False, fsync: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it replaces ``path`` (``os.replace``).

    ``keep_suffix`` names it ``.<stem>.tmp<suffix>`` (for writers that pick the format from the suffix), else
    ``<name>.tmp``; ``fsync`` flushes it to disk before the replace. The parent folder is created. When the body
    raises, the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(target, keep_suffix)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (``*.tmp``, fsync, ``os.replace``): readers never see half a file."""
    with atomic_output(path, fsync=True) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json_file(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as the contract's JSON (:func:`dumps_json`) at ``path``, atomically."""
    return atomic_write_bytes(path, dumps_json(obj).encode("utf-8"))


def read_json_object(path: str | os.PathLike[str], problems: list[str] | None = None,
                     required: bool = True) -> dict[str, Any] | None:
    """Read a JSON object; ``None`` when it is missing or invalid, never an exception.

    What goes wrong is appended to ``problems`` (when given) in words: ``<name> missing`` (only when
    ``required``), unreadable, not valid JSON or UTF-8, not a JSON object.
    """
    notes: list[str] = problems if problems is not None else []
    rel = Path(path).name
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        if required:
            notes.append(f"{rel} missing")
        return None
    except OSError as exc:
        notes.append(f"{rel} unreadable: {exc.strerror or exc}")
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except json.JSONDecodeError as exc:
        notes.append(f"{rel} is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})")
        return None
    except UnicodeDecodeError:
        notes.append(f"{rel} is not valid UTF-8 text")
        return None
    if not isinstance(data, dict):
        notes.append(f"{rel} is not a JSON object")
        return None
    return data
