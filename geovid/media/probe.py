"""Probing a video file (:func:`probe`): frame count, rate, timestamps, size, codec, and which decoder reads it
exactly (the exactness policy is in :mod:`geovid.media.decode`, measured in ``docs/media.md``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from geovid.errors import InputError
from geovid.media.backends import (
    _cv2,
    _decord,
    _is_mpeg_ts,
    _one_line,
    _quiet_cv2,
    _reencode_hint,
    _sane_timestamps,
    quiet_native_stderr,
)

Backend = Literal["decord", "opencv"]

# OpenCV FOURCC tags -> ffmpeg codec names (what `ffmpeg -codecs` calls them).
_FOURCC_CODECS = {
    "h264": "h264", "avc1": "h264", "x264": "h264", "davc": "h264",
    "hevc": "hevc", "hev1": "hevc", "hvc1": "hevc", "h265": "hevc",
    "av01": "av1",
    "fmp4": "mpeg4", "mp4v": "mpeg4", "xvid": "mpeg4", "divx": "mpeg4", "dx50": "mpeg4",
    "mpg2": "mpeg2video", "mpg1": "mpeg1video",
    "theo": "theora", "vp80": "vp8", "vp90": "vp9", "mjpg": "mjpeg",
}
_CODEC_NAMES = {
    "h264": "H.264", "hevc": "HEVC (H.265)", "av1": "AV1", "mpeg4": "MPEG-4 Part 2",
    "mpeg2video": "MPEG-2", "mpeg1video": "MPEG-1", "theora": "Theora", "vp8": "VP8", "vp9": "VP9",
    "mjpeg": "Motion JPEG",
}
# Mean absolute difference (0-255 scale) under which decord's and OpenCV's frame 0 count as the
# same frame. Both wrap FFmpeg and were bit-identical on every clip tested; a shifted frame of a
# moving clip differs by tens of levels.
_CROSS_CHECK_TOL = 3.0


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` found out about a clip.

    Attributes:
        path: The clip.
        frame_count: Frames that decode (for the OpenCV backend: counted by decoding).
        fps: Average frame rate.
        duration: Seconds from the first frame's start to the last frame's end.
        width: Frame width in pixels, in display orientation (rotation metadata applied).
        height: Frame height in pixels, in display orientation.
        codec: ffmpeg's codec name (``h264``, ``hevc``, ``av1``, ...) when known.
        backend: ``"decord"`` or ``"opencv"``: the decoder :func:`read_frames` will use.
        note: Why the OpenCV backend was chosen (empty for decord).
        timestamps: Presentation time of every frame in seconds, relative to frame 0
            (container timestamps when they are sane, otherwise ``index / fps``).
    """

    path: Path
    frame_count: int
    fps: float
    duration: float
    width: int
    height: int
    codec: str | None
    backend: Backend
    note: str = ""
    timestamps: tuple[float, ...] = field(default=(), repr=False)

    @property
    def name(self) -> str:
        """The file name, used in messages."""
        return self.path.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (without per-frame timestamps), e.g. for a run's config."""
        return {"path": str(self.path), "frame_count": self.frame_count, "fps": self.fps,
                "duration": self.duration, "width": self.width, "height": self.height,
                "codec": self.codec, "backend": self.backend, "note": self.note}


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a video file")
    if path.stat().st_size == 0:
        raise InputError(f"{path.name} is empty (0 bytes); {_reencode_hint(path)} from the original")


def _opencv_codec(cap: Any, cv2: Any) -> str | None:
    code = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
    if code <= 0:
        return None
    tag = code.to_bytes(4, "little").decode("latin-1").strip("\x00 ").lower()
    return _FOURCC_CODECS.get(tag, tag or None)


