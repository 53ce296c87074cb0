"""The new-job form's text: defaults per kind, and the parsing of what was typed into engine options."""

from __future__ import annotations

import ast
import shlex
from pathlib import Path
from typing import Any

from geovid.media.formats import VIDEO_EXTENSIONS
from tui.engine import JOB_KINDS

VIDEO_EXT = set(VIDEO_EXTENSIONS)
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}

#: Form defaults per kind (strings, as typed). Empty values and "default" leave the choice to the library
#: (e.g. α: the estimator's default; an extrapolation's noise level: the continued run's own level).
DEFAULTS: dict[str, dict[str, str]] = {
    "analysis": {"frames": "16", "noise_level": "0.6", "alpha": "", "metric": "default",
                 "estimator": "default", "seed": "0"},
    "interpolation": {"frames": "17", "noise_level": "0.6", "alpha": "", "metric": "default",
                      "estimator": "default", "seed": "0"},
    "extrapolation": {"steps": "16", "noise_level": "", "alpha": "", "metric": "default",
                      "estimator": "default", "seed": "0"},
}
INPUT_HINT = {"analysis": "one or more video clips", "interpolation": "two images: A B",
              "extrapolation": "images A B, one clip, or an interpolation run folder"}
INPUT_COUNT = {"analysis": (1, None), "interpolation": (2, 2), "extrapolation": (1, 2)}
#: Frames of an analysis or an interpolation: the library needs a point between the ends (docs/method.md §7, §5).
MIN_FRAMES = 3


def parse_form(kind: str, values: dict[str, str], cwd: Path | None = None) -> dict[str, Any]:
    """Validate the form's text values and build the engine options.

    Args:
        kind: The job kind.
        values: Field name → text (``inputs`` is shell-quoted paths separated by spaces).
        cwd: Base for relative input paths (default: the current directory).

    Returns:
        Options named like the CLI options with underscores; inputs as absolute paths.

    Raises:
        ValueError: With a message naming the field, for the form to show.
    """
    if kind not in JOB_KINDS:
        raise ValueError(f"kind must be one of {', '.join(JOB_KINDS)}")
    base = cwd or Path.cwd()
    try:
        raw = shlex.split(values.get("inputs", ""))
    except ValueError as exc:
        raise ValueError(f"inputs: {exc}") from None
    lo, hi = INPUT_COUNT[kind]
    if len(raw) < lo or (hi is not None and len(raw) > hi):
        raise ValueError(f"inputs: {kind} needs {INPUT_HINT[kind]} (got {len(raw)})")
    inputs = []
    for item in raw:
        path = (base / Path(item).expanduser()).resolve()
        if not path.exists():
            raise ValueError(f"inputs: {item} does not exist")
        inputs.append(str(path))
    options: dict[str, Any] = {"inputs": inputs}

    def number(field: str, cast: type, lo: float | None = None, hi: float | None = None,
               optional: bool = False) -> None:
        text = values.get(field, "").strip()
        if not text and optional:
            options[field] = None
            return
        try:
            value = cast(text)
        except ValueError:
            raise ValueError(f"{field.replace('_', ' ')}: {text!r} is not a{'n integer' if cast is int else ' number'}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"{field.replace('_', ' ')}: must be between {lo} and {hi}")
        options[field] = value

    if kind == "extrapolation":
        from geovid.tasks.extrapolation_config import MAX_STEPS

        number("steps", int, 1, MAX_STEPS)
    else:
        from geovid.tasks.interpolation_config import MAX_FRAMES

        number("frames", int, MIN_FRAMES, MAX_FRAMES if kind == "interpolation" else 10000)
    number("noise_level", float, 0.0, 1.0, optional=True)
    number("alpha", float, 0.0, None, optional=True)
    number("seed", int, 0, None)
    for choice in ("metric", "estimator"):
        value = values.get(choice) or "default"
        options[choice] = None if value == "default" else value
    name = values.get("name", "").strip()
    if name and ("/" in name or name in (".", "..")):
        raise ValueError("name: a run name cannot contain '/'")
    options["name"] = name or None
    options["model"] = values.get("model", "").strip() or None
    options.update(parse_more(values.get("more", "")))
    return options


def parse_more(text: str) -> dict[str, Any]:
    """``key=value`` pairs for any other option of the library's config (numbers, true/false, None, text).

    Raises:
        ValueError: A pair without ``=`` or with an invalid key.
    """
    out: dict[str, Any] = {}
    try:
        items = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"more options: {exc}") from None
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise ValueError(f"more options: {item!r} is not key=value")
        lowered = raw.strip().lower()
        value: Any
        if lowered in ("true", "false"):
            value = lowered == "true"
        elif lowered in ("none", "null"):
            value = None
        else:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw
        out[key] = value
    return out
