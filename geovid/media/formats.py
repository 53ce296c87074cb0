"""The one list of video file extensions: what geovid reads and what it writes (docs/media.md)."""

from __future__ import annotations

#: Containers :func:`geovid.media.writers.write_video` encodes (``.gif`` goes to ``write_gif``).
ENCODED_VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".mov", ".avi", ".webm")
#: Every video file geovid writes.
WRITABLE_VIDEO_EXTENSIONS: tuple[str, ...] = (*ENCODED_VIDEO_EXTENSIONS, ".gif")
#: Video files geovid reads (decord, OpenCV or ffmpeg decode them, :mod:`geovid.media.decode`).
VIDEO_EXTENSIONS: tuple[str, ...] = (*ENCODED_VIDEO_EXTENSIONS, ".m4v", ".mpg", ".mpeg", ".ts", ".ogv", ".gif")