def probe(path: str | Path, backend: Literal["auto", "decord", "opencv"] = "auto") -> VideoInfo:
    """Inspect a clip and choose the decoder that returns exact frames for it.

    Args:
        path: A video file (mp4, mov, mkv, webm, avi, mpg, ts, ogv, ...).
        backend: ``"auto"`` (decord, falling back to OpenCV as described in the module
            docstring), or force ``"decord"`` / ``"opencv"`` (a forced decord refuses files
            whose frame 0 disagrees with OpenCV's rather than switching).

    Returns:
        A :class:`VideoInfo`.

    Raises:
        InputError: missing, empty, damaged or undecodable file, with a one-line message.
    """
    if backend not in ("auto", "decord", "opencv"):
        raise InputError(f"unknown video decoder {backend!r}; use auto, decord or opencv")
    path = Path(path).expanduser()
    _check_file(path)
    cv2 = _cv2()
    with _quiet_cv2(cv2):
        cap = cv2.VideoCapture(str(path))
        try:
            cv_ok, cv_frame = cap.read() if cap.isOpened() else (False, None)
            codec = _opencv_codec(cap, cv2) if cap.isOpened() else None
            cv_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) if cap.isOpened() else 0.0
        finally:
            cap.release()
    cv_frame = cv2.cvtColor(cv_frame, cv2.COLOR_BGR2RGB) if cv_ok else None

    note = ""
    if _is_mpeg_ts(path):
        if backend == "decord":
            raise InputError(f"{path.name} is an MPEG transport stream, which decord 0.6 decodes from the "
                             f"wrong first frame; use the OpenCV backend or remux it: "
                             f"ffmpeg -i {path.name} -c copy {path.stem}.mp4")
        note = "MPEG-TS: decord 0.6 decodes it from the wrong first frame"
    else:
        info, why = _probe_decord(path, codec, cv_frame, cv_fps)
        if info is not None and backend == "opencv":
            # decord's packet index (count, timestamps) needs no decoding, and frame 0 agrees with
            # OpenCV's, so OpenCV can read without a counting pass of its own.
            return dataclasses.replace(info, backend="opencv",
                                       note="OpenCV requested; frame count and timestamps from decord's index")
        if info is not None:
            return info
        if backend == "decord":
            raise InputError(f"{path.name}: {why}; {_reencode_hint(path)}")
        note = why
    if backend == "opencv" and not note.startswith("MPEG-TS"):
        note = f"OpenCV requested ({note})"
    if cv_frame is None:
        raise _undecodable(path, codec)
    return _probe_opencv(path, codec, cv_fps, note)


def _undecodable(path: Path, codec: str | None) -> InputError:
    if codec:
        what = f"cannot decode its {_CODEC_NAMES.get(codec, codec)} video stream"
    else:
        what = "is not a readable video (damaged, truncated or not a video file)"
    sep = ": " if codec else " "
    return InputError(f"{path.name}{sep}{what} with decord or OpenCV; {_reencode_hint(path)}")


def _probe_decord(path: Path, codec: str | None, cv_frame: np.ndarray | None,
                  cv_fps: float) -> tuple[VideoInfo | None, str]:
    """Open with decord and cross-check frame 0 against OpenCV; (None, reason) when unusable."""
    decord = _decord()
    vr = None
    try:
        with quiet_native_stderr():
            vr = decord.VideoReader(str(path))
        n = len(vr)
        first = vr.next().asnumpy()
        fps = float(vr.get_avg_fps())
        raw_ts = np.asarray(vr.get_frame_timestamp(range(n)), dtype=np.float64)[:, 0]
    except Exception as err:  # decord raises RuntimeError/DECORDError/AssertionError alike
        return None, f"decord cannot open it ({_one_line(err)})"
    finally:
        vr = None  # free the native reader before anything else opens the file
    if cv_frame is not None:
        if cv_frame.shape != first.shape:
            return None, (f"decord and OpenCV disagree on the frame size ({first.shape[1]}x{first.shape[0]} vs "
                          f"{cv_frame.shape[1]}x{cv_frame.shape[0]})")
        diff = float(np.abs(cv_frame.astype(np.int16) - first.astype(np.int16)).mean())
        if diff > _CROSS_CHECK_TOL:
            return None, f"decord's frame 0 differs from OpenCV's (mean difference {diff:.1f} levels)"
    if not (math.isfinite(fps) and fps > 0):
        fps = cv_fps if cv_fps > 0 else 25.0
    ts = _sane_timestamps(raw_ts, n)
    if ts is None:
        ts = np.arange(n) / fps
        duration = n / fps
    else:
        duration = round(float(ts[-1] + 1.0 / fps), 6)
    h, w = first.shape[:2]
    return VideoInfo(path=path, frame_count=n, fps=fps, duration=duration, width=w, height=h, codec=codec,
                     backend="decord", note="", timestamps=tuple(float(t) for t in ts)), ""


def _probe_opencv(path: Path, codec: str | None, fps: float, note: str) -> VideoInfo:
    """Count frames (and collect timestamps) with one sequential OpenCV pass."""
    cv2 = _cv2()
    ms: list[float] = []
    shape: tuple[int, ...] | None = None
    with _quiet_cv2(cv2):
        cap = cv2.VideoCapture(str(path))
        try:
            while cap.grab():
                ms.append(float(cap.get(cv2.CAP_PROP_POS_MSEC)))
                if shape is None:  # the decoded frame's shape is the truth (rotation applied)
                    ok, frame = cap.retrieve()
                    shape = frame.shape if ok else None
        finally:
            cap.release()
    n = len(ms)
    if n == 0:
        raise _undecodable(path, codec)
    if shape is None:
        raise _undecodable(path, codec)
    h, w = shape[:2]
    if not fps > 0:
        fps = 25.0
    ts = _sane_timestamps(np.asarray(ms) / 1000.0, n)
    if ts is None:
        ts = np.arange(n) / fps
    duration = round(float(ts[-1] + 1.0 / fps), 6)
    return VideoInfo(path=path, frame_count=n, fps=fps, duration=duration, width=w, height=h, codec=codec,
                     backend="opencv", note=note, timestamps=tuple(float(t) for t in ts))
