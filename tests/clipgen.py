"""Small test clips whose frames carry their own index, for frame-exactness tests.

Every frame shows a barcode: a top band of ``BITS`` blocks holding the frame index in
binary and a second band holding its bitwise complement (so a grey, smeared or
half-decoded frame reads as "no code", never as a wrong index). Below the bands a
textured pattern moves, so inter-frame codecs have real motion to predict and use
P/B-frames. Clips are encoded with the ffmpeg binary bundled with imageio-ffmpeg.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np

BITS = 10  # up to 1023 frames
BLOCK = 8  # pixels per bit horizontally; bands are BLOCK*2 high
WIDTH = BITS * BLOCK + 16  # 96: even, divisible by 16 for the old codecs
HEIGHT = 64

# name -> (file suffix, ffmpeg codec arguments)
FORMATS: dict[str, tuple[str, list[str]]] = {
    # H.264 with 3 fixed B-frames and a short GOP: the case decord's random access gets wrong.
    "h264_bframes": (".mp4", ["-c:v", "libx264", "-bf", "3", "-g", "12",
                              "-x264-params", "b-adapt=0:scenecut=0", "-pix_fmt", "yuv420p"]),
    "mpeg_ps": (".mpg", ["-c:v", "mpeg2video", "-bf", "2", "-g", "12", "-q:v", "3", "-f", "mpeg"]),
    "mkv": (".mkv", ["-c:v", "libx264", "-bf", "3", "-g", "12", "-pix_fmt", "yuv420p"]),
    "webm": (".webm", ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "30", "-g", "12", "-deadline", "realtime",
                       "-pix_fmt", "yuv420p"]),
    "avi": (".avi", ["-c:v", "mpeg4", "-bf", "2", "-g", "12", "-q:v", "3"]),
    "mov": (".mov", ["-c:v", "libx264", "-bf", "2", "-g", "12", "-pix_fmt", "yuv420p"]),
    # Open GOPs: B-frames before an I-frame reference the previous GOP (decord's seeks break).
    "h264_open_gop": (".mp4", ["-c:v", "libx264", "-bf", "3", "-g", "12", "-pix_fmt", "yuv420p",
                               "-x264-params", "b-adapt=0:scenecut=0:open-gop=1:b-pyramid=normal"]),
    "hevc": (".mp4", ["-c:v", "libx265", "-bf", "4", "-g", "12", "-x265-params", "log-level=error",
                      "-pix_fmt", "yuv420p"]),
    "mpeg_ts": (".ts", ["-c:v", "libx264", "-bf", "3", "-g", "12", "-pix_fmt", "yuv420p",
                        "-x264-params", "b-adapt=0:scenecut=0"]),
    "mjpeg": (".avi", ["-c:v", "mjpeg", "-q:v", "3"]),
    "av1": (".mkv", ["-c:v", "libaom-av1", "-cpu-used", "8", "-crf", "40", "-g", "12", "-pix_fmt", "yuv420p"]),
    "theora": (".ogv", ["-c:v", "libtheora", "-q:v", "6", "-g", "12"]),
}


def barcode_frame(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """One RGB uint8 frame showing ``index`` as a barcode above a moving texture."""
    frame = np.zeros((height, width, 3), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    # Moving diagonal stripes plus a colour ramp: real motion for the encoder to predict.
    texture = 128 + 100 * np.sin((xx + 2 * yy + 3 * index) / 5.0)
    frame[..., 0] = texture.astype(np.uint8)
    frame[..., 1] = ((xx * 255) // max(width - 1, 1)).astype(np.uint8)
    frame[..., 2] = (255 - texture).astype(np.uint8)
    # The code is laid out on the WIDTH x HEIGHT grid and scaled to the frame, as read_barcode expects.
    sy, sx = height / HEIGHT, width / WIDTH
    band = 2 * BLOCK
    frame[: round(2 * band * sy)] = 0
    for bit in range(BITS):
        on = (index >> bit) & 1
        xs = slice(round((8 + bit * BLOCK) * sx), round((8 + (bit + 1) * BLOCK) * sx))
        frame[0 : round(band * sy), xs] = 255 * on
        frame[round(band * sy) : round(2 * band * sy), xs] = 255 * (1 - on)
    return frame


def read_barcode(frame: np.ndarray) -> int:
    """The index drawn by :func:`barcode_frame`, or -1 if the code is not legible.

    Frames may have been resized (e.g. by a decoder); coordinates are scaled.
    """
    h, w = frame.shape[:2]
    sy, sx = h / HEIGHT, w / WIDTH
    gray = frame.astype(np.float32).mean(axis=2)
    band = 2 * BLOCK
    value = 0
    for bit in range(BITS):
        x0 = 8 + bit * BLOCK
        # Sample the centre of each block: codec ringing lives at the edges.
        xs = slice(int((x0 + 2) * sx), int((x0 + BLOCK - 2) * sx))
        top = gray[int(4 * sy) : int((band - 4) * sy), xs].mean()
        bottom = gray[int((band + 4) * sy) : int((2 * band - 4) * sy), xs].mean()
        if top > 160 and bottom < 96:
            value |= 1 << bit
        elif not (top < 96 and bottom > 160):
            return -1
    return value


def write_clip(path: Path, n_frames: int, fmt: str = "h264_bframes", fps: float = 25.0,
               width: int = WIDTH, height: int = HEIGHT) -> Path:
    """Encode ``n_frames`` barcode frames into ``path`` with the codec settings ``FORMATS[fmt]``."""
    _, codec = FORMATS[fmt]
    raw = np.stack([barcode_frame(i, width, height) for i in range(n_frames)])
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
           *codec, "-an", str(path)]
    subprocess.run(cmd, input=raw.tobytes(), check=True, capture_output=True)
    return path


def frame_types(path: Path) -> list[str]:
    """Picture types (I/P/B) of every frame, in display order, from ffmpeg's showinfo filter."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path), "-vf", "showinfo",
           "-f", "null", "-"]
    err = subprocess.run(cmd, capture_output=True, text=True).stderr
    return [line.split(" type:")[1][0] for line in err.splitlines() if " type:" in line]


def write_rotated(src: Path, dst: Path, degrees: int) -> Path:
    """Copy ``src`` into ``dst`` with display-rotation metadata (counter-clockwise degrees), no re-encode."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-display_rotation", str(degrees),
           "-i", str(src), "-c", "copy", str(dst)]
    subprocess.run(cmd, check=True, capture_output=True)
    return dst


def ffmpeg_has_encoder(name: str) -> bool:
    """Whether the bundled ffmpeg can encode with ``name`` (e.g. libaom-av1)."""
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-encoders"],
                         capture_output=True, text=True).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.startswith(" V"))
