"""Frame-exact video decoding: probe a clip, choose frames, read exactly those frames (docs/method.md §7.1).

The video analysis compares a clip's path through latent space with a geodesic, so the
frame we are given must be the frame we asked for: a frame off by a few positions bends
the path and the residuals measure the decoder, not the clip.

Exactness policy (measured in ``docs/media.md``):

* **Sequential decoding only, never a seek.** decord 0.6's random access (``get_batch``,
  ``seek``, ``seek_accurate`` and even ``skip_frames``) returns wrong frames for open-GOP
  H.264 with B-frames, HEVC, MPEG-PS (``.mpg``) and AVI/MPEG-4 Part 2; its timestamps for
  MPEG-PS/AVI are garbage. Decoding from frame 0 with ``next()`` on a fresh reader was exact
  for every container we tested, and costs at most one decode of the clip up to the last
  wanted frame; only the wanted frames are copied out of the decoder and kept.
* **Cross-check of frame 0.** decord also decodes MPEG-TS (``.ts``/``.m2ts``) from the wrong
  first frame *even sequentially* (it skips the first GOP and pads the end with copies of
  the last frame). :func:`probe` therefore sniffs MPEG-TS and, for every other file, compares
  decord's frame 0 with OpenCV's; on a mismatch the file is read with OpenCV instead.
* **OpenCV fallback.** When decord cannot open a file (Theora ``.ogv``, broken metadata)
  but OpenCV decodes it, the file is read with ``cv2.VideoCapture``, also strictly
  sequentially (``grab`` every frame, ``retrieve`` the wanted ones). Its frame count is
  counted, not taken from the header (OpenCV estimates it from the duration).
  ``probe(path, backend="opencv")`` reads with OpenCV on request; when decord's index is
  usable (frame 0 agrees) it supplies the count and timestamps, so no counting pass is
  needed. OpenCV skips the colour conversion of unwanted frames, which makes it faster for
  sparse selections from long HD clips (``docs/media.md``).
  :attr:`VideoInfo.backend` and :attr:`VideoInfo.note` record which decoder was used and why.
* Anything neither decoder reads (AV1 with this decord/OpenCV build, damaged, truncated or
  non-video files) raises :class:`~geovid.errors.InputError` with a one-line message that names
  the file and says how to re-encode it.

decord and cv2 are imported lazily so that importing :mod:`geovid.media` stays cheap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from geovid.errors import InputError
from geovid.progress import ProgressFn

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


@dataclass(frozen=True)
class Clip:
    """Frames read from a clip by :func:`read_clip`."""

    frames: np.ndarray  # (N, H, W, 3) uint8 RGB
    timestamps: list[float]
    indices: list[int]
    info: VideoInfo


# --------------------------------------------------------------------------- lazy decoder imports


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


# --------------------------------------------------------------------------- probe


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


# --------------------------------------------------------------------------- frame selection


def _secs(x: float) -> str:
    text = f"{x:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def select_frames(info: VideoInfo, frames: int | None = None, stride: int | None = None,
                  start: float | None = None, end: float | None = None, min_frames: int = 2) -> list[int]:
    """Choose frame indices of a clip (docs/method.md §7.1: uniform count, stride, or time range).

    Frames are eligible when their timestamp lies in ``[start, end]`` (seconds from the first
    frame, both ends included). Then:

    * ``frames=N`` alone: N indices spread uniformly over the eligible frames, the first and
      the last eligible frame included;
    * ``stride=K`` alone: every K-th eligible frame, starting with the first;
    * both: the first N frames at stride K;
    * neither: every eligible frame.

    Args:
        info: From :func:`probe`.
        frames: Number of frames (at least 2: a path needs two endpoints).
        stride: Take every K-th frame (K ≥ 1).
        start: Start of the time range in seconds (default: the clip's start).
        end: End of the time range in seconds (default: the clip's end).
        min_frames: Fewest frames the caller can work with.

    Returns:
        Increasing frame indices.

    Raises:
        InputError: invalid options or too few frames, e.g.
            ``clip.mp4 has 12 frames in [0.0 s, 0.5 s]; need at least 16``.
    """
    name = info.name
    if frames is not None and frames < max(2, min_frames):
        raise InputError(f"--frames must be at least {max(2, min_frames)} (got {frames})")
    if stride is not None and stride < 1:
        raise InputError(f"--stride must be at least 1 (got {stride})")
    t0 = 0.0 if start is None else float(start)
    t1 = info.duration if end is None else float(end)
    if t0 < 0 or not math.isfinite(t0):
        raise InputError(f"--start must be a time ≥ 0 s (got {start})")
    if end is not None and not t1 > t0:
        raise InputError(f"--end ({_secs(t1)} s) must be after --start ({_secs(t0)} s)")
    if t0 >= info.duration:
        raise InputError(f"--start {_secs(t0)} s is past the end of {name} ({_secs(info.duration)} s long)")
    ts = np.asarray(info.timestamps) if info.timestamps else np.arange(info.frame_count) / info.fps
    eligible = np.flatnonzero((ts >= t0 - 1e-6) & (ts <= t1 + 1e-6))
    where = f"in [{_secs(t0)} s, {_secs(min(t1, info.duration))} s]"
    if stride is not None:
        eligible = eligible[::stride]
        where += f" at stride {stride}"
    need = frames if frames is not None else min_frames
    if len(eligible) < need:
        raise InputError(f"{name} has {len(eligible)} frames {where}; need at least {need}")
    if frames is None:
        chosen = eligible
    elif stride is not None:
        chosen = eligible[:frames]
    else:
        # floor(x + 0.5), not np.round: half-to-even could map two neighbours to the same frame.
        pos = np.floor(np.linspace(0, len(eligible) - 1, frames) + 0.5).astype(int)
        chosen = eligible[pos]
    return [int(i) for i in chosen]


# --------------------------------------------------------------------------- reading


def _check_indices(info: VideoInfo, indices: Sequence[int]) -> list[int]:
    out = []
    for i in indices:
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise InputError(f"frame indices must be integers (got {i!r})")
        if not 0 <= int(i) < info.frame_count:
            raise InputError(f"{info.name}: frame {int(i)} is out of range "
                             f"(the clip has {info.frame_count} frames, 0..{info.frame_count - 1})")
        out.append(int(i))
    if not out:
        raise InputError(f"{info.name}: no frames requested")
    return out


def read_frames(path: str | Path | VideoInfo, indices: Sequence[int], *, info: VideoInfo | None = None,
                progress: ProgressFn | None = None) -> tuple[np.ndarray, list[float]]:
    """Decode exactly the frames ``indices`` of a clip, by sequential decoding (see module docstring).

    Args:
        path: The clip, or its :class:`VideoInfo` (skips probing).
        indices: Frame indices in any order; repeats allowed.
        info: A :class:`VideoInfo` from :func:`probe` for this clip, to avoid probing again.
        progress: Optional ``progress(phase, done, total, info)`` callback (phase ``"decode"``).

    Returns:
        ``(frames, timestamps)``: frames (N, H, W, 3) uint8 RGB in the order of ``indices``, and
        each frame's presentation time in seconds.

    Raises:
        InputError: unreadable file, index out of range, or a stream that ends or breaks before
            the last wanted frame.
    """
    if isinstance(path, VideoInfo):
        info = path
    elif info is None:
        info = probe(path)
    wanted_list = _check_indices(info, indices)
    # Decoded frames go straight into their slot(s) of one preallocated array: at 720p a second copy
    # (np.stack) cost as much as decoding.
    slots: dict[int, list[int]] = {}
    for pos, i in enumerate(wanted_list):
        slots.setdefault(i, []).append(pos)
    out = np.empty((len(wanted_list), info.height, info.width, 3), np.uint8)
    reader = _read_decord if info.backend == "decord" else _read_opencv
    reader(info, _Sink(info, out, slots), max(slots), progress)
    times = [info.timestamps[i] if info.timestamps else i / info.fps for i in wanted_list]
    return out, times


class _Sink:
    """Where the sequential readers put the frames that were asked for."""

    def __init__(self, info: VideoInfo, out: np.ndarray, slots: dict[int, list[int]]) -> None:
        self.info, self.out, self.slots = info, out, slots

    def __contains__(self, i: int) -> bool:
        return i in self.slots

    def put(self, i: int, frame: np.ndarray) -> None:
        if frame.shape != self.out.shape[1:]:
            raise InputError(f"{self.info.name} changes frame size mid-stream (frame {i} is "
                             f"{frame.shape[1]}x{frame.shape[0]}, frame 0 was {self.info.width}x"
                             f"{self.info.height}); {_reencode_hint(self.info.path)}")
        for pos in self.slots[i]:
            self.out[pos] = frame


def _ended(info: VideoInfo, i: int) -> InputError:
    return InputError(f"{info.name} ends after {i} decodable frames although it reports {info.frame_count}; "
                      f"the file is truncated or damaged: {_reencode_hint(info.path)}")


def _broken(info: VideoInfo, i: int) -> InputError:
    # The decoder's own message ("Check failed: avcodec_send_packet(...)") helps nobody; the frame does.
    return InputError(f"{info.name}: decoding failed at frame {i} of {info.frame_count}; "
                      f"the file is damaged: {_reencode_hint(info.path)}")


def _read_decord(info: VideoInfo, sink: _Sink, last: int, progress: ProgressFn | None) -> None:
    decord = _decord()
    try:
        vr = decord.VideoReader(str(info.path))
    except Exception as err:
        raise InputError(f"{info.name}: decord cannot open it any more ({_one_line(err)})") from err
    # A fresh reader and next() only: no seek, so no keyframe/timestamp arithmetic to get wrong.
    for i in range(last + 1):
        try:
            frame = vr.next()
        except StopIteration:
            raise _ended(info, i) from None
        except Exception as err:
            raise _broken(info, i) from err
        if i in sink:
            sink.put(i, frame.asnumpy())
        if progress is not None:
            progress("decode", i + 1, last + 1, {})


def _read_opencv(info: VideoInfo, sink: _Sink, last: int, progress: ProgressFn | None) -> None:
    cv2 = _cv2()
    with _quiet_cv2(cv2):
        cap = cv2.VideoCapture(str(info.path))
    try:
        if not cap.isOpened():
            raise InputError(f"{info.name}: OpenCV cannot open it any more")
        # grab() decodes without colour conversion; retrieve() converts only the frames we keep.
        for i in range(last + 1):
            if not cap.grab():
                raise _ended(info, i)
            if i in sink:
                ok, frame = cap.retrieve()
                if not ok:
                    raise _broken(info, i)
                sink.put(i, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if progress is not None:
                progress("decode", i + 1, last + 1, {})
    finally:
        cap.release()


def read_clip(path: str | Path, frames: int | None = None, stride: int | None = None,
              start: float | None = None, end: float | None = None, *, min_frames: int = 2,
              backend: Literal["auto", "decord", "opencv"] = "auto",
              progress: ProgressFn | None = None) -> Clip:
    """Probe, select and read in one call: :func:`probe` → :func:`select_frames` → :func:`read_frames`.

    Returns:
        A :class:`Clip` with the frames (N, H, W, 3) uint8, their timestamps and indices.
    """
    info = probe(path, backend=backend)
    indices = select_frames(info, frames=frames, stride=stride, start=start, end=end, min_frames=min_frames)
    arr, times = read_frames(info, indices, progress=progress)
    return Clip(frames=arr, timestamps=times, indices=indices, info=info)
