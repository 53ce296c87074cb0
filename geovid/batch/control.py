"""The files a batch shares between the driver and its workers (docs/batch.md): the hidden control folder on
``--out`` (token, ``started/<item>`` markers, the ``cancel`` flag) and ``batch-<time>/batch_summary.csv``."""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import os
import secrets
import shutil
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geovid.errors import InputError
from geovid.runs.files import atomic_write_bytes


class BatchControl:
    """The hidden folder ``OUT/.geovid-batch-<time>-<hex>/`` shared by the driver and the workers (see the module
    docstring): ``token``, ``started/<item>``, ``cancel``."""

    def __init__(self, path: str | os.PathLike[str], token: str | None = None) -> None:
        self.path = Path(path)
        self.token = token

    @classmethod
    def create(cls, out: Path) -> BatchControl:
        """Make the folder (and ``out``), with a fresh token."""
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = out / f".geovid-batch-{stamp}-{secrets.token_hex(3)}"
        token = secrets.token_hex(16)
        try:
            (path / "started").mkdir(parents=True)
            (path / "token").write_text(token, encoding="utf-8")
        except OSError as err:
            raise InputError(f"cannot write in --out {out}: {err.strerror or err}") from None
        return cls(path, token)

    def cancel(self) -> None:
        """Raise the cancel flag (every worker sees it at its next progress report)."""
        with contextlib.suppress(OSError):
            (self.path / "cancel").touch()

    def cancelled(self) -> bool:
        return (self.path / "cancel").exists()

    def start_attempt(self, item: int) -> int:
        """A worker starts ``item``: count it in ``started/<item>`` and return how many starts came before (more
        than none: Ray restarted a worker that died on it and retries it)."""
        marker = self.path / "started" / str(int(item))
        try:
            before = int(marker.read_text(encoding="ascii").strip() or 0)
        except (OSError, ValueError):
            before = 0
        with contextlib.suppress(OSError):
            marker.write_text(str(before + 1), encoding="ascii")
        return before

    def started(self) -> set[int]:
        try:
            return {int(n) for n in os.listdir(self.path / "started") if n.isdigit()}
        except OSError:
            return set()

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class CancelFlag:
    """A stand-in for ``threading.Event`` in the jobs' ``cancel`` argument: set once the batch's ``cancel`` file
    exists (looked up at most every ``interval`` seconds, so the jobs' frequent checks cost nothing)."""

    def __init__(self, control: BatchControl, interval: float = 0.5) -> None:
        self._file = control.path / "cancel"
        self._interval = interval
        self._last = -float("inf")
        self._set = False

    def is_set(self) -> bool:
        now = time.monotonic()
        if not self._set and now - self._last >= self._interval:
            self._last = now
            self._set = self._file.exists()
        return self._set


def probe_out(control: str, token: str) -> tuple[str, str | None]:
    """Run on each Ray node at start: does it see the driver's control folder (the same ``--out``) and can it write
    there? Returns (host name, None) or (host name, why not)."""
    host = socket.gethostname()
    folder = Path(control)
    try:
        seen = (folder / "token").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return host, "the folder the driver just wrote there is not visible from this node"
    except OSError as err:
        return host, f"cannot read there ({err.strerror or err})"
    if seen != token:
        return host, "it is another folder under the same path on this node"
    probe = folder / f"probe-{host}-{os.getpid()}"
    try:
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as err:
        return host, f"cannot write there ({err.strerror or err})"
    return host, None


class BatchSummary:
    """``OUT/batch-<time>/batch_summary.csv`` and ``.parquet``: one row per item, rewritten atomically.

    The folder appears complete (renamed from a hidden one once the first table is in it), so a reader never sees a
    batch folder without its ``batch_summary.csv`` (the TUI's catalog tells batch folders from runs by it)."""

    def __init__(self, folder: Path, columns: Sequence[str]) -> None:
        self.folder = folder
        self.columns = list(columns)

    @property
    def csv(self) -> Path:
        return self.folder / "batch_summary.csv"

    @classmethod
    def create(cls, out: Path, columns: Sequence[str], rows: list[dict[str, Any]]) -> BatchSummary:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        tmp = out / f".batch-{stamp}-{secrets.token_hex(3)}.tmp"
        try:
            tmp.mkdir(parents=True)
        except OSError as err:
            raise InputError(f"cannot write in --out {out}: {err.strerror or err}") from None
        summary = cls(tmp, columns)
        summary.write(rows)
        for k in range(1, 1000):
            final = out / (f"batch-{stamp}" if k == 1 else f"batch-{stamp}-{k}")
            if final.exists():
                continue
            try:
                os.rename(tmp, final)  # atomic; refuses a non-empty target, and every batch folder has a table
            except OSError:
                continue
            summary.folder = final
            return summary
        raise InputError(f"cannot find a free batch folder name for batch-{stamp} in {out}")

    def write(self, rows: list[dict[str, Any]]) -> None:
        import pandas as pd

        table = pd.DataFrame(rows, columns=self.columns)
        atomic_write_bytes(self.csv, table.to_csv(index=False).encode("utf-8"))
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        atomic_write_bytes(self.folder / "batch_summary.parquet", buf.getvalue())
