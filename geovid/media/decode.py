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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from geovid.errors import InputError
from geovid.media.backends import _cv2, _decord, _one_line, _quiet_cv2, _reencode_hint, quiet_native_stderr
from geovid.media.probe import Backend, VideoInfo, probe
from geovid.progress import ProgressFn

# Re-exported: probing and the decoders' stderr silencer were defined here before geovid.media.probe and
# geovid.media.backends.
__all__ = ["Backend", "Clip", "VideoInfo", "probe", "quiet_native_stderr", "read_clip", "read_frames",
           "select_frames"]


@dataclass(frozen=True)
class Clip:
    """Frames read from a clip by :func:`read_clip`."""

    frames: np.ndarray  # (N, H, W, 3) uint8 RGB
    timestamps: list[float]
    indices: list[int]
    info: VideoInfo


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
