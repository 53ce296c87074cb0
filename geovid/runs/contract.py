"""The names of the run directory contract (``docs/run-directory.md``), shared by the writer and the readers."""

from __future__ import annotations

SCHEMA = 1
#: Run kinds (the manifest's ``kind``).
KINDS = ("analysis", "interpolation", "extrapolation")
#: Run statuses (the manifest's ``status``).
STATUSES = ("running", "complete", "interrupted", "failed")
#: Statuses a run can be resumed from.
RESUMABLE = ("running", "interrupted", "failed")
#: Status the catalog gives a folder whose manifest is missing or unreadable.
DAMAGED = "damaged"
MANIFEST = "manifest.json"
SUMMARY = "summary.json"
# Outputs every finished run of a kind has (the same folders the TUI's catalog flags when missing). A trailing "/"
# means a non-empty folder. Jobs add their own with Run.expect() or complete(required=...) (plots, strip.png,
# video.mp4, ... depend on options).
_COMMON = (SUMMARY, "per_frame.csv", "per_frame.parquet", "frames/")
REQUIRED_FILES: dict[str, tuple[str, ...]] = {
    "analysis": (*_COMMON, "optimised/"),
    "interpolation": (*_COMMON, "baselines/"),
    "extrapolation": _COMMON,
}
