"""The two video decoders behind :mod:`geovid.media.decode`: decord and OpenCV, imported lazily (importing
:mod:`geovid.media` stays cheap), their native logging kept off the terminal, and what they report cleaned up
(one-line errors, timestamps that can be trusted, MPEG-TS sniffing)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def _decord() -> Any:
    import decord

    # FFmpeg's per-packet warnings ("co located POCs unavailable", ...) are noise for our users;
    # real failures still surface as exceptions.
    decord.logging.set_level(decord.logging.QUIET)
    return decord


def _cv2() -> Any:
    # Read by OpenCV's FFmpeg wrapper when it first initialises; respect a user's own setting.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    return cv2


@contextlib.contextmanager
def _quiet_cv2(cv2: Any) -> Iterator[None]:
    """Silence OpenCV's own log lines ("retrieveFrame Picture does not contain data") while we probe.

    Failures reach the user as one-line InputErrors instead; the caller's log level is restored.
    """
    old = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(old)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null inside the block (C++ code and child processes print there).

    Used while decord opens a file and while Ray starts (geovid.batch). decord logs "[time] …/video_reader.cc:83: ERROR opening: …" from C++ straight to fd 2 before raising; the
    same failure reaches the user as a one-line InputError instead. Python-level stderr is left alone.
    """
    import os
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    # decord prefixes messages with "[time] /github/workspace/src/...cc:123: "; keep the tail.
    if "] /" in text and ".cc:" in text:
        text = text.rsplit(".cc:", 1)[1].split(":", 1)[-1].strip()
    return text[:200]


def _reencode_hint(path: Path) -> str:
    return f"re-encode it to H.264 mp4, e.g. ffmpeg -i {path.name} -c:v libx264 -pix_fmt yuv420p {path.stem}-h264.mp4"


def _is_mpeg_ts(path: Path) -> bool:
    """True for MPEG transport streams (188-byte packets, or 192 with a timecode prefix)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(192 * 3 + 8)
    except OSError:
        return False
    for size, off in ((188, 0), (192, 4)):
        if len(head) >= 2 * size + off + 1 and all(head[off + k * size] == 0x47 for k in range(3)):
            return True
    return False


def _sane_timestamps(ts: np.ndarray, n: int) -> np.ndarray | None:
    """Container timestamps relative to frame 0, or None when they cannot be trusted."""
    if ts.shape != (n,) or not np.all(np.isfinite(ts)) or (n > 1 and not np.all(np.diff(ts) > 0)):
        return None
    if ts[0] < -1e-3:  # e.g. decord's -1e17 for MPEG-PS/AVI
        return None
    # decord stores seconds as float32; microsecond rounding gives back 0.04 instead of 0.0399999991.
    return np.round(ts - ts[0], 6)
