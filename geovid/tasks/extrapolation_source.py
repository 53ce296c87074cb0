"""Where an extrapolation starts (docs/method.md §6): two images A B, a clip, or an interpolation run.

:func:`classify` tells which from the inputs (before any run folder exists; a run's manifest and its
``path.safetensors`` are read then, since the options inherit from them); :func:`read_given` reads the frames the
shot continues; :func:`run_end` the run's points and endpoint conditions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geovid.errors import InputError

if TYPE_CHECKING:
    import torch

    from geovid.backbones.base import Backbone
    from geovid.progress import ProgressFn


@dataclass
class Source:
    """The start of a shot: ``kind`` ``images`` (A, B), ``clip`` or ``run``, its input paths, and for a run its
    ``path.safetensors`` metadata and its manifest."""

    kind: str
    paths: list[Path]
    run_meta: dict[str, Any] = field(default_factory=dict)
    run_manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def run_config(self) -> dict[str, Any]:
        """The source run's resolved options (empty for images and clips)."""
        return self.run_manifest.get("config", {}) if self.kind == "run" else {}


def classify(inputs: list[Path] | None, from_run: Path | None) -> Source:
    """Which kind of start the inputs describe (checked before any run folder exists)."""
    from geovid.media.formats import VIDEO_EXTENSIONS
    from geovid.tasks.common import check_input_file

    paths = [Path(p).expanduser() for p in (inputs or [])]
    run_dir = Path(from_run).expanduser() if from_run is not None else None
    if run_dir is not None and paths:
        raise InputError("give either inputs (A B, or a clip) or --from-run RUN, not both")
    if run_dir is None and len(paths) == 1 and paths[0].is_dir():
        run_dir = paths[0]
    if run_dir is not None:
        return _from_run(run_dir)
    if len(paths) == 2:
        for p, what in zip(paths, ("image A", "image B")):
            check_input_file(p, what)
        return Source("images", paths)
    if len(paths) == 1:
        check_input_file(paths[0], "input")
        if paths[0].suffix.lower() in VIDEO_EXTENSIONS:
            return Source("clip", paths)
        raise InputError(f"{paths[0].name}: one image gives no direction to continue in; give two images A B "
                         "(continue A→B beyond B), a clip, or --from-run RUN")
    if not paths:
        raise InputError("nothing to extrapolate: give two images A B, a clip, or --from-run RUN")
    raise InputError(f"extrapolate takes two images A B or one clip, got {len(paths)} inputs")


def _from_run(run_dir: Path) -> Source:
    """An interpolation run with its ``path.safetensors``."""
    from geovid.runs.catalog import read_manifest
    from geovid.tasks.report import load_path

    if not run_dir.is_dir():
        raise InputError(f"--from-run {run_dir}: no such run folder")
    manifest = read_manifest(run_dir)
    if manifest is None:
        raise InputError(f"{run_dir} is not a geovid run (no readable manifest.json)")
    if manifest.get("kind") != "interpolation":
        kind = manifest.get("kind")
        raise InputError(f"--from-run needs an interpolation run; {run_dir.name} is "
                         f"{'an ' + str(kind) if kind else 'not a geovid'} run")
    if not (run_dir / "path.safetensors").is_file():
        raise InputError(f"interpolation run {run_dir.name} has no path.safetensors (status "
                         f"{manifest.get('status')}); finish it with --resume first")
    try:
        _, _, meta = load_path(run_dir / "path.safetensors")
    except Exception as exc:
        raise InputError(f"{run_dir.name}/path.safetensors is unreadable ({type(exc).__name__})") from None
    return Source("run", [run_dir.resolve()], run_meta=meta, run_manifest=manifest)


def read_given(src: Source, context: int, progress: ProgressFn) -> list[np.ndarray]:
    """The frames the shot continues (shown in strip.png), as read: the input images, the clip's last ``context``
    frames, or the run's last frames (already at the model resolution)."""
    if src.kind == "images":
        from geovid.media.images import load_image

        return [load_image(p) for p in src.paths]
    if src.kind == "clip":
        from geovid.media.decode import probe, read_frames

        info = probe(src.paths[0])
        if info.frame_count < 2:
            raise InputError(f"{info.name} has {info.frame_count} frame(s); need at least 2 to continue it")
        k = min(context, info.frame_count)
        idx = list(range(info.frame_count - k, info.frame_count))
        # The video decoder reports phase "decode"; shown here as reading the clip.
        frames, _ = read_frames(info, idx, progress=lambda _p, d, tot, i: progress("read clip", d, tot, i))
        return list(np.asarray(frames))
    from PIL import Image

    files = sorted((src.paths[0] / "frames").glob("*.png"))[-4:]
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def run_end(src: Source, backbone: Backbone, inverted: bool
            ) -> tuple[torch.Tensor, float | None, tuple[torch.Tensor, torch.Tensor] | None]:
    """A source run's points, its sphere's radius, and with ``inverted`` its endpoint conditions c_A, c_B (on the
    backbone's device and dtype)."""
    from geovid.runs.state import read_tensors
    from geovid.tasks.report import load_path

    name = src.paths[0].name
    pts, _, meta = load_path(src.paths[0] / "path.safetensors")
    if pts.shape[1] != math.prod(backbone.latent_shape):
        raise InputError(f"run {name} has points of size {pts.shape[1]}, this "
                         f"model's latents have {math.prod(backbone.latent_shape)}")
    conds = None
    if inverted:
        try:
            tensors, _ = read_tensors(src.paths[0] / "conditions.safetensors")
        except Exception as exc:
            raise InputError(f"run {name} has no readable conditions.safetensors "
                             f"({type(exc).__name__}); use --conditioning prompt") from None
        conds = (tensors["cond_a"].to(backbone.device, backbone.dtype),
                 tensors["cond_b"].to(backbone.device, backbone.dtype))
    return pts, meta.get("radius"), conds


__all__ = ["Source", "classify", "read_given", "run_end"]
